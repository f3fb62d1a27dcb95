// The transformer of BERT4Rec and SASRec (recrun/seq.hpp): multi-head attention, blocks, the
// encoder and BERT's weight initialisation.
#include "recrun/seq.hpp"

#include <fmt/format.h>
#include <cmath>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {
namespace {

// Added to the attention scores of forbidden keys. Finite, so that a row with no allowed key
// could never turn into NaN, yet exp(kNeg - max) underflows to exactly 0: padding contributes
// nothing, not merely little.
constexpr double kNeg = -1e9;

namespace F = torch::nn::functional;

}  // namespace

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

}  // namespace recrun
