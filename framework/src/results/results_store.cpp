// The results store's schema, its writes of trials, epoch curves and outcomes, and its reads.
// Who may change a run row (the trial lease) is decided in lease.cpp.
#include "results/results_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <charconv>
#include <ctime>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "results/schema.hpp"
#include "results/sqlite_db.hpp"
#include "results/store_state.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::results {

using detail::RowState;

// ------------------------------------------------------------------------------ enum <-> text

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::pending: return "pending";
    case RunStatus::running: return "running";
    case RunStatus::finished: return "finished";
    case RunStatus::failed: return "failed";
    case RunStatus::interrupted: return "interrupted";
    case RunStatus::pruned: return "pruned";
    case RunStatus::waiting: return "waiting";
  }
  return "?";
}

RunStatus parse_run_status(std::string_view text) {
  for (auto status : {RunStatus::pending, RunStatus::running, RunStatus::finished,
                      RunStatus::failed, RunStatus::interrupted, RunStatus::pruned,
                      RunStatus::waiting}) {
    if (to_string(status) == text) return status;
  }
  throw std::invalid_argument(fmt::format(
      "unknown run status '{}' (expected pending, running, finished, failed, interrupted, "
      "pruned or waiting)",
      text));
}

std::string_view to_string(SplitName split) {
  switch (split) {
    case SplitName::train: return "train";
    case SplitName::valid: return "valid";
    case SplitName::test: return "test";
  }
  return "?";
}

SplitName parse_split_name(std::string_view text) {
  for (auto split : {SplitName::train, SplitName::valid, SplitName::test}) {
    if (to_string(split) == text) return split;
  }
  throw std::invalid_argument(
      fmt::format("unknown split '{}' (expected train, valid or test)", text));
}

std::string_view stored_type_name(ParamType type) {
  // The SDK's names, except that every list is stored as 'list' (a JSON array; the schema's
  // CHECK constraint knows no other).
  if (type == ParamType::real_list) return "list";
  return type_name(type);
}

ParamType parse_stored_type(std::string_view text) {
  for (auto type : {ParamType::integer, ParamType::real, ParamType::boolean, ParamType::string,
                    ParamType::string_list}) {
    if (stored_type_name(type) == text) return type;
  }
  throw std::invalid_argument(fmt::format(
      "unknown parameter type '{}' (expected int, float, bool, string or list)", text));
}

// -------------------------------------------------------------------------------- value types

Param Param::of_int(std::string name, std::int64_t value) {
  return {std::move(name), fmt::format("{}", value), ParamType::integer,
          static_cast<double>(value)};
}

Param Param::of_float(std::string name, double value) {
  // {} is the shortest text that reads back as the same double.
  return {std::move(name), fmt::format("{}", value), ParamType::real, value};
}

Param Param::of_bool(std::string name, bool value) {
  return {std::move(name), value ? "true" : "false", ParamType::boolean, value ? 1.0 : 0.0};
}

Param Param::of_string(std::string name, std::string value) {
  return {std::move(name), std::move(value), ParamType::string, std::nullopt};
}

Param Param::of_list(std::string name, std::string json) {
  return {std::move(name), std::move(json), ParamType::string_list, std::nullopt};
}

// ------------------------------------------------------------------------------------ helpers

namespace detail {

// Same format as the schema's strftime('%Y-%m-%dT%H:%M:%fZ', 'now') defaults.
std::string utc_now_iso() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     ms.count() % 1000);
}

}  // namespace detail

namespace {

using detail::utc_now_iso;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double nan_if_null(const Statement& stmt, int column) {
  return stmt.is_null(column) ? std::numeric_limits<double>::quiet_NaN() : stmt.real(column);
}

// {0}: the experiment id, name and group columns (the run's first experiment, or the one a
// listing of an experiment reads it through).
constexpr std::string_view kRunColumns =
    "r.id, r.trial_key, {0}, r.model, r.data_path, "
    "r.data_fingerprint, r.protocol, r.seed, r.status, r.attempts, r.owner_host, r.owner_pid, "
    "r.heartbeat_at, r.created_at, r.started_at, r.finished_at, r.fit_seconds, "
    "r.eval_seconds, r.total_seconds, r.best_epoch, r.epochs_run, r.checkpoint_path, "
    "r.tensorboard_path, r.error";

RunRow read_run_row(const Statement& s) {
  RunRow row;
  row.id = s.int64(0);
  row.trial_key = s.text(1);
  row.experiment_id = s.opt_int64(2);
  row.experiment = s.text(3);
  row.group_name = s.text(4);
  row.model = s.text(5);
  row.data_path = s.text(6);
  row.data_fingerprint = s.text(7);
  row.protocol_json = s.text(8);
  row.seed = s.int64(9);
  row.status = parse_run_status(s.text(10));
  row.attempts = s.int64(11);
  row.owner_host = s.text(12);
  row.owner_pid = s.opt_int64(13);
  row.heartbeat_at = s.text(14);
  row.created_at = s.text(15);
  row.started_at = s.text(16);
  row.finished_at = s.text(17);
  row.fit_seconds = s.opt_real(18);
  row.eval_seconds = s.opt_real(19);
  row.total_seconds = s.opt_real(20);
  row.best_epoch = s.opt_int64(21);
  row.epochs_run = s.opt_int64(22);
  row.checkpoint_path = s.text(23);
  row.tensorboard_path = s.text(24);
  row.error = s.text(25);
  return row;
}

}  // namespace

// -------------------------------------------------------------------------------------- State

namespace {

// The connection a store's options ask for: read-only (immutable where nobody can write the
// directory or the file, e.g. a read-only mount), or read-write.
Database open_database(const std::filesystem::path& path, const StoreOptions& o) {
  if (!o.read_only) return Database(path, o.busy_timeout, o.create);
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const bool writable =
      ::access(dir.c_str(), W_OK | X_OK) == 0 && ::access(path.c_str(), W_OK) == 0;
  return Database(path, o.busy_timeout, Database::ReadOnly{.immutable = !writable});
}

}  // namespace

ResultsStore::State::State(const std::filesystem::path& path, StoreOptions opts)
    : options(std::move(opts)),
      db(open_database(path, options)),
      local_host(Owner::current().host) {}

void ResultsStore::State::throw_misuse(std::string message) const {
  throw StoreError(std::move(message), db.path());
}

namespace {

// Tables of a database that recrun never stamped (user_version 0): another program's file.
// The stamp and the tables are read by one statement, so from one snapshot: read apart, a
// process that is creating recrun's schema right now (a data-parallel run's ranks, two sweeps
// starting together) can commit between the two reads, and its fresh tables looked foreign.
std::string foreign_tables(Database& db) {
  auto stmt = db.prepare(
      "SELECT CASE WHEN (SELECT user_version FROM pragma_user_version) = 0 THEN "
      "(SELECT group_concat(name, ', ') FROM (SELECT name FROM sqlite_master WHERE type = 'table' "
      "ORDER BY name LIMIT 8)) END");
  return stmt.step() && !stmt.is_null(0) ? stmt.text(0) : std::string();
}

}  // namespace

void ResultsStore::State::refuse_foreign() {
  const std::string tables = foreign_tables(db);
  if (!tables.empty())
    throw_misuse(fmt::format(
        "this is not a recrun results database: it is an SQLite file of another program (its "
        "tables: {}) that recrun never wrote; move it away, or pass another --results directory",
        tables));
}

void ResultsStore::State::open() {
  if (options.read_only) {
    // Nothing to switch or create: the schema must already be this recrun's.
    const int version = schema_version();
    if (version == 0) refuse_foreign();
    if (version != kSchemaVersion)
      throw_misuse(fmt::format(
          "the database has schema version {} but this recrun reads version {}; {}", version,
          kSchemaVersion,
          version > kSchemaVersion ? "use a newer recrun"
                                   : "open it once with a command that writes (e.g. recrun sweep "
                                     "or recrun run, where the directory is writable) to upgrade "
                                     "it, or use the recrun that wrote it"));
    return;
  }
  // Before the first access that touches WAL: SQLite then keeps the WAL index in heap memory
  // instead of a shared -shm mapping (see StoreOptions::exclusive).
  if (options.exclusive) db.exec("PRAGMA locking_mode = EXCLUSIVE");
  // Another program's database is neither switched to WAL nor given recrun's tables.
  if (schema_version() == 0) refuse_foreign();
  const std::string mode = retry_while_busy(db, [&] {
    auto stmt = db.prepare("PRAGMA journal_mode = WAL");
    return stmt.step() ? stmt.text(0) : std::string();
  });
  if (mode != "wal") {
    throw_misuse(fmt::format(
        "SQLite could not switch the database to WAL journal mode (it reports '{}'); WAL needs "
        "shared memory, which network file systems lack: keep the database on a local disk",
        mode));
  }
  db.exec(options.durable_commits ? "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                                  : "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");

  if (schema_version() == kSchemaVersion) return;
  // Re-read under the write lock: another process may be creating the schema right now.
  db.write_transaction([&] {
    const int version = schema_version();
    if (version == 0) {
      refuse_foreign();
      db.exec(schema_sql());
      db.exec(views_sql({}));
      db.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
      return;
    }
    if (version > kSchemaVersion) {
      throw_misuse(fmt::format(
          "the database has schema version {} but this recrun understands up to {}; "
          "use a newer recrun or another results file",
          version, kSchemaVersion));
    }
    // Migrations, one step at a time, in the same transaction.
    if (version == 1) {
      // 1 -> 2: hidden replacement attempts (runs.staging_for); the views leave them out.
      db.exec(drop_views_sql());
      db.exec("ALTER TABLE runs ADD COLUMN staging_for INTEGER REFERENCES runs(id) "
              "ON DELETE CASCADE");
      db.exec("PRAGMA user_version = 2");
    }
    if (schema_version() == 2) {
      // 2 -> 3: per-user metrics (run_users, run_user_metrics; runs finished before have none)
      // and the metric columns of the views, from every metric already stored.
      db.exec(drop_views_sql());
      db.exec(schema_sql());  // CREATE ... IF NOT EXISTS: only the new tables are created
      db.exec("INSERT OR IGNORE INTO metric_columns (split, name) "
              "SELECT DISTINCT split, name FROM run_metrics");
      rebuild_views();
      db.exec("PRAGMA user_version = 3");
    }
    if (schema_version() == 3) migrate_3_to_4();
    if (schema_version() == 4) {
      // 4 -> 5: membership (run_groups). Until now a run belonged to the experiment and group
      // that registered it first; that is where it starts.
      db.exec(drop_views_sql());
      add_run_status("pruned", "waiting");
      db.exec(schema_sql());  // CREATE ... IF NOT EXISTS: only run_groups is new
      db.exec("INSERT OR IGNORE INTO run_groups (run_id, experiment_id, group_name) "
              "SELECT id, experiment_id, group_name FROM runs "
              "WHERE experiment_id IS NOT NULL AND staging_for IS NULL");
      rebuild_views();
      db.exec("PRAGMA user_version = 5");
    }
  });
}

// 3 -> 4: the status 'pruned' and the search tables. SQLite cannot alter a CHECK constraint;
// adding an allowed value changes no stored row, so the table's recorded SQL is edited in place
// (writable_schema, with the schema cookie bumped so that every connection reloads it), as
// SQLite's ALTER TABLE page describes for changes that leave the stored content valid.
void ResultsStore::State::migrate_3_to_4() {
  db.exec(drop_views_sql());
  add_run_status("interrupted", "pruned");
  db.exec(schema_sql());  // CREATE ... IF NOT EXISTS: only the search tables are new
  rebuild_views();
  db.exec("PRAGMA user_version = 4");
}

// The runs.status CHECK constraint's list gets `added` after `last`, its last value so far.
void ResultsStore::State::add_run_status(std::string_view last, std::string_view added) {
  std::int64_t cookie = 0;
  {
    auto stmt = db.prepare("PRAGMA schema_version");
    if (stmt.step()) cookie = stmt.int64(0);
  }
  db.exec("PRAGMA writable_schema = ON");
  db.prepare("UPDATE sqlite_master SET sql = replace(sql, ?1, ?2) "
             "WHERE type = 'table' AND name = 'runs'")
      .bind_all(fmt::format("'{}')", last), fmt::format("'{}', '{}')", last, added))
      .execute();
  db.exec(fmt::format("PRAGMA schema_version = {}", cookie + 1));
  db.exec("PRAGMA writable_schema = OFF");
}

void ResultsStore::State::rebuild_views() {
  std::vector<MetricColumn> present;
  auto select = db.prepare("SELECT split, name FROM metric_columns ORDER BY split, name");
  while (select.step()) present.push_back(MetricColumn{select.text(0), select.text(1)});
  db.exec(drop_views_sql());
  db.exec(views_sql(present));
}

int ResultsStore::State::schema_version() {
  return retry_while_busy(db, [&] {
    auto stmt = db.prepare("PRAGMA user_version");
    return stmt.step() ? static_cast<int>(stmt.int64(0)) : 0;
  });
}

std::optional<double> ResultsStore::State::numeric_value(const Param& param,
                                                         std::string_view trial_key) const {
  if (param.num_value || param.type == ParamType::string || param.type == ParamType::string_list) {
    return param.num_value;
  }
  if (param.type == ParamType::boolean) {
    if (param.value == "true" || param.value == "1") return 1.0;
    if (param.value == "false" || param.value == "0") return 0.0;
  } else {
    double number = 0;
    const char* first = param.value.data();
    const char* last = first + param.value.size();
    const auto [end, ec] = std::from_chars(first, last, number);
    if (ec == std::errc() && end == last) return number;
  }
  throw_misuse(fmt::format("parameter '{}' of trial '{}' is declared {} but its value '{}' is "
                           "not one; pass the canonical text (e.g. 12, 0.5, true)",
                           param.name, trial_key, stored_type_name(param.type), param.value));
}

void ResultsStore::State::validate(const TrialSpec& spec) const {
  if (spec.trial_key.empty()) throw_misuse("a trial has an empty trial_key");
  if (spec.model.empty()) {
    throw_misuse(fmt::format("trial '{}' has an empty model name", spec.trial_key));
  }
}

// Inserts the run (and its params) if its key is new; returns whether it did.
bool ResultsStore::State::insert_if_missing(const TrialSpec& spec, Statement& insert_run,
                                            Statement& insert_param) {
  insert_run.reset()
      .bind_all(spec.trial_key, spec.experiment_id, spec.group_name, spec.model,
                spec.data_path, spec.data_fingerprint,
                spec.protocol_json.empty() ? std::string_view("{}") : spec.protocol_json,
                spec.seed)
      .execute();
  const bool inserted = db.changes() > 0;
  const std::int64_t run_id = inserted ? db.last_insert_rowid() : 0;
  if (spec.experiment_id) {
    db.prepare(
          "INSERT OR IGNORE INTO run_groups (run_id, experiment_id, group_name) "
          "SELECT id, ?2, ?3 FROM runs WHERE trial_key = ?1 AND staging_for IS NULL")
        .bind_all(spec.trial_key, *spec.experiment_id, spec.group_name)
        .execute();
  }
  if (!inserted) return false;
  for (const Param& param : spec.params) {
    insert_param.reset()
        .bind_all(run_id, param.name, param.value, stored_type_name(param.type),
                  numeric_value(param, spec.trial_key))
        .execute();
  }
  return true;
}

Statement ResultsStore::State::prepare_insert_run() {
  return db.prepare(
      "INSERT INTO runs (trial_key, experiment_id, group_name, model, data_path, "
      "data_fingerprint, protocol, seed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT (trial_key) DO NOTHING");
}

Statement ResultsStore::State::prepare_insert_param() {
  return db.prepare(
      "INSERT INTO run_params (run_id, name, value, type, num_value) "
      "VALUES (?1, ?2, ?3, ?4, ?5)");
}

void ResultsStore::State::write_outcome(std::int64_t run_id, const FinishInfo& info,
                                        const Owner& owner, std::int64_t min_attempts) {
  const std::string now = utc_now_iso();
  db.prepare(
        "UPDATE runs SET status = ?13, owner_host = ?2, owner_pid = ?3, "
        "heartbeat_at = ?4, started_at = COALESCE(started_at, ?4), finished_at = ?4, "
        "attempts = MAX(attempts, ?5), fit_seconds = ?6, eval_seconds = ?7, "
        "total_seconds = ?8, best_epoch = ?9, epochs_run = ?10, "
        "checkpoint_path = NULLIF(?11, ''), "
        "tensorboard_path = COALESCE(NULLIF(?12, ''), tensorboard_path), error = NULL "
        "WHERE id = ?1")
      .bind_all(run_id, owner.host, owner.pid, now, min_attempts, info.fit_seconds,
                info.eval_seconds, info.total_seconds, info.best_epoch, info.epochs_run,
                info.checkpoint_path, info.tensorboard_path,
                info.pruned ? std::string_view("pruned") : std::string_view("finished"))
      .execute();
  db.prepare("DELETE FROM run_metrics WHERE run_id = ?1").bind_all(run_id).execute();
  auto insert = db.prepare(
      "INSERT INTO run_metrics (run_id, split, name, value) VALUES (?1, ?2, ?3, ?4)");
  for (const auto& [split, metrics] :
       {std::pair{SplitName::valid, &info.valid_metrics},
        std::pair{SplitName::test, &info.test_metrics}}) {
    for (const Metric& metric : *metrics) {
      insert.reset().bind_all(run_id, to_string(split), metric.name, metric.value).execute();
    }
  }
  // A metric no run reported before becomes a column of v_runs and v_best_per_model.
  bool new_column = false;
  auto column = db.prepare("INSERT OR IGNORE INTO metric_columns (split, name) VALUES (?1, ?2)");
  for (const auto& [split, metrics] :
       {std::pair{SplitName::valid, &info.valid_metrics},
        std::pair{SplitName::test, &info.test_metrics}}) {
    for (const Metric& metric : *metrics) {
      column.reset().bind_all(to_string(split), metric.name).execute();
      new_column |= db.changes() > 0;
    }
  }
  if (new_column) rebuild_views();
  write_user_metrics(run_id, info);
}

namespace {

// Little-endian bytes of each value, whatever the host's byte order.
template <class T, class U>
std::vector<std::byte> little_endian(const std::vector<U>& values) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  std::vector<std::byte> out(values.size() * sizeof(T));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const T v = static_cast<T>(values[i]);
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits;
    std::memcpy(&bits, &v, sizeof(T));
    for (std::size_t b = 0; b < sizeof(T); ++b)
      out[i * sizeof(T) + b] = static_cast<std::byte>((bits >> (8 * b)) & 0xff);
  }
  return out;
}

template <class T>
std::vector<T> from_little_endian(const std::vector<std::byte>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits = 0;
    for (std::size_t b = 0; b < sizeof(T); ++b)
      bits |= static_cast<decltype(bits)>(std::to_integer<unsigned>(bytes[i * sizeof(T) + b]))
              << (8 * b);
    std::memcpy(&out[i], &bits, sizeof(T));
  }
  return out;
}

}  // namespace

void ResultsStore::State::write_user_metrics(std::int64_t run_id, const FinishInfo& info) {
  db.prepare("DELETE FROM run_users WHERE run_id = ?1").bind_all(run_id).execute();
  db.prepare("DELETE FROM run_user_metrics WHERE run_id = ?1").bind_all(run_id).execute();
  if (info.users.empty() && info.valid_user_metrics.empty() && info.test_user_metrics.empty())
    return;
  for (std::size_t i = 1; i < info.users.size(); ++i)
    if (info.users[i] <= info.users[i - 1])
      throw_misuse(fmt::format("per-user metrics of run {}: user ids must be strictly "
                               "ascending, but {} follows {}",
                               run_id, info.users[i], info.users[i - 1]));
  db.prepare("INSERT INTO run_users (run_id, count, user_ids) VALUES (?1, ?2, ?3)")
      .bind_all(run_id, static_cast<std::int64_t>(info.users.size()))
      .bind_blob(3, little_endian<std::int64_t>(info.users))
      .execute();
  auto insert = db.prepare(
      "INSERT INTO run_user_metrics (run_id, split, name, value) VALUES (?1, ?2, ?3, ?4)");
  for (const auto& [split, metrics] :
       {std::pair{SplitName::valid, &info.valid_user_metrics},
        std::pair{SplitName::test, &info.test_user_metrics}}) {
    for (const UserMetric& m : *metrics) {
      if (m.values.size() != info.users.size())
        throw_misuse(fmt::format("per-user {} metric '{}' of run {} has {} values for {} users",
                                 to_string(split), m.name, run_id, m.values.size(),
                                 info.users.size()));
      insert.reset()
          .bind_all(run_id, to_string(split), m.name)
          .bind_blob(4, little_endian<float>(m.values))
          .execute();
    }
  }
}

void ResultsStore::State::upsert_epoch(Statement& upsert, std::int64_t run_id,
                                       std::int64_t epoch, SplitName split,
                                       const std::vector<Metric>& metrics, double wall_time,
                                       std::string_view trial_key) {
  if (split == SplitName::test) {
    throw_misuse(fmt::format("cannot log epoch {} of trial '{}' on the test split: per-epoch "
                             "metrics are train or valid; test metrics go to finish()",
                             epoch, trial_key));
  }
  if (epoch < 0) {
    throw_misuse(fmt::format("cannot log epoch {} of trial '{}': epochs are >= 0", epoch,
                             trial_key));
  }
  for (const Metric& metric : metrics) {
    upsert.reset()
        .bind_all(run_id, epoch, to_string(split), metric.name, metric.value, wall_time)
        .execute();
  }
}

Statement ResultsStore::State::prepare_upsert_epoch() {
  return db.prepare(
      "INSERT INTO epoch_metrics (run_id, epoch, split, name, value, wall_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (run_id, epoch, split, name) "
      "DO UPDATE SET value = excluded.value, wall_time = excluded.wall_time");
}

std::vector<RunRow> ResultsStore::State::load_runs(std::string_view filter,
                                                   std::optional<std::string_view> arg,
                                                   bool member_of_arg) {
  // Either each run once, with the experiment that registered it first, or (member_of_arg)
  // the runs that belong to the experiment named ?1, read through that membership.
  const std::string from =
      member_of_arg
          ? fmt::format("runs AS r JOIN ({}) AS m ON m.run_id = r.id AND m.experiment = ?1 "
                        "JOIN experiments AS e ON e.id = m.experiment_id",
                        memberships_sql())
          : std::string("runs AS r LEFT JOIN experiments AS e ON e.id = r.experiment_id");
  const std::string_view which = member_of_arg ? "m.experiment_id, e.name, m.group_name"
                                               : "r.experiment_id, e.name, r.group_name";
  const std::string selected = fmt::format("SELECT r.id FROM {} WHERE {}", from, filter);
  return db.read_transaction([&] {
    std::vector<RunRow> rows;
    std::unordered_map<std::int64_t, std::size_t> index_of;
    auto select = db.prepare(fmt::format("SELECT {} FROM {} WHERE {} ORDER BY r.id",
                                         fmt::format(fmt::runtime(kRunColumns), which), from,
                                         filter));
    select.bind_all(arg);
    while (select.step()) {
      rows.push_back(read_run_row(select));
      index_of.emplace(rows.back().id, rows.size() - 1);
    }
    if (rows.empty()) return rows;

    auto params = db.prepare(fmt::format(
        "SELECT p.run_id, p.name, p.value, p.type, p.num_value FROM run_params AS p "
        "WHERE p.run_id IN ({}) ORDER BY p.run_id, p.name",
        selected));
    params.bind_all(arg);
    while (params.step()) {
      rows[index_of.at(params.int64(0))].params.push_back(
          Param{params.text(1), params.text(2), parse_stored_type(params.text(3)),
                params.opt_real(4)});
    }

    auto metrics = db.prepare(fmt::format(
        "SELECT m.run_id, m.split, m.name, m.value FROM run_metrics AS m "
        "WHERE m.run_id IN ({}) ORDER BY m.run_id, m.split, m.name",
        selected));
    metrics.bind_all(arg);
    while (metrics.step()) {
      RunRow& row = rows[index_of.at(metrics.int64(0))];
      auto& target = parse_split_name(metrics.text(1)) == SplitName::test ? row.test_metrics
                                                                 : row.valid_metrics;
      target.push_back(Metric{metrics.text(2), nan_if_null(metrics, 3)});
    }

    auto groups = db.prepare(fmt::format(
        "SELECT g.run_id, g.experiment_id, x.name, g.group_name FROM run_groups AS g "
        "JOIN experiments AS x ON x.id = g.experiment_id "
        "WHERE g.run_id IN ({}) ORDER BY g.run_id, g.experiment_id, g.group_name",
        selected));
    groups.bind_all(arg);
    while (groups.step()) {
      rows[index_of.at(groups.int64(0))].memberships.push_back(
          Membership{groups.int64(1), groups.text(2), groups.text(3)});
    }
    return rows;
  });
}

const Membership* RunRow::membership(std::string_view name) const {
  const Membership* found = nullptr;
  for (const auto& m : memberships)
    if (m.experiment == name) found = &m;  // ordered by id: the newest version last
  return found;
}

// ------------------------------------------------------------------------------- ResultsStore

ResultsStore::ResultsStore(std::filesystem::path db_path, StoreOptions options) {
  if (options.create && db_path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    if (ec) {
      throw StoreError(fmt::format("cannot create the directory {}: {}",
                                   db_path.parent_path().string(), ec.message()),
                       db_path);
    }
  }
  // What SQLite would only report as "unable to open database file", said with path and fix.
  std::error_code ec;
  if (options.read_only) {
    const auto st = std::filesystem::status(db_path, ec);
    if (!std::filesystem::is_regular_file(st))
      throw StoreError(fmt::format("{} is {}, not a results database; pass the --results "
                                   "directory that holds one",
                                   db_path.string(),
                                   std::filesystem::exists(st) ? util::file_kind(st.type())
                                                               : "missing"),
                       db_path);
    state_ = std::make_unique<State>(db_path, std::move(options));
    state_->open();
    return;
  }
  if (std::filesystem::is_directory(db_path, ec)) {
    throw StoreError(fmt::format("{} is a directory, not a results database: remove or rename "
                                 "it, or pass another --results directory",
                                 db_path.string()),
                     db_path);
  }
  if (const auto st = std::filesystem::status(db_path, ec);
      std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    throw StoreError(fmt::format("{} is {}, not a results database (a regular file): move it "
                                 "away, or pass another --results directory",
                                 db_path.string(), util::file_kind(st.type())),
                     db_path);
  }
  const std::filesystem::path dir =
      db_path.has_parent_path() ? db_path.parent_path() : std::filesystem::path(".");
  // WAL mode creates results.db-wal and results.db-shm beside the file, so the directory itself
  // must be writable, even when results.db already exists and is.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw StoreError(fmt::format("the results directory {} is not writable ({}): results.db and "
                                 "its -wal/-shm files are written there; make it writable "
                                 "(chmod u+w {}) or pass another --results directory",
                                 dir.string(), std::strerror(errno), dir.string()),
                     db_path);
  }
  if (!options.create && !std::filesystem::is_regular_file(db_path, ec)) {
    throw StoreError(fmt::format("{} does not exist (or is not a regular file)",
                                 db_path.string()),
                     db_path);
  }
  if (std::filesystem::exists(db_path, ec) && ::access(db_path.c_str(), R_OK | W_OK) != 0) {
    throw StoreError(fmt::format("{} is not writable ({}): make it writable (chmod u+w {}) or "
                                 "pass another --results directory",
                                 db_path.string(), std::strerror(errno), db_path.string()),
                     db_path);
  }
  state_ = std::make_unique<State>(db_path, std::move(options));
  state_->open();
}

ResultsStore::~ResultsStore() = default;
ResultsStore::ResultsStore(ResultsStore&&) noexcept = default;
ResultsStore& ResultsStore::operator=(ResultsStore&&) noexcept = default;

const std::filesystem::path& ResultsStore::path() const { return state_->db.path(); }

const StoreOptions& ResultsStore::options() const { return state_->options; }

std::int64_t ResultsStore::upsert_experiment(std::string_view name, std::string_view toml_text,
                                             std::string_view hash) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  if (name.empty()) s.throw_misuse("an experiment needs a non-empty name");
  return s.db.write_transaction([&] {
    s.db.prepare(
          "INSERT INTO experiments (name, hash, toml_text) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (name, hash) DO NOTHING")
        .bind_all(name, hash, toml_text)
        .execute();
    auto select = s.db.prepare("SELECT id FROM experiments WHERE name = ?1 AND hash = ?2");
    select.bind_all(name, hash);
    if (!select.step()) s.throw_misuse("experiment row vanished right after its insert");
    return select.int64(0);
  });
}

std::size_t ResultsStore::register_trials(const std::vector<TrialSpec>& trials) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  for (const TrialSpec& spec : trials) s.validate(spec);
  return s.db.write_transaction([&] {
    auto insert_run = s.prepare_insert_run();
    auto insert_param = s.prepare_insert_param();
    std::size_t inserted = 0;
    for (const TrialSpec& spec : trials) {
      if (s.insert_if_missing(spec, insert_run, insert_param)) ++inserted;
    }
    return inserted;
  });
}

void ResultsStore::log_epoch(std::string_view trial_key, std::int64_t epoch, SplitName split,
                             const std::vector<Metric>& metrics) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] {
    const std::int64_t run_id = s.require_owned(trial_key, "log epoch metrics for");
    auto upsert = s.prepare_upsert_epoch();
    s.upsert_epoch(upsert, run_id, epoch, split, metrics, unix_now(), trial_key);
    s.db.prepare("UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1")
        .bind_all(run_id, utc_now_iso())
        .execute();
  });
}

void ResultsStore::truncate_epochs(std::string_view trial_key, std::int64_t last_kept_epoch) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] {
    const std::int64_t run_id = s.require_owned(trial_key, "truncate epoch metrics of");
    s.db.prepare("DELETE FROM epoch_metrics WHERE run_id = ?1 AND epoch > ?2")
        .bind_all(run_id, last_kept_epoch)
        .execute();
  });
}

void ResultsStore::set_artifact_paths(std::string_view trial_key,
                                      std::string_view checkpoint_path,
                                      std::string_view tensorboard_path) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] {
    const std::int64_t run_id = s.require_owned(trial_key, "set artifact paths of");
    s.db.prepare(
          "UPDATE runs SET checkpoint_path = COALESCE(NULLIF(?2, ''), checkpoint_path), "
          "tensorboard_path = COALESCE(NULLIF(?3, ''), tensorboard_path) WHERE id = ?1")
        .bind_all(run_id, checkpoint_path, tensorboard_path)
        .execute();
  });
}

bool ResultsStore::record_run(const CompletedRun& run) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  s.validate(run.spec);
  return s.db.write_transaction([&] {
    auto insert_run = s.prepare_insert_run();
    auto insert_param = s.prepare_insert_param();
    s.insert_if_missing(run.spec, insert_run, insert_param);
    const RowState row = s.require_row(run.spec.trial_key, "record");
    if (row.status == RunStatus::finished || row.status == RunStatus::pruned) return false;
    if (row.status == RunStatus::running && row.owner != s.options.owner && !s.owner_gone(row)) {
      return false;
    }
    s.write_outcome(row.id, run.finish, run.owner.value_or(s.options.owner),
                    std::max<std::int64_t>(run.attempts, 1));
    s.db.prepare("DELETE FROM epoch_metrics WHERE run_id = ?1").bind_all(row.id).execute();
    auto upsert = s.prepare_upsert_epoch();
    const double now = unix_now();
    for (const EpochRecord& record : run.epochs) {
      s.upsert_epoch(upsert, row.id, record.epoch, record.split, record.metrics,
                     record.wall_time.value_or(now), run.spec.trial_key);
    }
    return true;
  });
}

std::optional<RunRow> ResultsStore::find(std::string_view trial_key) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  auto rows = s.load_runs("r.trial_key = ?1", trial_key, false);
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

std::vector<RunRow> ResultsStore::runs(std::optional<std::string_view> experiment) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  if (experiment) return s.load_runs("r.staging_for IS NULL", experiment, true);
  return s.load_runs("r.staging_for IS NULL AND ?1 IS NULL", std::nullopt, false);
}

std::vector<EpochMetric> ResultsStore::epoch_metrics(std::string_view trial_key) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  auto select = s.db.prepare(
      "SELECT m.epoch, m.split, m.name, m.value, m.wall_time FROM epoch_metrics AS m "
      "JOIN runs AS r ON r.id = m.run_id WHERE r.trial_key = ?1 "
      "ORDER BY m.epoch, m.split, m.name");
  select.bind_all(trial_key);
  std::vector<EpochMetric> out;
  while (select.step()) {
    out.push_back(EpochMetric{select.int64(0), parse_split_name(select.text(1)), select.text(2),
                              nan_if_null(select, 3), select.real(4)});
  }
  return out;
}

std::optional<UserMetrics> ResultsStore::user_metrics(std::string_view trial_key) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  return s.db.read_transaction([&]() -> std::optional<UserMetrics> {
    auto users = s.db.prepare(
        "SELECT u.count, u.user_ids FROM run_users AS u JOIN runs AS r ON r.id = u.run_id "
        "WHERE r.trial_key = ?1");
    users.bind_all(trial_key);
    if (!users.step()) return std::nullopt;
    UserMetrics out;
    const auto bytes = users.blob(1);
    if (bytes.size() != 8 * static_cast<std::size_t>(users.int64(0)))
      s.throw_misuse(fmt::format("run_users of trial '{}' holds {} bytes for {} users", trial_key,
                                 bytes.size(), users.int64(0)));
    out.users = from_little_endian<std::int64_t>(bytes);
    auto metrics = s.db.prepare(
        "SELECT m.split, m.name, m.value FROM run_user_metrics AS m "
        "JOIN runs AS r ON r.id = m.run_id WHERE r.trial_key = ?1 ORDER BY m.split, m.name");
    metrics.bind_all(trial_key);
    while (metrics.step()) {
      const auto value = metrics.blob(2);
      if (value.size() != 4 * out.users.size())
        s.throw_misuse(fmt::format("run_user_metrics {} '{}' of trial '{}' holds {} bytes for {} "
                                   "users (float32: {} expected)",
                                   metrics.text(0), metrics.text(1), trial_key, value.size(),
                                   out.users.size(), 4 * out.users.size()));
      auto& target = parse_split_name(metrics.text(0)) == SplitName::test ? out.test : out.valid;
      target.push_back(UserMetric{metrics.text(1), from_little_endian<float>(value)});
    }
    return out;
  });
}

std::vector<ExperimentRow> ResultsStore::experiments(std::optional<std::string_view> name) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  auto select = s.db.prepare(
      "SELECT id, name, hash, toml_text, created_at FROM experiments "
      "WHERE ?1 IS NULL OR name = ?1 ORDER BY id");
  select.bind_all(name);
  std::vector<ExperimentRow> out;
  while (select.step())
    out.push_back(ExperimentRow{select.int64(0), select.text(1), select.text(2), select.text(3),
                                select.text(4)});
  return out;
}

StatusCounts ResultsStore::status_counts(std::optional<std::string_view> experiment) const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  auto select = s.db.prepare(
      "SELECT r.status, COUNT(*) FROM runs AS r "
      "WHERE r.staging_for IS NULL AND (?1 IS NULL OR EXISTS (SELECT 1 FROM run_groups AS g "
      "JOIN experiments AS x ON x.id = g.experiment_id WHERE g.run_id = r.id AND x.name = ?1)) "
      "GROUP BY r.status");
  select.bind_all(experiment);
  StatusCounts counts;
  while (select.step()) {
    const std::int64_t n = select.int64(1);
    switch (parse_run_status(select.text(0))) {
      case RunStatus::pending: counts.pending = n; break;
      case RunStatus::running: counts.running = n; break;
      case RunStatus::finished: counts.finished = n; break;
      case RunStatus::failed: counts.failed = n; break;
      case RunStatus::interrupted: counts.interrupted = n; break;
      case RunStatus::pruned: counts.pruned = n; break;
      case RunStatus::waiting: counts.waiting = n; break;
    }
  }
  return counts;
}

}  // namespace recrun::results
