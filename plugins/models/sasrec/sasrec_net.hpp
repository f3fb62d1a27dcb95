// The SASRec network, its next-item training batches and its four losses, header-only so that
// the plugin, its tests and bench/bench_sasrec.cpp all run the very same code.
//
// Tokens: 0 is padding, item i is i + 1. Rows are right-padded (recrun::pack_sequences) and
// positions count back from the last real token, which always sits at position max_len - 1: the
// meaning of the authors' left-padded sequences, without computing the padding.
//
// The `ce` loss scores every position against the whole catalogue, a chunk of positions at a
// time (recrun/chunked_ce.hpp), so its memory is O(chunk x items), never positions x items. The
// sampled losses (bce, sampled_softmax, gbce) gather the rows of the sampled items only, so their
// cost does not grow with the catalogue beyond the embedding table itself.
#pragma once

#include <recrun/chunked_ce.hpp>
#include <recrun/memory.hpp>
#include <recrun/seq.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace recrun::sasrec {

/// Training objective.
enum class Loss {
  /// Softmax cross-entropy over the whole catalogue (SASRec+, Klenitskiy & Vasilev 2023).
  ce,
  /// Binary cross-entropy of the positive and `num_negatives` sampled negatives (the paper's).
  bce,
  /// Softmax cross-entropy over the positive and the sampled negatives (optionally logQ-corrected).
  sampled_softmax,
  /// gSASRec's generalised BCE (Petrov & Macdonald 2023): the positive's probability raised to
  /// beta, which counters the overconfidence negative sampling causes.
  gbce,
};

/// Where negatives come from.
enum class Sampling { uniform, popularity };

/// How many positions share one draw of negatives.
enum class Sharing {
  /// `position` for a few negatives, `sequence` for many (see resolve_sharing).
  automatic,
  /// Every position draws its own negatives: memory positions x negatives x hidden.
  position,
  /// The positions of one sequence share its negatives (Klenitskiy & Vasilev's sampled CE):
  /// memory sequences x negatives x hidden, and one batched matrix product.
  sequence,
};

/// `automatic` resolves to `position` up to this many negatives, `sequence` above.
inline constexpr std::int64_t kSharedAbove = 16;

/// Sharing actually used for `negatives` negatives.
inline Sharing resolve_sharing(Sharing s, std::int64_t negatives) {
  if (s != Sharing::automatic) return s;
  return negatives <= kSharedAbove ? Sharing::position : Sharing::sequence;
}

/// Shape of the network.
struct NetOptions {
  /// Items in the catalogue (tokens 1..num_items).
  std::int64_t num_items = 0;
  /// Embedding and model width.
  std::int64_t hidden = 64;
  /// Attention heads.
  std::int64_t heads = 1;
  /// Transformer blocks.
  std::int64_t layers = 2;
  /// Longest input sequence.
  std::int64_t max_len = 200;
  /// Dropout on embeddings, attention probabilities and sublayer outputs.
  double dropout = 0.2;
  /// Feed-forward non-linearity.
  Activation activation = Activation::relu;
  /// Pre-LN blocks with a final LayerNorm (the authors' code) instead of post-LN.
  bool norm_first = true;
};

// --- batches -------------------------------------------------------------------------------------

/// One next-item training batch: at every real input position the target is the item after it.
struct NextItemBatch {
  /// int64 [B, T] right-padded input tokens (item + 1, 0 = padding).
  torch::Tensor inputs;
  /// int64 [B]: real input tokens per row.
  torch::Tensor lengths;
  /// int64 [B, T]: the next item's id (0-based) at real positions, 0 at padding.
  torch::Tensor targets;
  /// bool [B, T]: real positions.
  torch::Tensor valid;
  /// Number of real positions (training examples).
  std::int64_t positions = 0;
};

/// Builds the batch from histories (oldest first) of at least two items each: the last
/// max_len + 1 items of each, inputs all but the last, targets all but the first.
inline NextItemBatch next_item_batch(std::span<const std::span<const std::int32_t>> histories,
                                     std::int64_t max_len) {
  const PackedSequences packed = pack_sequences(histories, max_len + 1);
  const std::int64_t width = packed.tokens.size(1) - 1;
  TORCH_CHECK(width >= 1, "next_item_batch: every history needs at least two items");
  NextItemBatch out;
  out.lengths = packed.lengths - 1;
  TORCH_CHECK(out.lengths.min().item<std::int64_t>() >= 1,
              "next_item_batch: every history needs at least two items");
  out.inputs = packed.tokens.narrow(1, 0, width);
  out.valid = torch::arange(width, torch::kInt64).unsqueeze(0).lt(out.lengths.unsqueeze(1));
  out.inputs = out.inputs.masked_fill(out.valid.logical_not(), 0);  // the last item is a target
  out.targets = (packed.tokens.narrow(1, 1, width) - 1).clamp_min(0).masked_fill(
      out.valid.logical_not(), 0);
  out.positions = out.lengths.sum().item<std::int64_t>();
  return out;
}

// --- losses --------------------------------------------------------------------------------------

/// Scores of the sampled candidates at M positions.
struct SampledScores {
  /// [M]: the target item's score.
  torch::Tensor positive;
  /// [M, k]: the negatives' scores.
  torch::Tensor negative;
  /// bool [M, k]: false where a negative happens to be the position's target (it is left out).
  torch::Tensor keep;
  /// int64 [M] and [M, k]: the items behind the scores (for logQ correction).
  torch::Tensor positive_items, negative_items;
};

/// Row indices (into [B*T]) of the real positions, row-major.
inline torch::Tensor flat_valid(const torch::Tensor& valid) {
  return valid.reshape({-1}).nonzero().squeeze(1);
}

/// Scores the targets and `negatives` of a batch with hidden states `h` [B, T, H] against the
/// item table `items` [N, H]. `negatives` is int64 [B, T, k] (one draw per position) or [B, k]
/// (shared by a row's positions). Only the rows of `items` named by targets and negatives are
/// read: nothing of size [M, N] is ever built.
inline SampledScores score_candidates(const torch::Tensor& h, const torch::Tensor& valid,
                                      const torch::Tensor& targets, const torch::Tensor& negatives,
                                      const torch::Tensor& items) {
  const std::int64_t b = h.size(0), t = h.size(1), hidden = h.size(2);
  const torch::Tensor rows = flat_valid(valid);
  const torch::Tensor hv = h.reshape({b * t, hidden}).index_select(0, rows);  // [M, H]
  SampledScores out;
  out.positive_items = targets.reshape({-1}).index_select(0, rows);
  out.positive = (items.index_select(0, out.positive_items) * hv).sum(-1);
  if (negatives.dim() == 3) {
    const std::int64_t k = negatives.size(2);
    out.negative_items = negatives.reshape({b * t, k}).index_select(0, rows);  // [M, k]
    const torch::Tensor emb =
        items.index_select(0, out.negative_items.reshape({-1})).view({-1, k, hidden});
    out.negative = torch::bmm(emb, hv.unsqueeze(-1)).squeeze(-1).to(torch::kFloat);
  } else {
    TORCH_CHECK(negatives.dim() == 2 && negatives.size(0) == b, "negatives: [B, T, k] or [B, k]");
    const std::int64_t k = negatives.size(1);
    const torch::Tensor emb = items.index_select(0, negatives.reshape({-1})).view({b, k, hidden});
    // float32 scores also when bf16 autocast ran the product.
    const torch::Tensor all = torch::bmm(h, emb.transpose(1, 2)).to(torch::kFloat);  // [B, T, k]
    out.negative = all.reshape({b * t, k}).index_select(0, rows);
    out.negative_items =
        negatives.unsqueeze(1).expand({b, t, k}).reshape({b * t, k}).index_select(0, rows);
  }
  out.keep = out.negative_items.ne(out.positive_items.unsqueeze(1));
  return out;
}

/// -log sigmoid(x), stable.
inline torch::Tensor neg_log_sigmoid(const torch::Tensor& x) {
  return torch::nn::functional::softplus(-x);
}

/// Binary cross-entropy: mean over positions of -log s(s+) - sum_j log(1 - s(s-_j)), where s is
/// the sigmoid (kept negatives only). With one negative this is the SASRec paper's loss.
inline torch::Tensor bce_loss(const SampledScores& s) {
  const torch::Tensor neg = neg_log_sigmoid(-s.negative).mul(s.keep.to(s.negative.scalar_type()));
  return (neg_log_sigmoid(s.positive) + neg.sum(1)).mean();
}

/// gSASRec's beta for `negatives` uniform negatives out of `num_items` and calibration `t`:
/// alpha = negatives / (num_items - 1), beta = alpha (t (1 - 1/alpha) + 1/alpha). t = 0 gives
/// beta = 1 (plain BCE), t = 1 gives beta = alpha.
inline double gbce_beta(std::int64_t negatives, std::int64_t num_items, double t) {
  const double alpha = static_cast<double>(negatives) / static_cast<double>(num_items - 1);
  return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha);
}

/// Generalised BCE: mean over positions of -log(s(s+)^beta) - sum_j log(1 - s(s-_j)).
/// (The authors' code averages over the k + 1 terms instead of summing, a constant factor that
/// Adam does not see.)
inline torch::Tensor gbce_loss(const SampledScores& s, double beta) {
  const torch::Tensor neg = neg_log_sigmoid(-s.negative).mul(s.keep.to(s.negative.scalar_type()));
  return (beta * neg_log_sigmoid(s.positive) + neg.sum(1)).mean();
}

/// Sampled softmax: mean over positions of -log softmax over [s+, s-_1, ..., s-_k] at the
/// positive, negatives equal to the target left out. With `log_q` (float [N], the log sampling
/// probability of each item) every score is corrected by -log q(item) first (logQ correction,
/// which makes popularity-sampled negatives an unbiased stand-in for the full softmax).
inline torch::Tensor sampled_softmax_loss(const SampledScores& s,
                                          const torch::Tensor& log_q = {}) {
  torch::Tensor pos = s.positive, neg = s.negative;
  if (log_q.defined()) {
    pos = pos - log_q.index_select(0, s.positive_items);
    neg = neg - log_q.index_select(0, s.negative_items.reshape({-1})).view_as(neg);
  }
  neg = neg.masked_fill(s.keep.logical_not(), -std::numeric_limits<float>::infinity());
  const torch::Tensor logits = torch::cat({pos.unsqueeze(1), neg}, 1);  // [M, 1 + k]
  return (torch::logsumexp(logits, 1) - pos).mean();
}

/// Full cross-entropy over the catalogue, logits h · items^T, at the real positions: computed
/// `chunk` positions at a time (0 = sized automatically), so at most [chunk, N] logits exist at
/// once. The loss is float32 also when bf16 autocast runs the products.
inline torch::Tensor full_ce_loss(const torch::Tensor& h, const torch::Tensor& valid,
                                  const torch::Tensor& targets, const torch::Tensor& items,
                                  std::int64_t chunk = 0) {
  const std::int64_t hidden = h.size(2);
  const torch::Tensor rows = flat_valid(valid);
  const torch::Tensor hv = h.reshape({-1, hidden}).index_select(0, rows);
  const torch::Tensor tv = targets.reshape({-1}).index_select(0, rows);
  return chunked_cross_entropy(hv, items, std::nullopt, tv, chunk);
}

/// Loss settings, resolved (negatives > 0 for the sampled losses).
struct LossSpec {
  Loss loss = Loss::ce;
  /// Negatives per position (or per sequence when shared).
  std::int64_t negatives = 1;
  /// gBCE calibration.
  double gbce_t = 0.75;
  Sampling sampling = Sampling::uniform;
  /// logQ correction of sampled_softmax under popularity sampling.
  bool logq_correction = true;
  /// position or sequence (resolved).
  Sharing sharing = Sharing::position;
  /// Positions per chunk of the ce loss; 0 = automatic.
  std::int64_t ce_chunk = 0;
};

/// Draws negatives from LibTorch's default generator (which the trainer seeds and checkpoints),
/// uniformly or in proportion to the items' training counts.
class NegativeSampler {
 public:
  NegativeSampler() = default;
  /// Uniform over `num_items`.
  explicit NegativeSampler(std::int64_t num_items) : num_items_(num_items) {}
  /// In proportion to `counts` (float [N], >= 0, not all zero).
  explicit NegativeSampler(const torch::Tensor& counts)
      : num_items_(counts.size(0)), probs_(counts.to(torch::kDouble) / counts.sum().item<double>()) {
    log_q_ = probs_.clamp_min(1e-30).log().to(torch::kFloat);
  }
  /// int64 tensor of `shape` holding item ids.
  torch::Tensor draw(std::vector<std::int64_t> shape) const {
    if (!probs_.defined()) return torch::randint(0, num_items_, shape, torch::kInt64);
    std::int64_t n = 1;
    for (const auto s : shape) n *= s;
    return torch::multinomial(probs_, n, /*replacement=*/true).view(shape);
  }
  /// float [N] log sampling probabilities; undefined when uniform.
  const torch::Tensor& log_q() const { return log_q_; }

 private:
  std::int64_t num_items_ = 0;
  torch::Tensor probs_, log_q_;
};

/// The loss of hidden states `h` [B, T, H] on `batch` against the item table `items` [N, H].
inline torch::Tensor next_item_loss(const torch::Tensor& h, const NextItemBatch& batch,
                                    const torch::Tensor& items, const LossSpec& spec,
                                    const NegativeSampler& sampler) {
  if (spec.loss == Loss::ce)
    return full_ce_loss(h, batch.valid, batch.targets, items, spec.ce_chunk);
  const std::int64_t b = h.size(0), t = h.size(1), k = spec.negatives;
  const torch::Tensor negatives =
      spec.sharing == Sharing::sequence ? sampler.draw({b, k}) : sampler.draw({b, t, k});
  const SampledScores s = score_candidates(h, batch.valid, batch.targets, negatives, items);
  switch (spec.loss) {
    case Loss::bce: return bce_loss(s);
    case Loss::gbce: return gbce_loss(s, gbce_beta(k, items.size(0), spec.gbce_t));
    case Loss::sampled_softmax:
      return sampled_softmax_loss(
          s, spec.logq_correction && sampler.log_q().defined() ? sampler.log_q() : torch::Tensor{});
    case Loss::ce: break;
  }
  TORCH_CHECK(false, "unreachable");
}

// --- memory --------------------------------------------------------------------------------------

/// The parts of SASRec's peak memory, in bytes, beyond the parameters themselves.
struct MemoryParts {
  /// Gradients and Adam's moments, plus the dense gradient of the item table.
  std::int64_t state = 0;
  /// The transformer's activations for one batch.
  std::int64_t activations = 0;
  /// The loss's working set (ce: one chunk of logits; sampled: the candidates' rows).
  std::int64_t loss = 0;
  /// Scoring `score_batch` users: their [users, items] scores and a batch's logits.
  std::int64_t scoring = 0;
  /// Training and scoring do not overlap.
  std::int64_t peak() const { return state + std::max(activations + loss, scoring); }
};

/// SASRec's memory for batches of `batch` sequences of `length` positions (the longest batch),
/// `num_params` parameters and scoring in batches of `score_batch` users.
inline MemoryParts estimate_memory(const NetOptions& o, std::int64_t num_params,
                                   std::int64_t batch, std::int64_t length, const LossSpec& spec,
                                   bool bf16, std::int64_t score_batch) {
  MemoryParts m;
  const std::int64_t n = o.num_items, h = o.hidden, positions = batch * length;
  m.state = memory::optimizer_state_bytes(num_params) + (n + 1) * h * 4;
  m.activations = memory::transformer_activation_bytes(batch, length, h, o.heads,
                                                       static_cast<double>(o.layers), bf16);
  const std::int64_t k = spec.negatives;
  if (spec.loss == Loss::ce)
    m.loss = ce_working_bytes(positions, n, h, spec.ce_chunk);
  else if (spec.sharing == Sharing::sequence)
    m.loss = batch * k * h * 4 * 3 + positions * k * 4 * 4;
  else
    m.loss = positions * k * (h * 4 * 3 + 4 * 4);
  m.scoring = score_batch * n * 4 + std::min(batch, score_batch) * n * (bf16 ? 6 : 4);
  return m;
}

// --- the network ---------------------------------------------------------------------------------

/// Item embedding (fused with item features when any are given) scaled by sqrt(hidden), plus a
/// learned position embedding; a causal transformer encoder; scores = hidden state · item
/// embedding (the input embedding is the output layer).
class SasrecNetImpl : public torch::nn::Module {
 public:
  SasrecNetImpl(NetOptions o, ItemFeatures features) : options_(o), features_(std::move(features)) {
    TORCH_CHECK(o.num_items >= 1 && o.hidden >= 1 && o.max_len >= 1, "bad SASRec shape");
    item_emb_ = register_module("item_emb", torch::nn::Embedding(o.num_items + 1, o.hidden));
    pos_emb_ = register_module("pos_emb", torch::nn::Embedding(o.max_len, o.hidden));
    features_.register_with(*this);
    encoder_ = register_module(
        "encoder", TransformerEncoder(TransformerOptions(o.hidden, o.heads)
                                          .layers(o.layers)
                                          .dropout(o.dropout)
                                          .attention_dropout(o.dropout)
                                          .causal(true)
                                          .norm_first(o.norm_first)
                                          .activation(o.activation)));
    // Xavier-normal weights, as in the PyTorch SASRec that SASRec+ and gSASRec build on; zero
    // biases, identity LayerNorms, a zero padding row. Feature encoders and fusions come from
    // other plugins and keep their own initialisation.
    torch::NoGradGuard no_grad;
    const auto init = [](torch::nn::Module& m) {
      if (auto* linear = m.as<torch::nn::Linear>()) {
        torch::nn::init::xavier_normal_(linear->weight);
        if (linear->bias.defined()) linear->bias.zero_();
      } else if (auto* embedding = m.as<torch::nn::Embedding>()) {
        torch::nn::init::xavier_normal_(embedding->weight);
      } else if (auto* norm = m.as<torch::nn::LayerNorm>()) {
        norm->weight.fill_(1.0);
        norm->bias.zero_();
      }
    };
    init(*item_emb_);
    init(*pos_emb_);
    for (const auto& m : encoder_->modules(/*include_self=*/false)) init(*m);
    item_emb_->weight[0].zero_();
  }

  /// The plain model, without item features.
  explicit SasrecNetImpl(NetOptions o) : SasrecNetImpl(o, ItemFeatures{}) {}

  const NetOptions& options() const { return options_; }
  /// The fusion, if any (for diagnostics).
  const ItemFeatures& features() const { return features_; }

  /// bool [B, T]: columns holding a real token.
  static torch::Tensor valid_mask(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    return torch::arange(tokens.size(1), torch::kInt64).unsqueeze(0).lt(lengths.unsqueeze(1));
  }

  /// Item rows of the embedding table [N, H] (row i = item i): the output layer.
  torch::Tensor item_table() const { return item_emb_->weight.narrow(0, 1, options_.num_items); }

  /// Input representation [B, T, H]: sqrt(H) · item (fused with features) + position, dropout,
  /// padding zeroed.
  torch::Tensor embed(const torch::Tensor& tokens, const torch::Tensor& lengths,
                      const torch::Tensor& valid) {
    torch::Tensor x = item_emb_(tokens);
    if (!features_.empty())
      x = features_.fuse(x, (tokens - 1).clamp_(0, options_.num_items - 1), valid);
    const std::int64_t t = tokens.size(1);
    const torch::Tensor positions =
        ((options_.max_len - lengths).unsqueeze(1) + torch::arange(t, torch::kInt64))
            .clamp_(0, options_.max_len - 1);
    x = x * std::sqrt(static_cast<double>(options_.hidden)) + pos_emb_(positions);
    x = recrun::dropout(x, options_.dropout, is_training());
    return x * valid.unsqueeze(-1).to(x.scalar_type());
  }

  /// Hidden states [B, T, H] at every position (position t sees columns 0..t only).
  torch::Tensor hidden_all(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    const torch::Tensor valid = valid_mask(tokens, lengths);
    return encoder_->forward(embed(tokens, lengths, valid), valid);
  }

  /// Hidden state [B, H] at each row's last real token (the last block computes that row only).
  torch::Tensor hidden_last(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    const torch::Tensor valid = valid_mask(tokens, lengths);
    return encoder_->forward_at(embed(tokens, lengths, valid), valid, (lengths - 1).unsqueeze(1))
        .squeeze(1);
  }

  /// Item scores [..., N] of hidden states [..., H].
  torch::Tensor logits(const torch::Tensor& hidden) const {
    return torch::matmul(hidden, item_table().t());
  }

  /// The training loss of a batch.
  torch::Tensor loss(const NextItemBatch& batch, const LossSpec& spec,
                     const NegativeSampler& sampler) {
    return next_item_loss(hidden_all(batch.inputs, batch.lengths), batch, item_table(), spec,
                          sampler);
  }

 private:
  NetOptions options_;
  ItemFeatures features_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  TransformerEncoder encoder_{nullptr};
};
TORCH_MODULE(SasrecNet);

}  // namespace recrun::sasrec
