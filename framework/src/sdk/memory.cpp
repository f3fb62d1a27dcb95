// recrun/memory.hpp: the estimator interface's key function (its type information lives here,
// once, so that the host's dynamic_cast recognises it in any plugin) and byte formatting.
#include "recrun/memory.hpp"

#include <fmt/format.h>

namespace recrun {

MemoryEstimator::~MemoryEstimator() = default;

namespace memory {

std::int64_t transformer_activation_bytes(std::int64_t batch, std::int64_t length,
                                          std::int64_t hidden, std::int64_t heads, double blocks,
                                          bool bf16) {
  const std::int64_t positions = batch * length;
  const double per_block = static_cast<double>(positions * hidden * 4 * 16 +
                                               positions * heads * length * 4 * 4);
  // The blocks' saved tensors, half a block's gradients in flight, the embedding stage.
  const double fp32 =
      per_block * (blocks + 0.5) + static_cast<double>(positions * hidden * 4 * 6);
  return static_cast<std::int64_t>(bf16 ? fp32 * 1.25 : fp32);
}

}  // namespace memory

std::string format_bytes(std::int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (std::int64_t{1} << 30)) return fmt::format("{:.1f} GiB", b / (1 << 30));
  if (bytes >= (std::int64_t{1} << 20)) return fmt::format("{:.0f} MiB", b / (1 << 20));
  return fmt::format("{:.0f} KiB", b / 1024);
}

}  // namespace recrun
