#include "results/schema.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace recrun::results {

namespace {

// Timestamps are ISO-8601 UTC text with milliseconds ('2024-05-01T12:34:56.789Z'): readable in
// the sqlite3 shell, sortable as text, and understood by julianday() and pandas.
// NOT STRICT tables: a database made here must stay readable by older SQLite builds (pandas'
// bundled sqlite3 is often older than 3.37); CHECK constraints do the validation instead.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS experiments (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL CHECK (name <> ''),
  hash        TEXT NOT NULL,
  toml_text   TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (name, hash)
);

CREATE TABLE IF NOT EXISTS runs (
  id                INTEGER PRIMARY KEY,
  trial_key         TEXT NOT NULL UNIQUE CHECK (trial_key <> ''),
  experiment_id     INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
  group_name        TEXT NOT NULL DEFAULT '',
  model             TEXT NOT NULL CHECK (model <> ''),
  data_path         TEXT NOT NULL DEFAULT '',
  data_fingerprint  TEXT NOT NULL DEFAULT '',
  protocol          TEXT NOT NULL DEFAULT '{}',
  seed              INTEGER NOT NULL,
  status            TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'finished', 'failed', 'interrupted', 'pruned', 'waiting')),
  attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  owner_host        TEXT,
  owner_pid         INTEGER,
  heartbeat_at      TEXT,
  created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at        TEXT,
  finished_at       TEXT,
  fit_seconds       REAL,
  eval_seconds      REAL,
  total_seconds     REAL,
  best_epoch        INTEGER,
  epochs_run        INTEGER,
  checkpoint_path   TEXT,
  tensorboard_path  TEXT,
  error             TEXT,
  -- Schema 2: a hidden attempt that re-runs the finished run `staging_for` (recrun run --force).
  -- It is promoted into that row only when it finishes; views and listings leave it out.
  staging_for       INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  -- A running row must say who runs it, or nobody could ever tell that its worker died.
  CHECK (status <> 'running'
         OR (owner_host IS NOT NULL AND owner_pid IS NOT NULL AND heartbeat_at IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment_id, model);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_model ON runs (model);

CREATE TABLE IF NOT EXISTS run_params (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  value      TEXT NOT NULL,
  type       TEXT NOT NULL CHECK (type IN ('int', 'float', 'bool', 'string', 'list')),
  num_value  REAL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_params_by_name ON run_params (name, num_value);

CREATE TABLE IF NOT EXISTS epoch_metrics (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch      INTEGER NOT NULL CHECK (epoch >= 0),
  split      TEXT NOT NULL CHECK (split IN ('train', 'valid')),
  name       TEXT NOT NULL,
  value      REAL,
  wall_time  REAL NOT NULL,
  PRIMARY KEY (run_id, epoch, split, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS run_metrics (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  split   TEXT NOT NULL CHECK (split IN ('valid', 'test')),
  name    TEXT NOT NULL,
  value   REAL,
  PRIMARY KEY (run_id, split, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_metrics_by_name ON run_metrics (split, name, value);
)sql" R"sql(
-- Schema 3: per-user final metrics. The users a run evaluated, once per run (int64
-- little-endian dense user ids, ascending), and one float32 little-endian value per user and
-- metric, in the same order. docs/results-schema.md describes the format.
CREATE TABLE IF NOT EXISTS run_users (
  run_id    INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  count     INTEGER NOT NULL CHECK (count >= 0),
  user_ids  BLOB NOT NULL CHECK (length(user_ids) = 8 * count)
);

CREATE TABLE IF NOT EXISTS run_user_metrics (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  split   TEXT NOT NULL CHECK (split IN ('valid', 'test')),
  name    TEXT NOT NULL,
  value   BLOB NOT NULL CHECK (length(value) % 4 = 0),
  PRIMARY KEY (run_id, split, name)
);

-- Every (split, metric) any run reported: the metric columns of v_runs and v_best_per_model,
-- which the store regenerates when a finished run brings a new one.
CREATE TABLE IF NOT EXISTS metric_columns (
  split  TEXT NOT NULL CHECK (split IN ('valid', 'test')),
  name   TEXT NOT NULL,
  PRIMARY KEY (split, name)
) WITHOUT ROWID;
)sql" R"sql(
-- Schema 4: searches (random, TPE) and their pruning. A search is one group's [group.search]
-- over one data set and protocol; `spec` is its settings as JSON (method, trials, seed, pruner,
-- space). Each configuration it registered has an index; its trials (one per seed) are runs.
CREATE TABLE IF NOT EXISTS searches (
  search_key  TEXT PRIMARY KEY CHECK (search_key <> ''),
  experiment  TEXT NOT NULL,
  group_name  TEXT NOT NULL,
  method      TEXT NOT NULL CHECK (method IN ('grid', 'random', 'tpe')),
  spec        TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS search_trials (
  search_key  TEXT NOT NULL REFERENCES searches(search_key) ON DELETE CASCADE,
  idx         INTEGER NOT NULL CHECK (idx >= 0),
  trial_key   TEXT NOT NULL,
  point       TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (search_key, idx, trial_key)
);
CREATE INDEX IF NOT EXISTS search_trials_by_trial ON search_trials (trial_key);

-- Pruning decisions: a trial reaching a rung (min_epochs * reduction_factor^rung epochs) is
-- compared with the trials that reached it before; the decision is taken once, in a
-- transaction, and a trial that reaches the rung again (resumed) gets the same one.
CREATE TABLE IF NOT EXISTS promotions (
  search_key  TEXT NOT NULL REFERENCES searches(search_key) ON DELETE CASCADE,
  trial_key   TEXT NOT NULL,
  rung        INTEGER NOT NULL CHECK (rung >= 0),
  epochs      INTEGER NOT NULL CHECK (epochs >= 1),
  value       REAL,
  decision    TEXT NOT NULL CHECK (decision IN ('continue', 'prune')),
  compared    INTEGER NOT NULL,
  decided_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (search_key, trial_key, rung)
) WITHOUT ROWID;
)sql" R"sql(
-- Schema 5: a trial belongs to every experiment (version) and group whose grid or search
-- registered it, not only to the first one that ran it (runs.experiment_id/group_name).
CREATE TABLE IF NOT EXISTS run_groups (
  run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  experiment_id  INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  group_name     TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (run_id, experiment_id, group_name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_groups_by_experiment ON run_groups (experiment_id);
)sql";

// One row per run and experiment name it belongs to: the newest version of that experiment
// that registered it, and the group it had there (SQLite takes the bare columns from the row
// that MAX() picks).
constexpr std::string_view kMemberships = R"sql(SELECT g.run_id AS run_id, x.name AS experiment,
       MAX(g.experiment_id) AS experiment_id, g.group_name AS group_name
FROM run_groups AS g JOIN experiments AS x ON x.id = g.experiment_id
GROUP BY g.run_id, x.name)sql";

// SQL identifier quoting: "..." with inner quotes doubled.
std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// v_runs's columns before and after the metric columns.
constexpr std::string_view kRunColumnsHead = R"sql(
  r.id AS run_id,
  r.trial_key,
  e.name AS experiment,
  e.hash AS experiment_hash,
  COALESCE(m.group_name, r.group_name) AS group_name,
  r.model,
  r.status,
  r.attempts,
  r.seed,
  r.data_path,
  r.data_fingerprint,
  r.created_at,
  r.started_at,
  r.finished_at,
  r.fit_seconds,
  r.eval_seconds,
  r.total_seconds,
  r.best_epoch,
  r.epochs_run,
  r.monitor,
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'valid' AND name = r.monitor)
    AS monitor_value,)sql";

constexpr std::string_view kRunColumnsTail = R"sql(
  r.checkpoint_path,
  r.tensorboard_path,
  r.owner_host,
  r.owner_pid,
  r.heartbeat_at,
  r.error
FROM (SELECT runs.*,
             COALESCE(CASE WHEN json_valid(protocol) THEN json_extract(protocol, '$.monitor') END,
                      'NDCG@10') AS monitor
      FROM runs) AS r
LEFT JOIN v_run_experiments AS m ON m.run_id = r.id
LEFT JOIN experiments AS e ON e.id = m.experiment_id
WHERE r.staging_for IS NULL;
)sql";

constexpr std::string_view kLongViews = R"sql(
CREATE VIEW IF NOT EXISTS v_run_params AS
SELECT
  r.id AS run_id,
  r.trial_key,
  e.name AS experiment,
  r.model,
  r.status,
  p.name AS param,
  p.value,
  p.type,
  p.num_value
FROM run_params AS p
JOIN runs AS r ON r.id = p.run_id
LEFT JOIN v_run_experiments AS m ON m.run_id = r.id
LEFT JOIN experiments AS e ON e.id = m.experiment_id
WHERE r.staging_for IS NULL;

CREATE VIEW IF NOT EXISTS v_metrics AS
SELECT
  r.id AS run_id,
  r.trial_key,
  e.name AS experiment,
  r.model,
  r.status,
  m.split,
  m.name AS metric,
  m.value
FROM run_metrics AS m
JOIN runs AS r ON r.id = m.run_id
LEFT JOIN v_run_experiments AS g ON g.run_id = r.id
LEFT JOIN experiments AS e ON e.id = g.experiment_id
WHERE r.staging_for IS NULL;

CREATE VIEW IF NOT EXISTS v_epoch_metrics AS
SELECT
  r.id AS run_id,
  r.trial_key,
  e.name AS experiment,
  r.model,
  m.epoch,
  m.split,
  m.name AS metric,
  m.value,
  m.wall_time
FROM epoch_metrics AS m
JOIN runs AS r ON r.id = m.run_id
LEFT JOIN v_run_experiments AS g ON g.run_id = r.id
LEFT JOIN experiments AS e ON e.id = g.experiment_id
WHERE r.staging_for IS NULL;
)sql";

// Columns every database has, present or not, so that queries written for them always work.
const std::vector<MetricColumn>& default_columns() {
  static const std::vector<MetricColumn> columns{
      {"valid", "Hit@10"}, {"valid", "NDCG@10"}, {"test", "Hit@10"},
      {"test", "NDCG@10"}, {"test", "MRR@10"},   {"test", "Recall@10"}};
  return columns;
}

}  // namespace

std::string_view schema_sql() { return kSchema; }
std::string_view memberships_sql() { return kMemberships; }

std::string metric_column_name(const MetricColumn& column) {
  return ascii_lower(column.split) + "_" + ascii_lower(column.name);
}

std::vector<MetricColumn> view_columns(const std::vector<MetricColumn>& present) {
  std::vector<MetricColumn> out;
  std::vector<std::string> taken;
  const auto add = [&](const MetricColumn& c) {
    const std::string name = metric_column_name(c);
    // SQLite compares identifiers without regard to ASCII case: one column per lower-case name.
    if (std::find(taken.begin(), taken.end(), name) != taken.end()) return;
    if (out.size() >= kMaxMetricColumns) return;
    taken.push_back(name);
    out.push_back(c);
  };
  for (const auto& c : default_columns()) add(c);
  std::vector<MetricColumn> rest = present;
  std::sort(rest.begin(), rest.end(), [](const MetricColumn& a, const MetricColumn& b) {
    // valid before test, then by name
    if (a.split != b.split) return a.split == "valid";
    return a.name < b.name;
  });
  for (const auto& c : rest) add(c);
  return out;
}

std::string views_sql(const std::vector<MetricColumn>& present) {
  const auto columns = view_columns(present);
  std::string metric_select, metric_names;
  for (const auto& c : columns) {
    const std::string id = quote_identifier(metric_column_name(c));
    metric_select += fmt::format(
        "\n  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = {} AND name = {}) "
        "AS {},",
        quote_literal(c.split), quote_literal(c.name), id);
    metric_names += fmt::format("\n  {},", id);
  }
  std::string sql;
  sql += "-- Correlated lookups rather than a GROUP BY pivot: each is one primary-key probe, so a\n"
         "-- filtered query on v_runs touches only the runs it returns. The metric columns are\n"
         "-- generated from metric_columns (every metric a finished run reported).\n";
  sql += "-- Which experiments (by name) each run belongs to, with its group there.\n";
  sql += fmt::format("CREATE VIEW IF NOT EXISTS v_run_experiments AS\n{};\n\n", kMemberships);
  sql += "CREATE VIEW IF NOT EXISTS v_runs AS\nSELECT";
  sql += kRunColumnsHead;
  sql += metric_select;
  sql += kRunColumnsTail;
  sql += kLongViews;
  sql += R"sql(
-- The best finished run of each model in each experiment, by the validation value of the
-- run's protocol monitor (as the sweep summary picks; never by test, which would leak it).
CREATE VIEW IF NOT EXISTS v_best_per_model AS
SELECT
  experiment,
  model,
  run_id,
  trial_key,
  group_name,
  ranked_by,
  monitor_value,)sql";
  sql += metric_names;
  sql += R"sql(
  best_epoch,
  total_seconds,
  runs_compared
FROM (
  SELECT
    v.*,
    'valid ' || v.monitor AS ranked_by,
    ROW_NUMBER() OVER (
      PARTITION BY v.experiment, v.model
      ORDER BY v.monitor_value IS NULL, v.monitor_value DESC, v.run_id
    ) AS rank_in_model,
    COUNT(*) OVER (PARTITION BY v.experiment, v.model) AS runs_compared
  FROM v_runs AS v
  WHERE v.status = 'finished'
)
WHERE rank_in_model = 1;
)sql";
  return sql;
}
std::string_view drop_views_sql() {
  return "DROP VIEW IF EXISTS v_best_per_model; DROP VIEW IF EXISTS v_epoch_metrics; "
         "DROP VIEW IF EXISTS v_metrics; DROP VIEW IF EXISTS v_run_params; "
         "DROP VIEW IF EXISTS v_runs; DROP VIEW IF EXISTS v_run_experiments;";
}

}  // namespace recrun::results
