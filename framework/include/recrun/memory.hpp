// recrun/memory.hpp — a model's estimate of the memory it will need, so that a run that cannot
// fit is refused before it trains instead of being killed by the kernel halfway.
//
// Optional: a model that can estimate its peak memory also derives from MemoryEstimator (next to
// recrun::Model) and implements estimate_memory(). The host asks once, after building the model
// and before the first epoch, and refuses the run when the estimate plus what the process holds
// already exceeds the machine's available memory (/proc/meminfo MemAvailable) or the configured
// limit (execution.memory_limit_mb, recrun run --memory-limit-mb). The refusal names the estimate
// and `lowered_by`. A model that does not derive from it is not checked.
//
//     class MyModel final : public recrun::Model, public recrun::MemoryEstimator {
//       std::optional<recrun::MemoryEstimate> estimate_memory(
//           const recrun::MemoryQuery& q) const override { ... }
//     };
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "recrun/model_interface.hpp"

namespace recrun {

/// What a run will ask of the model.
struct MemoryQuery {
  /// The training interactions fit_epoch() will see.
  const Interactions* train = nullptr;
  /// Users per score() call during evaluation.
  std::int64_t score_batch = 512;
};

/// A model's estimate of its own peak memory.
struct MemoryEstimate {
  /// Peak bytes the model allocates while training an epoch or scoring a batch of users, on
  /// top of what it holds when asked: gradients, optimizer state, activations, losses, scores.
  std::int64_t bytes = 0;
  /// The parameters that lower it, as a user sets them (e.g. "batch_size, ce_chunk, or
  /// loss = sampled_softmax"); the refusal names them.
  std::string lowered_by;
  /// Optional breakdown for the message (e.g. "activations 1.2 GiB, loss 256 MiB").
  std::string detail;
};

/// The optional interface; see the top of this file. (Exported explicitly, so that its type
/// information is the SDK's one in every plugin and the host's dynamic_cast finds it.)
class __attribute__((visibility("default"))) MemoryEstimator {
 public:
  virtual ~MemoryEstimator();
  /// The estimate, or std::nullopt when this configuration has none.
  virtual std::optional<MemoryEstimate> estimate_memory(const MemoryQuery& query) const = 0;
};

/// Pieces most estimates share.
namespace memory {

/// Gradient plus Adam's two moments of `num_params` float32 parameters (the parameters
/// themselves are already allocated when the model is asked).
inline std::int64_t optimizer_state_bytes(std::int64_t num_params) { return 3 * num_params * 4; }

/// Training activations of recrun's TransformerEncoder (recrun/seq.hpp) for a batch of `batch`
/// sequences of `length` tokens, with `blocks` blocks computed at every position (a model that
/// runs its last block for a few read-out positions only counts it as the share it computes):
/// what the forward pass keeps for backward, plus half a block's gradients in flight. Per
/// position and block that is about 16 hidden-wide float32 tensors (LayerNorms, projections,
/// the 4x feed-forward, residuals) and per head 4 attention rows of `length`; bf16 autocast adds
/// half-size copies of the matrix products' inputs. Calibrated against measured peaks
/// (bench/bench_memory.cpp, tests/e2e/test_memory_e2e.cpp).
std::int64_t transformer_activation_bytes(std::int64_t batch, std::int64_t length,
                                          std::int64_t hidden, std::int64_t heads, double blocks,
                                          bool bf16);

}  // namespace memory

/// Bytes as "1.5 GiB", "300 MiB", "12 KiB".
std::string format_bytes(std::int64_t bytes);

}  // namespace recrun
