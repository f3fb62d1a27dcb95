// Searches of a sweep: a group with [group.search] becomes a SearchPlan (its space checked
// against the model's schema), random searches expand into their trial list up front, and TPE
// searches suggest their trials while the sweep runs (SearchDriver), each suggestion registered
// in results.db before it runs (results/search_store.hpp), so that a restart after kill -9
// neither repeats nor loses one, and two sweeps on one results.db share the work.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "recrun/params.hpp"
#include "recrun/registry.hpp"
#include "results/results_store.hpp"
#include "results/search_store.hpp"
#include "sweep/experiment.hpp"
#include "sweep/search_space.hpp"
#include "sweep/tpe.hpp"
#include "sweep/trials.hpp"

namespace recrun::sweep {

/// A group's search, checked and ready to draw from.
struct SearchPlan {
  std::string group;
  std::string model;
  SearchSpec spec;
  /// The searched dimensions: the distributions, then grid lists (as choices) under random/tpe.
  std::vector<Dim> space;
  /// Fixed parameters of the group (search.max_epochs applied as `epochs`).
  std::map<std::string, RawValue> fixed;
  std::vector<ParamSpec> schema;
  std::string component;
  std::vector<std::int64_t> seeds;
  /// TPE's random configurations before the model takes over.
  std::int64_t startup = 0;
  /// The trainer's epochs of every trial (the pruner's max_epochs).
  std::int64_t epochs = 0;
  /// What it was planned from (trials_at() expands configurations against them).
  const Experiment* experiment = nullptr;
  const Registry* registry = nullptr;
  /// Set by finalize_search(): the search's key and its settings as JSON.
  std::string key;
  std::string spec_json;

  bool sampled() const { return spec.method != SearchMethod::grid; }
  bool pruned() const { return spec.pruner != PrunerKind::none; }
};

/// The group with search.max_epochs applied as its fixed `epochs` (a grid's trials need it too).
/// Throws ExperimentError when the group fixes another `epochs`.
Group with_search_epochs(const Group& group);

/// Checks a group's search against its model's schema (searched parameters exist and accept the
/// bounds and choices, fixed ones are valid) and returns its plan, which refers to `experiment`
/// and `registry` (they must outlive it). Throws ExperimentError.
SearchPlan plan_search(const Group& group, const Experiment& experiment, const Registry& registry);

/// The plans of every group with [group.search] (method random or tpe, or a pruner).
std::vector<SearchPlan> plan_searches(const Experiment& experiment, const Registry& registry);

/// The trials (one per seed) that run configuration `index` = `point` of a sampled search,
/// checked and resolved as a grid's point would be; keys unset.
std::vector<Trial> trials_at(const SearchPlan& plan, const Point& point, std::int64_t index);

/// The configurations of a random search, expanded into trials (keys unset).
std::vector<Trial> expand_random(const SearchPlan& plan);

/// Sets the plan's key (a hash of the experiment and group names, the search settings, the
/// space, the fixed parameters, seeds, data and protocol) and its JSON settings.
void finalize_search(SearchPlan& plan, const Experiment& experiment,
                     const std::string& data_fingerprint);

/// A configuration as JSON and back.
std::string point_json(const Point& point);
Point point_from_json(const std::string& json, const std::vector<Dim>& space);

/// Lines describing the search for the dry run and the sweep's start.
std::vector<std::string> describe_search(const SearchPlan& plan);

/// Registers the searches and links the trials of random and pruned grid searches (their
/// configuration index is their position in the group).
void register_searches(results::ResultsStore& store, const std::vector<SearchPlan>& plans,
                       const std::vector<Trial>& trials, const Experiment& experiment);

/// Hands out the trials of TPE searches while a sweep runs: each call registers (or finds
/// waiting) the next configuration in results.db and returns one of its trials.
class SearchDriver {
 public:
  SearchDriver(results::ResultsStore& store, const Experiment& experiment,
               std::vector<SearchPlan> plans, std::string data_fingerprint,
               std::string data_source, std::optional<std::int64_t> experiment_id);
  /// The next trial to run, or nullptr when every TPE search has registered all its
  /// configurations and none waits. Stable pointers.
  const Trial* next();
  /// The trials of TPE searches this driver has handed out.
  const std::deque<Trial>& handed_out() const { return trials_; }
  /// Sum of the budgets (configurations x seeds).
  std::size_t planned() const;
  /// Every trial the TPE searches have registered so far (by any sweep), for the summary.
  std::vector<Trial> registered();

 private:
  results::SearchProposal propose(const SearchPlan& plan,
                                  const std::vector<results::SearchTrialState>& states,
                                  std::int64_t index);
  const Trial* trial_for(const SearchPlan& plan, const std::string& key,
                         const std::vector<results::SearchTrialState>& states);

  results::ResultsStore& store_;
  const Experiment& experiment_;
  std::vector<SearchPlan> plans_;
  std::vector<bool> exhausted_;
  std::string fingerprint_, source_;
  std::optional<std::int64_t> experiment_id_;
  std::deque<Trial> trials_;
  std::size_t next_plan_ = 0;  // searches take turns
};

/// TPE's observations from the states of a search: one per configuration, the mean monitor of
/// its finished (or pruned) trials; a configuration with a trial still to run is pending.
std::vector<Observation> observations_of(const std::vector<results::SearchTrialState>& states,
                                         const std::vector<Dim>& space);

}  // namespace recrun::sweep
