// The results database's schema, as SQL. docs/results-schema.md explains every column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace recrun::results {

/// Stored in PRAGMA user_version. Bump it, and add a migration step in results_store.cpp,
/// whenever the DDL below changes.
inline constexpr int kSchemaVersion = 5;

/// One final metric as a view column: split ("valid" or "test") and name ("NDCG@10").
struct MetricColumn {
  std::string split;
  std::string name;
  bool operator==(const MetricColumn&) const = default;
};

/// At most this many metric columns in v_runs (SQLite allows 2000 columns); further metrics
/// stay in v_metrics.
inline constexpr std::size_t kMaxMetricColumns = 1000;

/// DDL for a fresh database's tables and indexes at kSchemaVersion.
std::string_view schema_sql();
/// A SELECT of one row per run and experiment name it belongs to (run_groups): run_id,
/// experiment, experiment_id (the newest version of that experiment that registered the run)
/// and group_name (its group there). The view v_run_experiments is this query.
std::string_view memberships_sql();
/// The column a metric gets in v_runs: split and name in lower case, "test_ndcg@10".
std::string metric_column_name(const MetricColumn& column);
/// The metric columns of the views: valid Hit@10 and NDCG@10 and test Hit, NDCG, MRR and
/// Recall@10 always (so queries written for them work on any file), then every `present` one,
/// valid before test, by name; names equal but for case once; at most kMaxMetricColumns.
std::vector<MetricColumn> view_columns(const std::vector<MetricColumn>& present);
/// DDL of the views, with a column in v_runs and v_best_per_model for each of
/// view_columns(present). Created after the tables, and again whenever a new metric appears.
std::string views_sql(const std::vector<MetricColumn>& present);
/// Drops every view (a migration recreates them with views_sql()).
std::string_view drop_views_sql();

}  // namespace recrun::results
