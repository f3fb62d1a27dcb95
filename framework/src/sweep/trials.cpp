#include "sweep/trials.hpp"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "recrun/feature.hpp"
#include "sweep/search.hpp"

#include "trial/param_input.hpp"

namespace recrun::sweep {

std::string Trial::label() const {
  std::vector<std::string> parts;
  for (const auto& k : varying)
    if (params.contains(k)) parts.push_back(fmt::format("{}={}", k, recrun::to_string(params.at(k))));
  parts.push_back(fmt::format("seed={}", seed));
  return fmt::format("{}", fmt::join(parts, " "));
}

namespace {

const ParamSpec* find_spec(const std::vector<ParamSpec>& schema, std::string_view name) {
  for (const auto& s : schema)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> names_of(const std::vector<ParamSpec>& schema) {
  std::vector<std::string> out;
  for (const auto& s : schema) out.push_back(s.name);
  return out;
}

struct CheckedValue {
  ParamValue value;
  Origin origin;
};

class GroupExpander {
 public:
  GroupExpander(const Group& g, const Experiment& x, const Registry& registry)
      : g_(g), x_(x), registry_(registry) {}

  void expand(std::vector<Trial>& out) {
    const ModelInfo* info = nullptr;
    try {
      info = &registry_.model(g_.model);
    } catch (const Error& e) {
      throw ExperimentError(g_.model_origin, fmt::format("group '{}': {}", g_.name, e.what()));
    }
    schema_ = trial::full_schema(*info);
    component_ = fmt::format("group '{}': model '{}'", g_.name, g_.model);
    const auto wild_it = x_.wildcard_keys.find(g_.name);
    const std::set<std::string> wild =
        wild_it == x_.wildcard_keys.end() ? std::set<std::string>{} : wild_it->second;

    std::map<std::string, CheckedValue> fixed;
    for (const auto& [k, v] : g_.fixed) {
      if (wild.count(k) && !find_spec(schema_, k)) continue;  // '*.k' where this model lacks k
      fixed[k] = check(k, v);
    }
    std::vector<std::vector<std::map<std::string, CheckedValue>>> axes;
    std::vector<std::string> varying;
    // Explicit sets are one axis whose points set several keys at once.
    if (!g_.sets.empty()) {
      std::vector<std::map<std::string, CheckedValue>> points;
      for (const auto& s : g_.sets) {
        std::map<std::string, CheckedValue> p;
        for (const auto& [k, v] : s.values) {
          p[k] = check(k, v);
          if (std::find(varying.begin(), varying.end(), k) == varying.end()) varying.push_back(k);
        }
        points.push_back(std::move(p));
      }
      axes.push_back(std::move(points));
    }
    for (const auto& axis : g_.grid) {
      std::vector<std::map<std::string, CheckedValue>> points;
      for (const auto& v : axis.values) points.push_back({{axis.key, check(axis.key, v)}});
      axes.push_back(std::move(points));
      varying.push_back(axis.key);
    }

    const std::vector<std::int64_t>& seeds = g_.seeds ? *g_.seeds : x_.seeds;
    std::vector<std::size_t> index(axes.size(), 0);
    while (true) {
      std::map<std::string, CheckedValue> values = fixed;
      for (std::size_t a = 0; a < axes.size(); ++a)
        for (const auto& [k, v] : axes[a][index[a]]) values[k] = v;
      std::map<std::string, ParamValue> raw;
      std::map<std::string, Origin> origins;
      for (const auto& [k, v] : values) {
        raw[k] = v.value;
        origins[k] = v.origin;
      }
      Params params;
      try {
        params = resolve_params(schema_, raw, component_);
      } catch (const Error& e) {
        throw ExperimentError(g_.origin, e.what());
      }
      const auto notes = apply_relevance(schema_, params);
      for (const auto seed : seeds) {
        Trial t;
        t.canonical_note = fmt::format("{}", fmt::join(notes, "; "));
        t.group = g_.name;
        t.model = g_.model;
        t.params = params;
        t.seed = seed;
        t.varying = varying;
        t.origins = origins;
        t.notes.assign(notes_.begin(), notes_.end());
        out.push_back(std::move(t));
      }
      // Odometer over the axes, the last axis fastest.
      std::size_t a = axes.size();
      while (a > 0) {
        --a;
        if (++index[a] < axes[a].size()) break;
        index[a] = 0;
        if (a == 0) return;
      }
      if (axes.empty()) return;
    }
  }

 private:
  CheckedValue check(const std::string& key, const RawValue& v) {
    const ParamSpec* spec = find_spec(schema_, key);
    if (!spec) {
      const auto names = names_of(schema_);
      std::string hint;
      if (auto m = did_you_mean(key, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
      throw ExperimentError(v.origin,
                            fmt::format("{}: unknown parameter '{}'{}; known parameters: {} "
                                        "(`recrun plugins` lists them with their help)",
                                        component_, key, hint, fmt::join(names, ", ")));
    }
    ParamValue value;
    try {
      value = v.text ? parse_param_text(*spec, *v.text, component_)
                     : check_param(*spec, v.value, component_);
    } catch (const Error& e) {
      throw ExperimentError(v.origin, e.what());
    }
    try {
      trial::check_references(*spec, value, registry_, component_);
    } catch (const Error& e) {
      throw ExperimentError(v.origin, e.what());
    }
    if (!spec->deprecated.empty())
      notes_.insert(fmt::format("{}: {}: parameter '{}' is deprecated: {}", v.origin.describe(),
                                   component_, key, spec->deprecated));
    return {std::move(value), v.origin};
  }

  const Group& g_;
  const Experiment& x_;
  const Registry& registry_;
  std::vector<ParamSpec> schema_;
  std::string component_;
  std::set<std::string> notes_;  // deprecated parameters in use, one line each
};

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

std::string grid_shape(const Group& g, const Experiment& x) {
  std::vector<std::string> parts;
  if (!g.sets.empty()) parts.push_back(fmt::format("{} sets", g.sets.size()));
  for (const auto& a : g.grid) parts.push_back(fmt::format("{} ({})", a.key, a.values.size()));
  const auto seeds = (g.seeds ? *g.seeds : x.seeds).size();
  parts.push_back(fmt::format("{} seed{}", seeds, seeds == 1 ? "" : "s"));
  return fmt::format("{}", fmt::join(parts, " x "));
}

std::string count_text(std::uint64_t n) {
  return n == UINT64_MAX ? std::string("more than 2^64") : fmt::format("{}", n);
}

}  // namespace

std::uint64_t count_trials(const Group& g, const Experiment& x) {
  if (g.search && g.search->method != SearchMethod::grid)  // configurations x seeds
    return saturating_mul(static_cast<std::uint64_t>(g.search->trials),
                          (g.seeds ? *g.seeds : x.seeds).size());
  std::uint64_t n = std::max<std::uint64_t>(1, g.sets.size());
  for (const auto& a : g.grid) n = saturating_mul(n, a.values.size());
  return saturating_mul(n, (g.seeds ? *g.seeds : x.seeds).size());
}

std::vector<Trial> expand_trials(const Experiment& experiment, const Registry& registry,
                                 std::uint64_t max_trials) {
  // Count first: a grid of 1000 x 1000 x 1000 must be refused, not expanded until memory ends.
  std::uint64_t total = 0;
  std::vector<std::string> per_group;
  for (const auto& g : experiment.groups) {
    const std::uint64_t n = count_trials(g, experiment);
    if (n > max_trials)
      throw ExperimentError(
          g.origin, fmt::format("group '{}' has {} trials ({}), more than --max-trials {}; "
                                "shrink its grid (or split it into groups and run them with "
                                "--only), or raise --max-trials",
                                g.name, count_text(n), grid_shape(g, experiment), max_trials));
    total = total + n < total ? UINT64_MAX : total + n;
    per_group.push_back(fmt::format("{}: {}", g.name, n));
  }
  if (total > max_trials) {
    Origin o;
    o.file = experiment.file;
    throw ExperimentError(o, fmt::format("the experiment has {} trials ({}), more than "
                                         "--max-trials {}; shrink the grids or raise --max-trials",
                                         count_text(total), fmt::join(per_group, ", "),
                                         max_trials));
  }
  std::vector<Trial> out;
  out.reserve(static_cast<std::size_t>(total));
  std::vector<Trial> probes;  // TPE groups' first configurations
  for (const auto& g : experiment.groups) {
    // Searches (sweep/search.cpp): random expands into its list; TPE suggests while it runs.
    if (g.search && g.search->method != SearchMethod::grid) {
      const SearchPlan plan = plan_search(g, experiment, registry);
      if (plan.spec.method == SearchMethod::random)
        for (auto& t : expand_random(plan)) out.push_back(std::move(t));
      else  // its first configuration stands for it below
        for (auto& t : trials_at(plan, random_point(plan.space, plan.spec.seed, 0), 0))
          probes.push_back(std::move(t));
      continue;
    }
    const Group searched = with_search_epochs(g);  // a pruned grid's max_epochs
    GroupExpander(searched, experiment, registry).expand(out);
  }
  // A '*.key=value' override that no model accepts is a typo, not a no-op.
  std::map<std::string, bool> used;
  for (const auto& [group, keys] : experiment.wildcard_keys)
    for (const auto& k : keys) used[k] |= false;
  for (const auto* list : {&out, &probes})
    for (const auto& t : *list)
      for (auto& [k, u] : used) u |= t.params.contains(k);
  for (const auto& [k, u] : used) {
    if (u) continue;
    // The nearest parameter name of any group's model, as a single group's key would get.
    std::set<std::string> names;
    for (const auto* list : {&out, &probes})
      for (const auto& t : *list)
        for (const auto& [name, value] : t.params.values()) names.insert(name);
    const auto hint = did_you_mean(k, {names.begin(), names.end()});
    for (const auto& g : experiment.groups) {
      const auto it = g.fixed.find(k);
      if (it != g.fixed.end())
        throw ExperimentError(it->second.origin,
                              fmt::format("no group's model has a parameter '{}'{}", k,
                                          hint ? fmt::format(" (did you mean '{}'?)", *hint)
                                               : std::string()));
    }
  }
  return out;
}

void check_against_data(const std::vector<Trial>& trials, const Dataset& dataset,
                        const Registry& registry) {
  // The encoder itself is the authority on what it needs (a title encoder may use title text
  // or precomputed vectors): build each requested one once, small, and see whether it throws.
  std::map<std::string, std::string> verdict;  // feature -> "" or why it cannot be built
  std::map<std::string, std::vector<ParamSpec>> schemas;  // model -> its schema
  for (const auto& t : trials) {
    auto it = schemas.find(t.model);
    if (it == schemas.end()) it = schemas.emplace(t.model, registry.model(t.model).params).first;
    for (const auto& spec : it->second) {
      if (!spec.refers_to || spec.refers_to->kind != ComponentKind::feature ||
          spec.refers_to->member_refs || !t.params.contains(spec.name))
        continue;
      std::vector<std::string> features;
      if (const auto* list = std::get_if<std::vector<std::string>>(&t.params.at(spec.name)))
        features = *list;
      else if (const auto* one = std::get_if<std::string>(&t.params.at(spec.name)))
        features = {*one};
      for (const auto& f : features) {
        if (std::find(spec.refers_to->reserved.begin(), spec.refers_to->reserved.end(), f) !=
            spec.refers_to->reserved.end())
          continue;
        if (!verdict.count(f)) {
          std::string why;
          try {
            const auto encoder = registry.feature(f).make(FeatureEnv{dataset, 8, 0.0});
            if (!encoder) why = "its plugin built no encoder";
          } catch (const std::exception& e) {
            why = e.what();
          }
          verdict[f] = why;
        }
        if (verdict[f].empty()) continue;
        const auto o_it = t.origins.find(spec.name);
        Origin o = o_it != t.origins.end() ? o_it->second : Origin{};
        // The encoder's own message says what is missing and how to fix it.
        throw ExperimentError(o, fmt::format("group '{}': feature '{}' cannot be used with the "
                                             "data set at {}: {}",
                                             t.group, f, dataset.source_dir.string(), verdict[f]));
      }
    }
  }
}

std::vector<std::string> assign_keys(std::vector<Trial>& trials, const Experiment& experiment,
                                     const std::string& data_fingerprint) {
  std::vector<std::string> warnings;
  std::map<std::string, std::size_t> seen;
  std::vector<Trial> kept;
  // Trials that became one through canonical parameters: key -> how many, in kept order.
  std::map<std::string, std::pair<std::size_t, std::string>> collapsed;  // count, why
  std::vector<std::string> collapsed_order;
  std::set<std::string> notes;
  for (const auto& t : trials)
    for (const auto& n : t.notes)
      if (notes.insert(n).second) warnings.push_back(n);
  for (auto& t : trials) {
    t.key = trial::make_key(t.model, t.params, data_fingerprint, experiment.protocol, t.seed);
    const auto [it, inserted] = seen.emplace(t.key, kept.size());
    if (!inserted) {
      const Trial& first = kept[it->second];
      if (!t.canonical_note.empty() && t.group == first.group) {
        auto& [count, why] = collapsed[t.key];
        if (count++ == 0) collapsed_order.push_back(t.key);
        why = t.canonical_note;
        continue;
      }
      warnings.push_back(fmt::format(
          "group '{}' trial '{}' is the same run as group '{}' trial '{}' (key {}); it runs once",
          t.group, t.label(), first.group, first.label(), t.key));
      continue;
    }
    kept.push_back(std::move(t));
  }
  for (const auto& key : collapsed_order) {
    const Trial& t = kept[seen.at(key)];
    const auto& [count, why] = collapsed.at(key);
    warnings.push_back(fmt::format("group '{}': {} trials collapse into 1: {} ({} runs once, key "
                                   "{})",
                                   t.group, count + 1, why, t.label(), key));
  }
  trials = std::move(kept);
  return warnings;
}

namespace {

// Splits `text` at `sep` outside brackets, braces and quotes; throws for an unbalanced one.
std::vector<std::string> split_top_level(std::string_view text, char sep, std::string_view what) {
  std::vector<std::string> out;
  std::string current;
  int depth = 0;
  char quote = 0;
  for (const char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth < 0)
        throw Error(fmt::format("{}: '{}' closes a bracket that was never opened", what, text));
    } else if (depth == 0 && (sep == ' ' ? (c == ' ' || c == '\t') : c == sep)) {
      out.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (quote) throw Error(fmt::format("{}: '{}' has an unclosed quote", what, text));
  if (depth > 0) throw Error(fmt::format("{}: '{}' has an unclosed bracket", what, text));
  out.push_back(std::move(current));
  return out;
}

bool is_key(std::string_view k) {
  if (k.empty()) return false;
  for (const char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  return true;
}

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The trial's value of `key` as canonical text, and its type; nothing when it has no such key.
std::optional<std::pair<std::string, ParamType>> value_of(const Trial& t, const std::string& key) {
  if (key == "group") return std::pair{t.group, ParamType::string};
  if (key == "model") return std::pair{t.model, ParamType::string};
  if (key == "seed") return std::pair{std::to_string(t.seed), ParamType::integer};
  if (!t.params.contains(key)) return std::nullopt;
  const ParamValue& v = t.params.at(key);
  return std::pair{recrun::to_string(v), type_of(v)};
}

// `text` read as a value of `type`, in canonical text (as --set reads it).
std::string canonical_as(ParamType type, const std::string& key, const std::string& text) {
  if (type == ParamType::string) {
    std::string v = text;
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
      v = v.substr(1, v.size() - 2);
    return v;
  }
  ParamSpec spec;
  spec.name = key;
  spec.type = type;
  return recrun::to_string(parse_param_text(spec, text, "--only"));
}

}  // namespace

OnlyFilter::OnlyFilter(std::string_view pattern) {
  for (const auto& part : split_top_level(pattern, ',', "--only")) {
    Alternative alt;
    alt.text = trimmed(part);
    if (alt.text.empty()) continue;
    const bool glob = alt.text.find_first_of("*?") != std::string::npos;
    std::vector<Term> terms;
    bool all_terms = !glob;
    for (const auto& word : split_top_level(alt.text, ' ', "--only")) {
      if (word.empty()) continue;
      const auto eq = word.find('=');
      if (eq == std::string::npos || !is_key(word.substr(0, eq)) || eq + 1 == word.size()) {
        all_terms = false;
        break;
      }
      terms.push_back({word.substr(0, eq), word.substr(eq + 1)});
    }
    if (all_terms) alt.terms = std::move(terms);
    alternatives_.push_back(std::move(alt));
  }
  counts_.assign(alternatives_.size(), 0);
}

bool OnlyFilter::term_matches(const Term& term, const Trial& trial) {
  const auto have = value_of(trial, term.key);
  if (!have) return false;
  try {
    return canonical_as(have->second, term.key, term.value) == have->first;
  } catch (const std::exception&) {
    return false;  // a value this trial's type cannot hold (check() reports it if none can)
  }
}

std::optional<std::size_t> OnlyFilter::selects(const Trial& trial) const {
  for (std::size_t i = 0; i < alternatives_.size(); ++i) {
    const Alternative& alt = alternatives_[i];
    if (!alt.terms.empty()) {
      if (std::all_of(alt.terms.begin(), alt.terms.end(),
                      [&](const Term& term) { return term_matches(term, trial); }))
        return i;
      continue;
    }
    const std::string& p = alt.text;
    const std::string full = fmt::format("{} {} {}", trial.group, trial.model, trial.label());
    const bool glob = p.find_first_of("*?[") != std::string::npos;
    for (const std::string& subject : {trial.group, trial.model, trial.key, full, trial.label()})
      if (glob ? ::fnmatch(p.c_str(), subject.c_str(), 0) == 0
               : subject.find(p) != std::string::npos)
        return i;
  }
  return std::nullopt;
}

bool OnlyFilter::matches(const Trial& trial) {
  const auto i = selects(trial);
  if (i) ++counts_[*i];
  return i.has_value();
}

void OnlyFilter::check(const std::vector<Trial>& trials) const {
  std::set<std::string> names{"group", "model", "seed"};
  for (const auto& t : trials)
    for (const auto& [name, value] : t.params.values()) names.insert(name);
  for (const auto& alt : alternatives_)
    for (const auto& term : alt.terms) {
      if (!names.count(term.key)) {
        const auto hint = did_you_mean(term.key, {names.begin(), names.end()});
        throw Error(fmt::format("--only '{}': no trial has a parameter '{}'{}", alt.text, term.key,
                                hint ? fmt::format(" (did you mean '{}'?)", *hint) : ""));
      }
      // A value no trial's type can hold is a mistake, not a selection of nothing.
      std::string why;
      bool readable = false;
      for (const auto& t : trials) {
        const auto have = value_of(t, term.key);
        if (!have) continue;
        try {
          (void)canonical_as(have->second, term.key, term.value);
          readable = true;
          break;
        } catch (const std::exception& e) {
          why = e.what();
        }
      }
      if (!readable && !why.empty())
        throw Error(fmt::format("--only '{}': {}", alt.text, why));
    }
}

std::string OnlyFilter::summary() const {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < alternatives_.size(); ++i)
    parts.push_back(fmt::format("'{}' {}", alternatives_[i].text, counts_[i]));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::vector<std::string> OnlyFilter::alternatives() const {
  std::vector<std::string> out;
  for (const auto& a : alternatives_) out.push_back(a.text);
  return out;
}

bool matches(const Trial& trial, const std::string& pattern) {
  return OnlyFilter(pattern).matches(trial);
}

results::TrialSpec trial_spec(const Trial& trial, const Experiment& experiment,
                              const std::string& data_fingerprint, const std::string& data_source,
                              const std::vector<ParamSpec>& schema,
                              std::optional<std::int64_t> experiment_id) {
  results::TrialSpec spec;
  spec.trial_key = trial.key;
  spec.group_name = trial.group;
  spec.model = trial.model;
  spec.data_path = experiment.data_path.string();
  spec.data_fingerprint = data_fingerprint;
  spec.protocol_json = experiment.protocol.to_json(data_source);
  spec.seed = trial.seed;
  spec.params = trial::store_params(trial.params, schema);
  spec.experiment_id = experiment_id;
  return spec;
}

}  // namespace recrun::sweep
