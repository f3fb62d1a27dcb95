// The local executor: runs trials in worker processes (`recrun trial KEY`), at most `jobs` at
// a time, and turns every way a worker can end into a recorded outcome. Workers are forked from
// a zygote process (sweep/zygote.hpp) or, without one, exec'd.
//
// The sweep claims each trial in results.db before starting its worker, and the worker writes
// through the store as that claimant (StoreOptions::owner), so a row is 'running' exactly while
// this process lives. Workers die with the sweep (PR_SET_PDEATHSIG); a later sweep turns rows of
// a dead sweep into 'interrupted' (reap_dead_owners) and resumes them from their checkpoints.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "trial/layout.hpp"
#include "sweep/progress.hpp"
#include "sweep/trials.hpp"

namespace recrun::sweep {

/// Whether a queued trial may start (SchedulerOptions::readiness).
struct Readiness {
  enum class Kind {
    ready,    ///< start it
    later,    ///< trials of this sweep that make its members have not ended: start later ones
    waiting,  ///< its members name no finished run: record it 'waiting' with `reason`
  };
  Kind kind = Kind::ready;
  std::string reason;
};

/// How to start and police workers.
struct SchedulerOptions {
  /// Worker processes at once.
  int jobs = 1;
  /// LibTorch threads per worker.
  int threads_per_worker = 1;
  /// The recrun executable workers run.
  std::filesystem::path executable;
  /// --plugin-dir arguments passed on to workers.
  std::vector<std::string> plugin_dirs;
  /// Results directory layout.
  trial::ResultsLayout layout;
  /// Experiment name (directories of logs, checkpoints, events).
  std::string experiment;
  /// Re-run failed trials.
  bool retry_failed = false;
  /// Kill a worker after this many seconds; 0 = never.
  double trial_timeout_s = 0;
  /// Kill a worker whose resident memory exceeds this many MiB; 0 = never.
  double memory_limit_mb = 0;
  /// Seconds between a worker's resumable checkpoints; 0 = every epoch.
  double checkpoint_every_s = 30;
  /// Checkpoints a finished trial keeps (`recrun trial --checkpoints`).
  std::string checkpoints = "best";
  /// Fork workers from a zygote that loaded LibTorch and the plugins once (sweep/zygote.hpp);
  /// false, or a zygote that cannot start, execs `recrun trial` for every worker.
  bool zygote = true;
  /// How often running rows get a heartbeat from this process.
  std::chrono::seconds heartbeat_every{30};
  /// Asked for another trial whenever a worker slot is free and the queue is done (a TPE
  /// search's next suggestion, sweep/search.hpp); nullptr means none will come. Trials it returns
  /// must outlive the run.
  std::function<const Trial*()> more;
  /// Asked before a queued trial starts; nullptr: every trial is ready. A trial that is not
  /// ready yet keeps its place while later trials start, and is asked again whenever a worker
  /// ends; one still not ready when nothing else runs is recorded 'waiting'.
  std::function<Readiness(const Trial&)> readiness;
};

/// What happened to one trial the scheduler looked at.
struct TrialRun {
  /// Trial key.
  std::string key;
  /// "finished", "failed", "interrupted", "waiting" (its members are missing), or "skipped"
  /// (someone else finished or runs it).
  std::string outcome;
  /// Metric text, failure reason or skip reason.
  std::string detail;
  /// Launch-to-exit wall time of the worker, seconds (0 when not launched).
  double wall_seconds = 0;
  /// Whether the worker resumed an earlier attempt's checkpoint.
  bool resumed = false;
  /// CPU seconds (user + system) the worker used.
  double cpu_seconds = 0;
};

/// The sweep's execution record.
struct ScheduleResult {
  /// One entry per trial handled, in completion order.
  std::vector<TrialRun> runs;
  /// The signal that stopped the sweep early (SIGINT, SIGTERM, SIGHUP), or 0.
  int stopped_by = 0;
};

/// Runs `queue` in order with up to options.jobs workers. Returns when every trial has ended,
/// or after a stop signal once the running workers are stopped and their rows marked
/// interrupted. Installs SIGINT/SIGTERM/SIGHUP handlers for its duration.
ScheduleResult run_trials(results::ResultsStore& store, const std::vector<const Trial*>& queue,
                          const SchedulerOptions& options, ProgressDisplay& display);

/// The last non-empty lines of a worker's log (for a crash reason), joined with " | ".
std::string log_tail(const std::filesystem::path& log, std::size_t max_lines = 3);

/// "killed by signal 11 (Segmentation fault)" / "exited with status 2" for a waitpid status.
std::string describe_wait_status(int status);

}  // namespace recrun::sweep
