// Searches in results.db (schema 4): which configurations a random or TPE search registered,
// their trials, and the pruner's decisions at each rung, each taken in one transaction so that
// two sweeps, their workers and a kill -9 at any moment keep them consistent.
//
//   searches       one row per search (a group's [group.search] over one data set and protocol)
//   search_trials  (search, configuration index, trial key, the point as JSON)
//   promotions     (search, trial, rung) -> continue or prune, with the value it was judged by
//
// The rules that take a decision (ASHA's top 1/eta, the median) are here too: a worker applies
// them through decide_rung(), and it includes only the results store, never sweep/.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "results/results_store.hpp"

namespace recrun::results {

/// A search as registered.
struct SearchRecord {
  std::string search_key;
  std::string experiment;
  std::string group_name;
  /// "grid", "random" or "tpe".
  std::string method;
  /// Its settings as JSON (method, trials, seed, pruner, min_epochs, reduction_factor,
  /// max_epochs, space).
  std::string spec_json;
};

/// One trial of a configuration the search registered.
struct SearchLink {
  std::int64_t index = 0;
  std::string trial_key;
  /// The configuration's searched values as JSON ({"lr": 0.001, ...}).
  std::string point_json;
};

/// A linked trial with its run's state, what TPE and the sweep read back.
struct SearchTrialState {
  std::int64_t index = 0;
  std::string trial_key;
  std::string point_json;
  RunStatus status = RunStatus::pending;
  /// Nobody runs it: pending, interrupted, or running under an owner that is gone.
  bool available = false;
  /// The validation monitor of its best epoch (finished or pruned).
  std::optional<double> value;
  /// Epochs trained (finished or pruned).
  std::optional<std::int64_t> epochs_run;
};

/// A configuration to register: its index and the trials (one per seed) that run it.
struct SearchProposal {
  std::string point_json;
  std::vector<TrialSpec> trials;
};

/// How a search prunes, read from its spec.
struct PrunerSettings {
  /// "asha" or "median".
  std::string kind;
  std::int64_t min_epochs = 1;
  std::int64_t reduction_factor = 3;
  std::int64_t max_epochs = 0;

  /// Epochs trained at each rung: min_epochs * reduction_factor^k, below max_epochs.
  std::vector<std::int64_t> rungs() const;
};

/// Reads the pruner of a search spec (JSON); nullopt when it has none.
std::optional<PrunerSettings> pruner_of_spec(std::string_view spec_json);

/// ASHA's rule (Li et al. 2020, stopping variant): of the n trials that reached a rung
/// (`others` and this one), the best max(1, floor(n / eta)) continue.
bool asha_keeps(double value, const std::vector<double>& others, std::int64_t eta);
/// The median rule: continue unless at least two others reached the rung and this value is
/// below their median.
bool median_keeps(double value, const std::vector<double>& others);

/// A decision at a rung.
struct RungDecision {
  bool keep = true;
  /// Trials it was compared with (0 for the first at its rung).
  std::int64_t compared = 0;
  /// The decision was taken earlier (a resumed trial reaching the rung again).
  bool recorded_before = false;
};

/// One stored decision.
struct PromotionRow {
  std::string trial_key;
  std::int64_t rung = 0;
  std::int64_t epochs = 0;
  double value = 0;
  bool keep = true;
  std::int64_t compared = 0;
};

/// The search half of a ResultsStore: same connection, same lock.
class SearchStore {
 public:
  explicit SearchStore(ResultsStore& store) : store_(store) {}

  /// Inserts the search unless it is there.
  void register_search(const SearchRecord& search);
  /// Links registered trials to the search (existing links stay).
  void link(std::string_view search_key, const std::vector<SearchLink>& links);
  /// The search, by key.
  std::optional<SearchRecord> search(std::string_view search_key) const;
  /// The searches of an experiment, in the order they were registered.
  std::vector<SearchRecord> searches(std::string_view experiment) const;
  /// The search a trial is linked to that has a pruner, if any.
  std::optional<SearchRecord> pruning_search_of(std::string_view trial_key) const;
  /// The linked trials, by index then key.
  std::vector<SearchTrialState> trials(std::string_view search_key) const;

  /// One transaction: the trials of the lowest configuration nobody runs, if any; else, while
  /// fewer than `budget` configurations are registered, registers `suggest(states, index)` as
  /// configuration `index` (its trials pending, linked) and returns its trials that still need
  /// to run. Empty when the search has registered `budget` configurations and none waits.
  std::vector<std::string> next_trials(
      std::string_view search_key, std::int64_t budget,
      const std::function<SearchProposal(const std::vector<SearchTrialState>&, std::int64_t)>&
          suggest);

  /// The pruner's decision for `trial_key` having trained `epochs` epochs at `rung` with
  /// `value`: taken once, in a transaction, against the values recorded at the same rung, and
  /// returned unchanged whenever it is asked again.
  RungDecision decide_rung(std::string_view search_key, std::string_view trial_key,
                           std::int64_t rung, std::int64_t epochs, double value,
                           const PrunerSettings& pruner);

  /// Every decision of the search, by rung then time.
  std::vector<PromotionRow> promotions(std::string_view search_key) const;

 private:
  static std::vector<SearchTrialState> load(ResultsStore::State& state,
                                            std::string_view search_key);
  ResultsStore& store_;
};

}  // namespace recrun::results
