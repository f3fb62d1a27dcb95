// Data-parallel training over c10d's ProcessGroupGloo (Debian's libtorch, built with Gloo): the
// rank's configuration (from `recrun run --nproc N`'s launcher or from srun), the rendezvous
// (a FileStore on a shared path, or a TCPStore at MASTER_ADDR:MASTER_PORT) and the process group
// recrun::step(), TrainContext::out_of_time() and the evaluator reduce over.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "recrun/distributed.hpp"

namespace recrun::distributed {

/// One rank's place in a data-parallel run.
struct DistributedConfig {
  int rank = 0;
  int world_size = 1;
  /// "file:PATH" (a FileStore) or "tcp:HOST:PORT" (a TCPStore served by rank 0).
  std::string rendezvous;
  /// Where the settings came from, for messages ("--nproc", "srun").
  std::string origin;
  /// Seconds to wait for the other ranks to arrive, and for any one collective.
  double timeout_s = 1800;
};

/// Environment variables the launcher sets for each rank it starts.
inline constexpr const char* kRankEnv = "RECRUN_RANK";
inline constexpr const char* kWorldSizeEnv = "RECRUN_WORLD_SIZE";
inline constexpr const char* kRendezvousEnv = "RECRUN_RENDEZVOUS";
/// Overrides DistributedConfig::timeout_s (seconds).
inline constexpr const char* kTimeoutEnv = "RECRUN_DIST_TIMEOUT";

/// The configuration of this process, if it is a rank of a data-parallel run: from
/// RECRUN_RANK / RECRUN_WORLD_SIZE / RECRUN_RENDEZVOUS (the --nproc launcher), or under srun
/// (SLURM_PROCID, SLURM_NTASKS > 1 and SLURM_STEP_ID set) with a TCPStore at MASTER_ADDR and
/// MASTER_PORT when both are set, else a FileStore at
/// `results_dir`/.rendezvous/slurm-JOB.STEP (the results directory is shared on a cluster).
/// Throws ParamError naming the variable when a value is malformed.
std::optional<DistributedConfig> distributed_from_environment(
    const std::filesystem::path& results_dir);

/// A connected Gloo process group.
class GlooGroup final : public Collective {
 public:
  /// Joins the group: waits until all world_size ranks have arrived (or the timeout passes,
  /// which throws recrun::Error saying how many ranks came and what to check).
  static std::unique_ptr<GlooGroup> connect(const DistributedConfig& config);
  ~GlooGroup() override;

  int rank() const override;
  int world_size() const override;
  void all_reduce_sum(torch::Tensor& tensor) override;

  /// Seconds spent inside all_reduce_sum so far (communication and waiting for peers).
  double seconds_in_collectives() const;

  struct Impl;

 private:
  explicit GlooGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace recrun::distributed
