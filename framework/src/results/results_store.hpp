// The SQLite results store (results/results.db): experiments, runs, their parameters and
// metrics, written safely by many worker processes and sweeps at once.
//
// Life of a trial:
//   register_trials()  inserts the sweep's trials as 'pending' (existing rows are left alone)
//   claim()            pending/interrupted (or failed, if asked) -> 'running', owned by us
//   heartbeat(), log_epoch()   while it runs
//   finish() | fail() | mark_interrupted()
// A row is 'running' only while a live worker owns it: claim() and reap_dead_owners() treat a
// running row whose owner process is gone (or whose heartbeat is stale) as interrupted.
//
// Every state change is one short BEGIN IMMEDIATE transaction; the database is in WAL mode and
// every call waits out other writers (busy_timeout) instead of failing with SQLITE_BUSY.
// docs/results-schema.md describes the tables and views for people querying the file.
//
// Two translation units implement it: lease.cpp decides who may change a run row (claim,
// heartbeat, reap_dead_owners, finish, fail, mark_interrupted, reset_trial); results_store.cpp
// holds the schema and the persistence and reading of results (store_state.hpp joins them).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/params.hpp"
#include "results/store_error.hpp"

namespace recrun::results {

/// Where a run row stands. Stored as the lower-case name.
/// `pruned`: stopped by its search's pruner at a rung (schema 4); like `finished`, it is never
/// run again, but it never counts as a group's best.
/// waiting: a trial whose models are built from other runs (an ensemble's members) that name no
/// finished run yet; the next sweep takes it up like a pending one.
enum class RunStatus { pending, running, finished, failed, interrupted, pruned, waiting };
std::string_view to_string(RunStatus status);
/// Inverse of to_string; throws std::invalid_argument for anything else.
RunStatus parse_run_status(std::string_view text);

/// Which data a metric was measured on. Epoch metrics use train/valid; final metrics valid/test.
/// (Not to be confused with core::Split, the partition of a data set.)
enum class SplitName { train, valid, test };
std::string_view to_string(SplitName split);
/// Inverse of to_string; throws std::invalid_argument for anything else.
SplitName parse_split_name(std::string_view text);

/// How the store writes a parameter's declared type (the SDK's ParamType) in run_params.type:
/// 'int', 'float', 'bool', 'string', 'list'.
std::string_view stored_type_name(ParamType type);
/// Inverse of stored_type_name; throws std::invalid_argument for anything else.
ParamType parse_stored_type(std::string_view text);

/// One resolved hyperparameter of a run.
struct Param {
  std::string name;                  ///< parameter name as declared by the plugin
  std::string value;                 ///< canonical text: 64, 0.001, true, adam, ["genre","year"]
  ParamType type = ParamType::string;  ///< declared type (the SDK's)
  /// Numeric view for int/float/bool (bool as 0/1) so SQL can compare numbers; nullopt for
  /// string/list. Left empty for a numeric type, the store parses it from `value`.
  std::optional<double> num_value;

  static Param of_int(std::string name, std::int64_t value);
  static Param of_float(std::string name, double value);
  static Param of_bool(std::string name, bool value);
  static Param of_string(std::string name, std::string value);
  /// `json` is the list as JSON text, e.g. ["genre","year"].
  static Param of_list(std::string name, std::string json);

  bool operator==(const Param&) const = default;
};

/// One named metric value. NaN is stored as SQL NULL and read back as NaN.
struct Metric {
  std::string name;  ///< e.g. "loss", "Hit@10", "NDCG@10", "MRR@10", "Recall@10"
  double value = 0;  ///< the value
};

/// One metric's value for each evaluated user (in the order of the run's user ids).
struct UserMetric {
  std::string name;           ///< "NDCG@10"
  std::vector<float> values;  ///< one per user; stored as float32 little-endian
  bool operator==(const UserMetric&) const = default;
};

/// A finished run's per-user final metrics (tables run_users and run_user_metrics).
struct UserMetrics {
  std::vector<std::int64_t> users;  ///< dense user ids, strictly ascending
  std::vector<UserMetric> valid;    ///< validation metrics of the best epoch, by name
  std::vector<UserMetric> test;     ///< test metrics of the best checkpoint, by name
};

/// Everything needed to insert a trial's run row before it runs.
struct TrialSpec {
  std::string trial_key;         ///< unique id: hash of model, params, data, split, seed
  std::string group_name;        ///< the experiment's group/section this trial came from
  std::string model;             ///< model component name
  std::string data_path;         ///< data directory as given
  std::string data_fingerprint;  ///< content fingerprint of the data
  std::string protocol_json = "{}";  ///< split/evaluation protocol as JSON
  std::int64_t seed = 0;         ///< random seed
  std::vector<Param> params;     ///< resolved hyperparameters (names unique)
  std::optional<std::int64_t> experiment_id;  ///< from upsert_experiment(); none for `recrun run`
};

/// The outcome of a finished trial.
struct FinishInfo {
  std::optional<std::int64_t> best_epoch;  ///< epoch of the kept checkpoint
  std::int64_t epochs_run = 0;             ///< epochs actually trained
  double fit_seconds = 0;                  ///< time in fit_epoch
  double eval_seconds = 0;                 ///< time in evaluation
  double total_seconds = 0;                ///< wall time of the whole trial
  std::string checkpoint_path;             ///< kept checkpoint file; empty (NULL) if none kept
  std::string tensorboard_path;            ///< this run's TensorBoard directory; empty if none
  std::vector<Metric> valid_metrics;       ///< validation metrics of the best epoch
  std::vector<Metric> test_metrics;        ///< test metrics of the best checkpoint
  /// Evaluated users (dense ids, strictly ascending); empty with no per-user metrics.
  std::vector<std::int64_t> users;
  /// Per-user validation metrics of the best epoch, each with one value per entry of `users`.
  std::vector<UserMetric> valid_user_metrics;
  /// Per-user test metrics of the best checkpoint, likewise.
  std::vector<UserMetric> test_user_metrics;
  /// Stopped by its search's pruner: recorded as 'pruned' instead of 'finished'.
  bool pruned = false;
};

/// The process a running row belongs to.
struct Owner {
  std::string host;      ///< gethostname()
  std::int64_t pid = 0;  ///< process id on that host

  /// This process on this host.
  static Owner current();
  bool operator==(const Owner&) const = default;
};

/// Outcome of claim().
enum class ClaimResult {
  claimed,                  ///< the row is now 'running' and owned by this store's owner
  already_finished,         ///< nothing to do
  owned_by_live_worker,     ///< another live worker runs it
  failed_needs_retry_flag,  ///< it failed before; claim(key, /*retry_failed=*/true) to rerun
};
std::string_view to_string(ClaimResult result);

/// Outcome of begin_replacement().
struct Replacement {
  ClaimResult result = ClaimResult::claimed;  ///< claimed, or owned_by_live_worker
  std::string staging_key;  ///< the hidden attempt's key (`<trial_key>~attempt-<n>`)
  std::int64_t attempt = 0;  ///< the new attempt's number (the finished row's attempts + 1)
};

/// An experiment (version) and group that registered a trial (table run_groups). A trial whose
/// key appears in several experiments' grids belongs to each of them.
struct Membership {
  std::int64_t experiment_id = 0;  ///< experiments.id (one version of the file)
  std::string experiment;          ///< its name
  std::string group_name;          ///< the group there
  bool operator==(const Membership&) const = default;
};

/// One row of `runs`, with its parameters and final metrics.
/// Text columns that are NULL in the database read as empty strings.
/// Read through runs(EXPERIMENT), `experiment_id`, `experiment` and `group_name` are the run's
/// membership in that experiment; otherwise they are the experiment that registered it first.
struct RunRow {
  std::int64_t id = 0;                        ///< runs.id
  std::string trial_key;                      ///< unique trial key
  std::optional<std::int64_t> experiment_id;  ///< experiments.id; none for a single run
  std::string experiment;                     ///< experiment name; empty for a single run
  std::string group_name;                     ///< group within the experiment
  std::string model;                          ///< model component name
  std::string data_path;                      ///< data directory
  std::string data_fingerprint;               ///< data content fingerprint
  std::string protocol_json;                  ///< protocol as JSON
  std::int64_t seed = 0;                      ///< random seed
  RunStatus status = RunStatus::pending;      ///< current status
  std::int64_t attempts = 0;                  ///< times claimed so far
  std::string owner_host;                     ///< last owner's host
  std::optional<std::int64_t> owner_pid;      ///< last owner's pid
  std::string heartbeat_at;                   ///< last sign of life (ISO-8601 UTC)
  std::string created_at;                     ///< when registered (ISO-8601 UTC)
  std::string started_at;                     ///< when the latest attempt was claimed
  std::string finished_at;                    ///< when it finished or failed
  std::optional<double> fit_seconds;          ///< see FinishInfo
  std::optional<double> eval_seconds;         ///< see FinishInfo
  std::optional<double> total_seconds;        ///< see FinishInfo
  std::optional<std::int64_t> best_epoch;     ///< see FinishInfo
  std::optional<std::int64_t> epochs_run;     ///< see FinishInfo
  std::string checkpoint_path;                ///< best checkpoint file
  std::string tensorboard_path;               ///< TensorBoard run directory
  std::string error;                          ///< why it failed or was interrupted
  std::vector<Param> params;                  ///< resolved hyperparameters, by name
  std::vector<Metric> valid_metrics;          ///< final validation metrics, by name
  std::vector<Metric> test_metrics;           ///< final test metrics, by name
  std::vector<Membership> memberships;        ///< every experiment/group it belongs to, by id

  /// Its membership in the experiment named `name` (the newest version that registered it),
  /// or nullptr when it does not belong to one of that name.
  const Membership* membership(std::string_view name) const;
};

/// One row of `epoch_metrics`.
struct EpochMetric {
  std::int64_t epoch = 0;      ///< epoch number
  SplitName split = SplitName::train;  ///< train or valid
  std::string name;            ///< metric name
  double value = 0;            ///< value (NaN if it was NaN)
  double wall_time = 0;        ///< Unix seconds when logged, as in TensorBoard events
};

/// One epoch's metrics for one split, for record_run().
struct EpochRecord {
  std::int64_t epoch = 0;             ///< epoch number
  SplitName split = SplitName::train;         ///< train or valid
  std::vector<Metric> metrics;        ///< the values
  std::optional<double> wall_time;    ///< Unix seconds; now when empty
};

/// A complete run produced elsewhere (a cluster shard) or recorded after the fact.
struct CompletedRun {
  TrialSpec spec;                    ///< registers the row when it is missing
  FinishInfo finish;                 ///< outcome
  std::vector<EpochRecord> epochs;   ///< per-epoch curves; replace any stored ones
  std::optional<Owner> owner;        ///< who ran it; this store's owner when empty
  std::int64_t attempts = 1;         ///< attempts it took (stored as at least this)
};

/// One row of `experiments`: a version (hash) of an experiment file.
struct ExperimentRow {
  std::int64_t id = 0;     ///< experiments.id
  std::string name;        ///< experiment name
  std::string hash;        ///< hash of the file's content
  std::string toml_text;   ///< the file as the sweep read it
  std::string created_at;  ///< when this version was first swept (ISO-8601 UTC)
};

/// Number of runs in each status.
struct StatusCounts {
  std::int64_t pending = 0;
  std::int64_t running = 0;
  std::int64_t finished = 0;
  std::int64_t failed = 0;
  std::int64_t interrupted = 0;
  std::int64_t pruned = 0;
  std::int64_t waiting = 0;
  std::int64_t total() const {
    return pending + running + finished + failed + interrupted + pruned + waiting;
  }
};

/// How a ResultsStore behaves. Defined outside the class so that `= {}` works as a default
/// argument.
struct StoreOptions {
  /// How long any call waits for other processes' locks before throwing.
  std::chrono::milliseconds busy_timeout{60'000};
  /// A running row whose heartbeat is older than this counts as abandoned, whatever its host.
  /// Workers must heartbeat (or log epochs) more often; from a thread if an epoch is longer.
  std::chrono::seconds stale_after{600};
  /// Whom claim() records as owner and whose ownership finish()/heartbeat()/log_epoch() check.
  /// This process by default; a worker finishing a trial its parent claimed passes the parent.
  Owner owner = Owner::current();
  /// Create the file when it does not exist. A reader of a file that must already be there (a
  /// cluster shard being merged) sets false: a missing file then throws instead of appearing.
  bool create = true;
  /// One process uses the database alone (a cluster shard, written by one array task): SQLite's
  /// exclusive locking mode, set before WAL, so that WAL needs no shared memory (-shm file) and
  /// the file is safe on a network file system. Other connections get SQLITE_BUSY while it is
  /// open.
  bool exclusive = false;
  /// Every commit is synced to disk before it returns (synchronous = FULL) rather than at the
  /// next checkpoint (NORMAL): for a writer that deletes or moves its source once committed.
  bool durable_commits = false;
  /// Only read (results list, predict, report): the file is opened read-only, nothing is
  /// created, migrated or switched to WAL, and a directory that cannot be written (a read-only
  /// mount, an archive) is fine: the file is then opened with SQLite's immutable=1.
  bool read_only = false;
};

/// The results database. Thread-safe (calls are serialised); not fork-safe: a child process
/// opens its own ResultsStore. Every method throws StoreError on a database failure.
class ResultsStore {
 public:
  /// Opens or creates the database at `db_path` (and its parent directories), switches it to
  /// WAL, and creates or upgrades the schema. Throws StoreError if the file was made by a newer
  /// recrun (schema version above kSchemaVersion) or if WAL is unavailable (network file systems).
  explicit ResultsStore(std::filesystem::path db_path, StoreOptions options = {});
  ~ResultsStore();
  ResultsStore(ResultsStore&&) noexcept;
  ResultsStore& operator=(ResultsStore&&) noexcept;
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  const std::filesystem::path& path() const;
  const StoreOptions& options() const;

  // ---- writing ----------------------------------------------------------------------------

  /// Returns the id of the experiment (name, hash), inserting it first if it is new. An edited
  /// experiment file (new hash) gets a new row under the same name.
  std::int64_t upsert_experiment(std::string_view name, std::string_view toml_text,
                                 std::string_view hash);

  /// Inserts the trials whose keys are not in the database yet, as 'pending' with their params;
  /// existing rows are never changed, but every trial with an experiment_id (new or not) is
  /// recorded as a member of that experiment and group. One transaction. Returns how many
  /// rows were inserted.
  std::size_t register_trials(const std::vector<TrialSpec>& trials);

  /// Atomically takes the trial for this store's owner: pending or interrupted (or failed, with
  /// `retry_failed`) becomes 'running' with owner, heartbeat and started_at set, attempts + 1,
  /// and the previous attempt's outcome cleared. A running row is taken over when its owner is
  /// gone: same host and the pid no longer exists, or the heartbeat is older than stale_after.
  /// Throws StoreError if the key was never registered.
  ClaimResult claim(std::string_view trial_key, bool retry_failed = false);

  /// register_trials({spec}) then claim(): the single-run path (`recrun run`).
  ClaimResult begin_trial(const TrialSpec& spec, bool retry_failed = false);

  /// Refreshes heartbeat_at. Returns false if the trial is no longer running under this owner
  /// (another worker took it over, or it was marked interrupted): the caller should stop.
  bool heartbeat(std::string_view trial_key);

  /// Upserts one epoch's metrics for `split` (train or valid) and refreshes the heartbeat; a
  /// resumed trial re-logging an epoch overwrites instead of duplicating. Throws StoreError if
  /// the trial is not running under this owner.
  void log_epoch(std::string_view trial_key, std::int64_t epoch, SplitName split,
                 const std::vector<Metric>& metrics);

  /// Deletes epoch metrics after `last_kept_epoch`: a trial resuming from the checkpoint of that
  /// epoch (or restarting: 0) drops the curve its previous attempt drew past it.
  /// Throws StoreError if the trial is not running under this owner.
  void truncate_epochs(std::string_view trial_key, std::int64_t last_kept_epoch);

  /// Records checkpoint and TensorBoard paths while the trial runs, so that they are known even
  /// if it later fails. Empty strings leave a path unchanged. Ownership as for log_epoch.
  void set_artifact_paths(std::string_view trial_key, std::string_view checkpoint_path,
                          std::string_view tensorboard_path);

  /// Marks the trial finished with its outcome and final metrics (replacing any stored ones).
  /// For a staging key (begin_replacement) it promotes the attempt into the trial it replaces.
  /// Throws StoreError if the trial is not running under this owner.
  void finish(std::string_view trial_key, const FinishInfo& info);

  /// Ends the trial as `status` (failed, interrupted, or waiting: its members name no finished
  /// run yet) with `error`. Allowed for a running row owned by this owner or by a dead one, and
  /// for a pending/interrupted/failed/waiting row; returns false (and changes nothing) for a
  /// finished row or one a live other worker owns.
  /// Throws StoreError for an unknown key or another status.
  bool fail(std::string_view trial_key, std::string_view error,
            RunStatus status = RunStatus::failed);

  /// running -> interrupted (e.g. on Ctrl-C), under the same ownership rule as fail(). Returns
  /// false when the row is not running or a live other worker owns it.
  bool mark_interrupted(std::string_view trial_key, std::string_view reason = {});

  /// Marks interrupted every running row whose owner is gone (see claim()). Returns how many.
  std::size_t reap_dead_owners();

  /// Puts a non-running trial back to 'pending' and deletes its metrics and outcome, for an
  /// explicit rerun (`--force`). Returns false if a live worker runs it. Unknown key: throws.
  bool reset_trial(std::string_view trial_key);

  /// Starts a replacement of the finished trial `trial_key` (`recrun run --force`) without
  /// touching it: inserts a hidden staging row (runs.staging_for = the finished row, same
  /// params), running under this owner, that log_epoch()/heartbeat()/fail() use like any run.
  /// finish() of the staging key replaces the finished row's outcome, params, final metrics and
  /// curves with the staging row's in the same transaction and deletes the staging row; a
  /// failed or abandoned staging row leaves the finished row as it was. Earlier staging rows of
  /// the trial whose owner is gone are deleted first; one a live worker runs makes this return
  /// owned_by_live_worker. Throws StoreError unless the trial is finished.
  Replacement begin_replacement(std::string_view trial_key);

  /// Deletes a staging row (with its curves) that is not running under a live other owner.
  /// Returns whether it did.
  bool discard_replacement(std::string_view staging_key);

  /// Writes a complete finished run in one transaction: registers it if missing, then stores
  /// outcome, final metrics and epoch curves. Idempotent for merging shards: returns false and
  /// changes nothing if the run is already finished or a live worker runs it.
  bool record_run(const CompletedRun& run);

  // ---- reading ----------------------------------------------------------------------------

  /// The run with this key, or nullopt.
  std::optional<RunRow> find(std::string_view trial_key) const;
  /// All runs, or those that belong to an experiment named `experiment` (any version; a run
  /// registered by several experiments belongs to each), in insertion order.
  std::vector<RunRow> runs(std::optional<std::string_view> experiment = std::nullopt) const;
  /// The trial's epoch metrics ordered by epoch, split, name; empty for an unknown key.
  std::vector<EpochMetric> epoch_metrics(std::string_view trial_key) const;
  /// The per-user final metrics of the run with this key; nullopt for an unknown key or a run
  /// that stored none (unfinished, or finished before schema 3).
  std::optional<UserMetrics> user_metrics(std::string_view trial_key) const;
  /// The versions of the experiment named `name` (all experiments when empty), oldest first.
  std::vector<ExperimentRow> experiments(std::optional<std::string_view> name = std::nullopt) const;
  /// Runs per status, overall or of the runs that belong to experiments named `experiment`.
  StatusCounts status_counts(std::optional<std::string_view> experiment = std::nullopt) const;

 private:
  // Searches and their pruning decisions (results/search_store.hpp) share the connection.
  friend class SearchStore;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace recrun::results
