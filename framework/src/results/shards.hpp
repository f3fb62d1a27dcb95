// Result shards: one small results database per trial, written by a cluster array task, merged
// into results.db afterwards.
//
// SQLite is not safe with concurrent writers on a network file system (its locks and WAL's
// shared memory do not cross machines), so an array task never opens results.db. The sweep
// creates the task's shard (same schema, via ResultsStore on another path) holding the
// experiment and the one trial, pending; the task claims and runs the trial there, as
// `recrun trial KEY --shard PATH`, alone (StoreOptions::exclusive: no -shm file); the collector
// (`recrun sweep FILE --collect`) copies the outcome into results.db.
//
// Merging is idempotent and safe to repeat or to run in two processes at once: record_run() is
// one transaction that does nothing for a run results.db already has finished, and fail()
// never touches a finished run either. A merged shard is moved aside (never deleted) only after
// the results.db commit is on disk (the collector's store uses durable commits).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "results/results_store.hpp"

namespace recrun::results {

/// Store options for a shard: exclusive (one process at a time, no shared memory), failing
/// fast when another process has it open, and not creating the file unless `create`.
StoreOptions shard_store_options(bool create, std::chrono::milliseconds busy_timeout);

/// Creates the shard file at `path` for one trial: the experiment row (name, text, hash) and the
/// trial, registered as pending (spec.experiment_id is replaced by the shard's own). An existing
/// file at `path` (a shard of an attempt that never started) is replaced.
void create_shard(const std::filesystem::path& path, const ExperimentRow& experiment,
                  TrialSpec spec);

/// Everything a shard holds about its trial.
struct ShardContent {
  ExperimentRow experiment;               ///< the experiment row the trial belongs to
  RunRow row;                             ///< the trial's row
  std::vector<EpochMetric> epochs;        ///< its per-epoch curves
  std::optional<UserMetrics> users;       ///< its per-user final metrics, if finished
};

/// Reads the shard at `path`, which must exist and hold exactly one run. Throws StoreError when
/// it cannot be read, including SQLITE_BUSY after `busy_timeout` while its task still has it
/// open.
ShardContent read_shard(const std::filesystem::path& path,
                        std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));

/// The finished run a shard holds, as record_run() takes it, filed under `experiment_id` of the
/// database it is merged into. Epoch metrics keep their wall times; per-user metrics, paths,
/// timings, owner and attempts are copied.
CompletedRun completed_run_of(const ShardContent& shard, std::optional<std::int64_t> experiment_id);

/// What merging one shard did.
enum class MergeResult {
  merged_finished,   ///< results.db now has the shard's finished run
  merged_failed,     ///< results.db now has the trial failed, with the shard's error
  already_finished,  ///< results.db had the trial finished already: nothing changed
  not_done,          ///< the shard's trial is pending or running (or was killed while running)
};

/// Outcome of merge_shard().
struct MergeOutcome {
  MergeResult result = MergeResult::not_done;
  std::string trial_key;  ///< the shard's trial
  RunStatus shard_status = RunStatus::pending;  ///< the trial's status in the shard
  std::string error;      ///< the shard's error text (failed trials)
};

/// Merges a shard that read_shard() returned into `main`. A finished trial is recorded with
/// record_run(); a failed one with fail() (the error prefixed with `failure_context`, when
/// given); neither ever replaces a finished run of results.db. Does not move the shard.
MergeOutcome merge_shard(ResultsStore& main, const ShardContent& shard,
                         const std::string& failure_context = {});

/// Moves a merged shard into `merged_dir` (created if needed) under the same name, by rename(2),
/// together with any -wal file beside it. Returns false when the shard is no longer there
/// (another collector moved it first). Never deletes anything: a name already taken in
/// `merged_dir` gets a numbered suffix.
bool move_shard_aside(const std::filesystem::path& shard, const std::filesystem::path& merged_dir);

}  // namespace recrun::results
