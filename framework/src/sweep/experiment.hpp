// Experiment files: the TOML that names data, protocol, seeds and groups of trials.
//
// Parsing keeps where every value came from (file, line, column, or the --set override that
// replaced it), so that a mistake found later, when values meet the plugins' schemas, is
// reported at the line that holds it. docs/experiments.md is the reference for the format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/error.hpp"
#include "recrun/params.hpp"
#include "core/protocol.hpp"

namespace recrun::sweep {

/// Where a value came from: a position in the experiment file, or a command-line override.
struct Origin {
  /// The experiment file.
  std::filesystem::path file;
  /// 1-based line; 0 when unknown.
  std::int64_t line = 0;
  /// 1-based column; 0 when unknown.
  std::int64_t column = 0;
  /// The override ("--set ease.lambda=5") when the value came from the command line.
  std::string override_text;

  /// "file:line:col" or "--set group.key=value".
  std::string describe() const;
};

/// A mistake in an experiment file or its overrides. what() starts with the location.
class ExperimentError : public Error {
 public:
  ExperimentError(const Origin& origin, const std::string& what);
  /// Where the mistake is.
  const Origin& origin() const noexcept { return origin_; }

 private:
  Origin origin_;
};

/// A parameter value as written, before it meets a schema. Values from --set stay text until
/// the schema says what type they must be.
struct RawValue {
  /// The value as TOML typed it (unused when `text` is set).
  ParamValue value;
  /// Command-line text, parsed against the schema during validation.
  std::optional<std::string> text;
  /// Where it was written.
  Origin origin;
};

/// One axis of a group's grid: a key and the values it takes.
struct GridAxis {
  /// Parameter name.
  std::string key;
  /// Values, in file order.
  std::vector<RawValue> values;
  /// Where the axis was written.
  Origin origin;
};

/// One explicit parameter set of a group (`[[group.sets]]`).
struct ParamSet {
  /// Values of the set.
  std::map<std::string, RawValue> values;
  /// Where the set starts.
  Origin origin;
};

// --- search spaces (sweep/search_space.cpp parses, checks and samples them) ------------------

/// How a searched parameter is drawn: `lr = { log_uniform = [1e-4, 1e-2] }` in [group.grid].
enum class DistKind { uniform, log_uniform, int_uniform, choice };

/// One searched parameter of a group.
struct Distribution {
  /// Parameter name.
  std::string key;
  DistKind kind = DistKind::uniform;
  /// Inclusive bounds (uniform, log_uniform, int_uniform).
  double low = 0, high = 0;
  /// The values of a `choice`.
  std::vector<RawValue> choices;
  /// Where the distribution is written.
  Origin origin;
};

/// How a group picks its trials ([group.search]) and whether it prunes them.
enum class SearchMethod { grid, random, tpe };
enum class PrunerKind { none, asha, median };

struct SearchSpec {
  SearchMethod method = SearchMethod::grid;
  /// Configurations to try (random, tpe); each runs once per seed.
  std::int64_t trials = 0;
  /// Seed of the sampler (not of the trials, whose seeds are the group's).
  std::int64_t seed = 0;
  /// TPE: configurations drawn at random before the model takes over; -1 = automatic.
  std::int64_t startup_trials = -1;
  PrunerKind pruner = PrunerKind::none;
  /// Pruner rungs: min_epochs * reduction_factor^k epochs, below max_epochs.
  std::int64_t min_epochs = 1;
  std::int64_t reduction_factor = 3;
  /// The trainer's `epochs` for the group's trials; 0 = the group's own `epochs`.
  std::int64_t max_epochs = 0;
  /// Where [group.search] starts, and where each of its keys is written.
  Origin origin;
  std::map<std::string, Origin> origins;
};

/// A run group: one model, fixed parameters, a grid and explicit sets.
/// Its trials are sets x grid x seeds, each over the fixed parameters.
struct Group {
  /// Group name (unique within the experiment).
  std::string name;
  /// Model plugin name.
  std::string model;
  /// Where the group starts.
  Origin origin;
  /// Where `model` is written.
  Origin model_origin;
  /// Parameters every trial of the group shares.
  std::map<std::string, RawValue> fixed;
  /// Grid axes, in file order.
  std::vector<GridAxis> grid;
  /// Explicit parameter sets; empty means one empty set.
  std::vector<ParamSet> sets;
  /// Seeds for this group (the experiment's when unset).
  std::optional<std::vector<std::int64_t>> seeds;
  /// Searched parameters (distributions written in [grid]), in file order.
  std::vector<Distribution> space;
  /// [group.search]; unset for a plain grid.
  std::optional<SearchSpec> search;
};

/// How trials are executed; none of it changes results.
struct Execution {
  /// Worker processes (`--jobs` overrides).
  int jobs = 1;
  /// Where `jobs` is written (the file when it is not).
  Origin jobs_origin;
  /// Hard wall-clock limit per trial in seconds (the worker is killed and the trial fails);
  /// 0 = none. The trainer's `time_budget` parameter is the graceful limit.
  double trial_timeout_s = 0;
  /// Resident memory limit per worker in MiB (the worker is killed and the trial fails); 0 = none.
  double memory_limit_mb = 0;
  /// Seconds between resumable checkpoints (last.ckpt) of a training trial; 0 = every epoch.
  double checkpoint_every_s = 30;
  /// Checkpoints a finished trial keeps: "best", "last" or "none".
  std::string checkpoints = "best";
  /// Fork workers from a pre-initialised zygote process (true) or exec each one (false).
  bool zygote = true;
};

/// A parsed experiment file.
struct Experiment {
  /// The file it was read from.
  std::filesystem::path file;
  /// File text plus the overrides, as stored in results.db.
  std::string text;
  /// XXH3-64 of `text` (16 hex digits).
  std::string hash;
  /// [experiment] name.
  std::string name;
  /// [experiment] description.
  std::string description;
  /// [data] path, absolute (a relative path is taken from the file's directory).
  std::filesystem::path data_path;
  /// [data] source ("auto" detects it).
  std::string data_source = "auto";
  /// Where [data] path is written.
  Origin data_origin;
  /// Where [data] source is written.
  Origin source_origin;
  /// [protocol].
  trial::Protocol protocol;
  /// Where each [protocol] key is written (the table's own position under "").
  std::map<std::string, Origin> protocol_origins;
  /// Default seeds of every group.
  std::vector<std::int64_t> seeds{42};
  /// [experiment] depends: experiments (by name, each a .toml file beside this one) whose runs
  /// this one's member references name; a sweep first runs the trials of theirs it needs.
  std::vector<std::string> depends;
  /// Where [experiment] depends is written.
  Origin depends_origin;
  /// [execution].
  Execution execution;
  /// Groups, in file order.
  std::vector<Group> groups;
  /// Per group, the keys set by a '*.KEY=VALUE' override: dropped where the model lacks them.
  std::map<std::string, std::set<std::string>> wildcard_keys;
};

/// One `--set target.key=value` override. `target` is a group name, `*` (every group whose
/// model accepts the key), or one of the sections experiment, data, protocol, execution.
struct Override {
  std::string target;
  std::string key;
  std::string text;
  /// The whole argument, for messages.
  std::string original;
};

/// The largest experiment file load_experiment() reads.
inline constexpr std::size_t kMaxExperimentFileBytes = 4u << 20;
/// How deep lists, tables and dotted keys may nest in an experiment file or a --set value.
inline constexpr int kMaxTomlNesting = 64;
/// The longest experiment or group name (it names directories and files under results/).
inline constexpr std::size_t kMaxNameLength = 100;

/// Parses "target.key=value"; throws ExperimentError on malformed text.
Override parse_override(const std::string& text);

/// Reads and parses an experiment file, then applies overrides. Checks the file's structure
/// (sections, keys, value types of the framework's own keys); parameter values are checked
/// against the plugins' schemas later, by expand_trials().
Experiment load_experiment(const std::filesystem::path& file,
                           const std::vector<std::string>& overrides = {});

/// Same as load_experiment() for text already in memory; `file` is used in messages and to
/// resolve a relative data path.
Experiment parse_experiment(std::string_view text, const std::filesystem::path& file,
                            const std::vector<std::string>& overrides = {});

}  // namespace recrun::sweep
