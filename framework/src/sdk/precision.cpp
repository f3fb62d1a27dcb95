// The `precision` parameter of the sequential models (recrun/seq.hpp): the CPU's bf16 support
// (libcpu-features), the bf16 autocast scope and LayerNorm kept in fp32.
#include "recrun/seq.hpp"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpu_features/cpuinfo_x86.h>
#endif
#include <fmt/format.h>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {

void declare_precision_field(Fields<PrecisionOptions>& f) {
  f.choice("precision", &PrecisionOptions::precision,
           {{"fp32", Precision::fp32}, {"bf16", Precision::bf16}, {"auto", Precision::automatic}},
           "precision of the matrix products in training and scoring: fp32, bf16 (weights, "
           "LayerNorm, softmax and loss stay fp32), or auto (bf16 where the CPU has "
           "AVX512-BF16 or AMX, else fp32)");
}

CpuFeatures cpu_features() {
  // libcpu-features reads cpuid and the OS's saved register state (xgetbv), so a feature the
  // kernel does not enable (AVX-512 state, AMX tiles) reads as absent.
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    const cpu_features::X86Features x = cpu_features::GetX86Info().features;
    f.avx2 = x.avx2;
    f.avx512f = x.avx512f;
    f.avx512_bf16 = x.avx512f && x.avx512_bf16;
    f.amx_bf16 = x.amx_tile && x.amx_bf16;
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

}  // namespace recrun
