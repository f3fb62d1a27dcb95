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
enum class ParamType { integer, real, boolean, string, string_list };

/// A parameter value. Integers are int64, reals double, lists are lists of strings.
using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::string>>;

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

  /// Sets inclusive bounds.
  ParamSpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  /// Sets an inclusive lower bound.
  ParamSpec& at_least(double lo) { min = lo; return *this; }
  /// Sets an inclusive upper bound.
  ParamSpec& at_most(double hi) { max = hi; return *this; }
  /// Restricts a string (or each element of a list) to these values.
  ParamSpec& one_of(std::vector<std::string> values) { choices = std::move(values); return *this; }
};

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

/// Name of a type as shown to users: "int", "float", "bool", "string", "list".
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
/// not among the choices.
Params resolve_params(const std::vector<ParamSpec>& schema,
                      const std::map<std::string, ParamValue>& raw, std::string_view component);

/// Checks one value against its spec, converting int to real where a real is expected.
/// Throws ParamError naming `component` and the key.
ParamValue check_param(const ParamSpec& spec, const ParamValue& value, std::string_view component);

/// Parses command-line text ("500", "true", "a,b", "[a, b]") into a value of the spec's type.
ParamValue parse_param_text(const ParamSpec& spec, std::string_view text,
                            std::string_view component);

/// The closest candidate to `name` by edit distance, if one is reasonably close.
std::optional<std::string> did_you_mean(std::string_view name,
                                        const std::vector<std::string>& candidates);

}  // namespace recrun
