// recrun/distributed.hpp — data-parallel training: the process group a run trains over.
//
// `recrun run --nproc N` (or srun with N tasks) trains one model over N processes ("ranks").
// Every rank holds the whole data set and an identical copy of the model; each takes its part of
// every global batch (TrainContext::shard), and recrun::step() all-reduces the gradients before
// the optimizer step, so that the ranks' parameters stay identical. A model that never calls
// shard() still trains correctly (every rank computes the whole batch), only not faster.
//
// Models need nothing from this header beyond what TrainContext and step() already use; it is
// public so that a model with its own collective step (e.g. a closed-form fit split over ranks)
// can reach the group. Every call here is collective: all ranks must make it, in the same order,
// or they wait for each other until the group's timeout.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>

namespace recrun {

/// The process group of a data-parallel run.
class Collective {
 public:
  virtual ~Collective() = default;
  /// This process's rank in [0, world_size()).
  virtual int rank() const = 0;
  /// Number of processes.
  virtual int world_size() const = 0;
  /// Sums a contiguous CPU tensor (float32, float64 or int64) over all ranks, in place; every
  /// rank ends with the same values. Throws recrun::Error when a peer is gone or the group's
  /// timeout passes.
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;
};

/// The process's group, or nullptr when the run trains in one process.
Collective* collective();

/// Rank and world size of this process (0 and 1 when alone).
int process_rank();
int process_world_size();

/// The part [begin, end) of a global batch of `n` examples that `rank` of `world` takes:
/// contiguous, and sizes differ by at most one (the first n % world ranks take one more).
inline std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t n, int rank, int world) {
  const auto r = static_cast<std::int64_t>(rank), w = static_cast<std::int64_t>(world);
  const std::int64_t base = n / w, extra = n % w;
  const std::int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

/// True on every rank when `local` is true on any rank (collective; `local` alone without one).
bool any_rank(bool local);

}  // namespace recrun
