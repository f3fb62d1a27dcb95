#include "recrun/seq.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <set>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {
namespace {

// Added to the attention scores of forbidden keys. Finite, so that a row with no allowed key
// could never turn into NaN, yet exp(kNeg - max) underflows to exactly 0: padding contributes
// nothing, not merely little.
constexpr double kNeg = -1e9;

namespace F = torch::nn::functional;

// --- dropout ---------------------------------------------------------------------------------------

// murmur3's 32-bit finaliser: a cheap hash that mixes a counter into well-spread bits.
inline std::uint32_t mix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// out[i] = in[i] * scale where element i is kept, else 0. Element i's fate depends only on
// (seed, i), so the backward pass regenerates the forward's mask, and the result does not depend
// on how parallel_for splits the range.
template <typename T>
void masked_scale(const T* in, T* out, std::int64_t n, std::uint64_t seed, double p) {
  const auto threshold = static_cast<std::uint32_t>(
      std::min(p * 4294967296.0, 4294967295.0));  // drop when hash < threshold
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  const auto lo = static_cast<std::uint32_t>(seed), hi = static_cast<std::uint32_t>(seed >> 32);
  at::parallel_for(0, n, 1 << 15, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const auto k = static_cast<std::uint64_t>(i);
      const std::uint32_t h =
          mix32(mix32(static_cast<std::uint32_t>(k) * 0x9e3779b9u + lo) ^
                (hi + static_cast<std::uint32_t>(k >> 32)));
      out[i] = h >= threshold ? static_cast<T>(static_cast<float>(in[i]) * scale) : T(0.0f);
    }
  });
}

class HashDropout : public torch::autograd::Function<HashDropout> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double p, std::int64_t seed) {
    const torch::Tensor in = x.contiguous();
    torch::Tensor out = torch::empty_like(in);
    if (in.scalar_type() == torch::kBFloat16)
      masked_scale(in.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), in.numel(),
                   static_cast<std::uint64_t>(seed), p);
    else
      masked_scale(in.data_ptr<float>(), out.data_ptr<float>(), in.numel(),
                   static_cast<std::uint64_t>(seed), p);
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor g = grads[0].contiguous();
    torch::Tensor out = torch::empty_like(g);
    const auto seed = static_cast<std::uint64_t>(ctx->saved_data["seed"].toInt());
    const double p = ctx->saved_data["p"].toDouble();
    if (g.scalar_type() == torch::kBFloat16)
      masked_scale(g.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), g.numel(), seed, p);
    else
      masked_scale(g.data_ptr<float>(), out.data_ptr<float>(), g.numel(), seed, p);
    return {out, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0) return x;
  if (p >= 1) return torch::zeros_like(x);
  if (x.device().type() != torch::kCPU ||
      (x.scalar_type() != torch::kFloat && x.scalar_type() != torch::kBFloat16))
    return torch::dropout(x, p, true);
  std::uint64_t seed;
  {
    // One draw per call from the generator the trainer seeds and checkpoints.
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
  }
  return HashDropout::apply(x, p, static_cast<std::int64_t>(seed));
}

// --- precision -------------------------------------------------------------------------------

void declare_precision_field(Fields<PrecisionOptions>& f) {
  f.choice("precision", &PrecisionOptions::precision,
           {{"fp32", Precision::fp32}, {"bf16", Precision::bf16}, {"auto", Precision::automatic}},
           "precision of the matrix products in training and scoring: fp32, bf16 (weights, "
           "LayerNorm, softmax and loss stay fp32), or auto (bf16 where the CPU has "
           "AVX512-BF16 or AMX, else fp32)");
}

CpuFeatures cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __get_cpuid(1, &a, &b, &c, &d);
    const bool osxsave = (c >> 27) & 1;
    std::uint64_t xcr0 = 0;
    if (osxsave) {
      std::uint32_t lo = 0, hi = 0;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
    }
    const bool ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
    const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;   // opmask + both ZMM halves
    const bool tiles = (xcr0 & 0x60000) == 0x60000;  // AMX TILECFG + TILEDATA
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f.avx2 = ymm && ((b >> 5) & 1);
    f.avx512f = zmm && ((b >> 16) & 1);
    f.amx_bf16 = tiles && ((d >> 22) & 1);
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    f.avx512_bf16 = f.avx512f && ((a >> 5) & 1);
#endif
    return f;
  }();
  return features;
}

std::string CpuFeatures::describe() const {
  std::vector<std::string> names;
  if (avx2) names.push_back("avx2");
  if (avx512f) names.push_back("avx512f");
  if (avx512_bf16) names.push_back("avx512_bf16");
  if (amx_bf16) names.push_back("amx_bf16");
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, " "));
}

Precision resolve_precision(Precision requested) {
  if (requested != Precision::automatic) return requested;
  return cpu_features().native_bf16() ? Precision::bf16 : Precision::fp32;
}

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::bf16: return "bf16";
    case Precision::automatic: return "auto";
  }
  return "?";
}

Bf16Autocast::Bf16Autocast(bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  previous_enabled_ = at::autocast::is_cpu_enabled();
  previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

Bf16Autocast::~Bf16Autocast() {
  if (!enabled_) return;
  // The cache holds bf16 copies of the weights; after an optimizer step they would be stale.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(previous_enabled_);
  at::autocast::set_autocast_cpu_dtype(previous_dtype_);
}

torch::Tensor layer_norm_fp32(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  return norm(x.scalar_type() == torch::kFloat ? x : x.to(torch::kFloat));
}

// --- batching ----------------------------------------------------------------------------------

std::vector<std::vector<std::int64_t>> length_bucketed_batches(
    std::span<const std::int64_t> ids, std::span<const std::int64_t> lengths,
    std::int64_t batch_size, std::mt19937_64* rng) {
  if (ids.size() != lengths.size())
    throw Error(fmt::format("length_bucketed_batches: {} ids but {} lengths", ids.size(),
                            lengths.size()));
  if (batch_size < 1) throw ParamError("batch_size must be >= 1");
  std::vector<std::size_t> order(ids.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Shuffling before the stable sort breaks ties at random, so batches of equally long (e.g.
  // truncated) histories differ from epoch to epoch.
  if (rng) std::shuffle(order.begin(), order.end(), *rng);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<std::int64_t>> batches;
  batches.reserve((order.size() + batch_size - 1) / batch_size);
  for (std::size_t begin = 0; begin < order.size(); begin += batch_size) {
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch_size));
    auto& batch = batches.emplace_back();
    batch.reserve(end - begin);
    for (std::size_t k = begin; k < end; ++k) batch.push_back(ids[order[k]]);
  }
  if (rng) std::shuffle(batches.begin(), batches.end(), *rng);
  return batches;
}

PackedSequences pack_sequences(std::span<const std::span<const std::int32_t>> histories,
                               std::int64_t max_len, std::int64_t shift, std::int64_t pad,
                               std::int64_t append) {
  const auto b = static_cast<std::int64_t>(histories.size());
  const std::int64_t extra = append >= 0 ? 1 : 0;
  std::int64_t width = 0;
  for (const auto& h : histories)
    width = std::max(width, std::min<std::int64_t>(max_len, static_cast<std::int64_t>(h.size())));
  width += extra;
  PackedSequences out;
  out.tokens = torch::full({b, width}, pad, torch::kInt64);
  out.lengths = torch::empty({b}, torch::kInt64);
  std::int64_t* tokens = out.tokens.data_ptr<std::int64_t>();
  std::int64_t* lengths = out.lengths.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < b; ++r) {
    const auto& h = histories[r];
    const std::int64_t n = std::min<std::int64_t>(max_len, static_cast<std::int64_t>(h.size()));
    const std::int32_t* src = h.data() + (static_cast<std::int64_t>(h.size()) - n);
    std::int64_t* row = tokens + r * width;
    for (std::int64_t k = 0; k < n; ++k) row[k] = src[k] + shift;
    if (extra) row[n] = append;
    lengths[r] = n + extra;
  }
  return out;
}

RowIndex row_index(const torch::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2 && mask.scalar_type() == torch::kBool, "row_index: bool [B, T]");
  const torch::Tensor counts = mask.sum(1);
  const std::int64_t q = mask.size(0) == 0 ? 0 : counts.max().item<std::int64_t>();
  // A stable descending sort of the 0/1 row puts the true columns first, in increasing order.
  const torch::Tensor order =
      std::get<1>(torch::sort(mask.to(torch::kUInt8), /*stable=*/true, /*dim=*/1,
                              /*descending=*/true));
  RowIndex out;
  out.index = order.narrow(1, 0, q).contiguous();
  out.valid = torch::arange(q, torch::kInt64).unsqueeze(0).lt(counts.unsqueeze(1));
  return out;
}

// --- transformer -------------------------------------------------------------------------------

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const TransformerOptions& o)
    : hidden_(o.hidden()), heads_(o.heads()), attention_dropout_(o.attention_dropout()) {
  if (heads_ < 1 || hidden_ % heads_ != 0)
    throw ParamError(fmt::format("hidden size {} must be a positive multiple of the number of "
                                 "attention heads ({})",
                                 hidden_, heads_));
  qkv_ = register_module("qkv", torch::nn::Linear(hidden_, 3 * hidden_));
  out_ = register_module("out", torch::nn::Linear(hidden_, hidden_));
}

torch::Tensor MultiHeadAttentionImpl::forward(const torch::Tensor& queries,
                                              const torch::Tensor& context,
                                              const torch::Tensor& bias) {
  const std::int64_t b = context.size(0), t = context.size(1), q_len = queries.size(1);
  const std::int64_t head_dim = hidden_ / heads_;
  torch::Tensor q, k, v;
  if (queries.is_same(context)) {
    const torch::Tensor qkv = qkv_(context).view({b, t, 3, heads_, head_dim});
    q = qkv.select(2, 0);
    k = qkv.select(2, 1);
    v = qkv.select(2, 2);
  } else {
    // Only the query rows need a Q projection; keys and values come from every position.
    const torch::Tensor& w = qkv_->weight;
    const torch::Tensor& bias_qkv = qkv_->bias;
    q = F::linear(queries, w.narrow(0, 0, hidden_), bias_qkv.narrow(0, 0, hidden_))
            .view({b, q_len, heads_, head_dim});
    const torch::Tensor kv =
        F::linear(context, w.narrow(0, hidden_, 2 * hidden_),
                  bias_qkv.narrow(0, hidden_, 2 * hidden_))
            .view({b, t, 2, heads_, head_dim});
    k = kv.select(2, 0);
    v = kv.select(2, 1);
  }
  // Scaling q ([B, Q, H]) is cheaper than scaling the [B, heads, Q, T] scores.
  q = q.mul(1.0 / std::sqrt(static_cast<double>(head_dim))).transpose(1, 2);
  torch::Tensor scores = torch::matmul(q, k.permute({0, 2, 3, 1}));  // [B, heads, Q, T]
  // Under bf16 autocast the product is bf16; the mask and the softmax stay float32.
  if (scores.scalar_type() != torch::kFloat) scores = scores.to(torch::kFloat);
  scores.add_(bias);  // matmul's backward does not need its output, so in place is safe
  torch::Tensor probs;
  {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    probs = torch::softmax(scores, -1);
  }
  probs = recrun::dropout(probs, attention_dropout_, is_training());
  const torch::Tensor mixed =
      torch::matmul(probs, v.transpose(1, 2)).transpose(1, 2).reshape({b, q_len, hidden_});
  return out_(mixed);
}

TransformerBlockImpl::TransformerBlockImpl(const TransformerOptions& o)
    : norm_first_(o.norm_first()), activation_(o.activation()), dropout_(o.dropout()) {
  attention_ = register_module("attention", MultiHeadAttention(o));
  ffn_in_ = register_module("ffn_in", torch::nn::Linear(o.hidden(), o.ffn_mult() * o.hidden()));
  ffn_out_ = register_module("ffn_out", torch::nn::Linear(o.ffn_mult() * o.hidden(), o.hidden()));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(
                                        torch::nn::LayerNormOptions({o.hidden()}).eps(1e-12)));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(
                                        torch::nn::LayerNormOptions({o.hidden()}).eps(1e-12)));
}

torch::Tensor TransformerBlockImpl::feed_forward(const torch::Tensor& x) {
  const torch::Tensor inner = ffn_in_(x);
  return ffn_out_(activation_ == Activation::relu ? torch::relu(inner) : torch::gelu(inner));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& queries,
                                            const torch::Tensor& context,
                                            const torch::Tensor& bias) {
  const auto drop = [&](const torch::Tensor& x) { return recrun::dropout(x, dropout_, is_training()); };
  // LayerNorm runs in float32 and the residual sums are float32 (float + bf16 promotes), so
  // under bf16 autocast only the sublayers' matrix products are bf16.
  if (!norm_first_) {
    const torch::Tensor h =
        layer_norm_fp32(norm1_, queries + drop(attention_(queries, context, bias)));
    return layer_norm_fp32(norm2_, h + drop(feed_forward(h)));
  }
  const torch::Tensor context_n = layer_norm_fp32(norm1_, context);
  const torch::Tensor queries_n =
      queries.is_same(context) ? context_n : layer_norm_fp32(norm1_, queries);
  const torch::Tensor h = queries + drop(attention_(queries_n, context_n, bias));
  return h + drop(feed_forward(layer_norm_fp32(norm2_, h)));
}

TransformerEncoderImpl::TransformerEncoderImpl(TransformerOptions options)
    : options_(std::move(options)) {
  if (options_.layers() < 1) throw ParamError("a transformer needs at least one layer");
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < options_.layers(); ++i) blocks_->push_back(TransformerBlock(options_));
  if (options_.norm_first())
    final_norm_ = register_module(
        "final_norm",
        torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.hidden()}).eps(1e-12)));
}

torch::Tensor TransformerEncoderImpl::key_bias(const torch::Tensor& valid,
                                               const torch::Tensor& query_cols) const {
  const std::int64_t b = valid.size(0), t = valid.size(1);
  torch::Tensor bias = torch::zeros({b, 1, 1, t}, torch::kFloat)
                           .masked_fill_(valid.logical_not().view({b, 1, 1, t}), kNeg);
  if (options_.causal()) {
    const torch::Tensor cols = torch::arange(t, torch::kInt64);
    const torch::Tensor rows =
        query_cols.defined() ? query_cols : cols.unsqueeze(0).expand({b, t});
    const torch::Tensor future = cols.view({1, 1, 1, t}).gt(rows.unsqueeze(1).unsqueeze(-1));
    bias = bias + future.to(torch::kFloat).mul_(kNeg);
  }
  return bias;
}

torch::Tensor TransformerEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& valid) {
  const torch::Tensor bias = key_bias(valid, {});
  torch::Tensor h = x;
  for (const auto& block : *blocks_) h = block->as<TransformerBlock>()->forward(h, h, bias);
  return options_.norm_first() ? layer_norm_fp32(final_norm_, h) : h;
}

torch::Tensor TransformerEncoderImpl::forward_at(const torch::Tensor& x,
                                                 const torch::Tensor& valid,
                                                 const torch::Tensor& query) {
  const std::int64_t n = static_cast<std::int64_t>(blocks_->size());
  torch::Tensor h = x;
  if (n > 1) {
    const torch::Tensor bias = key_bias(valid, {});
    for (std::int64_t i = 0; i + 1 < n; ++i)
      h = blocks_[i]->as<TransformerBlock>()->forward(h, h, bias);
  }
  const std::int64_t b = x.size(0), hidden = x.size(2);
  const torch::Tensor rows = h.gather(1, query.unsqueeze(-1).expand({b, query.size(1), hidden}));
  torch::Tensor out = blocks_[n - 1]->as<TransformerBlock>()->forward(
      rows, h, key_bias(valid, options_.causal() ? query : torch::Tensor{}));
  return options_.norm_first() ? layer_norm_fp32(final_norm_, out) : out;
}

void init_bert_weights(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  const auto init = [std](torch::nn::Module& m) {
    if (auto* linear = m.as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, std);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = m.as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, std);
    } else if (auto* norm = m.as<torch::nn::LayerNorm>()) {
      if (norm->weight.defined()) norm->weight.fill_(1.0);
      if (norm->bias.defined()) norm->bias.zero_();
    }
  };
  // Not modules(include_self=true): that needs the module in a shared_ptr, which it is not yet
  // inside its own constructor, where models call this.
  init(module);
  for (const auto& m : module.modules(/*include_self=*/false)) init(*m);
}

// --- item metadata -----------------------------------------------------------------------------

ItemBagEncoderImpl::ItemBagEncoderImpl(std::span<const std::int64_t> offsets,
                                       std::span<const std::int32_t> values,
                                       std::int64_t num_values, std::int64_t hidden,
                                       double dropout)
    : num_items_(offsets.empty() ? 0 : static_cast<std::int64_t>(offsets.size()) - 1),
      dropout_(dropout) {
  std::vector<std::int64_t> flat, starts;
  flat.reserve(values.size() + num_items_);
  starts.reserve(num_items_);
  single_valued_ = true;
  for (std::int64_t i = 0; i < num_items_; ++i) {
    starts.push_back(static_cast<std::int64_t>(flat.size()));
    const std::int64_t begin = offsets[i], end = offsets[i + 1];
    if (begin == end) {
      flat.push_back(num_values);  // the learned 'missing' row
      continue;
    }
    single_valued_ &= end - begin == 1;
    for (std::int64_t k = begin; k < end; ++k) {
      if (values[k] < 0 || values[k] >= num_values)
        throw Error(fmt::format("item {} has value id {} outside [0, {})", i, values[k],
                                num_values));
      flat.push_back(values[k]);
    }
  }
  bag_values_ = torch::tensor(flat, torch::kInt64);
  bag_offsets_ = torch::tensor(starts, torch::kInt64);
  table_ = register_module("table", torch::nn::Embedding(num_values + 1, hidden));
  // The scale of BERT-style item embeddings, so that no source dominates a fusion at the start.
  torch::NoGradGuard no_grad;
  table_->weight.normal_(0.0, 0.02);
}

torch::Tensor ItemBagEncoderImpl::forward(const torch::Tensor& items) {
  const torch::Tensor flat = items.reshape({-1});
  torch::Tensor out;
  if (single_valued_) {
    out = table_(bag_values_.index_select(0, flat));
  } else {
    // Means for the whole catalogue, then a gather: cheaper than bagging per position whenever
    // a batch has more positions than the catalogue has items, and never much dearer than the
    // [.., num_items] output layer that scores them anyway.
    const torch::Tensor per_item = std::get<0>(torch::embedding_bag(
        table_->weight, bag_values_, bag_offsets_, /*scale_grad_by_freq=*/false, /*mode=mean*/ 1));
    out = per_item.index_select(0, flat);
  }
  std::vector<std::int64_t> shape(items.sizes().begin(), items.sizes().end());
  shape.push_back(out.size(1));
  out = out.view(shape);
  return recrun::dropout(out, dropout_, is_training());
}

// --- item features ------------------------------------------------------------------------------

void declare_feature_fields(Fields<FeatureOptions>& f) {
  f.add("features", &FeatureOptions::features,
        "item features fused with the item embedding (feature plugins: genre, director, writer, "
        "title, year, ...); empty = plain model");
  f.add("fusion", &FeatureOptions::fusion,
        "how features are fused: a fusion plugin (concat, add, gate, ...); 'none' only without "
        "features");
  f.add("metadata_dropout", &FeatureOptions::metadata_dropout, "dropout on the feature embeddings")
      .range(0, 0.95);
}

ItemFeatures make_item_features(const Registry& registry, const Dataset& dataset,
                                const std::vector<std::string>& features,
                                const std::string& fusion, std::int64_t hidden,
                                double metadata_dropout, std::string_view model) {
  ItemFeatures out;
  if (features.empty()) return out;
  if (fusion == "none") {
    std::vector<std::string> names;
    for (const auto& f : registry.fusions()) names.push_back(f.name);
    throw ParamError(fmt::format(
        "{}: features [{}] need a fusion to combine them with the item embedding; set fusion to "
        "one of: {}",
        model, fmt::join(features, ", "),
        names.empty() ? std::string("(no fusion plugin loaded)")
                      : fmt::format("{}", fmt::join(names, ", "))));
  }
  std::set<std::string> seen;
  FusionEnv fusion_env{.hidden = hidden, .sources = {"item"}};
  for (const auto& name : features) {
    if (!seen.insert(name).second)
      throw ParamError(fmt::format("{}: feature '{}' is listed twice in features", model, name));
    const FeatureInfo& info = registry.feature(name);  // throws did-you-mean
    out.encoders.push_back(info.make(
        FeatureEnv{.dataset = dataset, .hidden = hidden, .metadata_dropout = metadata_dropout}));
    out.names.push_back(name);
    fusion_env.sources.push_back(name);
  }
  out.fusion = registry.fusion(fusion).make(fusion_env);
  return out;
}

}  // namespace recrun
