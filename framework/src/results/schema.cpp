#include "results/schema.hpp"

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
                    CHECK (status IN ('pending', 'running', 'finished', 'failed', 'interrupted')),
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
)sql";

constexpr std::string_view kViews = R"sql(
-- Correlated lookups rather than a GROUP BY pivot: each is one primary-key probe, so a
-- filtered query on v_runs touches only the runs it returns.
CREATE VIEW IF NOT EXISTS v_runs AS
SELECT
  r.id AS run_id,
  r.trial_key,
  e.name AS experiment,
  e.hash AS experiment_hash,
  r.group_name,
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
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'valid' AND name = 'Hit@10')
    AS "valid_hit@10",
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'valid' AND name = 'NDCG@10')
    AS "valid_ndcg@10",
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'test' AND name = 'Hit@10')
    AS "test_hit@10",
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'test' AND name = 'NDCG@10')
    AS "test_ndcg@10",
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'test' AND name = 'MRR@10')
    AS "test_mrr@10",
  (SELECT value FROM run_metrics WHERE run_id = r.id AND split = 'test' AND name = 'Recall@10')
    AS "test_recall@10",
  r.checkpoint_path,
  r.tensorboard_path,
  r.owner_host,
  r.owner_pid,
  r.heartbeat_at,
  r.error
FROM runs AS r
LEFT JOIN experiments AS e ON e.id = r.experiment_id
WHERE r.staging_for IS NULL;

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
LEFT JOIN experiments AS e ON e.id = r.experiment_id
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
LEFT JOIN experiments AS e ON e.id = r.experiment_id
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
LEFT JOIN experiments AS e ON e.id = r.experiment_id
WHERE r.staging_for IS NULL;

-- Runs that report test metrics outrank runs that only report validation ones, so a model
-- whose runs all lack a test evaluation still gets its best-by-validation row.
CREATE VIEW IF NOT EXISTS v_best_per_model AS
SELECT
  experiment,
  model,
  run_id,
  trial_key,
  group_name,
  ranked_by,
  "valid_hit@10",
  "valid_ndcg@10",
  "test_hit@10",
  "test_ndcg@10",
  "test_mrr@10",
  "test_recall@10",
  best_epoch,
  total_seconds,
  runs_compared
FROM (
  SELECT
    v.*,
    CASE WHEN v."test_ndcg@10" IS NOT NULL THEN 'test NDCG@10'
         WHEN v."valid_ndcg@10" IS NOT NULL THEN 'valid NDCG@10'
    END AS ranked_by,
    ROW_NUMBER() OVER (
      PARTITION BY v.experiment, v.model
      ORDER BY v."test_ndcg@10" IS NULL, v."test_ndcg@10" DESC,
               v."valid_ndcg@10" IS NULL, v."valid_ndcg@10" DESC, v.run_id
    ) AS rank_in_model,
    COUNT(*) OVER (PARTITION BY v.experiment, v.model) AS runs_compared
  FROM v_runs AS v
  WHERE v.status = 'finished'
)
WHERE rank_in_model = 1;
)sql";

}  // namespace

std::string_view schema_sql() { return kSchema; }
std::string_view views_sql() { return kViews; }
std::string_view drop_views_sql() {
  return "DROP VIEW IF EXISTS v_best_per_model; DROP VIEW IF EXISTS v_epoch_metrics; "
         "DROP VIEW IF EXISTS v_metrics; DROP VIEW IF EXISTS v_run_params; "
         "DROP VIEW IF EXISTS v_runs;";
}

}  // namespace recrun::results
