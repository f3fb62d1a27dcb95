// Internals of the results store, shared by its two translation units:
//   results_store.cpp  the schema, writing rows (trials, epochs, outcomes) and reading them back;
//   lease.cpp          the trial lease: who may change a run row (claim, heartbeat, reaping
//                      dead owners, finish/fail/mark_interrupted, reset).
// Every persistence call that must not write into another worker's run asks the lease side
// (require_owned, owner_gone); the lease side writes outcomes through write_outcome.
// Not part of the store's interface: include results/results_store.hpp instead.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "results/results_store.hpp"
#include "results/sqlite_db.hpp"

namespace recrun::results {

namespace detail {

/// Now as ISO-8601 UTC with milliseconds, the format of the schema's timestamp defaults.
std::string utc_now_iso();

/// What a transaction needs to know about a row to decide who may change it.
struct RowState {
  std::int64_t id = 0;
  RunStatus status = RunStatus::pending;
  Owner owner;
  std::optional<double> heartbeat_age_s;  // nullopt when there never was a heartbeat
};

}  // namespace detail

struct ResultsStore::State {
  using RowState = detail::RowState;

  State(const std::filesystem::path& path, StoreOptions opts);
  /// Throws when the database holds tables but no recrun schema version (another program's).
  void refuse_foreign();

  StoreOptions options;
  Database db;
  std::string local_host;  // liveness by pid can only be judged on this host
  std::mutex mutex;        // one transaction at a time on the shared connection

  [[noreturn]] void throw_misuse(std::string message) const;

  // --- schema, persistence and reading (results_store.cpp) ---------------------------------
  void open();
  int schema_version();
  std::optional<double> numeric_value(const Param& param, std::string_view trial_key) const;
  void validate(const TrialSpec& spec) const;
  // Inserts the run (and its params) if its key is new; returns whether it did.
  bool insert_if_missing(const TrialSpec& spec, Statement& insert_run, Statement& insert_param);
  Statement prepare_insert_run();
  Statement prepare_insert_param();
  void write_outcome(std::int64_t run_id, const FinishInfo& info, const Owner& owner,
                     std::int64_t min_attempts);
  // run_users and run_user_metrics of a run (replacing any stored ones).
  void write_user_metrics(std::int64_t run_id, const FinishInfo& info);
  // Drops and recreates the views with a column for every row of metric_columns.
  void rebuild_views();
  // Schema 3 -> 4: the status 'pruned' and the search tables.
  void migrate_3_to_4();
  // Adds a value to the runs.status CHECK list (after `last`), editing the stored DDL in place.
  void add_run_status(std::string_view last, std::string_view added);
  void upsert_epoch(Statement& upsert, std::int64_t run_id, std::int64_t epoch, SplitName split,
                    const std::vector<Metric>& metrics, double wall_time,
                    std::string_view trial_key);
  Statement prepare_upsert_epoch();
  // Runs matching `filter` (SQL over runs AS r, with ?1 bound to `arg`), with params, metrics
  // and memberships. member_of_arg: only runs that belong to the experiment named `arg`, read
  // through that membership (RunRow::experiment_id/experiment/group_name).
  std::vector<RunRow> load_runs(std::string_view filter, std::optional<std::string_view> arg,
                                bool member_of_arg);

  // --- the trial lease (lease.cpp) ----------------------------------------------------------
  std::optional<RowState> row_state(std::string_view trial_key);
  RowState require_row(std::string_view trial_key, std::string_view action);
  // Returns why the owner of a running row is gone, or nullopt while it may still be alive.
  std::optional<std::string> owner_gone(const RowState& row) const;
  // The run id of a trial that is running under this store's owner; throws otherwise, since
  // writing into a run another worker now owns would mix two attempts' results.
  std::int64_t require_owned(std::string_view trial_key, std::string_view action);
  // fail() and mark_interrupted(): end an attempt without a result.
  // finish() of a staging row: moves its outcome, params and metrics into the row it replaces.
  void promote_if_staging(std::int64_t run_id);
  bool end_attempt(std::string_view trial_key, RunStatus status, std::string_view error,
                   bool only_if_running);
};

}  // namespace recrun::results
