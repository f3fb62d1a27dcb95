// Search spaces: the distributions a group's [grid] may hold instead of lists
// (`lr = { log_uniform = [1e-4, 1e-2] }`), the [group.search] table (method, trials, seed,
// pruner), their checks, and drawing configurations from a space deterministically.
// docs/experiments.md ("Searching: random, TPE and pruning") is the reference.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "recrun/params.hpp"
#include "sweep/experiment.hpp"

namespace recrun::sweep {

std::string_view to_string(DistKind kind);
std::string_view to_string(SearchMethod method);
std::string_view to_string(PrunerKind pruner);

/// Parses one distribution, `{ uniform = [0.0, 0.5] }`, written for `key` at `where`.
/// Refuses (at the position of the offending value) an unknown kind, a table of several kinds,
/// bounds that are not two finite numbers with low < high (low <= high for int_uniform), a
/// non-positive log_uniform bound, non-integer int_uniform bounds and an empty choice.
Distribution parse_distribution(const std::string& key, const toml::table& table,
                                const Origin& where);

/// Parses [group.search]: method, trials, seed, startup_trials, pruner, min_epochs,
/// reduction_factor, max_epochs.
SearchSpec parse_search(const toml::table& table, const Origin& where);

/// Sets one key of a group's search (`--set GROUP.search.KEY=VALUE`, `key` without "search.").
void set_search_key(SearchSpec& spec, const std::string& key, const toml::node& value,
                    const Origin& where);

/// Checks that a group's search and space fit together: random and tpe need `trials`, grid
/// takes no distributions, sets do not combine with sampling, a searched key is nowhere else,
/// pruner settings are consistent. Throws ExperimentError at the offending position.
void check_search(const Group& group);

/// A searched parameter, checked against its model's schema.
struct Dim {
  std::string key;
  DistKind kind = DistKind::uniform;
  double low = 0, high = 0;
  /// The parameter is an integer: numbers drawn are rounded (int_uniform, log_uniform).
  bool integer = false;
  /// The values of a choice, each checked against the schema.
  std::vector<ParamValue> choices;
  Origin origin;
};

/// A configuration: one value per searched key.
using Point = std::map<std::string, ParamValue>;

/// A small deterministic generator (splitmix64): the same (seed, stream) draws the same numbers
/// on every machine and compiler, unlike the standard library's distributions.
class SearchRng {
 public:
  SearchRng(std::uint64_t seed, std::uint64_t stream);
  std::uint64_t next();
  /// Uniform in [0, 1).
  double uniform();
  /// Standard normal (Box-Muller).
  double normal();
  /// Uniform integer in [0, n).
  std::size_t below(std::size_t n);

 private:
  std::uint64_t state_;
};

/// Checks `dist` against the parameter's spec: the parameter exists (did-you-mean otherwise),
/// numeric distributions are on numeric parameters, bounds and choices are values the
/// parameter accepts. Throws ExperimentError at the distribution's position.
Dim check_distribution(const Distribution& dist, const std::vector<ParamSpec>& schema,
                       const std::string& component);

/// One value drawn from `dim`'s distribution (log-uniform uniformly in log space).
ParamValue draw(const Dim& dim, SearchRng& rng);

/// The `index`-th configuration of a random search with `seed`: each dimension drawn from its
/// own distribution, from a generator seeded by (seed, index) alone.
Point random_point(const std::vector<Dim>& space, std::int64_t seed, std::int64_t index);

/// For the dry run: "lr ~ log_uniform[0.0001, 0.01]", "hidden_units ~ choice{64, 128}".
std::string describe(const Dim& dim);

}  // namespace recrun::sweep
