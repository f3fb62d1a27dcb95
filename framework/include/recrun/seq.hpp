// recrun/seq.hpp — building blocks shared by sequential models.
//
// Length-bucketed batches (a batch pads only to its own longest history), packed token matrices,
// a transformer encoder whose attention never looks at padding and can compute its last block
// for a few read-out positions only, and a mean-of-embeddings item encoder for categorical
// metadata. Everything here is optional: a model may use any piece, or none.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/feature.hpp"
#include "recrun/fields.hpp"

namespace recrun {
class Registry;
}

// The LibTorch precompiled header is built with hidden visibility, so torch's module holders
// (torch::nn::Linear, ...) count as hidden types inside the SDK, and GCC warns that these exported
// classes hold them. The warning is harmless here: the holders never cross a library boundary
// on their own, only as parts of these classes, whose methods are exported.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"

namespace recrun {

// --- dropout ----------------------------------------------------------------------------------------

/// Inverted dropout (kept values scaled by 1 / (1 - p)); identity unless `train` and p > 0.
///
/// The mask comes from a counter-based hash seeded by one draw from LibTorch's default generator
/// (which the trainer seeds and checkpoints), so runs are reproducible and resumable. On CPU
/// float tensors it is an order of magnitude faster than torch::dropout, whose LibTorch 1.13 CPU
/// kernel draws every element serially from mt19937, and the backward pass recomputes the mask
/// rather than keeping it in memory. Other tensors fall back to torch::dropout.
torch::Tensor dropout(const torch::Tensor& x, double p, bool train);

// --- precision -------------------------------------------------------------------------------------

/// Numeric precision of a sequential model's matrix products, in training and scoring.
enum class Precision {
  /// float32 throughout.
  fp32,
  /// bfloat16 matrix products (linear layers, attention products, the output layer) through
  /// LibTorch's CPU autocast; weights (the optimizer's master copy), the residual stream,
  /// LayerNorm, softmax and the loss stay float32.
  bf16,
  /// bf16 where the CPU executes it natively (AVX512-BF16 or AMX-BF16, read with cpuid when
  /// the model is built), fp32 elsewhere.
  automatic,
};

/// The standard precision parameter of a sequential model: nest it into its options with
/// `f.nest(&MyOptions::precision, recrun::declare_precision_field)`.
struct PrecisionOptions {
  /// "fp32", "bf16" or "auto".
  Precision precision = Precision::fp32;
};

/// Declares `precision` ("fp32", "bf16", "auto"; default "fp32").
void declare_precision_field(Fields<PrecisionOptions>& fields);

/// What this CPU offers for bf16 and wide vectors, read once with cpuid (and xgetbv: the OS must
/// save the AVX-512 state for those features to count).
struct CpuFeatures {
  bool avx2 = false, avx512f = false, avx512_bf16 = false, amx_bf16 = false;
  /// avx512_bf16 or amx_bf16: bf16 matrix products run in hardware (oneDNN uses them).
  bool native_bf16() const { return avx512_bf16 || amx_bf16; }
  /// e.g. "avx2 avx512f avx512_bf16 amx_bf16" ("none" when it has none of them).
  std::string describe() const;
};
CpuFeatures cpu_features();

/// `automatic` resolved for this CPU (bf16 where cpu_features().native_bf16()); fp32 and bf16
/// are returned as they are.
Precision resolve_precision(Precision requested);

/// "fp32" or "bf16" (or "auto").
std::string_view precision_name(Precision p);

/// While alive and `enabled`, LibTorch's CPU autocast runs matrix products in bfloat16 on this
/// thread. The bf16 copies of the weights that autocast caches are dropped when the outermost
/// scope ends, so a scope must not outlive an optimizer step: open one around the forward pass
/// (and the loss), and call backward() and the step after it. Disabled, it does nothing.
/// (Exported explicitly: torch types count as hidden here, see the note at the top.)
class __attribute__((visibility("default"))) Bf16Autocast {
 public:
  explicit Bf16Autocast(bool enabled);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

/// `norm`(x) in float32 whatever the input's type, also inside a Bf16Autocast scope.
__attribute__((visibility("default")))
torch::Tensor layer_norm_fp32(torch::nn::LayerNorm& norm, const torch::Tensor& x);

// --- batching -------------------------------------------------------------------------------------

/// Splits `ids` into batches of at most `batch_size` ids of similar `lengths` (one per id).
///
/// Ids are sorted by length, so each batch pads only to its own longest sequence. With `rng`,
/// ties are broken at random and the order of the batches is shuffled (call once per epoch);
/// without it, the result is deterministic (ties by position in `ids`, batches shortest first).
std::vector<std::vector<std::int64_t>> length_bucketed_batches(
    std::span<const std::int64_t> ids, std::span<const std::int64_t> lengths,
    std::int64_t batch_size, std::mt19937_64* rng = nullptr);

/// A right-padded token matrix and the number of real tokens in each row.
struct PackedSequences {
  /// int64 [B, T]: row b holds lengths[b] tokens from column 0, then padding.
  torch::Tensor tokens;
  /// int64 [B]: tokens per row, counting an appended token.
  torch::Tensor lengths;
};

/// Packs the last `max_len` items of each history (oldest first) as item id + `shift`, then
/// `append` (when >= 0, e.g. a [MASK] token) right after the last item; pads with `pad`.
///
/// T is the longest packed row, at most max_len + (append >= 0). Rows are right-padded: a row's
/// real tokens sit at the same columns whatever else is in the batch, so reductions over a row
/// see them in the same order and a user's results do not depend on the batch composition.
PackedSequences pack_sequences(std::span<const std::span<const std::int32_t>> histories,
                               std::int64_t max_len, std::int64_t shift = 1, std::int64_t pad = 0,
                               std::int64_t append = -1);

/// Column indices [B, Q] of the true entries of `mask` [B, T] (bool), row by row in increasing
/// order, Q = the largest count in a row; `valid` [B, Q] marks the real entries (the others
/// point at some column of the same row). Selecting `valid` row-major lists the entries in the
/// same order as mask.nonzero().
struct RowIndex {
  /// int64 [B, Q] column indices.
  torch::Tensor index;
  /// bool [B, Q]: which entries are real.
  torch::Tensor valid;
};
/// Builds a RowIndex from a bool [B, T] mask.
RowIndex row_index(const torch::Tensor& mask);

// --- transformer -----------------------------------------------------------------------------------

/// Non-linearity of a transformer block's feed-forward sublayer.
enum class Activation {
  /// GELU (tanh-free, exact erf form): BERT, BERT4Rec.
  gelu,
  /// ReLU: the original Transformer and SASRec.
  relu,
};

/// Settings of a TransformerEncoder.
struct TransformerOptions {
  TransformerOptions(std::int64_t hidden, std::int64_t heads) : hidden_(hidden), heads_(heads) {}
  /// Model width; a multiple of heads.
  TORCH_ARG(std::int64_t, hidden);
  /// Attention heads.
  TORCH_ARG(std::int64_t, heads);
  /// Number of blocks.
  TORCH_ARG(std::int64_t, layers) = 2;
  /// Width of the feed-forward layer as a multiple of hidden.
  TORCH_ARG(std::int64_t, ffn_mult) = 4;
  /// Dropout on the attention and feed-forward outputs.
  TORCH_ARG(double, dropout) = 0.1;
  /// Dropout on the attention probabilities.
  TORCH_ARG(double, attention_dropout) = 0.1;
  /// Whether a position may only attend to itself and earlier positions (SASRec); false is
  /// bidirectional (BERT4Rec), where only padding is masked.
  TORCH_ARG(bool, causal) = false;
  /// Pre-LayerNorm blocks (LN before each sublayer, plus a final LN) instead of post-LN (BERT).
  TORCH_ARG(bool, norm_first) = false;
  /// Non-linearity of the feed-forward sublayer.
  TORCH_ARG(Activation, activation) = Activation::gelu;
};

/// Multi-head attention with one fused Q/K/V projection.
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const TransformerOptions& options);
  /// Queries [B, Q, H] attend over `context` [B, T, H] (pass the same tensor for
  /// self-attention); `bias` is added to the [B, heads, Q, T] scores: 0 where allowed, a large
  /// negative number where not (broadcastable, e.g. [B, 1, 1, T]). Returns [B, Q, H].
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& context,
                        const torch::Tensor& bias);

 private:
  std::int64_t hidden_, heads_;
  double attention_dropout_;
  torch::nn::Linear qkv_{nullptr}, out_{nullptr};
};
TORCH_MODULE(MultiHeadAttention);

/// One transformer block: self-attention and a feed-forward (GELU or ReLU), each with a
/// residual and LayerNorm.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const TransformerOptions& options);
  /// Rows `queries` [B, Q, H] of the block's output for input `context` [B, T, H]; pass the
  /// same tensor twice for every row. `bias` as in MultiHeadAttention.
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& context,
                        const torch::Tensor& bias);

 private:
  torch::Tensor feed_forward(const torch::Tensor& x);
  bool norm_first_;
  Activation activation_;
  double dropout_;
  MultiHeadAttention attention_{nullptr};
  torch::nn::Linear ffn_in_{nullptr}, ffn_out_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(TransformerBlock);

/// A stack of TransformerBlocks. Padding is never attended to.
class TransformerEncoderImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderImpl(TransformerOptions options);
  /// `x` [B, T, H], `valid` bool [B, T] (false = padding). Returns [B, T, H]; rows at padding
  /// are computed but meaningless.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);
  /// Like forward, but returns only the rows at columns `query` [B, Q] (int64): the last block
  /// computes just those rows, which is most of its cost saved when a model reads out a few
  /// positions (masked items in training, the next-item slot in scoring).
  torch::Tensor forward_at(const torch::Tensor& x, const torch::Tensor& valid,
                           const torch::Tensor& query);
  /// The settings it was built with.
  const TransformerOptions& options() const { return options_; }

 private:
  torch::Tensor key_bias(const torch::Tensor& valid, const torch::Tensor& query_cols) const;
  TransformerOptions options_;
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};
};
TORCH_MODULE(TransformerEncoder);

/// Draws every Linear and Embedding weight of `module` (recursively) from N(0, std), zeroes
/// Linear biases and resets LayerNorms to identity: the BERT initialisation.
void init_bert_weights(torch::nn::Module& module, double std = 0.02);

// --- item metadata ---------------------------------------------------------------------------------

/// Encodes a per-item bag of value ids (CSR) as the mean of the values' embeddings; items with
/// an empty bag get a learned 'missing' embedding. Embeddings start at N(0, 0.02), the scale of
/// BERT-style item embeddings. Serves multi-valued categories (genre,
/// writer), single lookups (director, bucketed year: bags of one) and any out-of-tree feature
/// of the same shape.
class ItemBagEncoderImpl : public FeatureEncoderImpl {
 public:
  /// `offsets` (num_items + 1) and `values` (ids in [0, num_values)) describe each item's bag.
  ItemBagEncoderImpl(std::span<const std::int64_t> offsets, std::span<const std::int32_t> values,
                     std::int64_t num_values, std::int64_t hidden, double dropout);
  /// Item ids [...] in [0, num_items) -> [..., hidden].
  torch::Tensor forward(const torch::Tensor& items) override;
  /// Number of items it knows.
  std::int64_t num_items() const { return num_items_; }

 private:
  std::int64_t num_items_;
  double dropout_;
  // Flattened bags with the missing id (num_values) standing in for an empty one.
  torch::Tensor bag_values_, bag_offsets_;
  bool single_valued_;
  torch::nn::Embedding table_{nullptr};
};
TORCH_MODULE(ItemBagEncoder);

/// Item-feature encoders and the fusion that combines them with an item embedding, built by name
/// through the registry (make_item_features). A model registers them as its own submodules
/// (register_with), so they train, save and load with it, and calls fuse() where it embeds items.
/// Empty (no encoders, no fusion) for a plain model.
struct ItemFeatures {
  /// Feature names, in the order given.
  std::vector<std::string> names;
  /// One encoder per name.
  std::vector<std::shared_ptr<FeatureEncoderImpl>> encoders;
  /// The fusion; null when there are no features.
  std::shared_ptr<FusionImpl> fusion;

  /// True for a plain model (no features).
  bool empty() const { return encoders.empty(); }

  /// Registers the encoders as `feature_<name>` and the fusion as `fusion` under `owner`.
  void register_with(torch::nn::Module& owner) const {
    for (std::size_t i = 0; i < encoders.size(); ++i)
      owner.register_module("feature_" + names.at(i), encoders[i]);
    if (fusion) owner.register_module("fusion", fusion);
  }

  /// Fuses `item_embedding` [..., H] with the features of `items` [...] (dense ids, any value
  /// where `real` is false). Feature vectors are zeroed where `real` (bool [...]) is false, so
  /// padding and special tokens (e.g. [MASK]) carry no metadata; `real` also tells the fusion
  /// which positions to count in its diagnostics. Returns `item_embedding` itself when empty.
  torch::Tensor fuse(const torch::Tensor& item_embedding, const torch::Tensor& items,
                     const torch::Tensor& real) const {
    if (!fusion) return item_embedding;
    const torch::Tensor keep = real.unsqueeze(-1).to(item_embedding.scalar_type());
    std::vector<torch::Tensor> inputs{item_embedding};
    for (const auto& f : encoders) inputs.push_back(f->forward(items) * keep);
    return fusion->forward(inputs, real);
  }

  /// The fusion's diagnostics (e.g. gate/<source>), reset on return; empty without a fusion.
  std::map<std::string, double> diagnostics() const {
    return fusion ? fusion->diagnostics() : std::map<std::string, double>{};
  }
};

/// Builds the encoders named in `features` (each once) and the fusion `fusion` through
/// `registry`, at width `hidden`, with `metadata_dropout` on the feature embeddings. With no
/// features the result is empty whatever `fusion` says (so a sweep may cross fusions with an
/// empty feature set). Errors name `model`: an unknown feature or fusion (PluginError with a
/// did-you-mean), a repeated feature or features with fusion "none" (ParamError listing the
/// loaded fusions), a feature the data set lacks (DataError, from the encoder).
__attribute__((visibility("default")))
ItemFeatures make_item_features(const Registry& registry, const Dataset& dataset,
                                const std::vector<std::string>& features,
                                const std::string& fusion, std::int64_t hidden,
                                double metadata_dropout, std::string_view model);

/// The standard item-feature parameters of a sequential model: nest them into its options with
/// `f.nest(&MyOptions::item_features, recrun::declare_feature_fields)`.
struct FeatureOptions {
  /// Item features fused with the item embedding (feature plugin names).
  std::vector<std::string> features = {};
  /// Fusion plugin name, or "none" (only without features).
  std::string fusion = "none";
  /// Dropout on the feature embeddings.
  double metadata_dropout = 0.1;
};

/// Declares `features`, `fusion` and `metadata_dropout`. The host checks the names against the
/// registry when it validates a run, with a did-you-mean.
void declare_feature_fields(Fields<FeatureOptions>& fields);

/// make_item_features from the standard parameters.
inline ItemFeatures make_item_features(const Registry& registry, const Dataset& dataset,
                                       const FeatureOptions& options, std::int64_t hidden,
                                       std::string_view model) {
  return make_item_features(registry, dataset, options.features, options.fusion, hidden,
                            options.metadata_dropout, model);
}

}  // namespace recrun

#pragma GCC diagnostic pop
