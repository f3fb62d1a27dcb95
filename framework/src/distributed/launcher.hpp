// `recrun run --nproc N`: starts N copies of this executable as the ranks of one data-parallel
// run on this machine, and ends them together.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace recrun::distributed {

/// How to start the ranks.
struct LaunchOptions {
  /// Processes to start (>= 2).
  int nproc = 2;
  /// Arguments after the executable (e.g. {"run", "--model", ...}), without --nproc.
  std::vector<std::string> args;
  /// Directory for the FileStore rendezvous file (created; the file is removed at the end).
  std::filesystem::path rendezvous_dir;
  /// Seconds the other ranks get to end on their own once one has failed, before SIGTERM.
  double grace_s = 15;
};

/// Starts the ranks (RECRUN_RANK, RECRUN_WORLD_SIZE and RECRUN_RENDEZVOUS set for each),
/// forwards SIGINT and SIGTERM to them, and waits for all. When one fails, the others get
/// grace_s to end (they notice the missing peer at their next all-reduce), then are terminated.
/// Returns 0 when every rank succeeded, else rank 0's exit code when it failed, else the first
/// failing rank's (128 + signal for a rank killed by a signal). Prints to stderr which rank
/// failed first and which ended after it.
int launch_ranks(const LaunchOptions& options);

}  // namespace recrun::distributed
