// The BERT4Rec network and its Cloze masking, header-only so that the plugin, its tests and
// bench/bench_bert4rec.cpp all run the very same code.
//
// Tokens: 0 is padding, item i is i + 1, num_items + 1 is [MASK]. Rows are right-padded (see
// recrun::pack_sequences) and positions count back from the last real token, which always sits
// at position max_len - 1: the same positional meaning as the seed's sequences left-padded to
// max_len, without paying for the padding.
#pragma once

#include <fmt/format.h>
#include <recrun/chunked_ce.hpp>
#include <recrun/feature.hpp>
#include <recrun/memory.hpp>
#include <recrun/seq.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace recrun::bert4rec {

/// Shape of the network.
struct NetOptions {
  /// Items in the catalogue (tokens 1..num_items).
  std::int64_t num_items = 0;
  /// Embedding and model width.
  std::int64_t hidden = 256;
  /// Attention heads.
  std::int64_t heads = 4;
  /// Transformer blocks.
  std::int64_t layers = 2;
  /// Longest sequence, [MASK] included.
  std::int64_t max_len = 200;
  /// Dropout on embeddings, attention probabilities and sublayer outputs.
  double dropout = 0.2;
  /// Output layer = the item embedding transposed (plus a bias) instead of its own weights.
  bool share_embeddings = true;
};

/// One Cloze-masked training batch.
struct Cloze {
  /// Corrupted tokens [B, T] fed to the network.
  torch::Tensor inputs;
  /// bool [B, T]: positions whose original item is predicted.
  torch::Tensor chosen;
  /// Original item ids (0-based) at the chosen positions, row-major order.
  torch::Tensor labels;
};

/// Cloze masking of right-padded `tokens` [B, T] with real lengths `lengths` [B].
///
/// Each real position is chosen with probability `mask_prob`; a chosen one becomes [MASK] with
/// probability 0.8, a uniformly random item with 0.1, and stays as it is with 0.1. Independently,
/// with probability `last_item_mask_ratio` a row's last item is chosen and always replaced by
/// [MASK], which rehearses the scoring situation (predict what follows the history). Draws come
/// from `gen` (the training loop seeds one per batch from the model's rng(), which the trainer
/// checkpoints), or from LibTorch's default generator when it is not given.
inline Cloze cloze_mask(const torch::Tensor& tokens, const torch::Tensor& lengths,
                        std::int64_t num_items, double mask_prob, double last_item_mask_ratio,
                        c10::optional<at::Generator> gen = c10::nullopt) {
  const std::int64_t b = tokens.size(0), t = tokens.size(1);
  const torch::Tensor valid = torch::arange(t, torch::kInt64).unsqueeze(0).lt(lengths.unsqueeze(1));
  const auto uniform = [&](at::IntArrayRef size) {
    return at::empty(size, torch::kFloat32).uniform_(0, 1, gen);
  };
  torch::Tensor chosen = uniform({b, t}).lt(mask_prob).logical_and_(valid);
  const torch::Tensor action = uniform({b, t});
  torch::Tensor to_mask = chosen.logical_and(action.lt(0.8));
  torch::Tensor to_random = chosen.logical_and(action.ge(0.8)).logical_and_(action.lt(0.9));
  if (last_item_mask_ratio > 0 && t > 0) {
    const torch::Tensor forced = uniform({b}).lt(last_item_mask_ratio).logical_and_(lengths.gt(0));
    const torch::Tensor last = torch::zeros({b, t}, torch::kBool)
                                   .scatter_(1, (lengths - 1).clamp_min(0).unsqueeze(1),
                                             forced.unsqueeze(1));
    chosen.logical_or_(last);
    to_mask.logical_or_(last);
    to_random.logical_and_(last.logical_not());
  }
  Cloze out;
  out.inputs = torch::where(to_random,
                            at::empty({b, t}, torch::kInt64).random_(1, num_items + 1, gen),
                            tokens.masked_fill(to_mask, num_items + 1));
  out.chosen = chosen;
  out.labels = tokens.masked_select(chosen) - 1;
  return out;
}

/// Rows [begin, end) of a Cloze batch drawn over `tokens` (a data-parallel rank's part).
inline Cloze rows_of(const Cloze& all, const torch::Tensor& tokens, std::int64_t begin,
                     std::int64_t end) {
  Cloze out;
  out.inputs = all.inputs.slice(0, begin, end);
  out.chosen = all.chosen.slice(0, begin, end);
  out.labels = tokens.slice(0, begin, end).masked_select(out.chosen) - 1;
  return out;
}

/// BERT4Rec's peak memory in bytes beyond the parameters themselves: gradients and Adam state,
/// the transformer's activations for `batch` sequences of `length` tokens, the cross-entropy of
/// their masked positions (mask_prob of them, with room for chance, plus forced last items), and
/// scoring `score_batch` users; training and scoring do not overlap.
inline std::int64_t estimate_memory(const NetOptions& o, std::int64_t num_params,
                                    std::int64_t batch, std::int64_t length, double mask_prob,
                                    double last_item_mask_ratio, std::int64_t ce_chunk, bool bf16,
                                    std::int64_t score_batch, std::string* detail = nullptr) {
  const std::int64_t n = o.num_items, h = o.hidden;
  const std::int64_t state = memory::optimizer_state_bytes(num_params) + (n + 2) * h * 4;
  const auto masked = static_cast<std::int64_t>(
      static_cast<double>(batch * length) * std::min(1.0, mask_prob * 1.5) +
      static_cast<double>(batch) * last_item_mask_ratio + 1);
  // The last block runs at the masked positions only (hidden_at).
  const double blocks = static_cast<double>(o.layers - 1) +
                        static_cast<double>(masked) / static_cast<double>(batch * length);
  const std::int64_t activations =
      memory::transformer_activation_bytes(batch, length, h, o.heads, blocks, bf16);
  const std::int64_t loss = ce_working_bytes(masked, n, h, ce_chunk);
  const std::int64_t scoring = score_batch * n * 4 + std::min(batch, score_batch) * n * (bf16 ? 6 : 4);
  if (detail)
    *detail = fmt::format("gradients and Adam state {}, activations {}, loss {}, scoring {}",
                          format_bytes(state), format_bytes(activations), format_bytes(loss),
                          format_bytes(scoring));
  return state + std::max(activations + loss, scoring);
}

/// Item and positional embeddings (fused with item features when any are given), a
/// bidirectional transformer encoder, and an output layer over the catalogue.
class Bert4RecNetImpl : public torch::nn::Module {
 public:
  /// `features` (recrun::make_item_features) are fused with the item embedding; pass an empty
  /// ItemFeatures for the plain model.
  Bert4RecNetImpl(NetOptions o, ItemFeatures features)
      : options_(o), features_(std::move(features)) {
    item_emb_ = register_module("item_emb", torch::nn::Embedding(o.num_items + 2, o.hidden));
    pos_emb_ = register_module("pos_emb", torch::nn::Embedding(o.max_len, o.hidden));
    emb_norm_ = register_module(
        "emb_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden}).eps(1e-12)));
    features_.register_with(*this);
    encoder_ = register_module(
        "encoder", TransformerEncoder(TransformerOptions(o.hidden, o.heads)
                                          .layers(o.layers)
                                          .dropout(o.dropout)
                                          .attention_dropout(o.dropout)));
    if (o.share_embeddings)
      out_bias_ = register_parameter("out_bias", torch::zeros({o.num_items}));
    else
      out_ = register_module("out", torch::nn::Linear(o.hidden, o.num_items));
    // BERT's N(0, 0.02) for the model's own layers. Feature encoders and fusions come from
    // other plugins and keep their own initialisation, chosen to match this scale.
    init_bert_weights(*item_emb_, 0.02);
    init_bert_weights(*pos_emb_, 0.02);
    init_bert_weights(*emb_norm_, 0.02);
    init_bert_weights(*encoder_, 0.02);
    if (out_) init_bert_weights(*out_, 0.02);
    torch::NoGradGuard no_grad;
    item_emb_->weight[0].zero_();  // padding starts at zero (it is never attended to)
  }

  /// The plain model, without item features.
  explicit Bert4RecNetImpl(NetOptions o) : Bert4RecNetImpl(o, ItemFeatures{}) {}

  /// Token of [MASK].
  std::int64_t mask_token() const { return options_.num_items + 1; }
  /// The settings it was built with.
  const NetOptions& options() const { return options_; }
  /// The fusion, if any (for diagnostics).
  const std::shared_ptr<FusionImpl>& fusion() const { return features_.fusion; }

  /// bool [B, T]: columns holding a real token (item or [MASK]).
  static torch::Tensor valid_mask(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    return torch::arange(tokens.size(1), torch::kInt64).unsqueeze(0).lt(lengths.unsqueeze(1));
  }

  /// Input representation [B, T, H]: item (fused with features) + position, LayerNorm, dropout.
  torch::Tensor embed(const torch::Tensor& tokens, const torch::Tensor& lengths,
                      const torch::Tensor& valid) {
    torch::Tensor x = item_emb_(tokens);
    if (!features_.empty()) {
      // Features describe real items only; padding and [MASK] get zeros, so a masked
      // position's metadata cannot leak the item it hides.
      const torch::Tensor real = valid.logical_and(tokens.ne(mask_token()));
      const torch::Tensor items = (tokens - 1).clamp_(0, options_.num_items - 1);
      x = features_.fuse(x, items, real);
    }
    const std::int64_t t = tokens.size(1);
    const torch::Tensor positions =
        ((options_.max_len - lengths).unsqueeze(1) + torch::arange(t, torch::kInt64))
            .clamp_(0, options_.max_len - 1);
    x = recrun::layer_norm_fp32(emb_norm_, x + pos_emb_(positions));
    return recrun::dropout(x, options_.dropout, is_training());
  }

  /// Hidden states [B, T, H] at every position.
  torch::Tensor hidden_all(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    const torch::Tensor valid = valid_mask(tokens, lengths);
    return encoder_->forward(embed(tokens, lengths, valid), valid);
  }

  /// Hidden states [B, Q, H] at columns `query` [B, Q] only (the last block skips the rest).
  torch::Tensor hidden_at(const torch::Tensor& tokens, const torch::Tensor& lengths,
                          const torch::Tensor& query) {
    const torch::Tensor valid = valid_mask(tokens, lengths);
    return encoder_->forward_at(embed(tokens, lengths, valid), valid, query);
  }

  /// Item logits [..., num_items] of hidden states [..., H].
  torch::Tensor logits(const torch::Tensor& hidden) {
    if (out_) return out_(hidden);
    return torch::nn::functional::linear(
        hidden, item_emb_->weight.narrow(0, 1, options_.num_items), out_bias_);
  }

  /// Hidden states [M, H] at the chosen positions of a Cloze batch, in label order, computing
  /// the last block for those positions only.
  torch::Tensor masked_hidden(const Cloze& cloze, const torch::Tensor& lengths) {
    const RowIndex rows = row_index(cloze.chosen);
    const torch::Tensor h = hidden_at(cloze.inputs, lengths, rows.index);
    const torch::Tensor keep = rows.valid.reshape({-1}).nonzero().squeeze(1);
    return h.reshape({-1, options_.hidden}).index_select(0, keep);
  }

  /// Mean cross-entropy over the chosen positions; the output layer runs on those rows only,
  /// `chunk` positions at a time (0 = sized automatically; recrun/chunked_ce.hpp), so at most
  /// [chunk, num_items] logits exist at once. The loss is float32 also under bf16 autocast.
  torch::Tensor cloze_loss(const Cloze& cloze, const torch::Tensor& lengths,
                           std::int64_t chunk = 0) {
    const torch::Tensor h = masked_hidden(cloze, lengths);
    if (out_) return chunked_cross_entropy(h, out_->weight, out_->bias, cloze.labels, chunk);
    return chunked_cross_entropy(h, item_emb_->weight.narrow(0, 1, options_.num_items), out_bias_,
                                 cloze.labels, chunk);
  }

 private:
  NetOptions options_;
  ItemFeatures features_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  torch::nn::LayerNorm emb_norm_{nullptr};
  TransformerEncoder encoder_{nullptr};
  torch::nn::Linear out_{nullptr};
  torch::Tensor out_bias_;
};
TORCH_MODULE(Bert4RecNet);

}  // namespace recrun::bert4rec
