#include "recrun/params.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "recrun/error.hpp"
#include "sdk/shared_util.hpp"

namespace recrun {
namespace {

ParamSpec make_spec(std::string name, ParamType type, ParamValue def, std::string help) {
  ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(def);
  spec.help = std::move(help);
  return spec;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<std::string>& v) {
  return fmt::format("{}", fmt::join(v, ", "));
}

}  // namespace

ParamSpec int_param(std::string name, std::int64_t d, std::string help) {
  return make_spec(std::move(name), ParamType::integer, d, std::move(help));
}
ParamSpec real_param(std::string name, double d, std::string help) {
  return make_spec(std::move(name), ParamType::real, d, std::move(help));
}
ParamSpec bool_param(std::string name, bool d, std::string help) {
  return make_spec(std::move(name), ParamType::boolean, d, std::move(help));
}
ParamSpec string_param(std::string name, std::string d, std::string help) {
  return make_spec(std::move(name), ParamType::string, std::move(d), std::move(help));
}
ParamSpec list_param(std::string name, std::vector<std::string> d, std::string help) {
  return make_spec(std::move(name), ParamType::string_list, std::move(d), std::move(help));
}
ParamSpec real_list_param(std::string name, std::vector<double> d, std::string help) {
  return make_spec(std::move(name), ParamType::real_list, std::move(d), std::move(help));
}

bool is_empty_value(const ParamValue& value) {
  struct Visitor {
    bool operator()(bool b) const { return !b; }
    bool operator()(std::int64_t i) const { return i == 0; }
    bool operator()(double d) const { return d == 0; }
    bool operator()(const std::string& s) const { return s.empty(); }
    bool operator()(const std::vector<std::string>& l) const { return l.empty(); }
    bool operator()(const std::vector<double>& l) const { return l.empty(); }
  };
  return std::visit(Visitor{}, value);
}

std::string_view type_name(ParamType type) {
  switch (type) {
    case ParamType::integer: return "int";
    case ParamType::real: return "float";
    case ParamType::boolean: return "bool";
    case ParamType::string: return "string";
    case ParamType::string_list: return "list";
    case ParamType::real_list: return "float list";
  }
  return "?";
}

ParamType type_of(const ParamValue& v) {
  switch (v.index()) {
    case 0: return ParamType::boolean;
    case 1: return ParamType::integer;
    case 2: return ParamType::real;
    case 3: return ParamType::string;
    case 4: return ParamType::string_list;
    default: return ParamType::real_list;
  }
}

std::string to_string(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    // Shortest text that reads back to the same double: stable keys across runs.
    std::string operator()(double d) const { return fmt::format("{}", d); }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const std::vector<std::string>& l) const {
      return fmt::format("[{}]", fmt::join(l, ","));
    }
    std::string operator()(const std::vector<double>& l) const {
      return fmt::format("[{}]", fmt::join(l, ","));
    }
  };
  return std::visit(Visitor{}, value);
}

std::optional<std::string> did_you_mean(std::string_view name,
                                        const std::vector<std::string>& candidates) {
  if (name.empty() || name.size() > 256) return std::nullopt;
  // A name that is the start of a longer one ("hidden" for "hidden_units"), or the other way
  // round, is the likeliest meaning.
  if (name.size() >= 3)
    for (const auto& c : candidates)
      if (c.size() >= 3 && c != name && (c.starts_with(name) || name.starts_with(c))) return c;
  // Otherwise the nearest by edit distance, if it is near for the name's length: one edit for
  // names of up to three characters (so "lr" never suggests "k"), a third of it beyond.
  const std::size_t limit = name.size() <= 3 ? 1 : std::max<std::size_t>(2, name.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto& c : candidates) {
    const std::size_t d = util::edit_distance(name, c);
    if (d >= c.size() || d >= name.size()) continue;  // shares nothing worth the name
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (best && best_distance <= limit) return best;
  return std::nullopt;
}

ParamValue check_param(const ParamSpec& spec, const ParamValue& value, std::string_view component) {
  const auto fail = [&](const std::string& why) -> ParamError {
    return ParamError(fmt::format("{}: parameter '{}' {}", component, spec.name, why));
  };
  ParamValue v = value;
  const ParamType got = type_of(v);
  if (spec.type == ParamType::real && got == ParamType::integer) {
    v = static_cast<double>(std::get<std::int64_t>(v));
  } else if (spec.type == ParamType::integer && got == ParamType::real) {
    const double d = std::get<double>(v);
    if (d != std::floor(d)) throw fail(fmt::format("must be an integer, got {}", d));
    v = static_cast<std::int64_t>(d);
  } else if (spec.type == ParamType::string_list && got == ParamType::string) {
    // A single string where a list is expected is a one-element list, unless empty.
    const auto& s = std::get<std::string>(v);
    v = s.empty() ? std::vector<std::string>{} : std::vector<std::string>{s};
  } else if (spec.type == ParamType::real_list && got == ParamType::string_list &&
             std::get<std::vector<std::string>>(v).empty()) {
    v = std::vector<double>{};  // [] is read as an empty list of strings
  } else if (spec.type == ParamType::real_list &&
             (got == ParamType::real || got == ParamType::integer)) {
    // A single number where a list is expected is a one-element list.
    v = std::vector<double>{got == ParamType::real ? std::get<double>(v)
                                                   : static_cast<double>(std::get<std::int64_t>(v))};
  } else if (got != spec.type) {
    throw fail(fmt::format("must be {}, got {} ({})", type_name(spec.type), type_name(got),
                           to_string(v)));
  }
  if (spec.type == ParamType::integer || spec.type == ParamType::real) {
    const double d = spec.type == ParamType::integer
                         ? static_cast<double>(std::get<std::int64_t>(v))
                         : std::get<double>(v);
    if (!std::isfinite(d)) throw fail("must be finite");
    if (spec.min && d < *spec.min) throw fail(fmt::format("must be >= {}, got {}", *spec.min, d));
    if (spec.max && d > *spec.max) throw fail(fmt::format("must be <= {}, got {}", *spec.max, d));
  }
  if (spec.type == ParamType::real_list) {
    const auto& list = std::get<std::vector<double>>(v);
    for (std::size_t i = 0; i < list.size(); ++i) {
      const double d = list[i];
      if (!std::isfinite(d)) throw fail(fmt::format("element {} must be finite", i + 1));
      if (spec.min && d < *spec.min)
        throw fail(fmt::format("element {} must be >= {}, got {}", i + 1, *spec.min, d));
      if (spec.max && d > *spec.max)
        throw fail(fmt::format("element {} must be <= {}, got {}", i + 1, *spec.max, d));
    }
  }
  if (spec.type == ParamType::string_list || spec.type == ParamType::real_list) {
    const std::size_t n = spec.type == ParamType::string_list
                              ? std::get<std::vector<std::string>>(v).size()
                              : std::get<std::vector<double>>(v).size();
    if (spec.min_length && n < *spec.min_length)
      throw fail(fmt::format("must have at least {} element{}, got {}", *spec.min_length,
                             *spec.min_length == 1 ? "" : "s", n));
    if (spec.max_length && n > *spec.max_length)
      throw fail(fmt::format("must have at most {} element{}, got {}", *spec.max_length,
                             *spec.max_length == 1 ? "" : "s", n));
  }
  const auto check_choice = [&](const std::string& s) {
    if (spec.choices.empty()) return;
    if (std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end()) return;
    std::string hint;
    if (auto m = did_you_mean(s, spec.choices)) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw fail(fmt::format("has no value '{}'{}; valid values: {}", s, hint, join(spec.choices)));
  };
  if (spec.type == ParamType::string) check_choice(std::get<std::string>(v));
  if (spec.type == ParamType::string_list) {
    const auto& list = std::get<std::vector<std::string>>(v);
    for (const auto& s : list) check_choice(s);
    for (std::size_t i = 0; i < list.size(); ++i)
      for (std::size_t j = i + 1; j < list.size(); ++j)
        if (list[i] == list[j]) throw fail(fmt::format("lists '{}' twice", list[i]));
  }
  return v;
}

Params resolve_params(const std::vector<ParamSpec>& schema,
                      const std::map<std::string, ParamValue>& raw, std::string_view component) {
  std::vector<std::string> names;
  for (const auto& s : schema) names.push_back(s.name);
  for (const auto& [key, value] : raw) {
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    std::string hint;
    if (auto m = did_you_mean(key, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ParamError(fmt::format("{}: unknown parameter '{}'{}; known parameters: {}", component,
                                 key, hint, names.empty() ? "(none)" : join(names)));
  }
  Params out;
  out.set_component(std::string(component));
  for (const auto& spec : schema) {
    const auto it = raw.find(spec.name);
    out.set(spec.name, check_param(spec, it == raw.end() ? spec.default_value : it->second,
                                   component));
  }
  const auto length = [](const ParamValue& v) -> std::optional<std::size_t> {
    if (const auto* l = std::get_if<std::vector<std::string>>(&v)) return l->size();
    if (const auto* l = std::get_if<std::vector<double>>(&v)) return l->size();
    return std::nullopt;
  };
  for (const auto& spec : schema) {
    if (spec.same_length_as.empty() || !out.contains(spec.same_length_as)) continue;
    const auto mine = length(out.at(spec.name));
    const auto theirs = length(out.at(spec.same_length_as));
    if (!mine || !theirs || *mine == 0 || *mine == *theirs) continue;
    throw ParamError(fmt::format("{}: parameter '{}' has {} element{} but '{}' has {}; give one "
                                 "per element of '{}' (or leave '{}' empty)",
                                 component, spec.name, *mine, *mine == 1 ? "" : "s",
                                 spec.same_length_as, *theirs, spec.same_length_as, spec.name));
  }
  return out;
}

std::vector<std::string> apply_relevance(const std::vector<ParamSpec>& schema, Params& params) {
  std::vector<std::string> notes;
  for (const auto& spec : schema) {
    if (!spec.only_when || !params.contains(spec.name) || !params.contains(spec.only_when->other))
      continue;
    if (!is_empty_value(params.at(spec.only_when->other))) continue;
    if (to_string(params.at(spec.name)) == to_string(spec.default_value)) continue;
    params.set(spec.name, spec.default_value);
    notes.push_back(spec.only_when->why);
  }
  return notes;
}

namespace {
bool valid_param_name(std::string_view name) {
  if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}
}  // namespace

std::optional<std::string> schema_problem(const std::vector<ParamSpec>& schema) {
  std::vector<std::string> seen;
  const auto declared = [&](const std::string& name) -> const ParamSpec* {
    for (const auto& s : schema)
      if (s.name == name) return &s;
    return nullptr;
  };
  const auto is_list = [](ParamType t) {
    return t == ParamType::string_list || t == ParamType::real_list;
  };
  for (const auto& p : schema) {
    const auto fail = [&](const std::string& why) {
      return fmt::format("parameter '{}' {}", p.name, why);
    };
    if (!valid_param_name(p.name))
      return fail("is not a valid name (lower-case letters, digits and '_', starting with a "
                  "letter)");
    if (std::find(seen.begin(), seen.end(), p.name) != seen.end()) return fail("is declared twice");
    seen.push_back(p.name);
    if (p.help.empty()) return fail("has no help text");
    if (p.min && p.max && *p.min > *p.max)
      return fail(fmt::format("has bounds [{}, {}] that contain no value", *p.min, *p.max));
    if (!p.choices.empty() && p.type != ParamType::string && p.type != ParamType::string_list)
      return fail("has choices but is not a string or list parameter");
    if ((p.min_length || p.max_length || !p.same_length_as.empty()) && !is_list(p.type))
      return fail("has a length rule but is not a list parameter");
    if (p.min_length && p.max_length && *p.min_length > *p.max_length)
      return fail(fmt::format("has length bounds [{}, {}] that contain no length", *p.min_length,
                              *p.max_length));
    if (!p.same_length_as.empty()) {
      const ParamSpec* other = declared(p.same_length_as);
      if (!other || !is_list(other->type) || other == &p)
        return fail(fmt::format("has the same length as '{}', which is not another list "
                                "parameter of this component",
                                p.same_length_as));
    }
    if (p.refers_to && p.type != ParamType::string && p.type != ParamType::string_list)
      return fail("refers to plugins but is not a string or list-of-strings parameter");
    if (p.only_when) {
      const ParamSpec* other = declared(p.only_when->other);
      if (!other || other == &p)
        return fail(fmt::format("only matters when '{}' is set, which is not another parameter "
                                "of this component",
                                p.only_when->other));
      if (p.only_when->why.empty()) return fail("has an only_when relation without a reason");
    }
    try {
      check_param(p, p.default_value, "default");
    } catch (const ParamError& e) {
      // "default: parameter 'x' must be >= 0, got -1" -> "has a default that must be >= 0, ..."
      std::string why = e.what();
      const std::string head = fmt::format("default: parameter '{}' ", p.name);
      if (why.starts_with(head)) why = why.substr(head.size());
      return fail(fmt::format("has a default ({}) outside its own declaration: {}",
                              to_string(p.default_value), why));
    }
  }
  return std::nullopt;
}

ParamValue parse_param_text(const ParamSpec& spec, std::string_view text,
                            std::string_view component) {
  const std::string_view t = trim(text);
  const auto fail = [&](std::string_view expected) {
    return ParamError(fmt::format("{}: parameter '{}' must be {}, got '{}'", component, spec.name,
                                  expected, t));
  };
  switch (spec.type) {
    case ParamType::integer: {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec != std::errc{} || p != t.data() + t.size()) throw fail("an integer");
      return check_param(spec, v, component);
    }
    case ParamType::real: {
      double v = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec != std::errc{} || p != t.data() + t.size()) throw fail("a number");
      return check_param(spec, v, component);
    }
    case ParamType::boolean:
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      throw fail("true or false");
    case ParamType::string: {
      std::string_view s = t;
      if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
        s = s.substr(1, s.size() - 2);
      return check_param(spec, std::string(s), component);
    }
    case ParamType::string_list: {
      std::string_view s = t;
      if (!s.empty() && s.front() == '[') {
        if (s.back() != ']') throw fail("a list like [a,b]");
        s = s.substr(1, s.size() - 2);
      }
      std::vector<std::string> list;
      while (!trim(s).empty()) {
        const auto comma = s.find(',');
        std::string_view item = trim(s.substr(0, comma));
        if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') &&
            item.back() == item.front())
          item = item.substr(1, item.size() - 2);
        if (!item.empty()) list.emplace_back(item);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
      }
      return check_param(spec, list, component);
    }
    case ParamType::real_list: {
      std::string_view s = t;
      if (!s.empty() && s.front() == '[') {
        if (s.back() != ']') throw fail("a list of numbers like [1.0, 2.5]");
        s = s.substr(1, s.size() - 2);
      }
      std::vector<double> list;
      while (!trim(s).empty()) {
        const auto comma = s.find(',');
        const std::string_view item = trim(s.substr(0, comma));
        double v = 0;
        auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc{} || p != item.data() + item.size())
          throw fail("a list of numbers like [1.0, 2.5]");
        list.push_back(v);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
      }
      return check_param(spec, list, component);
    }
  }
  throw fail("valid");
}

// --- Params ----------------------------------------------------------------------------------

const ParamValue& Params::at(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end())
    throw ParamError(fmt::format("{}parameter '{}' is not set (was it declared in the schema?)",
                                 component_.empty() ? "" : component_ + ": ", name));
  return it->second;
}

bool Params::contains(std::string_view name) const { return values_.find(name) != values_.end(); }

namespace {
template <class T>
const T& typed(const Params& p, std::string_view name, std::string_view expected) {
  const ParamValue& v = p.at(name);
  if (const T* t = std::get_if<T>(&v)) return *t;
  throw ParamError(fmt::format("{}parameter '{}' is {}, not {}",
                               p.component().empty() ? "" : p.component() + ": ", name,
                               type_name(type_of(v)), expected));
}
}  // namespace

std::int64_t Params::get_int(std::string_view name) const {
  return typed<std::int64_t>(*this, name, "int");
}
double Params::get_real(std::string_view name) const {
  const ParamValue& v = at(name);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return typed<double>(*this, name, "float");
}
bool Params::get_bool(std::string_view name) const { return typed<bool>(*this, name, "bool"); }
const std::string& Params::get_string(std::string_view name) const {
  return typed<std::string>(*this, name, "string");
}
const std::vector<std::string>& Params::get_list(std::string_view name) const {
  return typed<std::vector<std::string>>(*this, name, "list");
}
const std::vector<double>& Params::get_real_list(std::string_view name) const {
  return typed<std::vector<double>>(*this, name, "float list");
}

}  // namespace recrun
