// GRU4Rec's network, its next-item batches, its negatives and its two losses, header-only so that
// the plugin and its tests run the very same code.
//
// Tokens: 0 is padding, item i is i + 1; rows are right-padded, so a GRU (causal by nature) sees
// a row's real tokens the same way whatever else is in the batch. The output layer scores
// h . W_item + b_item with W the input embedding (tie_embeddings, GRU4Rec's "constrained
// embedding") or a separate output table.
#pragma once

#include <recrun/seq.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace recrun::gru4rec {

/// Training objective.
enum class Loss {
  /// Softmax cross-entropy of the target against the negatives.
  ce,
  /// BPR-max (Hidasi & Karatzoglou 2018): -log sum_j s_j sigmoid(r_i - r_j) + bpreg sum_j s_j
  /// r_j^2, s = softmax of the negatives' scores.
  bpr_max,
};

/// Where a position's negatives come from.
enum class Negatives {
  /// Every other item of the catalogue.
  all,
  /// The targets of the other sequences at the same step (GRU4Rec's mini-batch negatives).
  batch,
  /// `num_negatives` items drawn per batch with probability proportional to count^sample_alpha,
  /// shared by every position of the batch (out of batch).
  sampled,
  /// batch and sampled together (GRU4Rec's default).
  batch_sampled,
};

/// Scores of each training position's target [P] and of its negatives [P, K]; `keep` [P, K]
/// marks the negatives that take part (not padding, not the target itself).
struct Candidates {
  torch::Tensor pos, neg, keep;
};

/// Mean over positions of -log softmax([pos, kept negatives])[0].
inline torch::Tensor ce_loss(const Candidates& c) {
  const torch::Tensor neg = c.neg.masked_fill(c.keep.logical_not(), -INFINITY);
  const torch::Tensor logits = torch::cat({c.pos.unsqueeze(1), neg}, 1);
  return (torch::logsumexp(logits, 1) - c.pos).mean();
}

/// Mean over positions of BPR-max with score regularisation `bpreg`. A position none of whose
/// negatives is kept (every other sequence padded at that step, say) has nothing to rank against
/// and is left out of the mean.
inline torch::Tensor bpr_max_loss(const Candidates& c, double bpreg) {
  const torch::Tensor has = c.keep.any(1, /*keepdim=*/true);
  // Such rows get finite stand-in scores so that softmax (and its gradient) stays finite.
  const torch::Tensor masked =
      torch::where(has, c.neg.masked_fill(c.keep.logical_not(), -INFINITY), torch::zeros_like(c.neg));
  const torch::Tensor s = torch::softmax(masked, 1);
  const torch::Tensor ranked = (s * torch::sigmoid(c.pos.unsqueeze(1) - c.neg)).sum(1);
  torch::Tensor loss = -torch::log(ranked + 1e-24);
  if (bpreg > 0) loss = loss + bpreg * (s * c.neg.square()).sum(1);
  return loss.masked_select(has.squeeze(1)).mean();
}

/// One training batch: inputs [B, T] (tokens, right-padded), targets [B, T] (item ids; 0 under
/// padding), valid [B, T], and the number of real positions.
struct NextItemBatch {
  torch::Tensor inputs, targets, valid;
  std::int64_t positions = 0;
};

/// The last max_len + 1 items of each history (at least 2): inputs are all but the last, each
/// input's target the item after it.
inline NextItemBatch next_item_batch(std::span<const std::span<const std::int32_t>> histories,
                                     std::int64_t max_len) {
  const auto b = static_cast<std::int64_t>(histories.size());
  std::int64_t t = 0;
  for (const auto& h : histories)
    t = std::max<std::int64_t>(t, std::min<std::int64_t>(static_cast<std::int64_t>(h.size()), max_len + 1) - 1);
  NextItemBatch out{torch::zeros({b, t}, torch::kInt64), torch::zeros({b, t}, torch::kInt64),
                    torch::zeros({b, t}, torch::kBool), 0};
  auto* in = out.inputs.data_ptr<std::int64_t>();
  auto* tg = out.targets.data_ptr<std::int64_t>();
  auto* va = out.valid.data_ptr<bool>();
  for (std::int64_t r = 0; r < b; ++r) {
    const auto& h = histories[r];
    const auto n = std::min<std::int64_t>(static_cast<std::int64_t>(h.size()), max_len + 1);
    const auto first = static_cast<std::int64_t>(h.size()) - n;
    for (std::int64_t p = 0; p + 1 < n; ++p) {
      in[r * t + p] = h[first + p] + 1;
      tg[r * t + p] = h[first + p + 1];
      va[r * t + p] = true;
      ++out.positions;
    }
  }
  return out;
}

/// Network shape.
struct NetOptions {
  std::int64_t num_items = 0;
  std::int64_t hidden = 100;
  std::int64_t layers = 1;
  double embedding_dropout = 0.0;
  double hidden_dropout = 0.0;
  bool tie_embeddings = true;
};

class Gru4RecNetImpl : public torch::nn::Module {
 public:
  explicit Gru4RecNetImpl(const NetOptions& o) : o_(o) {
    embedding_ = register_module("embedding", torch::nn::Embedding(o.num_items + 1, o.hidden));
    gru_ = register_module(
        "gru", torch::nn::GRU(torch::nn::GRUOptions(o.hidden, o.hidden).num_layers(o.layers).batch_first(true)));
    if (!o.tie_embeddings)
      output_ = register_parameter("output", torch::empty({o.num_items, o.hidden}));
    bias_ = register_parameter("bias", torch::zeros({o.num_items}));
    // GRU4Rec's initialisation: uniform in +-sqrt(6 / (fan_in + fan_out)).
    torch::NoGradGuard no_grad;
    const double a = std::sqrt(6.0 / static_cast<double>(o.num_items + o.hidden));
    embedding_->weight.uniform_(-a, a);
    embedding_->weight[0].zero_();
    if (output_.defined()) output_.uniform_(-a, a);
  }

  /// Hidden state after every position [B, T, hidden].
  torch::Tensor forward(const torch::Tensor& tokens) {
    torch::Tensor x = recrun::dropout(embedding_(tokens), o_.embedding_dropout, is_training());
    torch::Tensor h = std::get<0>(gru_(x));
    return recrun::dropout(h, o_.hidden_dropout, is_training());
  }

  /// Output weights of the items [num_items, hidden].
  torch::Tensor item_weights() const {
    return o_.tie_embeddings ? embedding_->weight.slice(0, 1) : output_;
  }
  const torch::Tensor& bias() const { return bias_; }

  /// Scores of every item for hidden states h [..., hidden].
  torch::Tensor logits(const torch::Tensor& h) const {
    return torch::matmul(h, item_weights().t()) + bias_;
  }

  /// Target and negative scores of the valid positions of `batch` given its hidden states
  /// h [B, T, hidden]; `sampled` [S] are the batch's out-of-batch negatives (may be undefined).
  Candidates candidates(const torch::Tensor& h, const NextItemBatch& batch, Negatives negatives,
                        const torch::Tensor& sampled) const {
    const torch::Tensor w = item_weights();
    const torch::Tensor hv = h.index({batch.valid});           // [P, H]
    const torch::Tensor target = batch.targets.index({batch.valid});  // [P]
    if (negatives == Negatives::all) {
      const torch::Tensor all = torch::matmul(hv, w.t()) + bias_;  // [P, N]
      const torch::Tensor pos = all.gather(1, target.unsqueeze(1)).squeeze(1);
      const torch::Tensor keep = torch::arange(o_.num_items, target.options()).unsqueeze(0) != target.unsqueeze(1);
      return {pos, all, keep};
    }
    const torch::Tensor pos = (hv * w.index_select(0, target)).sum(1) + bias_.index_select(0, target);
    std::vector<torch::Tensor> negs, keeps;
    if (negatives == Negatives::batch || negatives == Negatives::batch_sampled) {
      // Column t's targets are the negatives of every position of column t: [T, B, B].
      const torch::Tensor tg = batch.targets.t();                       // [T, B]
      const torch::Tensor e = w.index_select(0, tg.reshape(-1)).view({tg.size(0), tg.size(1), -1});
      const torch::Tensor s = torch::bmm(h.transpose(0, 1), e.transpose(1, 2)) +
                              bias_.index_select(0, tg.reshape(-1)).view({tg.size(0), 1, tg.size(1)});
      const torch::Tensor valid_t = batch.valid.t();                    // [T, B]
      const auto b = tg.size(1);
      torch::Tensor keep = valid_t.unsqueeze(1).expand({tg.size(0), b, b}) &
                           (tg.unsqueeze(2) != tg.unsqueeze(1));
      // Back to [B, T, B] so that the valid positions come out in row-major order.
      negs.push_back(s.transpose(0, 1).index({batch.valid}));
      keeps.push_back(keep.transpose(0, 1).index({batch.valid}));
    }
    if (negatives == Negatives::sampled || negatives == Negatives::batch_sampled) {
      negs.push_back(torch::matmul(hv, w.index_select(0, sampled).t()) + bias_.index_select(0, sampled));
      keeps.push_back(sampled.unsqueeze(0) != target.unsqueeze(1));
    }
    return {pos, torch::cat(negs, 1), torch::cat(keeps, 1)};
  }

 private:
  NetOptions o_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::Tensor output_, bias_;
};
TORCH_MODULE(Gru4RecNet);

}  // namespace recrun::gru4rec
