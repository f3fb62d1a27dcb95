#include "results/query.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "recrun/error.hpp"
#include "recrun/params.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::results {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::optional<double> as_number(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

const Param* find_param(const RunRow& run, const std::string& name) {
  for (const auto& p : run.params)
    if (p.name == name) return &p;
  return nullptr;
}

// What makes runs one configuration: everything but the seed.
std::string configuration_id(const RunRow& r) {
  std::string id = fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", r.experiment, r.group_name, r.model,
                               r.data_fingerprint, r.protocol_json);
  for (const auto& p : r.params) id += fmt::format("\x1f{}={}", p.name, p.value);
  return id;
}

}  // namespace

std::optional<double> find_metric(const std::vector<Metric>& metrics, const std::string& name) {
  for (const auto& m : metrics)
    if (m.name == name) return m.value;
  return std::nullopt;
}

std::string monitor_of(const RunRow& run) {
  const auto j = nlohmann::json::parse(run.protocol_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("monitor") && j["monitor"].is_string())
    return j["monitor"].get<std::string>();
  return "NDCG@10";
}

bool MetricRef::matches(const std::string& metric) const { return lower(metric) == lower(name); }

MetricRef parse_metric_ref(const std::string& text) {
  MetricRef ref;
  const std::string l = lower(text);
  if (l.starts_with("test_")) {
    ref.name = text.substr(5);
  } else if (l.starts_with("valid_")) {
    ref.split = SplitName::valid;
    ref.name = text.substr(6);
  } else {
    ref.name = text;
  }
  if (ref.name.empty())
    throw Error(fmt::format("metric '{}': name a metric, e.g. NDCG@10, test_NDCG@10 or "
                            "valid_Hit@10",
                            text));
  return ref;
}

std::optional<double> metric_of(const RunRow& run, const MetricRef& ref) {
  const auto& list = ref.split == SplitName::test ? run.test_metrics : run.valid_metrics;
  for (const auto& m : list)
    if (ref.matches(m.name)) return m.value;
  return std::nullopt;
}

namespace {

struct Where {
  std::string name, value;
};

std::vector<Where> parse_where(const std::vector<std::string>& items) {
  std::vector<Where> where;
  for (const auto& w : items) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(fmt::format("--where '{}': expected param=value, e.g. --where lambda=500", w));
    where.push_back({w.substr(0, eq), w.substr(eq + 1)});
  }
  return where;
}

// `text` as canonical text of a value of `type` (as --set reads it); nothing if it is not one.
std::optional<std::string> canonical(ParamType type, const std::string& name,
                                     const std::string& text) {
  try {
    ParamSpec spec;
    spec.name = name;
    spec.type = type;
    return recrun::to_string(parse_param_text(spec, text, "--where"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool where_matches(const Param& p, const Where& w) {
  const auto a = p.num_value, b = as_number(w.value);
  if (a && b) return *a == *b;
  if (p.value == w.value) return true;
  if (p.type == ParamType::string) return false;
  const auto stored = canonical(p.type, p.name, p.value), asked = canonical(p.type, w.name, w.value);
  return stored && asked && *stored == *asked;
}

bool passes_other_filters(const RunRow& r, const RunFilter& f) {
  if (!f.experiment.empty() && r.experiment != f.experiment && !r.membership(f.experiment))
    return false;
  if (!f.model.empty() && r.model != f.model) return false;
  return !f.status || r.status == *f.status;
}

}  // namespace

std::string explain_no_match(const std::vector<RunRow>& runs, const RunFilter& f) {
  std::vector<std::string> lines;
  for (const auto& w : parse_where(f.where)) {
    std::map<std::string, std::size_t> present;  // value text -> runs
    for (const auto& r : runs) {
      if (!passes_other_filters(r, f)) continue;
      if (const Param* p = find_param(r, w.name)) ++present[p->value];
    }
    std::vector<std::string> values;
    for (const auto& [v, n] : present) values.push_back(v);
    // Nearest first: by edit distance to what was asked (ties keep the stored order).
    const auto distance = [&](const std::string& v) { return util::edit_distance(w.value, v); };
    std::stable_sort(values.begin(), values.end(), [&](const std::string& a, const std::string& b) {
      return distance(a) < distance(b);
    });
    if (values.size() > 8) values.resize(8), values.push_back("...");
    lines.push_back(fmt::format("--where {}={}: {}", w.name, w.value,
                                values.empty() ? std::string("no run passing the other filters has "
                                                             "this parameter")
                                               : fmt::format("no run has this value; values present: {}",
                                                             fmt::join(values, ", "))));
  }
  return fmt::format("{}", fmt::join(lines, "\n"));
}

std::vector<const RunRow*> filter_runs(const std::vector<RunRow>& runs, const RunFilter& f) {
  const std::vector<Where> where = parse_where(f.where);
  for (const auto& w : where) {
    std::set<std::string> names;
    bool found = false;
    for (const auto& r : runs)
      for (const auto& p : r.params) {
        names.insert(p.name);
        found |= p.name == w.name;
      }
    if (!found && !runs.empty()) {
      std::string hint;
      const std::vector<std::string> all(names.begin(), names.end());
      if (auto s = did_you_mean(w.name, all)) hint = fmt::format(" (did you mean '{}'?)", *s);
      throw Error(fmt::format("--where {}={}: no run has a parameter '{}'{}; parameters: {}",
                              w.name, w.value, w.name, hint, fmt::join(all, ", ")));
    }
  }
  std::vector<const RunRow*> out;
  for (const auto& r : runs) {
    if (!passes_other_filters(r, f)) continue;
    bool ok = true;
    for (const auto& w : where) {
      const Param* p = find_param(r, w.name);
      if (!p || !where_matches(*p, w)) {
        ok = false;
        break;
      }
    }
    if (ok) out.push_back(&r);
  }
  return out;
}

void sort_runs(std::vector<const RunRow*>& runs, const MetricRef& ref, bool ascending) {
  bool any = false;
  std::set<std::string> names;
  for (const auto* r : runs) {
    any |= metric_of(*r, ref).has_value();
    for (const auto& m : r->test_metrics) names.insert("test_" + m.name);
    for (const auto& m : r->valid_metrics) names.insert("valid_" + m.name);
  }
  if (!any && !runs.empty())
    throw Error(fmt::format("--sort {}_{}: no listed run has this metric; metrics: {}",
                            to_string(ref.split), ref.name, fmt::join(names, ", ")));
  std::stable_sort(runs.begin(), runs.end(), [&](const RunRow* a, const RunRow* b) {
    const auto x = metric_of(*a, ref), y = metric_of(*b, ref);
    const bool xv = x && !std::isnan(*x), yv = y && !std::isnan(*y);
    if (xv != yv) return xv;  // runs with a value first
    if (!xv) return false;
    return ascending ? *x < *y : *x > *y;
  });
}

std::vector<std::string> varying_params(const std::vector<const RunRow*>& runs) {
  // A parameter only some runs have (another model's) tells nothing apart by itself.
  std::map<std::string, std::set<std::string>> values;
  for (const auto* r : runs)
    for (const auto& p : r->params) values[p.name].insert(p.value);
  std::vector<std::string> out;
  for (const auto& [name, vs] : values)
    if (vs.size() > 1) out.push_back(name);
  return out;
}

std::string params_label(const RunRow& run, const std::vector<std::string>& names) {
  std::vector<std::string> parts;
  for (const auto& n : names)
    if (const Param* p = find_param(run, n)) parts.push_back(fmt::format("{}={}", n, p->value));
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string params_json(const RunRow& run, const std::vector<std::string>& names) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& n : names) {
    const Param* p = find_param(run, n);
    if (!p) continue;
    try {
      switch (p->type) {
        case ParamType::string: o[n] = p->value; break;
        case ParamType::real: o[n] = nlohmann::json::parse(p->value).get<double>(); break;
        case ParamType::real_list: o[n] = nlohmann::json::parse(p->value).get<std::vector<double>>(); break;
        default: o[n] = nlohmann::json::parse(p->value); break;  // integers, true/false, string lists
      }
    } catch (const nlohmann::json::exception&) {
      o[n] = p->value;  // a value stored by an older recrun in another form: keep its text
    }
  }
  return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<Configuration> configurations(const std::vector<const RunRow*>& runs) {
  std::vector<Configuration> out;
  std::map<std::string, std::size_t> index;
  for (const auto* r : runs) {
    if (r->status != RunStatus::finished) continue;
    const auto id = configuration_id(*r);
    auto it = index.find(id);
    if (it == index.end()) {
      it = index.emplace(id, out.size()).first;
      Configuration c;
      c.experiment = r->experiment;
      c.group = r->group_name;
      c.model = r->model;
      c.monitor_name = monitor_of(*r);
      out.push_back(std::move(c));
    }
    out[it->second].runs.push_back(r);
  }
  for (auto& c : out) {
    std::stable_sort(c.runs.begin(), c.runs.end(),
                     [](const RunRow* a, const RunRow* b) { return a->seed < b->seed; });
    c.monitor = summarize_metric(c, SplitName::valid, c.monitor_name);
  }
  return out;
}

Configuration configuration_of(const RunRow& run, const std::vector<RunRow>& all) {
  std::vector<const RunRow*> same;
  const auto id = configuration_id(run);
  for (const auto& r : all)
    if (configuration_id(r) == id) same.push_back(&r);
  auto configs = configurations(same);
  if (configs.empty())
    throw Error(fmt::format("run {} is {}, not finished: it has no results to compare",
                            run.trial_key, to_string(run.status)));
  return std::move(configs.front());
}

std::vector<Configuration> best_per_group(const std::vector<const RunRow*>& runs) {
  std::vector<Configuration> best;
  std::map<std::string, std::size_t> index;
  for (auto& c : configurations(runs)) {
    if (c.monitor.n == 0) continue;
    const auto it = index.find(group_key(c));
    if (it == index.end()) {
      index.emplace(group_key(c), best.size());
      best.push_back(std::move(c));
    } else if (c.monitor.mean > best[it->second].monitor.mean) {
      best[it->second] = std::move(c);
    }
  }
  return best;
}

std::string group_key(const Configuration& config) {
  return config.group.empty() ? config.model : config.group;
}

Summary summarize_metric(const Configuration& config, SplitName split, const std::string& name) {
  std::vector<double> values;
  for (const auto* r : config.runs)
    if (auto v = find_metric(split == SplitName::test ? r->test_metrics : r->valid_metrics, name))
      values.push_back(*v);
  return summarize(values);
}

std::vector<std::string> common_metrics(const Configuration& config, SplitName split) {
  std::map<std::string, std::size_t> count;
  for (const auto* r : config.runs)
    for (const auto& m : split == SplitName::test ? r->test_metrics : r->valid_metrics)
      ++count[m.name];
  std::vector<std::string> out;
  for (const auto& [name, n] : count)
    if (n == config.runs.size()) out.push_back(name);
  return out;
}

const RunRow& resolve_run(const std::string& text, const std::vector<RunRow>& runs) {
  if (text.starts_with("id:")) {
    const auto id = text.substr(3);
    std::int64_t n = -1;
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
    if (ec != std::errc() || end != id.data() + id.size() || n < 0)
      throw Error(fmt::format("'{}': after id: comes a run id (a number, the id column of "
                              "`recrun results list`)",
                              text));
    for (const auto& r : runs)
      if (r.id == n) return r;
    throw Error(fmt::format("no run has id {}; `recrun results list` shows the ids", n));
  }
  std::vector<const RunRow*> matches;
  for (const auto& r : runs) {
    if (r.trial_key == text) return r;
    if (!text.empty() && r.trial_key.starts_with(text)) matches.push_back(&r);
  }
  if (matches.size() == 1) return *matches.front();
  if (matches.empty())
    throw Error(fmt::format("no run has the key '{}' (or a key starting with it); `recrun "
                            "results list` shows the keys",
                            text));
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < matches.size() && i < 5; ++i) keys.push_back(matches[i]->trial_key);
  throw Error(fmt::format("'{}' starts {} run keys ({}{}); give more of the key", text,
                          matches.size(), fmt::join(keys, ", "), matches.size() > 5 ? ", ..." : ""));
}

Side resolve_side(const std::string& text, const std::vector<RunRow>& runs, bool pool_seeds) {
  Side side;
  side.label = text;
  const auto slash = text.find('/');
  if (slash != std::string::npos) {
    const std::string experiment = text.substr(0, slash), group = text.substr(slash + 1);
    std::vector<const RunRow*> in_group;
    std::set<std::string> groups;
    bool experiment_known = false;
    for (const auto& r : runs) {
      // A run shared by several experiments counts in each, under its group there.
      const Membership* m = experiment.empty() ? nullptr : r.membership(experiment);
      if (!m && r.experiment != experiment) continue;
      experiment_known = true;
      const std::string& name = m ? m->group_name : r.group_name;
      groups.insert(name.empty() ? r.model : name);
      if ((name.empty() ? r.model : name) == group) in_group.push_back(&r);
    }
    if (!experiment_known)
      throw Error(fmt::format("'{}': no {} in the results", text,
                              experiment.empty() ? std::string("single runs (recrun run)")
                                                 : fmt::format("experiment named '{}'",
                                                               experiment)));
    auto best = best_per_group(in_group);
    if (best.empty())
      throw Error(fmt::format("'{}': experiment '{}' has no finished run in a group '{}'; groups: "
                              "{}",
                              text, experiment, group, fmt::join(groups, ", ")));
    side.config = std::move(best.front());
    return side;
  }
  const RunRow& run = resolve_run(text, runs);
  if (run.status != RunStatus::finished)
    throw Error(fmt::format("run {} is {}, not finished: it has no results to compare",
                            run.trial_key, to_string(run.status)));
  if (pool_seeds) {
    side.config = configuration_of(run, runs);
  } else {
    side.config.experiment = run.experiment;
    side.config.group = run.group_name;
    side.config.model = run.model;
    side.config.monitor_name = monitor_of(run);
    side.config.runs = {&run};
    side.config.monitor = summarize_metric(side.config, SplitName::valid, side.config.monitor_name);
  }
  return side;
}

UserValues user_values(const ResultsStore& store, const Configuration& config, SplitName split,
                       const std::string& metric) {
  UserValues out;
  std::size_t runs = 0;
  for (const auto* r : config.runs) {
    const auto stored = store.user_metrics(r->trial_key);
    if (!stored)
      throw Error(fmt::format("run {} stored no per-user metrics (it finished before recrun "
                              "kept them, or was trained with --split full); rerun it with "
                              "`recrun run --force` to compare per user",
                              r->trial_key));
    const auto& list = split == SplitName::test ? stored->test : stored->valid;
    const UserMetric* m = nullptr;
    std::vector<std::string> names;
    for (const auto& x : list) {
      names.push_back(x.name);
      if (lower(x.name) == lower(metric)) m = &x;
    }
    if (!m)
      throw Error(fmt::format("run {} has no per-user {} metric '{}'; it has: {}", r->trial_key,
                              to_string(split), metric, fmt::join(names, ", ")));
    if (runs == 0) {
      out.users = stored->users;
      out.values.assign(out.users.size(), 0.0);
    } else if (stored->users != out.users) {
      throw Error(fmt::format("run {} evaluated other users than run {} ({} vs {} users): its "
                              "data or protocol differs, so its users cannot be paired",
                              r->trial_key, config.runs.front()->trial_key, stored->users.size(),
                              out.users.size()));
    }
    for (std::size_t i = 0; i < out.values.size(); ++i) out.values[i] += m->values[i];
    ++runs;
  }
  for (auto& v : out.values) v /= static_cast<double>(runs);
  return out;
}

}  // namespace recrun::results
