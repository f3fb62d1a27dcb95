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

  /// Short human text: the varying parameters and the seed, e.g. "lambda=500 seed=1".
  std::string label() const;
};

/// Expands every group into trials (sets x grid x seeds over the fixed parameters) and validates
/// each against its model's schema plus the trainer's: unknown keys (with a did-you-mean), wrong
/// types, out-of-range values, unknown models, feature and fusion names that no plugin provides.
/// Throws ExperimentError naming the file, line and key of the first mistake.
std::vector<Trial> expand_trials(const Experiment& experiment, const Registry& registry);

/// Checks what needs the data: every feature encoder a trial asks for can be built on the data
/// set (each is built once, tiny, and dropped). Throws ExperimentError at the line that asks for
/// a feature the data cannot supply.
void check_against_data(const std::vector<Trial>& trials, const Dataset& dataset,
                        const Registry& registry);

/// The text a trial key hashes: format version, model, every resolved parameter (sorted, in
/// canonical text), the data fingerprint, the protocol's canonical text and the seed.
std::string canonical_trial_text(const std::string& model, const Params& params,
                                 const std::string& data_fingerprint, const Protocol& protocol,
                                 std::int64_t seed);

/// 16 hex digits: hash_hex(canonical_trial_text(...)).
std::string trial_key(const std::string& model, const Params& params,
                      const std::string& data_fingerprint, const Protocol& protocol,
                      std::int64_t seed);

/// Sets every trial's key. Drops a trial whose key an earlier one already has (the same run
/// written twice) and returns a warning line for each one dropped.
std::vector<std::string> assign_keys(std::vector<Trial>& trials, const Experiment& experiment,
                                     const std::string& data_fingerprint);

/// Trials whose group, key (prefix), model or label match `pattern`: a glob with * and ?, or a
/// plain substring when it has neither. Several patterns may be joined with ','.
bool matches(const Trial& trial, const std::string& pattern);

/// The resolved parameters as the results store keeps them (typed, canonical text).
std::vector<results::Param> store_params(const Params& params, const std::vector<ParamSpec>& schema);

/// Rebuilds resolved parameters from the store's rows (the inverse of store_params) against
/// `schema`; throws ParamError if a stored name or value no longer fits the schema.
Params params_from_store(const std::vector<results::Param>& stored,
                         const std::vector<ParamSpec>& schema, const std::string& component);

/// The row a trial gets in the results store. `data_source` is the resolved source name.
results::TrialSpec trial_spec(const Trial& trial, const Experiment& experiment,
                              const std::string& data_fingerprint, const std::string& data_source,
                              const std::vector<ParamSpec>& schema,
                              std::optional<std::int64_t> experiment_id);

/// The model's schema plus the trainer's parameters: what a trial's params are checked against.
std::vector<ParamSpec> full_schema(const ModelInfo& model);

}  // namespace recrun::sweep
