// The sequential models' dropout (recrun/seq.hpp: recrun::dropout): a hashed, counter-based mask
// that needs no mask tensor in memory and is reproducible from the generator's state.
#include "recrun/seq.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {
namespace {

// murmur3's 32-bit finaliser: a cheap hash that mixes a counter into well-spread bits.
inline std::uint32_t mix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// out[i] = in[i] * scale for the elements of [begin, end) that are kept, else 0. Element i's fate
// depends only on (seed, i), so the backward pass regenerates the forward's mask, and the result
// does not depend on how parallel_for splits the range. The loop is integer hashing and one
// multiply per element, which the compiler vectorises; it is compiled for AVX-512, AVX2 and the
// baseline and picked for the CPU at load time (target_clones), with bit-identical results on
// each (no float operation but the one multiply, which every width rounds alike).
template <typename T>
inline __attribute__((always_inline)) void masked_scale_body(const T* in, T* out,
                                                             std::int64_t begin, std::int64_t end,
                                                             std::uint32_t lo, std::uint32_t hi,
                                                             std::uint32_t threshold, float scale) {
  for (std::int64_t i = begin; i < end; ++i) {
    const auto k = static_cast<std::uint64_t>(i);
    const std::uint32_t h = mix32(mix32(static_cast<std::uint32_t>(k) * 0x9e3779b9u + lo) ^
                                  (hi + static_cast<std::uint32_t>(k >> 32)));
    out[i] = h >= threshold ? static_cast<T>(static_cast<float>(in[i]) * scale) : T(0.0f);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void masked_scale_range(
    const float* in, float* out, std::int64_t begin, std::int64_t end, std::uint32_t lo,
    std::uint32_t hi, std::uint32_t threshold, float scale) {
  masked_scale_body(in, out, begin, end, lo, hi, threshold, scale);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void masked_scale_range(
    const at::BFloat16* in, at::BFloat16* out, std::int64_t begin, std::int64_t end,
    std::uint32_t lo, std::uint32_t hi, std::uint32_t threshold, float scale) {
  masked_scale_body(in, out, begin, end, lo, hi, threshold, scale);
}

template <typename T>
void masked_scale(const T* in, T* out, std::int64_t n, std::uint64_t seed, double p) {
  const auto threshold = static_cast<std::uint32_t>(
      std::min(p * 4294967296.0, 4294967295.0));  // drop when hash < threshold
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  const auto lo = static_cast<std::uint32_t>(seed), hi = static_cast<std::uint32_t>(seed >> 32);
  at::parallel_for(0, n, 1 << 15, [&](std::int64_t begin, std::int64_t end) {
    masked_scale_range(in, out, begin, end, lo, hi, threshold, scale);
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

}  // namespace recrun
