// Search spaces: parsing and checking distributions and [group.search], and drawing
// configurations from a space.
#include "sweep/search_space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace recrun::sweep {

std::string_view to_string(DistKind kind) {
  switch (kind) {
    case DistKind::uniform: return "uniform";
    case DistKind::log_uniform: return "log_uniform";
    case DistKind::int_uniform: return "int_uniform";
    case DistKind::choice: return "choice";
  }
  return "?";
}

std::string_view to_string(SearchMethod method) {
  switch (method) {
    case SearchMethod::grid: return "grid";
    case SearchMethod::random: return "random";
    case SearchMethod::tpe: return "tpe";
  }
  return "?";
}

std::string_view to_string(PrunerKind pruner) {
  switch (pruner) {
    case PrunerKind::none: return "none";
    case PrunerKind::asha: return "asha";
    case PrunerKind::median: return "median";
  }
  return "?";
}

namespace {

Origin at(const toml::node& n, const Origin& where) {
  if (!where.override_text.empty()) return where;
  Origin o = where;
  o.line = n.source().begin.line;
  o.column = n.source().begin.column;
  return o;
}

std::string_view type_text(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

ParamValue toml_value(const toml::node& n, const Origin& o, const std::string& key) {
  switch (n.type()) {
    case toml::node_type::integer: return n.as_integer()->get();
    case toml::node_type::floating_point: return n.as_floating_point()->get();
    case toml::node_type::boolean: return n.as_boolean()->get();
    case toml::node_type::string: return n.as_string()->get();
    case toml::node_type::array: {
      std::vector<std::string> list;
      for (const auto& e : *n.as_array()) {
        const auto* s = e.as_string();
        if (!s)
          throw ExperimentError(at(e, o), fmt::format("'{}': a choice that is a list must list "
                                                      "strings, got {}",
                                                      key, type_text(e)));
        list.push_back(s->get());
      }
      return list;
    }
    default:
      throw ExperimentError(o, fmt::format("'{}': a choice cannot be {}", key, type_text(n)));
  }
}

const std::vector<std::string>& kind_names() {
  static const std::vector<std::string> names = {"uniform", "log_uniform", "int_uniform", "choice"};
  return names;
}

}  // namespace

Distribution parse_distribution(const std::string& key, const toml::table& table,
                                const Origin& where) {
  Distribution d;
  d.key = key;
  d.origin = where;
  if (table.size() != 1)
    throw ExperimentError(where, fmt::format("'{}' must be one distribution, such as {{ "
                                             "log_uniform = [1e-4, 1e-2] }}; got {} keys (kinds: "
                                             "{})",
                                             key, table.size(), fmt::join(kind_names(), ", ")));
  const auto first = table.begin();  // its proxy pair lives in the iterator
  const auto& [k, v] = *first;
  const std::string kind(k.str());
  const Origin ko = at(v, where);
  if (kind == "choice") {
    d.kind = DistKind::choice;
    const auto* list = v.as_array();
    if (!list || list->empty())
      throw ExperimentError(ko, fmt::format("'{}': choice must be a non-empty list of values", key));
    for (const auto& e : *list) d.choices.push_back(RawValue{toml_value(e, at(e, where), key),
                                                             std::nullopt, at(e, where)});
    return d;
  }
  if (kind == "uniform") d.kind = DistKind::uniform;
  else if (kind == "log_uniform") d.kind = DistKind::log_uniform;
  else if (kind == "int_uniform") d.kind = DistKind::int_uniform;
  else {
    std::string hint;
    if (auto m = did_you_mean(kind, kind_names())) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ExperimentError(at(v, where), fmt::format("'{}': unknown distribution '{}'{}; known: {}",
                                                    key, kind, hint, fmt::join(kind_names(), ", ")));
  }
  const auto* bounds = v.as_array();
  if (!bounds || bounds->size() != 2)
    throw ExperimentError(ko, fmt::format("'{}': {} takes two bounds, [low, high]", key, kind));
  double b[2] = {0, 0};
  for (std::size_t i = 0; i < 2; ++i) {
    const toml::node& e = *bounds->get(i);
    if (const auto* n = e.as_integer()) {
      b[i] = static_cast<double>(n->get());
    } else if (const auto* f = e.as_floating_point()) {
      if (d.kind == DistKind::int_uniform)
        throw ExperimentError(at(e, where), fmt::format("'{}': int_uniform bounds must be "
                                                        "integers, got {}",
                                                        key, f->get()));
      b[i] = f->get();
    } else {
      throw ExperimentError(at(e, where), fmt::format("'{}': a bound of {} must be a number, got {}",
                                                      key, kind, type_text(e)));
    }
    if (!std::isfinite(b[i]))
      throw ExperimentError(at(e, where), fmt::format("'{}': bound {} is not finite", key, b[i]));
    if (d.kind == DistKind::log_uniform && !(b[i] > 0))
      throw ExperimentError(at(e, where), fmt::format("'{}': log_uniform bounds must be > 0 (it "
                                                      "draws uniformly in log space), got {}",
                                                      key, b[i]));
  }
  const bool ordered = d.kind == DistKind::int_uniform ? b[0] <= b[1] : b[0] < b[1];
  if (!ordered)
    throw ExperimentError(ko, fmt::format("'{}': {} bounds must be [low, high] with low {} high, "
                                          "got [{}, {}]",
                                          key, kind, d.kind == DistKind::int_uniform ? "<=" : "<",
                                          b[0], b[1]));
  d.low = b[0];
  d.high = b[1];
  return d;
}

namespace {

const std::vector<std::string>& search_keys() {
  static const std::vector<std::string> keys = {"method",      "trials",           "seed",
                                                "startup_trials", "pruner",        "min_epochs",
                                                "reduction_factor", "max_epochs"};
  return keys;
}

std::int64_t integer_of(const toml::node& v, const Origin& o, const std::string& key,
                        std::int64_t lo, std::int64_t hi) {
  const auto* i = v.as_integer();
  if (!i)
    throw ExperimentError(o, fmt::format("search.{} must be an integer, got {}", key, type_text(v)));
  if (i->get() < lo || i->get() > hi)
    throw ExperimentError(o, fmt::format("search.{} must be between {} and {}, got {}", key, lo, hi,
                                         i->get()));
  return i->get();
}

std::string string_of(const toml::node& v, const Origin& o, const std::string& key,
                      const std::vector<std::string>& allowed) {
  const auto* s = v.as_string();
  if (!s)
    throw ExperimentError(o, fmt::format("search.{} must be a string, got {}", key, type_text(v)));
  if (std::find(allowed.begin(), allowed.end(), s->get()) == allowed.end()) {
    std::string hint;
    if (auto m = did_you_mean(s->get(), allowed)) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ExperimentError(o, fmt::format("search.{} '{}' is not one of {}{}", key, s->get(),
                                         fmt::join(allowed, ", "), hint));
  }
  return s->get();
}

}  // namespace

void set_search_key(SearchSpec& spec, const std::string& key, const toml::node& v,
                    const Origin& o) {
  if (key == "method") {
    const auto m = string_of(v, o, key, {"grid", "random", "tpe"});
    spec.method = m == "grid" ? SearchMethod::grid : m == "random" ? SearchMethod::random
                                                                   : SearchMethod::tpe;
  } else if (key == "trials") {
    spec.trials = integer_of(v, o, key, 1, 100000);
  } else if (key == "seed") {
    spec.seed = integer_of(v, o, key, 0, std::numeric_limits<std::int64_t>::max());
  } else if (key == "startup_trials") {
    spec.startup_trials = integer_of(v, o, key, 1, 100000);
  } else if (key == "pruner") {
    const auto p = string_of(v, o, key, {"none", "asha", "median"});
    spec.pruner = p == "none" ? PrunerKind::none : p == "asha" ? PrunerKind::asha
                                                              : PrunerKind::median;
  } else if (key == "min_epochs") {
    spec.min_epochs = integer_of(v, o, key, 1, 1000000);
  } else if (key == "reduction_factor") {
    spec.reduction_factor = integer_of(v, o, key, 2, 1000);
  } else if (key == "max_epochs") {
    spec.max_epochs = integer_of(v, o, key, 1, 1000000);
  } else {
    std::string hint;
    if (auto m = did_you_mean(key, search_keys())) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ExperimentError(o, fmt::format("unknown key '{}' in [group.search]{}; known keys: {}", key,
                                         hint, fmt::join(search_keys(), ", ")));
  }
  spec.origins[key] = o;
}

SearchSpec parse_search(const toml::table& table, const Origin& where) {
  SearchSpec spec;
  spec.origin = where;
  for (const auto& [k, v] : table) {
    Origin ko = where;
    if (ko.override_text.empty()) {
      ko.line = k.source().begin.line;
      ko.column = k.source().begin.column;
    }
    set_search_key(spec, std::string(k.str()), v, ko);
  }
  return spec;
}

void check_search(const Group& g) {
  const SearchSpec spec = g.search.value_or(SearchSpec{});
  const auto where = [&](const std::string& key) {
    const auto it = spec.origins.find(key);
    return it != spec.origins.end() ? it->second : (g.search ? spec.origin : g.origin);
  };
  const std::string group = fmt::format("group '{}'", g.name);
  if (spec.method == SearchMethod::grid) {
    if (!g.space.empty()) {
      const Distribution& d = g.space.front();
      throw ExperimentError(
          d.origin, fmt::format("{}: '{}' is a {} distribution, which a grid cannot enumerate: add "
                                "[group.search] with method = \"random\" or \"tpe\" and trials = "
                                "N, or write a list of values",
                                group, d.key, to_string(d.kind)));
    }
    if (spec.origins.count("trials"))
      throw ExperimentError(where("trials"),
                            fmt::format("{}: search.trials applies to method = \"random\" or "
                                        "\"tpe\"; a grid runs every point",
                                        group));
  } else {
    if (spec.trials < 1)
      throw ExperimentError(where("method"),
                            fmt::format("{}: method = \"{}\" needs search.trials, the number of "
                                        "configurations to try",
                                        group, to_string(spec.method)));
    if (!g.sets.empty())
      throw ExperimentError(g.sets.front().origin,
                            fmt::format("{}: [[sets]] do not combine with method = \"{}\"; write "
                                        "them as a choice, or use a grid",
                                        group, to_string(spec.method)));
    if (g.space.empty() && g.grid.empty())
      throw ExperimentError(where("method"),
                            fmt::format("{}: method = \"{}\" has nothing to search: give [grid] "
                                        "distributions or lists",
                                        group, to_string(spec.method)));
  }
  if (spec.origins.count("startup_trials") && spec.method != SearchMethod::tpe)
    throw ExperimentError(where("startup_trials"),
                          fmt::format("{}: search.startup_trials applies to method = \"tpe\"", group));
  if (spec.pruner == PrunerKind::none) {
    for (const char* k : {"min_epochs", "reduction_factor", "max_epochs"})
      if (spec.origins.count(k))
        throw ExperimentError(where(k), fmt::format("{}: search.{} is a pruner setting: add "
                                                    "pruner = \"asha\" or \"median\"",
                                                    group, k));
  } else {
    if (spec.max_epochs > 0 && spec.max_epochs <= spec.min_epochs)
      throw ExperimentError(where("max_epochs"),
                            fmt::format("{}: search.max_epochs ({}) must exceed min_epochs ({}), or "
                                        "no trial could be pruned",
                                        group, spec.max_epochs, spec.min_epochs));
    if (spec.pruner == PrunerKind::median && spec.origins.count("reduction_factor") == 0) {
      // median: rungs are spaced by the same factor (default 3); nothing to check
    }
  }
  // A searched key belongs to the space alone.
  for (const auto& d : g.space) {
    if (const auto it = g.fixed.find(d.key); it != g.fixed.end())
      throw ExperimentError(d.origin, fmt::format("{}: '{}' is both a fixed parameter (line {}) and "
                                                  "searched; keep one",
                                                  group, d.key, it->second.origin.line));
    for (const auto& s : g.sets)
      if (s.values.count(d.key))
        throw ExperimentError(d.origin, fmt::format("{}: '{}' is both in a parameter set and "
                                                    "searched; keep one",
                                                    group, d.key));
  }
}

// ------------------------------------------------------------------------------ checks

namespace {

const ParamSpec* spec_of(const std::vector<ParamSpec>& schema, std::string_view name) {
  for (const auto& s : schema)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

Dim check_distribution(const Distribution& d, const std::vector<ParamSpec>& schema,
                       const std::string& component) {
  const ParamSpec* spec = spec_of(schema, d.key);
  if (!spec) {
    std::vector<std::string> names;
    for (const auto& s : schema) names.push_back(s.name);
    std::string hint;
    if (auto m = did_you_mean(d.key, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ExperimentError(d.origin, fmt::format("{}: cannot search '{}': the model has no such "
                                                "parameter{}; known parameters: {}",
                                                component, d.key, hint, fmt::join(names, ", ")));
  }
  Dim dim;
  dim.key = d.key;
  dim.kind = d.kind;
  dim.low = d.low;
  dim.high = d.high;
  dim.origin = d.origin;
  if (d.kind == DistKind::choice) {
    for (const auto& c : d.choices) {
      try {
        dim.choices.push_back(check_param(*spec, c.value, component));
      } catch (const Error& e) {
        throw ExperimentError(c.origin, e.what());
      }
    }
    return dim;
  }
  const bool numeric = spec->type == ParamType::integer || spec->type == ParamType::real;
  if (!numeric)
    throw ExperimentError(d.origin, fmt::format("{}: parameter '{}' is {} ({}), so {} cannot draw "
                                                "it; use choice = [...]",
                                                component, d.key, type_name(spec->type),
                                                spec->choices.empty()
                                                    ? std::string("not a number")
                                                    : fmt::format("one of {}", fmt::join(spec->choices, ", ")),
                                                to_string(d.kind)));
  dim.integer = spec->type == ParamType::integer;
  if (dim.integer && d.kind == DistKind::uniform)
    throw ExperimentError(d.origin, fmt::format("{}: parameter '{}' is an integer: use int_uniform "
                                                "(or log_uniform, whose draws are rounded)",
                                                component, d.key));
  if (dim.integer && d.kind == DistKind::log_uniform &&
      std::ceil(d.low) > std::floor(d.high))
    throw ExperimentError(d.origin, fmt::format("{}: log_uniform [{}, {}] holds no integer for "
                                                "integer parameter '{}'",
                                                component, d.low, d.high, d.key));
  // Both bounds must be values the parameter accepts.
  for (const double b : {d.low, d.high}) {
    const double v = dim.integer ? (b == d.low ? std::ceil(b) : std::floor(b)) : b;
    const ParamValue value = dim.integer ? ParamValue{static_cast<std::int64_t>(v)} : ParamValue{v};
    try {
      check_param(*spec, value, component);
    } catch (const Error& e) {
      throw ExperimentError(d.origin, fmt::format("{} (a bound of {} '{}')", e.what(),
                                                  to_string(d.kind), d.key));
    }
  }
  return dim;
}

// --------------------------------------------------------------------------------- drawing

SearchRng::SearchRng(std::uint64_t seed, std::uint64_t stream)
    : state_(seed * 0x9E3779B97F4A7C15ULL ^ (stream + 0x632BE59BD9B4E019ULL) * 0xD1B54A32D192ED03ULL) {
  next();
  next();
}

std::uint64_t SearchRng::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double SearchRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double SearchRng::normal() {
  // Box-Muller; 1 - u is in (0, 1], so the logarithm is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::size_t SearchRng::below(std::size_t n) {
  return n == 0 ? 0 : static_cast<std::size_t>(uniform() * static_cast<double>(n)) % n;
}

ParamValue draw(const Dim& dim, SearchRng& rng) {
  switch (dim.kind) {
    case DistKind::choice: return dim.choices[rng.below(dim.choices.size())];
    case DistKind::int_uniform: {
      const auto lo = static_cast<std::int64_t>(dim.low), hi = static_cast<std::int64_t>(dim.high);
      const auto v = lo + static_cast<std::int64_t>(rng.below(static_cast<std::size_t>(hi - lo + 1)));
      return dim.integer ? ParamValue{v} : ParamValue{static_cast<double>(v)};
    }
    case DistKind::uniform: {
      const double v = dim.low + (dim.high - dim.low) * rng.uniform();
      return std::min(v, dim.high);
    }
    case DistKind::log_uniform: {
      const double l = std::log(dim.low), h = std::log(dim.high);
      double v = std::exp(l + (h - l) * rng.uniform());
      v = std::clamp(v, dim.low, dim.high);
      if (!dim.integer) return v;
      return static_cast<std::int64_t>(std::clamp(std::round(v), std::ceil(dim.low), std::floor(dim.high)));
    }
  }
  return 0.0;
}

Point random_point(const std::vector<Dim>& space, std::int64_t seed, std::int64_t index) {
  SearchRng rng(static_cast<std::uint64_t>(seed), static_cast<std::uint64_t>(index));
  Point p;
  for (const auto& d : space) p[d.key] = draw(d, rng);
  return p;
}

std::string describe(const Dim& dim) {
  if (dim.kind == DistKind::choice) {
    std::vector<std::string> values;
    for (const auto& c : dim.choices) values.push_back(recrun::to_string(c));
    return fmt::format("{} ~ choice{{{}}}", dim.key, fmt::join(values, ", "));
  }
  return fmt::format("{} ~ {}[{}, {}]{}", dim.key, to_string(dim.kind), dim.low, dim.high,
                     dim.integer && dim.kind == DistKind::log_uniform ? " (rounded)" : "");
}

}  // namespace recrun::sweep
