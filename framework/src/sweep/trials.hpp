// Trials: the expanded, validated runs of an experiment, and their stable keys.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
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

/// `--only`: alternatives joined by commas outside brackets and quotes. An alternative made only
/// of KEY=VALUE terms (separated by blanks) selects the trials whose parameter KEY (or `group`,
/// `model`, `seed`) equals VALUE, read as `--set` reads a value of that parameter's type, so
/// `features=[genre,year]`, `features=["genre", "year"]` and the labels' own text all agree. Any
/// other alternative is a glob (with *, ? or [) or a substring of the group, the model, the key
/// or the label. Counts the trials each alternative matched.
class OnlyFilter {
 public:
  /// Throws Error naming --only and the alternative for unbalanced brackets or quotes.
  explicit OnlyFilter(std::string_view pattern);
  /// The first alternative that matches the trial (an index into alternatives()), if any.
  std::optional<std::size_t> selects(const Trial& trial) const;
  /// Whether the trial is selected; counts it for the first alternative that matches.
  bool matches(const Trial& trial);
  /// After matching every trial: throws Error when a KEY=VALUE term names a key that no trial
  /// has (with a did-you-mean over the trials' parameters), or when a value cannot be read as
  /// that parameter's type.
  void check(const std::vector<Trial>& trials) const;
  /// "'fusion=gate' 4, 'ease' 3": each alternative with the trials it matched.
  std::string summary() const;
  /// The alternatives, as written (trimmed).
  std::vector<std::string> alternatives() const;
  /// Trials matched by each alternative, in order.
  const std::vector<std::size_t>& counts() const { return counts_; }

 private:
  struct Term {
    std::string key, value;
  };
  struct Alternative {
    std::string text;
    std::vector<Term> terms;  // empty: a glob or substring
  };
  static bool term_matches(const Term& term, const Trial& trial);
  std::vector<Alternative> alternatives_;
  std::vector<std::size_t> counts_;
};

/// OnlyFilter(pattern).matches(trial), for one trial.
bool matches(const Trial& trial, const std::string& pattern);

/// The row a trial gets in the results store. `data_source` is the resolved source name.
results::TrialSpec trial_spec(const Trial& trial, const Experiment& experiment,
                              const std::string& data_fingerprint, const std::string& data_source,
                              const std::vector<ParamSpec>& schema,
                              std::optional<std::int64_t> experiment_id);

}  // namespace recrun::sweep
