// Chunked full cross-entropy (recrun/chunked_ce.hpp): a custom autograd function that computes
// each chunk's gradient while its logits exist, so that backward needs no [positions, items]
// tensor at all.
#include "recrun/chunked_ce.hpp"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "recrun/error.hpp"

namespace recrun {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The function's node. Forward does all the work (loss and, when wanted, the gradients of the
/// mean loss); backward scales the stored gradients by the incoming one.
struct ChunkedCe : torch::autograd::Function<ChunkedCe> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const c10::optional<torch::Tensor>& bias,
                               const torch::Tensor& targets, std::int64_t chunk, bool want_grad,
                               at::ScalarType compute) {
    // Every cast below is explicit, so autocast must not add its own.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const std::int64_t m = hidden.size(0), n = weight.size(0), width = hidden.size(1);
    // Log-sum-exp, softmax and gradient sums in float32 (float64 for float64 inputs).
    const at::ScalarType acc = compute == at::kDouble ? at::kDouble : at::kFloat;
    const torch::Tensor h = hidden.to(compute);
    const torch::Tensor w = weight.to(compute);
    const torch::Tensor b = bias ? bias->to(acc) : torch::Tensor{};
    const auto f = torch::TensorOptions().dtype(acc);
    torch::Tensor grad_h, grad_w, grad_b;
    if (want_grad && hidden.requires_grad()) grad_h = torch::empty({m, width}, f);
    if (want_grad && weight.requires_grad()) grad_w = torch::zeros({n, width}, f);
    if (want_grad && bias && bias->requires_grad()) grad_b = torch::zeros({n}, f);
    const bool any_grad = grad_h.defined() || grad_w.defined() || grad_b.defined();

    double total = 0;
    for (std::int64_t begin = 0; begin < m; begin += chunk) {
      const std::int64_t len = std::min(chunk, m - begin);
      const torch::Tensor hc = h.narrow(0, begin, len);
      const torch::Tensor tc = targets.narrow(0, begin, len).unsqueeze(1);
      torch::Tensor logits = torch::mm(hc, w.t());
      if (logits.scalar_type() != acc) logits = logits.to(acc);
      if (b.defined()) logits.add_(b);
      const torch::Tensor lse = logits.logsumexp(1);
      total += (lse - logits.gather(1, tc).squeeze(1)).sum(at::kDouble).item<double>();
      if (!any_grad) continue;
      // d(sum of the chunk's losses)/d(logits) = softmax - one-hot, formed in place.
      logits.sub_(lse.unsqueeze(1)).exp_();
      logits.scatter_add_(1, tc, torch::full({len, 1}, -1.0, f));
      if (grad_b.defined()) grad_b.add_(logits.sum(0));
      const torch::Tensor d = logits.scalar_type() == compute ? logits : logits.to(compute);
      logits = torch::Tensor{};  // the float copy is no longer needed under bf16
      if (grad_h.defined()) grad_h.narrow(0, begin, len).copy_(torch::mm(d, w));
      if (grad_w.defined()) grad_w.add_(torch::mm(d.t(), hc));
    }
    const double scale = 1.0 / static_cast<double>(m);  // the mean over positions
    const auto keep = [&](const char* key, torch::Tensor& g, at::ScalarType dtype) {
      if (!g.defined()) return;
      g.mul_(scale);
      ctx->saved_data[key] = g;
      ctx->saved_data[std::string(key) + ".dtype"] = static_cast<std::int64_t>(dtype);
    };
    keep("h", grad_h, hidden.scalar_type());
    keep("w", grad_w, weight.scalar_type());
    if (bias) keep("b", grad_b, bias->scalar_type());
    return torch::scalar_tensor(m > 0 ? total * scale : std::numeric_limits<double>::quiet_NaN(),
                                f);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const torch::Tensor& g = grad_out[0];
    const auto scaled = [&](const char* key) -> torch::Tensor {
      const auto it = ctx->saved_data.find(key);
      if (it == ctx->saved_data.end()) return {};
      const auto dtype =
          static_cast<at::ScalarType>(ctx->saved_data.at(std::string(key) + ".dtype").toInt());
      return (it->second.toTensor() * g).to(dtype);
    };
    return {scaled("h"), scaled("w"), scaled("b"), {}, {}, {}, {}};
  }
};

}  // namespace

std::int64_t ce_chunk_rows(std::int64_t num_items, std::int64_t requested,
                           std::int64_t budget_bytes) {
  if (requested > 0) return requested;
  const std::int64_t per_row = std::max<std::int64_t>(1, num_items) * kCeBytesPerLogit;
  return std::max<std::int64_t>(1, budget_bytes / per_row);
}

std::int64_t ce_working_bytes(std::int64_t positions, std::int64_t num_items, std::int64_t hidden,
                              std::int64_t chunk) {
  const std::int64_t rows = std::min(std::max<std::int64_t>(positions, 1),
                                     ce_chunk_rows(num_items, chunk));
  constexpr std::int64_t f32 = 4;
  return rows * num_items * kCeBytesPerLogit + positions * hidden * f32 +
         num_items * (hidden + 1) * f32;
}

torch::Tensor chunked_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                    const std::optional<torch::Tensor>& bias,
                                    const torch::Tensor& targets, std::int64_t chunk) {
  if (hidden.dim() != 2 || weight.dim() != 2 || hidden.size(1) != weight.size(1))
    throw Error(fmt::format(
        "chunked_cross_entropy: hidden must be [M, H] and weight [N, H] (got {} and {})",
        fmt::join(hidden.sizes(), "x"), fmt::join(weight.sizes(), "x")));
  const std::int64_t m = hidden.size(0), n = weight.size(0);
  if (targets.dim() != 1 || targets.size(0) != m || targets.scalar_type() != torch::kInt64)
    throw Error(fmt::format("chunked_cross_entropy: targets must be int64 [{}]", m));
  if (bias && (bias->dim() != 1 || bias->size(0) != n))
    throw Error(fmt::format("chunked_cross_entropy: bias must be [{}]", n));
  if (chunk < 0) throw ParamError(fmt::format("ce_chunk must be >= 0 (got {})", chunk));
  if (m > 0) {
    const auto lo = targets.min().item<std::int64_t>(), hi = targets.max().item<std::int64_t>();
    if (lo < 0 || hi >= n)
      throw Error(fmt::format("chunked_cross_entropy: target {} outside [0, {})", lo < 0 ? lo : hi,
                              n));
  }
  // The matrix products' type: autocast's (bf16) inside a Bf16Autocast scope, else the inputs'.
  const at::ScalarType compute = at::autocast::is_cpu_enabled()
                                     ? at::autocast::get_autocast_cpu_dtype()
                                     : at::promote_types(hidden.scalar_type(),
                                                         weight.scalar_type());
  const bool want_grad = torch::GradMode::is_enabled() &&
                         (hidden.requires_grad() || weight.requires_grad() ||
                          (bias && bias->requires_grad()));
  const c10::optional<torch::Tensor> b = bias ? c10::optional<torch::Tensor>(*bias) : c10::nullopt;
  return ChunkedCe::apply(hidden, weight, b, targets.contiguous(), ce_chunk_rows(n, chunk),
                          want_grad, compute);
}

void declare_ce_chunk_field(Fields<CeChunkOptions>& f) {
  f.add("ce_chunk", &CeChunkOptions::ce_chunk,
        "positions per chunk of the full cross-entropy (ce); its memory is chunk x items "
        "instead of positions x items, with the same gradients. 0 = automatic: as many "
        "positions as fit 256 MiB")
      .at_least(0);
}

}  // namespace recrun
