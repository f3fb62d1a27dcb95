// The trial lease: a run row is 'running' only while a live worker owns it. Claiming, the
// heartbeat, taking over rows of dead owners, and ending an attempt (finish, fail,
// mark_interrupted, reset) are decided here; rows are written through results_store.cpp.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <mutex>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "results/sqlite_db.hpp"
#include "results/store_state.hpp"

namespace recrun::results {

using detail::RowState;
using detail::utc_now_iso;

std::string_view to_string(ClaimResult result) {
  switch (result) {
    case ClaimResult::claimed: return "claimed";
    case ClaimResult::already_finished: return "already finished";
    case ClaimResult::owned_by_live_worker: return "owned by a live worker";
    case ClaimResult::failed_needs_retry_flag: return "failed before (retry not requested)";
  }
  return "?";
}

Owner Owner::current() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return {"unknown-host", static_cast<std::int64_t>(::getpid())};
  }
  return {host, static_cast<std::int64_t>(::getpid())};
}

namespace {

// kill(pid, 0) probes without signalling. EPERM means the process exists but is not ours; only
// ESRCH proves it is gone. A zombie still counts as alive until its parent reaps it.
bool pid_alive(std::int64_t pid) {
  if (pid <= 0 || pid > INT_MAX) return false;  // kill(0 or -n) would address process groups
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno != ESRCH;
}

}  // namespace

// -------------------------------------------------------------------------- ownership rules

std::optional<RowState> ResultsStore::State::row_state(std::string_view trial_key) {
  auto stmt = db.prepare(
      "SELECT id, status, owner_host, owner_pid, "
      "(julianday('now') - julianday(heartbeat_at)) * 86400.0 "
      "FROM runs WHERE trial_key = ?1");
  stmt.bind_all(trial_key);
  if (!stmt.step()) return std::nullopt;
  RowState row;
  row.id = stmt.int64(0);
  row.status = parse_run_status(stmt.text(1));
  row.owner = Owner{stmt.text(2), stmt.opt_int64(3).value_or(0)};
  row.heartbeat_age_s = stmt.opt_real(4);
  return row;
}

RowState ResultsStore::State::require_row(std::string_view trial_key, std::string_view action) {
  auto row = row_state(trial_key);
  if (!row) {
    throw_misuse(fmt::format("cannot {} trial '{}': no run with that key is registered "
                             "(register_trials() must come first)",
                             action, trial_key));
  }
  return *row;
}

// Returns why the owner of a running row is gone, or nullopt while it may still be alive.
std::optional<std::string> ResultsStore::State::owner_gone(const RowState& row) const {
  if (row.owner.host == local_host && !pid_alive(row.owner.pid)) {
    return fmt::format("owner process {} on {} exited without finishing", row.owner.pid,
                       row.owner.host);
  }
  const double stale_s = static_cast<double>(options.stale_after.count());
  if (!row.heartbeat_age_s || *row.heartbeat_age_s > stale_s) {
    return fmt::format("no heartbeat from {}:{} for {:.0f} s (stale after {:.0f} s)",
                       row.owner.host, row.owner.pid, row.heartbeat_age_s.value_or(-1),
                       stale_s);
  }
  return std::nullopt;
}

// The run id of a trial that is running under this store's owner; throws otherwise, since
// writing into a run another worker now owns would mix two attempts' results.
std::int64_t ResultsStore::State::require_owned(std::string_view trial_key,
                                                std::string_view action) {
  const RowState row = require_row(trial_key, action);
  if (row.status != RunStatus::running || row.owner != options.owner) {
    throw_misuse(fmt::format(
        "cannot {} trial '{}': it is not running under this worker ({}:{}); its status is "
        "'{}' and its owner {}:{} (a worker loses a trial when its heartbeat goes stale or it "
        "is marked interrupted)",
        action, trial_key, options.owner.host, options.owner.pid, to_string(row.status),
        row.owner.host.empty() ? "-" : row.owner.host, row.owner.pid));
  }
  return row.id;
}

// fail() and mark_interrupted(): end an attempt without a result.
bool ResultsStore::State::end_attempt(std::string_view trial_key, RunStatus status,
                                      std::string_view error, bool only_if_running) {
  return db.write_transaction([&] {
    const RowState row = require_row(trial_key, "end");
    switch (row.status) {
      case RunStatus::finished:
      case RunStatus::pruned:
        return false;
      case RunStatus::running:
        if (row.owner != options.owner && !owner_gone(row)) return false;
        break;
      case RunStatus::pending:
      case RunStatus::failed:
      case RunStatus::interrupted:
      case RunStatus::waiting:
        if (only_if_running) return false;
        break;
    }
    db.prepare(
          "UPDATE runs SET status = ?2, error = NULLIF(?3, ''), finished_at = ?4 "
          "WHERE id = ?1")
        .bind_all(row.id, to_string(status), error, utc_now_iso())
        .execute();
    return true;
  });
}

// ------------------------------------------------------------------------------- the lease

ClaimResult ResultsStore::claim(std::string_view trial_key, bool retry_failed) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    const RowState row = s.require_row(trial_key, "claim");
    switch (row.status) {
      case RunStatus::finished:
      case RunStatus::pruned:  // a pruner's decision is final, like a result
        return ClaimResult::already_finished;
      case RunStatus::failed:
        if (!retry_failed) return ClaimResult::failed_needs_retry_flag;
        break;
      case RunStatus::running:
        // Our own owner on a running row means a repeated claim or a reused pid: both safe.
        if (row.owner != s.options.owner && !s.owner_gone(row)) {
          return ClaimResult::owned_by_live_worker;
        }
        break;
      case RunStatus::pending:
      case RunStatus::interrupted:
      case RunStatus::waiting:  // its members may be there now; the trial checks again
        break;
    }
    // Keeps epoch curves (a resumed attempt overwrites or truncates them) and artifact paths
    // (the checkpoint to resume from); clears the previous attempt's outcome.
    s.db.prepare(
          "UPDATE runs SET status = 'running', attempts = attempts + 1, owner_host = ?2, "
          "owner_pid = ?3, heartbeat_at = ?4, started_at = ?4, finished_at = NULL, "
          "fit_seconds = NULL, eval_seconds = NULL, total_seconds = NULL, best_epoch = NULL, "
          "epochs_run = NULL, error = NULL WHERE id = ?1")
        .bind_all(row.id, s.options.owner.host, s.options.owner.pid, utc_now_iso())
        .execute();
    for (const char* table : {"run_metrics", "run_users", "run_user_metrics"})
      s.db.prepare(fmt::format("DELETE FROM {} WHERE run_id = ?1", table)).bind_all(row.id).execute();
    return ClaimResult::claimed;
  });
}

ClaimResult ResultsStore::begin_trial(const TrialSpec& spec, bool retry_failed) {
  register_trials({spec});
  return claim(spec.trial_key, retry_failed);
}

bool ResultsStore::heartbeat(std::string_view trial_key) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    s.db.prepare(
          "UPDATE runs SET heartbeat_at = ?2 WHERE trial_key = ?1 AND status = 'running' "
          "AND owner_host = ?3 AND owner_pid = ?4")
        .bind_all(trial_key, utc_now_iso(), s.options.owner.host, s.options.owner.pid)
        .execute();
    return s.db.changes() == 1;
  });
}

void ResultsStore::finish(std::string_view trial_key, const FinishInfo& info) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] {
    const std::int64_t run_id = s.require_owned(trial_key, "finish");
    s.write_outcome(run_id, info, s.options.owner, 1);
    s.promote_if_staging(run_id);
  });
}

void ResultsStore::State::promote_if_staging(std::int64_t run_id) {
  std::optional<std::int64_t> target;
  {
    auto select = db.prepare("SELECT staging_for FROM runs WHERE id = ?1");
    select.bind_all(run_id);
    if (select.step()) target = select.opt_int64(0);
  }
  if (!target) return;
  for (const char* table :
       {"run_metrics", "epoch_metrics", "run_params", "run_users", "run_user_metrics"}) {
    db.prepare(fmt::format("DELETE FROM {} WHERE run_id = ?1", table)).bind_all(*target).execute();
    db.prepare(fmt::format("UPDATE {} SET run_id = ?1 WHERE run_id = ?2", table))
        .bind_all(*target, run_id)
        .execute();
  }
  db.prepare(
        "UPDATE runs SET (status, attempts, owner_host, owner_pid, heartbeat_at, started_at, "
        "finished_at, fit_seconds, eval_seconds, total_seconds, best_epoch, epochs_run, "
        "checkpoint_path, tensorboard_path, error) = (SELECT status, attempts, owner_host, "
        "owner_pid, heartbeat_at, started_at, finished_at, fit_seconds, eval_seconds, "
        "total_seconds, best_epoch, epochs_run, checkpoint_path, tensorboard_path, error "
        "FROM runs WHERE id = ?2) WHERE id = ?1")
      .bind_all(*target, run_id)
      .execute();
  db.prepare("DELETE FROM runs WHERE id = ?1").bind_all(run_id).execute();
}

Replacement ResultsStore::begin_replacement(std::string_view trial_key) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    const RowState row = s.require_row(trial_key, "replace");
    if (row.status != RunStatus::finished) {
      s.throw_misuse(fmt::format("cannot replace trial '{}': it is '{}', not finished (claim() "
                                 "it instead)",
                                 trial_key, to_string(row.status)));
    }
    std::vector<RowState> staged;
    {
      auto select = s.db.prepare(
          "SELECT id, status, owner_host, owner_pid, "
          "(julianday('now') - julianday(heartbeat_at)) * 86400.0 "
          "FROM runs WHERE staging_for = ?1");
      select.bind_all(row.id);
      while (select.step()) {
        staged.push_back(RowState{select.int64(0), parse_run_status(select.text(1)),
                                  Owner{select.text(2), select.opt_int64(3).value_or(0)},
                                  select.opt_real(4)});
      }
    }
    Replacement out;
    for (const RowState& st : staged) {
      if (st.status == RunStatus::running && st.owner != s.options.owner && !s.owner_gone(st)) {
        out.result = ClaimResult::owned_by_live_worker;
        return out;
      }
    }
    for (const RowState& st : staged)
      s.db.prepare("DELETE FROM runs WHERE id = ?1").bind_all(st.id).execute();
    std::int64_t attempts = 0;
    {
      auto select = s.db.prepare("SELECT attempts FROM runs WHERE id = ?1");
      select.bind_all(row.id);
      if (select.step()) attempts = select.int64(0);
    }
    out.attempt = attempts + 1;
    out.staging_key = fmt::format("{}~attempt-{}", trial_key, out.attempt);
    const std::string now = utc_now_iso();
    s.db.prepare(
          "INSERT INTO runs (trial_key, experiment_id, group_name, model, data_path, "
          "data_fingerprint, protocol, seed, status, attempts, owner_host, owner_pid, "
          "heartbeat_at, started_at, staging_for) "
          "SELECT ?2, experiment_id, group_name, model, data_path, data_fingerprint, protocol, "
          "seed, 'running', ?3, ?4, ?5, ?6, ?6, id FROM runs WHERE id = ?1")
        .bind_all(row.id, out.staging_key, out.attempt, s.options.owner.host,
                  s.options.owner.pid, now)
        .execute();
    const std::int64_t staging_id = s.db.last_insert_rowid();
    s.db.prepare(
          "INSERT INTO run_params (run_id, name, value, type, num_value) "
          "SELECT ?1, name, value, type, num_value FROM run_params WHERE run_id = ?2")
        .bind_all(staging_id, row.id)
        .execute();
    return out;
  });
}

bool ResultsStore::discard_replacement(std::string_view staging_key) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    const auto row = s.row_state(staging_key);
    if (!row) return false;
    if (row->status == RunStatus::running && row->owner != s.options.owner && !s.owner_gone(*row))
      return false;
    s.db.prepare("DELETE FROM runs WHERE id = ?1 AND staging_for IS NOT NULL")
        .bind_all(row->id)
        .execute();
    return s.db.changes() == 1;
  });
}

bool ResultsStore::fail(std::string_view trial_key, std::string_view error, RunStatus status) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  if (status != RunStatus::failed && status != RunStatus::interrupted &&
      status != RunStatus::waiting) {
    s.throw_misuse(fmt::format("fail() of trial '{}' was given status '{}'; only 'failed', "
                               "'interrupted' or 'waiting' end a trial without a result",
                               trial_key, to_string(status)));
  }
  return s.end_attempt(trial_key, status, error, /*only_if_running=*/
                       status == RunStatus::interrupted);
}

bool ResultsStore::mark_interrupted(std::string_view trial_key, std::string_view reason) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.end_attempt(trial_key, RunStatus::interrupted, reason, /*only_if_running=*/true);
}

std::size_t ResultsStore::reap_dead_owners() {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    std::vector<std::pair<std::int64_t, std::string>> gone;
    {
      auto select = s.db.prepare(
          "SELECT id, owner_host, owner_pid, "
          "(julianday('now') - julianday(heartbeat_at)) * 86400.0 "
          "FROM runs WHERE status = 'running'");
      while (select.step()) {
        RowState row{select.int64(0), RunStatus::running,
                     Owner{select.text(1), select.opt_int64(2).value_or(0)},
                     select.opt_real(3)};
        if (auto why = s.owner_gone(row)) gone.emplace_back(row.id, std::move(*why));
      }
    }
    const std::string now = utc_now_iso();
    auto update = s.db.prepare(
        "UPDATE runs SET status = 'interrupted', error = ?2, finished_at = ?3 WHERE id = ?1");
    for (const auto& [id, why] : gone) update.reset().bind_all(id, why, now).execute();
    return gone.size();
  });
}

bool ResultsStore::reset_trial(std::string_view trial_key) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    const RowState row = s.require_row(trial_key, "reset");
    if (row.status == RunStatus::running && !s.owner_gone(row)) return false;
    s.db.prepare(
          "UPDATE runs SET status = 'pending', owner_host = NULL, owner_pid = NULL, "
          "heartbeat_at = NULL, started_at = NULL, finished_at = NULL, fit_seconds = NULL, "
          "eval_seconds = NULL, total_seconds = NULL, best_epoch = NULL, epochs_run = NULL, "
          "checkpoint_path = NULL, tensorboard_path = NULL, error = NULL WHERE id = ?1")
        .bind_all(row.id)
        .execute();
    for (const char* table : {"run_metrics", "run_users", "run_user_metrics"})
      s.db.prepare(fmt::format("DELETE FROM {} WHERE run_id = ?1", table)).bind_all(row.id).execute();
    s.db.prepare("DELETE FROM epoch_metrics WHERE run_id = ?1").bind_all(row.id).execute();
    return true;
  });
}

}  // namespace recrun::results
