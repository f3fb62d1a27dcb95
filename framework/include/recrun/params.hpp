// recrun/params.hpp — hyperparameter schemas and resolved parameter values.
//
// Every hyperparameter is declared once, as a ParamSpec in a component's schema. The host prints
// schemas (`recrun plugins`), validates experiment files against them before any trial starts, and
// stores the resolved values with each run. Plugins read a validated Params once, at construction,
// into a typed options struct; nothing string-keyed belongs in hot code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace recrun {

/// The type of a hyperparameter.
enum class ParamType { integer, real, boolean, string, string_list, real_list };

/// A parameter value. Integers are int64, reals double; lists are lists of strings or of reals.
using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::string>,
                                std::vector<double>>;

/// Kinds of components.
enum class ComponentKind { model, feature, fusion, data_source };

/// What the values of a parameter name: other plugins. The host checks each name against the
/// loaded plugins of that kind before anything runs (with a did-you-mean), and knows which
/// parameters to look at without knowing their names.
struct ParamReference {
  /// The kind of plugin each value (each element of a list) names.
  ComponentKind kind = ComponentKind::model;
  /// Values are member references (recrun/member_ref.hpp: a trial key, best:MODEL[@...] or
  /// 'train:MODEL key=value ...') whose model is of `kind`, rather than bare plugin names.
  bool member_refs = false;
  /// Values that name no plugin and are always accepted ("none").
  std::vector<std::string> reserved;
};

/// A parameter that only means something when another one is set: when `other` holds an empty
/// value (an empty list or string, false, 0), this parameter cannot change what the model
/// computes, so the host sets it to its default (one trial, one key) and says `why`.
struct ParamRelevance {
  /// The parameter this one depends on (of the same component).
  std::string other;
  /// Shown when values collapse: "fusion has no effect without features".
  std::string why;
};

/// Declaration of one hyperparameter: name, type, default, bounds or choices, help.
struct ParamSpec {
  /// Key used in TOML files and `--set key=value`.
  std::string name;
  /// Value type; integers are accepted where reals are expected.
  ParamType type = ParamType::real;
  /// Value used when a run does not set the parameter.
  ParamValue default_value = 0.0;
  /// Inclusive lower bound for numeric parameters.
  std::optional<double> min;
  /// Inclusive upper bound for numeric parameters.
  std::optional<double> max;
  /// Allowed values for string parameters, or for every element of a list parameter.
  std::vector<std::string> choices;
  /// One line of help shown by `recrun plugins`.
  std::string help;
  /// What the values name, for parameters that refer to other plugins.
  std::optional<ParamReference> refers_to;
  /// Set when the parameter only matters while another one is non-empty.
  std::optional<ParamRelevance> only_when;
  /// List parameters: the fewest and most elements (inclusive).
  std::optional<std::size_t> min_length;
  std::optional<std::size_t> max_length;
  /// List parameters: when non-empty, the list must have as many elements as the list
  /// parameter of this name (ensemble weights and members).
  std::string same_length_as;
  /// Non-empty for a parameter kept only for old experiment files: what to use instead. Setting
  /// it still works; the host prints this note.
  std::string deprecated;

  /// Sets inclusive bounds.
  ParamSpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  /// Sets an inclusive lower bound.
  ParamSpec& at_least(double lo) { min = lo; return *this; }
  /// Sets an inclusive upper bound.
  ParamSpec& at_most(double hi) { max = hi; return *this; }
  /// Restricts a string (or each element of a list) to these values.
  ParamSpec& one_of(std::vector<std::string> values) { choices = std::move(values); return *this; }
};

/// Whether `value` is "empty" in the sense of ParamRelevance: an empty list or string, false, 0.
bool is_empty_value(const ParamValue& value);

/// Declares an integer parameter.
ParamSpec int_param(std::string name, std::int64_t default_value, std::string help);
/// Declares a real-valued parameter.
ParamSpec real_param(std::string name, double default_value, std::string help);
/// Declares a boolean parameter.
ParamSpec bool_param(std::string name, bool default_value, std::string help);
/// Declares a string parameter (restrict it with one_of()).
ParamSpec string_param(std::string name, std::string default_value, std::string help);
/// Declares a list-of-strings parameter (restrict its elements with one_of()).
ParamSpec list_param(std::string name, std::vector<std::string> default_value, std::string help);
/// Declares a list-of-reals parameter (bounds apply to every element).
ParamSpec real_list_param(std::string name, std::vector<double> default_value, std::string help);

/// Name of a type as shown to users: "int", "float", "bool", "string", "list", "float list".
std::string_view type_name(ParamType type);
/// Canonical text of a value: stable across runs, used for hashing, storage and display.
std::string to_string(const ParamValue& value);
/// The type a value holds.
ParamType type_of(const ParamValue& value);

/// Resolved parameters of one component: every schema key present, typed and in range.
class Params {
 public:
  Params() = default;
  explicit Params(const std::map<std::string, ParamValue>& values)
      : values_(values.begin(), values.end()) {}

  /// Integer value of `name`; throws ParamError if missing or not an integer.
  std::int64_t get_int(std::string_view name) const;
  /// Real value of `name` (integers convert).
  double get_real(std::string_view name) const;
  /// Boolean value of `name`.
  bool get_bool(std::string_view name) const;
  /// String value of `name`.
  const std::string& get_string(std::string_view name) const;
  /// List value of `name`.
  const std::vector<std::string>& get_list(std::string_view name) const;
  /// List-of-reals value of `name`.
  const std::vector<double>& get_real_list(std::string_view name) const;
  /// Raw value of `name`; throws ParamError if missing.
  const ParamValue& at(std::string_view name) const;
  /// Whether `name` is present.
  bool contains(std::string_view name) const;
  /// Sets or replaces a value (no validation: use resolve_params for user input).
  void set(const std::string& name, ParamValue value) { values_[name] = std::move(value); }
  /// All values, ordered by name.
  const std::map<std::string, ParamValue, std::less<>>& values() const { return values_; }
  /// The component these belong to, as messages name it ("model 'ease'"); set by resolve_params.
  const std::string& component() const { return component_; }
  void set_component(std::string component) { component_ = std::move(component); }

 private:
  std::map<std::string, ParamValue, std::less<>> values_;
  std::string component_;
};

/// Validates raw user values against a schema and fills in defaults.
///
/// `component` names the plugin in messages (e.g. "model 'ease'"). Throws ParamError naming the
/// key for an unknown key (with a did-you-mean suggestion), a wrong type, a value out of range or
/// not among the choices, a list of the wrong length (including `same_length_as`).
Params resolve_params(const std::vector<ParamSpec>& schema,
                      const std::map<std::string, ParamValue>& raw, std::string_view component);

/// Applies the schema's `only_when` relations to resolved params: a parameter whose `other` is
/// empty is set to its default. Returns one `why` per parameter that changed.
std::vector<std::string> apply_relevance(const std::vector<ParamSpec>& schema, Params& params);

/// Checks a schema's own declarations (what registration refuses): valid and unique names, help
/// text, bounds that hold a value, choices only on string parameters, length rules only on
/// lists, references and relations that name declared parameters, defaults within their own
/// declaration. Returns why the first bad one is refused ("parameter 'x' ..."), or nothing.
std::optional<std::string> schema_problem(const std::vector<ParamSpec>& schema);

/// Checks one value against its spec, converting int to real where a real is expected.
/// Throws ParamError naming `component` and the key.
ParamValue check_param(const ParamSpec& spec, const ParamValue& value, std::string_view component);

/// Parses command-line text ("500", "true", "a,b", "[a, b]", "[1.0, 2]") into a value of the
/// spec's type.
ParamValue parse_param_text(const ParamSpec& spec, std::string_view text,
                            std::string_view component);

/// The closest candidate to `name` by edit distance, if one is reasonably close.
std::optional<std::string> did_you_mean(std::string_view name,
                                        const std::vector<std::string>& candidates);

}  // namespace recrun
