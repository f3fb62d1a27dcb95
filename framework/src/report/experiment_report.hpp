// The experiment report (`recrun report EXPERIMENT`): one self-contained HTML page built from
// results.db — the sweep table (best per group, mean ± std over seeds, the popularity floor),
// each metric against each swept parameter (grouped bars for categorical values, the baseline
// groups as reference lines), the validation curves of each group on one chart, gate weights of
// fusion runs, an ensemble's resolved members, failed trials with their reasons, the
// experiment's TOML and the data fingerprints. docs/report.md describes the page.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "results/results_store.hpp"
#include "results/search_store.hpp"

namespace recrun::report {

/// Mean and sample standard deviation (n - 1; 0 for one value) of the finite values given.
struct MeanStd {
  double mean = 0;
  double stdev = 0;
  std::size_t n = 0;
};
MeanStd mean_std(const std::vector<double>& values);

/// One configuration of a group: its runs over seeds (same group and parameters).
struct Configuration {
  std::string group;
  std::string model;
  /// The group's swept parameters and this configuration's values of them ("" when none vary).
  std::string label;
  /// Values of the group's swept parameters, by name.
  std::map<std::string, results::Param> swept;
  /// Every run of it (any status), in store order.
  std::vector<const results::RunRow*> runs;
  /// Over its finished runs: validation and test metrics by name.
  std::map<std::string, MeanStd> valid, test;
  /// Finished runs.
  std::size_t finished = 0;
};

/// A search of the experiment ([group.search]) and its trials.
struct SearchData {
  results::SearchRecord record;
  std::vector<results::SearchTrialState> trials;
};

/// A member reference of an ensemble's runs (`members = [...]`), resolved against the store as
/// the trial resolves it (a trial key, or the best finished run of best:MODEL[@EXPERIMENT[/GROUP]]
/// by the validation monitor).
struct ResolvedMember {
  std::string ref;
  /// The run it names now; none when nothing matches (then `why` says so).
  std::optional<results::RunRow> run;
  std::string why;
};

/// Everything the page shows, gathered from the store.
struct ExperimentData {
  std::string name;
  std::vector<results::ExperimentRow> versions;
  std::vector<results::RunRow> runs;
  /// Epoch metrics by trial key.
  std::map<std::string, std::vector<results::EpochMetric>> curves;
  /// Configurations, by group in order of first appearance.
  std::vector<Configuration> configurations;
  /// Swept parameters of each group, in name order.
  std::map<std::string, std::vector<std::string>> swept_params;
  /// The protocol's monitor (picks the best configuration), metrics and cut-offs.
  std::string monitor = "NDCG@10";
  std::vector<std::string> test_columns;
  results::StatusCounts counts;
  /// Its random and TPE searches, in the order they were registered.
  std::vector<SearchData> searches;
  /// The popularity floor: the finished `popularity` run with the best validation monitor on
  /// the same data (fingerprint) and split, from any experiment in the store; none if there is
  /// none. A configuration below it is flagged.
  std::optional<results::RunRow> popularity;
  /// Every member reference of the experiment's ensemble runs, by reference.
  std::map<std::string, ResolvedMember> members;
  /// Metrics equal in every finished run to another one (Recall@k to Hit@k under leave-one-out,
  /// where each user has one target): name -> the name shown for both.
  std::map<std::string, std::string> same_as;
};

/// Reads the experiment named `experiment` from `store` (it only reads; a read-only store is
/// fine). Throws recrun::Error when the store has no experiment of that name, listing the names
/// it has.
ExperimentData gather_experiment(results::ResultsStore& store, std::string_view experiment);

/// The best configuration of each group (highest mean validation monitor over finished seeds);
/// indices into data.configurations, in group order. Groups with nothing finished are left out.
std::vector<std::size_t> best_configurations(const ExperimentData& data);

/// The page. `generated_at` is shown as the time it was made; `source` names the results.db.
std::string render_experiment_report(const ExperimentData& data, std::string_view source,
                                     std::string_view generated_at);

}  // namespace recrun::report
