// Trials: the expanded, validated runs of an experiment, and their stable keys.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"
#include "recrun/params.hpp"
#include "recrun/registry.hpp"
#include "results/results_store.hpp"
#include "sweep/experiment.hpp"
#include "trial/key.hpp"

namespace recrun::sweep {

/// One run of an experiment: a model with resolved parameters, a seed and a key.
struct Trial {
  /// Group it came from.
  std::string group;
  /// Model plugin name.
  std::string model;
  /// Resolved model and trainer parameters (every schema key present).
  Params params;
  /// Random seed.
  std::int64_t seed = 0;
  /// Keys that vary within the group (grid axes and set keys), for labels.
  std::vector<std::string> varying;
  /// Where each explicitly written parameter came from.
  std::map<std::string, Origin> origins;
  /// Stable key (set by assign_keys()).
  std::string key;
  /// Why a parameter was canonicalised (e.g. "fusion has no effect without features"); empty
  /// when no rule applied. Trials that collapse into one are reported with it.
  std::string canonical_note;
  /// The configuration's index in its group's random or TPE search; -1 otherwise.
  std::int64_t search_index = -1;
  /// Notes about its parameters for the user (a deprecated parameter in use, with its place).
  std::vector<std::string> notes;

  /// Short human text: the varying parameters and the seed, e.g. "lambda=500 seed=1".
  std::string label() const;
};

/// The default of `recrun sweep --max-trials`.
inline constexpr std::uint64_t kDefaultMaxTrials = 100000;

/// The number of trials a group expands into (sets x grid x seeds), computed without expanding
/// them; saturates at UINT64_MAX instead of overflowing.
std::uint64_t count_trials(const Group& group, const Experiment& experiment);

/// Expands every group into trials (sets x grid x seeds over the fixed parameters) and validates
/// each against its model's schema plus the trainer's: unknown keys (with a did-you-mean), wrong
/// types, out-of-range values, unknown models, feature and fusion names that no plugin provides.
/// Throws ExperimentError naming the file, line and key of the first mistake. Refuses, before
/// expanding anything, an experiment of more than `max_trials` trials, naming the group and its
/// grid's axes with their lengths.
std::vector<Trial> expand_trials(const Experiment& experiment, const Registry& registry,
                                 std::uint64_t max_trials = kDefaultMaxTrials);

/// Checks what needs the data: every feature encoder a trial asks for can be built on the data
/// set (each is built once, tiny, and dropped). Throws ExperimentError at the line that asks for
/// a feature the data cannot supply.
void check_against_data(const std::vector<Trial>& trials, const Dataset& dataset,
                        const Registry& registry);

/// Sets every trial's key. Drops a trial whose key an earlier one already has (the same run
/// written twice) and returns a warning line for each one dropped.
std::vector<std::string> assign_keys(std::vector<Trial>& trials, const Experiment& experiment,
                                     const std::string& data_fingerprint);

/// Trials whose group, key (prefix), model or label match `pattern`: a glob with * and ?, or a
/// plain substring when it has neither. Several patterns may be joined with ','.
bool matches(const Trial& trial, const std::string& pattern);

/// The row a trial gets in the results store. `data_source` is the resolved source name.
results::TrialSpec trial_spec(const Trial& trial, const Experiment& experiment,
                              const std::string& data_fingerprint, const std::string& data_source,
                              const std::vector<ParamSpec>& schema,
                              std::optional<std::int64_t> experiment_id);

}  // namespace recrun::sweep
