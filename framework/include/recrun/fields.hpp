// recrun/fields.hpp — every hyperparameter declared once, bound to a member of an options struct.
//
//   struct EaseOptions {
//     double lambda = 500.0;   // the member's initialiser is the parameter's default
//     Precision precision = Precision::f32;
//   };
//   void declare(recrun::Fields<EaseOptions>& f) {
//     f.add("lambda", &EaseOptions::lambda, "L2 weight on the Gram diagonal").at_least(0);
//     f.choice("dtype", &EaseOptions::precision, {{"float32", Precision::f32},
//                                                 {"float64", Precision::f64}}, "solve precision");
//   }
//
// From these declarations come the schema (`recrun plugins`, sweep validation, what results.db
// stores) and the filled struct that a model's factory receives: plugin code never looks a
// parameter up by name. Registry::add_model<Options>() runs the declarations and checks them
// (defaults within their own bounds or choices, no reserved names, no duplicates).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "recrun/error.hpp"
#include "recrun/params.hpp"

namespace recrun {

namespace detail {
template <class T>
inline constexpr bool always_false = false;

// How a member type maps to a parameter value.
template <class T>
ParamType param_type_of() {
  if constexpr (std::is_same_v<T, bool>) return ParamType::boolean;
  else if constexpr (std::is_integral_v<T>) return ParamType::integer;
  else if constexpr (std::is_floating_point_v<T>) return ParamType::real;
  else if constexpr (std::is_same_v<T, std::string>) return ParamType::string;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return ParamType::string_list;
  else if constexpr (std::is_same_v<T, std::vector<double>>) return ParamType::real_list;
  else static_assert(always_false<T>, "a field must be bool, an integer, a floating-point number, "
                                      "std::string, std::vector<std::string> or "
                                      "std::vector<double> (use choice() for an enum)");
}

template <class T>
ParamValue to_param_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) return v;
  else if constexpr (std::is_integral_v<T>) return static_cast<std::int64_t>(v);
  else if constexpr (std::is_floating_point_v<T>) return static_cast<double>(v);
  else return v;
}

// Values reaching a setter were validated against the spec (type, bounds), so these casts are
// exact except for integers narrower than int64, which are range-checked here.
template <class T>
T from_param_value(const ParamValue& v, const std::string& name) {
  if constexpr (std::is_same_v<T, bool>) {
    return std::get<bool>(v);
  } else if constexpr (std::is_integral_v<T>) {
    const std::int64_t i = std::get<std::int64_t>(v);
    if (!std::in_range<T>(i))
      throw ParamError("parameter '" + name + "' = " + std::to_string(i) +
                       " does not fit the option's integer type");
    return static_cast<T>(i);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<T>(*i);
    return static_cast<T>(std::get<double>(v));
  } else {
    return std::get<T>(v);
  }
}
}  // namespace detail

/// The declarations of an options struct's hyperparameters: one add() (or choice()) per field.
///
/// Defaults are read from a prototype object (a value-initialised `Opts{}` for a model's own
/// options), so the member's initialiser is the single source of the default.
template <class Opts>
class Fields {
 public:
  /// A declared field, for chaining bounds and choices onto add().
  class Field {
   public:
    /// Inclusive bounds (numeric fields).
    Field& range(double lo, double hi) { spec().range(lo, hi); return *this; }
    /// Inclusive lower bound.
    Field& at_least(double lo) { spec().at_least(lo); return *this; }
    /// Inclusive upper bound.
    Field& at_most(double hi) { spec().at_most(hi); return *this; }
    /// Allowed values of a string field, or of every element of a list field.
    Field& one_of(std::vector<std::string> values) { spec().one_of(std::move(values)); return *this; }
    /// The values (each element of a list) name plugins of `kind`; `reserved` values name none
    /// ("none"). The host checks the names against the loaded plugins.
    Field& refers_to(ComponentKind kind, std::vector<std::string> reserved = {}) {
      spec().refers_to = ParamReference{.kind = kind, .member_refs = false,
                                        .reserved = std::move(reserved)};
      return *this;
    }
    /// The values are member references (recrun/member_ref.hpp) to runs of `kind` plugins.
    Field& refers_to_members(ComponentKind kind = ComponentKind::model) {
      spec().refers_to = ParamReference{.kind = kind, .member_refs = true, .reserved = {}};
      return *this;
    }
    /// This field only matters while the field `other` is non-empty; otherwise the host sets it
    /// to its default and says `why`.
    Field& only_when(std::string other, std::string why) {
      spec().only_when = ParamRelevance{.other = std::move(other), .why = std::move(why)};
      return *this;
    }
    /// Inclusive bounds on a list's length.
    Field& length(std::size_t lo, std::size_t hi) {
      spec().min_length = lo;
      spec().max_length = hi;
      return *this;
    }
    /// A non-empty list must have as many elements as the list field `other`.
    Field& same_length_as(std::string other) {
      spec().same_length_as = std::move(other);
      return *this;
    }
    /// Kept for old experiment files only: `instead` says what to use now.
    Field& deprecated(std::string instead) {
      spec().deprecated = std::move(instead);
      return *this;
    }

   private:
    friend class Fields;
    Field(Fields* owner, std::size_t index) : owner_(owner), index_(index) {}
    ParamSpec& spec() { return owner_->entries_[index_].spec; }
    Fields* owner_;
    std::size_t index_;
  };

  /// Declarations read their defaults from `prototype`, which must outlive the declaring calls.
  explicit Fields(const Opts& prototype) : prototype_(&prototype) {}

  /// Declares the parameter `name`, bound to `member`; its default is the prototype's value.
  template <class M>
  Field add(std::string name, M Opts::*member, std::string help) {
    Entry e;
    e.spec.name = std::move(name);
    e.spec.type = detail::param_type_of<M>();
    e.spec.default_value = detail::to_param_value(prototype_->*member);
    e.spec.help = std::move(help);
    e.assign = [member, key = e.spec.name](Opts& o, const ParamValue& v) {
      o.*member = detail::from_param_value<M>(v, key);
    };
    entries_.push_back(std::move(e));
    return Field(this, entries_.size() - 1);
  }

  /// Declares a string parameter whose named values map to `member`'s values (an enum, say).
  /// The prototype's value must be one of them: its name is the default.
  template <class M>
  Field choice(std::string name, M Opts::*member, std::vector<std::pair<std::string, M>> values,
               std::string help) {
    Entry e;
    e.spec.name = std::move(name);
    e.spec.type = ParamType::string;
    e.spec.help = std::move(help);
    bool found = false;
    for (const auto& [text, value] : values) {
      e.spec.choices.push_back(text);
      if (!found && value == prototype_->*member) e.spec.default_value = text, found = true;
    }
    if (!found) {
      // Registration refuses this (the default is not among the choices).
      e.spec.default_value = std::string("<not among the choices>");
    }
    e.assign = [member, values = std::move(values)](Opts& o, const ParamValue& v) {
      const auto& text = std::get<std::string>(v);
      for (const auto& [t, value] : values)
        if (t == text) { o.*member = value; return; }
    };
    entries_.push_back(std::move(e));
    return Field(this, entries_.size() - 1);
  }

  /// Declares the fields of a nested options struct (for example OptimizerOptions), with
  /// `declare(Fields<Sub>&)`; their defaults come from this prototype's member.
  template <class Sub, class Declare>
  void nest(Sub Opts::*member, Declare&& declare) {
    Fields<Sub> inner(prototype_->*member);
    declare(inner);
    for (auto& sub : inner.take_entries()) {
      Entry e;
      e.spec = std::move(sub.spec);
      e.assign = [member, assign = std::move(sub.assign)](Opts& o, const ParamValue& v) {
        assign(o.*member, v);
      };
      entries_.push_back(std::move(e));
    }
  }

  /// The schema: one ParamSpec per declared field, in declaration order.
  std::vector<ParamSpec> specs() const {
    std::vector<ParamSpec> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.spec);
    return out;
  }

  /// Sets every declared field of `out` from resolved params (see resolve_params).
  void assign(Opts& out, const Params& params) const {
    for (const auto& e : entries_) e.assign(out, params.at(e.spec.name));
  }

  /// A value-initialised Opts with every declared field set from resolved params.
  Opts bind(const Params& params) const {
    Opts out{};
    assign(out, params);
    return out;
  }

 private:
  template <class>
  friend class Fields;
  struct Entry {
    ParamSpec spec;
    std::function<void(Opts&, const ParamValue&)> assign;
  };
  std::vector<Entry> take_entries() { return std::move(entries_); }

  const Opts* prototype_;
  std::vector<Entry> entries_;
};

}  // namespace recrun
