// Questions asked of a results database without SQL (`recrun results`): listing runs with
// filters, the best configuration per group over seeds, comparing two runs or configurations
// with paired tests on per-user metrics, and learning curves.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "results/stats.hpp"

namespace recrun::results {

/// The value named `name` in `metrics`, if there.
std::optional<double> find_metric(const std::vector<Metric>& metrics, const std::string& name);

/// The validation metric a run's protocol picks the best epoch by ("NDCG@10" when its protocol
/// JSON names none or cannot be read).
std::string monitor_of(const RunRow& run);

/// A metric named as `recrun results` takes it: "test_NDCG@10", "valid_ndcg@10" or bare
/// "NDCG@10" (test); the split prefix and the name are matched without regard to case.
struct MetricRef {
  SplitName split = SplitName::test;
  std::string name;  ///< as the user wrote it; match with matches()
  bool matches(const std::string& metric) const;
};
MetricRef parse_metric_ref(const std::string& text);
/// The run's value of `ref`, if it has one.
std::optional<double> metric_of(const RunRow& run, const MetricRef& ref);

/// Filters of `recrun results list`. Empty fields do not filter.
struct RunFilter {
  std::string experiment;
  std::string model;
  std::optional<RunStatus> status;
  /// "param=value": the run's parameter has this value, read as a value of the parameter's type
  /// (numbers compare as numbers; `features=[genre]`, the printed form, equals the stored
  /// `["genre"]`).
  std::vector<std::string> where;
};
/// Why no run passed `filter`: for each --where item, the values that the runs passing the other
/// filters have (nearest first), e.g. "--where lambda=50: no run has it; values present: 500,
/// 100". Empty when there are no --where items.
std::string explain_no_match(const std::vector<RunRow>& runs, const RunFilter& filter);
/// The runs that pass, in the order given. Throws recrun::Error for a malformed --where item or
/// a parameter that no run has (naming the parameters there are).
std::vector<const RunRow*> filter_runs(const std::vector<RunRow>& runs, const RunFilter& filter);

/// Sorts by `ref`, highest first (lowest first with `ascending`); runs without it go last,
/// ties keep their order. Throws recrun::Error when no run has the metric, naming those there are.
void sort_runs(std::vector<const RunRow*>& runs, const MetricRef& ref, bool ascending);

/// Parameters whose values differ among the `runs` that have them (seed aside), by name: what
/// tells them apart.
std::vector<std::string> varying_params(const std::vector<const RunRow*>& runs);
/// "name=value" of the given parameters of a run, space-separated.
std::string params_label(const RunRow& run, const std::vector<std::string>& names);
/// The same parameters as a JSON object with typed values ({"lambda": 500.0, "features":
/// ["genre"]}).
std::string params_json(const RunRow& run, const std::vector<std::string>& names);

/// Finished runs that differ only in their seed: same experiment, group, model, data, protocol
/// and parameters.
struct Configuration {
  std::string experiment;
  std::string group;
  std::string model;
  std::vector<const RunRow*> runs;  ///< by seed
  /// Validation monitor over the seeds.
  Summary monitor;
  std::string monitor_name;
};
/// Groups the finished runs into configurations, in order of their first run.
std::vector<Configuration> configurations(const std::vector<const RunRow*>& runs);
/// The configuration the finished run `run` belongs to, among `all`.
Configuration configuration_of(const RunRow& run, const std::vector<RunRow>& all);

/// The group a configuration belongs to: its group, or for single runs (no group) its model.
std::string group_key(const Configuration& config);

/// Per group_key (in order of first appearance), the configuration with the highest mean
/// validation monitor over its seeds (ties: the earlier one), as the sweep summary picks.
std::vector<Configuration> best_per_group(const std::vector<const RunRow*>& runs);

/// Mean ± std over the configuration's runs of one metric.
Summary summarize_metric(const Configuration& config, SplitName split, const std::string& name);

/// Names of the metrics of `split` that every run of the configuration has, sorted.
std::vector<std::string> common_metrics(const Configuration& config, SplitName split);

/// One side of `recrun results compare`.
struct Side {
  std::string label;  ///< what was asked for
  Configuration config;
};
/// Resolves a run (see resolve_run), or EXPERIMENT/GROUP (the group's best configuration; "/MODEL"
/// for the single runs of a model). With `pool_seeds`, a run stands for its whole configuration.
/// Throws recrun::Error naming what was not found or is ambiguous.
Side resolve_side(const std::string& text, const std::vector<RunRow>& runs, bool pool_seeds);

/// The run "id:N" (runs.id), or whose key is `text` or starts with it; throws recrun::Error when
/// none or several are.
const RunRow& resolve_run(const std::string& text, const std::vector<RunRow>& runs);

/// Per-user values of one test metric for a configuration: each user's mean over its runs.
struct UserValues {
  std::vector<std::int64_t> users;
  std::vector<double> values;
};
/// Throws recrun::Error when a run stored no per-user values of the metric, or its runs
/// evaluated different users.
UserValues user_values(const ResultsStore& store, const Configuration& config,
                       SplitName split, const std::string& metric);

}  // namespace recrun::results
