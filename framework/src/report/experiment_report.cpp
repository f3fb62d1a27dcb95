#include "report/experiment_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <ranges>
#include <tuple>

#include "recrun/error.hpp"
#include "recrun/member_ref.hpp"
#include "report/html.hpp"

namespace recrun::report {

namespace {

using results::RunRow;
using results::RunStatus;

std::optional<double> metric(const std::vector<results::Metric>& list, std::string_view name) {
  for (const auto& m : list)
    if (m.name == name) return m.value;
  return std::nullopt;
}

// The cut-off of a metric name ("NDCG@10" -> "10"); empty when it has none.
std::string cutoff(std::string_view name) {
  const auto at = name.find('@');
  return at == std::string_view::npos ? std::string() : std::string(name.substr(at + 1));
}

std::string mean_std_text(const MeanStd& m) {
  if (m.n == 0) return "–";
  if (m.n == 1) return html::number(m.mean);
  return fmt::format("{} ± {}", html::number(m.mean), html::number(m.stdev));
}

html::Cell stat_cell(const std::map<std::string, MeanStd>& stats, const std::string& name) {
  const auto it = stats.find(name);
  if (it == stats.end() || it->second.n == 0) return html::Cell("–", std::nullopt, "num");
  return html::Cell(mean_std_text(it->second), it->second.mean, "num");
}

html::Cell num_cell(std::optional<double> v, int digits = 4) {
  return html::Cell(html::number(v, digits), v, "num");
}

// Sorts parameter values as numbers when they all are, otherwise as text.
void sort_values(std::vector<results::Param>& values) {
  const bool numeric = std::all_of(values.begin(), values.end(),
                                   [](const auto& p) { return p.num_value.has_value(); });
  std::sort(values.begin(), values.end(), [&](const auto& a, const auto& b) {
    return numeric ? *a.num_value < *b.num_value : a.value < b.value;
  });
}

// A parameter value as the command line prints it: lists without quotes ([genre,year]).
std::string display_value(const results::Param& p) {
  if (p.value.empty() || p.value.front() != '[') return p.value;
  const auto j = nlohmann::json::parse(p.value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return p.value;
  std::vector<std::string> items;
  for (const auto& e : j) items.push_back(e.is_string() ? e.get<std::string>() : e.dump());
  return fmt::format("[{}]", fmt::join(items, ","));
}

// The protocol's split and its minimum of interactions, as a comparable text.
std::string split_of(const std::string& protocol_json) {
  const auto j = nlohmann::json::parse(protocol_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  return fmt::format("{}/{}", j.value("split", std::string()), j.contains("min_interactions") ? j["min_interactions"].dump() : "");
}

// The best finished run by the validation `monitor` among `rows` that pass `keep`.
template <typename Keep>
std::optional<results::RunRow> best_run(const std::vector<RunRow>& rows, const std::string& monitor, Keep keep) {
  const RunRow* best = nullptr;
  double best_value = -std::numeric_limits<double>::infinity();
  for (const auto& r : rows) {
    if (r.status != RunStatus::finished || !keep(r)) continue;
    const auto v = metric(r.valid_metrics, monitor);
    if (v && std::isfinite(*v) && (!best || *v > best_value)) best = &r, best_value = *v;
  }
  if (!best) return std::nullopt;
  return *best;
}

// A member reference resolved as the trial resolves it (trial::resolve_run_ref; the report
// reads results.db only, so the rule is restated here: a key, or the best finished run).
ResolvedMember resolve_member(const results::ResultsStore& store, const std::string& ref,
                              const std::string& monitor) {
  ResolvedMember m;
  m.ref = ref;
  MemberRef parsed;
  try {
    parsed = parse_member_ref(ref);
  } catch (const std::exception& e) {
    m.why = e.what();
    return m;
  }
  if (parsed.kind == MemberRef::Kind::train) {
    m.why = "an inline member, trained by each trial itself";
  } else if (parsed.kind == MemberRef::Kind::run) {
    m.run = store.find(parsed.key);
    if (!m.run) m.why = "no run with this key";
  } else {
    m.run = best_run(parsed.experiment.empty() ? store.runs() : store.runs(parsed.experiment), monitor,
                     [&](const RunRow& r) {
                       return r.model == parsed.model && (parsed.group.empty() || r.group_name == parsed.group);
                     });
    if (!m.run) m.why = fmt::format("no finished {} run with a validation {}", parsed.model, monitor);
  }
  return m;
}

std::string status_text(const Configuration& c) {
  std::map<std::string, int> n;
  for (const auto* r : c.runs) ++n[std::string(results::to_string(r->status))];
  std::vector<std::string> parts;
  for (const auto& [s, k] : n) parts.push_back(fmt::format("{} {}", k, s));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd m;
  double sum = 0;
  for (const double v : values)
    if (std::isfinite(v)) sum += v, ++m.n;
  if (m.n == 0) return m;
  m.mean = sum / static_cast<double>(m.n);
  if (m.n > 1) {
    double sq = 0;
    for (const double v : values)
      if (std::isfinite(v)) sq += (v - m.mean) * (v - m.mean);
    m.stdev = std::sqrt(sq / static_cast<double>(m.n - 1));
  }
  return m;
}

ExperimentData gather_experiment(results::ResultsStore& store, std::string_view name) {
  ExperimentData d;
  d.name = std::string(name);
  d.versions = store.experiments(name);
  if (d.versions.empty()) {
    std::set<std::string> names;
    for (const auto& e : store.experiments()) names.insert(e.name);
    throw Error(fmt::format(
        "{} has no experiment named '{}'{}", store.path().string(), name,
        names.empty() ? "; no sweep has recorded into it yet (run `recrun sweep FILE` first)"
                      : fmt::format("; it has: {}", fmt::join(names, ", "))));
  }
  d.runs = store.runs(name);
  d.counts = store.status_counts(name);
  for (const auto& r : d.runs) d.curves[r.trial_key] = store.epoch_metrics(r.trial_key);
  const results::SearchStore searches(store);
  for (auto& record : searches.searches(name)) {
    SearchData s;
    s.trials = searches.trials(record.search_key);
    s.record = std::move(record);
    d.searches.push_back(std::move(s));
  }

  // The protocol (every trial of an experiment shares one; an edited file may differ: take the
  // latest run's).
  std::vector<std::string> families;
  std::vector<std::int64_t> ks;
  for (auto it = d.runs.rbegin(); it != d.runs.rend(); ++it) {
    const auto j = nlohmann::json::parse(it->protocol_json, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    if (j.contains("monitor") && j["monitor"].is_string()) d.monitor = j["monitor"].get<std::string>();
    if (j.contains("metrics") && j["metrics"].is_array())
      for (const auto& m : j["metrics"])
        if (m.is_string()) families.push_back(m.get<std::string>());
    if (j.contains("ks") && j["ks"].is_array())
      for (const auto& k : j["ks"])
        if (k.is_number_integer()) ks.push_back(k.get<std::int64_t>());
    break;
  }
  for (const auto k : ks)
    for (const auto& f : families) d.test_columns.push_back(fmt::format("{}@{}", f, k));
  if (d.test_columns.empty()) {  // no protocol stored: whatever the runs measured
    std::set<std::string> seen;
    for (const auto& r : d.runs)
      for (const auto& m : r.test_metrics)
        if (seen.insert(m.name).second) d.test_columns.push_back(m.name);
  }

  // Swept parameters: those whose value differs between a group's runs (or is missing in some).
  std::vector<std::string> group_order;
  std::map<std::string, std::map<std::string, std::set<std::string>>> values;
  std::map<std::string, std::size_t> run_count;
  for (const auto& r : d.runs) {
    if (std::find(group_order.begin(), group_order.end(), r.group_name) == group_order.end())
      group_order.push_back(r.group_name);
    ++run_count[r.group_name];
    for (const auto& p : r.params) values[r.group_name][p.name].insert(p.value);
  }
  for (const auto& r : d.runs)
    for (const auto& [pname, vals] : values[r.group_name]) {
      const bool has = std::any_of(r.params.begin(), r.params.end(),
                                   [&](const auto& p) { return p.name == pname; });
      if (!has) values[r.group_name][pname].insert("(unset)");
    }
  for (const auto& g : group_order) {
    auto& swept = d.swept_params[g];
    for (const auto& [pname, vals] : values[g])
      if (vals.size() > 1) swept.push_back(pname);
  }

  // Configurations: same group and parameters; their seeds are the repeats.
  std::map<std::string, std::size_t> index;
  for (const auto& g : group_order)
    for (const auto& r : d.runs) {
      if (r.group_name != g) continue;
      std::string key = g + '\x1f' + r.model;
      for (const auto& p : r.params) key += '\x1f' + p.name + '=' + p.value;
      auto [it, fresh] = index.emplace(key, d.configurations.size());
      if (fresh) {
        Configuration c;
        c.group = g;
        c.model = r.model;
        std::vector<std::string> parts;
        for (const auto& pname : d.swept_params[g]) {
          const auto p = std::find_if(r.params.begin(), r.params.end(),
                                      [&](const auto& q) { return q.name == pname; });
          results::Param value = p != r.params.end() ? *p : results::Param::of_string(pname, "(unset)");
          parts.push_back(fmt::format("{}={}", pname, display_value(value)));
          c.swept.emplace(pname, std::move(value));
        }
        c.label = fmt::format("{}", fmt::join(parts, " "));
        d.configurations.push_back(std::move(c));
      }
      d.configurations[it->second].runs.push_back(&r);
    }
  for (auto& c : d.configurations) {
    std::map<std::string, std::vector<double>> valid, test;
    for (const auto* r : c.runs) {
      if (r->status != RunStatus::finished) continue;
      ++c.finished;
      for (const auto& m : r->valid_metrics) valid[m.name].push_back(m.value);
      for (const auto& m : r->test_metrics) test[m.name].push_back(m.value);
    }
    for (const auto& [k, v] : valid) c.valid[k] = mean_std(v);
    for (const auto& [k, v] : test) c.test[k] = mean_std(v);
  }

  // Recall@k equal to Hit@k in every finished run (one target per user): shown once.
  for (const auto& name : d.test_columns) {
    if (name.rfind("Recall@", 0) != 0) continue;
    const std::string hit = "Hit@" + cutoff(name);
    if (std::find(d.test_columns.begin(), d.test_columns.end(), hit) == d.test_columns.end()) continue;
    bool equal = true, seen = false;
    for (const auto& r : d.runs) {
      if (r.status != RunStatus::finished) continue;
      for (const auto* list : {&r.valid_metrics, &r.test_metrics}) {
        const auto a = metric(*list, name), b = metric(*list, hit);
        if (!a && !b) continue;
        seen = true;
        equal = equal && a && b && std::abs(*a - *b) <= 1e-9 * std::max(1.0, std::abs(*b));
      }
    }
    if (seen && equal) d.same_as[name] = hit;
  }

  // The popularity floor: the data and split of the latest finished run, any experiment.
  const auto latest_it = std::find_if(d.runs.rbegin(), d.runs.rend(),
                                      [](const RunRow& r) { return r.status == RunStatus::finished; });
  if (latest_it != d.runs.rend()) {
    const RunRow& latest = *latest_it;
    const std::string split = split_of(latest.protocol_json);
    d.popularity = best_run(store.runs(), d.monitor, [&](const RunRow& r) {
      return r.model == "popularity" && r.data_fingerprint == latest.data_fingerprint &&
             split_of(r.protocol_json) == split;
    });
  }

  // An ensemble's members, as its trials resolve them.
  for (const auto& r : d.runs)
    for (const auto& p : r.params) {
      if (p.name != "members") continue;
      const auto j = nlohmann::json::parse(p.value, nullptr, /*allow_exceptions=*/false);
      if (!j.is_array()) continue;
      for (const auto& e : j)
        if (e.is_string() && !d.members.count(e.get<std::string>()))
          d.members.emplace(e.get<std::string>(), resolve_member(store, e.get<std::string>(), d.monitor));
    }
  return d;
}

std::vector<std::size_t> best_configurations(const ExperimentData& d) {
  std::vector<std::size_t> out;
  std::vector<std::string> groups;
  for (const auto& c : d.configurations)
    if (std::find(groups.begin(), groups.end(), c.group) == groups.end()) groups.push_back(c.group);
  for (const auto& g : groups) {
    std::optional<std::size_t> best;
    double best_value = 0;
    for (std::size_t i = 0; i < d.configurations.size(); ++i) {
      const auto& c = d.configurations[i];
      if (c.group != g) continue;
      const auto it = c.valid.find(d.monitor);
      if (it == c.valid.end() || it->second.n == 0) continue;
      if (!best || it->second.mean > best_value) best = i, best_value = it->second.mean;
    }
    if (best) out.push_back(*best);
  }
  return out;
}

namespace {

// The name shown for a metric: "Hit@10 = Recall@10" where the two coincide.
std::string heading(const ExperimentData& d, const std::string& name) {
  std::vector<std::string> same;
  for (const auto& [other, shown] : d.same_as)
    if (shown == name) same.push_back(other);
  return same.empty() ? name : fmt::format("{} = {}", name, fmt::join(same, " = "));
}

// The test columns shown, each once.
std::vector<std::string> shown_test_columns(const ExperimentData& d) {
  std::vector<std::string> out;
  for (const auto& t : d.test_columns)
    if (!d.same_as.count(t)) out.push_back(t);
  return out;
}

std::vector<std::string> group_order(const ExperimentData& d) {
  std::vector<std::string> groups;
  for (const auto& c : d.configurations)
    if (std::find(groups.begin(), groups.end(), c.group) == groups.end()) groups.push_back(c.group);
  return groups;
}

bool is_popularity_floor_run(const ExperimentData& d, const RunRow& r) {
  return d.popularity && d.popularity->trial_key == r.trial_key;
}

// How a configuration compares with the popularity floor: "" when there is no floor or it is
// the floor; otherwise "below (valid, test)" or "above", with the numbers in `detail`.
std::string floor_verdict(const ExperimentData& d, const Configuration& c, bool* below,
                          std::string* detail = nullptr) {
  *below = false;
  if (!d.popularity || c.model == "popularity" || c.finished == 0) return {};
  std::vector<std::string> under;
  const auto check = [&](const std::map<std::string, MeanStd>& mine, const std::vector<results::Metric>& floor,
                         const char* split) {
    const auto it = mine.find(d.monitor);
    const auto f = metric(floor, d.monitor);
    if (it != mine.end() && it->second.n > 0 && f && it->second.mean < *f)
      under.push_back(fmt::format("{} {} {} < {}", split, d.monitor, html::number(it->second.mean),
                                  html::number(*f)));
  };
  check(c.valid, d.popularity->valid_metrics, "valid");
  check(c.test, d.popularity->test_metrics, "test");
  if (under.empty()) return "above";
  *below = true;
  std::vector<std::string> splits;
  for (const auto& u : under) splits.push_back(u.substr(0, u.find(' ')));
  if (detail) *detail = fmt::format("{}", fmt::join(under, ", "));
  return fmt::format("below ({})", fmt::join(splits, ", "));
}

// The sweep tables: best per group, then every configuration.
std::string sweep_section(const ExperimentData& d, const std::vector<std::size_t>& best) {
  std::string out = "<section id=\"sweep\">\n<h2>Sweep</h2>\n";
  out += fmt::format(
      "<p class=\"note\">The best configuration of each group is picked by the mean validation "
      "{} over its finished seeds (never by a test metric); test metrics are those of each "
      "run's best checkpoint. Values are mean ± standard deviation where there are several "
      "seeds. Click a column header to sort.</p>\n",
      html::escape(d.monitor));
  if (!d.same_as.empty()) {
    std::vector<std::string> pairs;
    for (const auto& [other, shown] : d.same_as) pairs.push_back(fmt::format("{} = {}", shown, other));
    out += fmt::format(
        "<p class=\"note\" id=\"same-metrics\">{} in every run: with one held-out item per user "
        "(leave-one-out), a hit in the top k is the whole of the user's recall. The tables and "
        "charts show each pair once.</p>\n",
        html::escape(fmt::format("{}", fmt::join(pairs, ", "))));
  }
  std::size_t below_floor = 0;
  for (const auto& c : d.configurations) {
    bool below = false;
    floor_verdict(d, c, &below);
    below_floor += below ? 1 : 0;
  }
  if (d.popularity) {
    const auto& p = *d.popularity;
    out += fmt::format(
        "<p class=\"note floor\" id=\"floor-note\">Popularity floor: valid {0} {1}, test {0} {2} "
        "(run {3}, {4}; the best finished popularity run on the same data and split). {5}</p>\n",
        html::escape(d.monitor), html::number(metric(p.valid_metrics, d.monitor)),
        html::number(metric(p.test_metrics, d.monitor)), html::escape(p.trial_key.substr(0, 12)),
        html::escape(p.experiment.empty() ? std::string("a single run")
                                          : fmt::format("experiment {}, group {}", p.experiment, p.group_name)),
        below_floor == 0 ? std::string("Every configuration is above it.")
                         : fmt::format("{} configuration(s) below it are flagged in the tables.", below_floor));
  }
  const auto tests = shown_test_columns(d);
  std::vector<std::string> headers = {"group", "model", "configuration", "seeds", "valid " + d.monitor};
  for (const auto& c : tests) headers.push_back("test " + heading(d, c));
  if (d.popularity) headers.push_back("vs popularity");
  const auto row_of = [&](const Configuration& c) {
    std::vector<html::Cell> row = {
        html::Cell(c.group),
        html::Cell(c.model),
        html::Cell(c.label.empty() ? "(no swept parameter)" : c.label),
        html::Cell(fmt::format("{}/{}", c.finished, c.runs.size()), static_cast<double>(c.finished),
                   "num"),
        stat_cell(c.valid, d.monitor)};
    for (const auto& t : tests) row.push_back(stat_cell(c.test, t));
    if (d.popularity) {
      bool below = false;
      std::string detail;
      std::string verdict = floor_verdict(d, c, &below, &detail);
      const bool floor_itself = std::any_of(c.runs.begin(), c.runs.end(),
                                            [&](const RunRow* r) { return is_popularity_floor_run(d, *r); });
      if (floor_itself) verdict = "(the floor)";
      html::Cell cell(verdict.empty() ? "–" : verdict, std::nullopt, below ? "below-floor" : "");
      cell.title = detail;
      row.push_back(cell);
    }
    return row;
  };
  std::vector<std::vector<html::Cell>> rows;
  for (const auto i : best) rows.push_back(row_of(d.configurations[i]));
  out += "<h3>Best configuration per group</h3>\n";
  if (rows.empty())
    out += "<p>No trial has finished yet.</p>\n";
  else
    out += html::table("best", headers, rows);

  std::vector<std::string> all_headers = headers;
  all_headers.push_back("status");
  rows.clear();
  for (std::size_t i = 0; i < d.configurations.size(); ++i) {
    const auto& c = d.configurations[i];
    auto row = row_of(c);
    row.push_back(html::Cell(status_text(c)));
    if (std::find(best.begin(), best.end(), i) != best.end())
      for (auto& cell : row) cell.css_class += " best";
    rows.push_back(std::move(row));
  }
  out += fmt::format("<h3>All configurations ({})</h3>\n", d.configurations.size());
  out += html::table("configurations", all_headers, rows);
  return out + "</section>\n";
}

constexpr const char* kFloorColour = "#b91c1c";
constexpr const char* kReferenceColours[] = {"#111827", "#6b7280", "#0f766e", "#7c2d12"};

// The reference lines of a chart of metric `m` (valid or test) in group `g`: every other group
// with a single configuration of the same model (a baseline, such as no_metadata for the fusion
// grid) or of popularity, and the popularity floor when it comes from another experiment.
std::vector<html::Reference> references(const ExperimentData& d, const std::string& m, bool is_test,
                                        const std::string& g) {
  std::vector<html::Reference> out;
  std::size_t index = 0;
  bool floor_shown = false;
  std::string model;
  for (const auto& c : d.configurations)
    if (c.group == g) model = c.model;
  for (const auto& h : group_order(d)) {
    std::vector<const Configuration*> configs;
    for (const auto& c : d.configurations)
      if (c.group == h) configs.push_back(&c);
    if (configs.size() != 1) continue;
    const auto& c = *configs.front();
    const bool floor = c.model == "popularity";
    if (!floor && c.model != model) continue;
    const std::string colour = floor ? kFloorColour : kReferenceColours[index++ % std::size(kReferenceColours)];
    if (h == g) continue;
    const auto& stats = is_test ? c.test : c.valid;
    const auto it = stats.find(m);
    if (it == stats.end() || it->second.n == 0) continue;
    out.push_back({floor ? fmt::format("popularity floor ({})", h) : fmt::format("{} ({})", h, c.model),
                   it->second.mean, colour});
    floor_shown = floor_shown || floor;
  }
  if (d.popularity && !floor_shown) {
    const bool here = std::any_of(d.runs.begin(), d.runs.end(),
                                  [&](const RunRow& r) { return r.trial_key == d.popularity->trial_key; });
    const auto v = metric(is_test ? d.popularity->test_metrics : d.popularity->valid_metrics, m);
    if (!here && v)
      out.push_back({fmt::format("popularity floor ({})", d.popularity->experiment.empty()
                                                              ? d.popularity->trial_key.substr(0, 12)
                                                              : d.popularity->experiment),
                     *v, kFloorColour});
  }
  return out;
}

bool categorical(const std::vector<results::Param>& values) {
  return std::any_of(values.begin(), values.end(), [](const auto& p) { return !p.num_value.has_value(); });
}

// The distinct values of parameter `pname` among `configs`: numbers in order, other values in
// the order the grid gives them (their first appearance).
std::vector<results::Param> values_of(const std::vector<const Configuration*>& configs, const std::string& pname) {
  std::vector<results::Param> vals;
  for (const auto* c : configs) {
    const auto& v = c->swept.at(pname);
    if (std::none_of(vals.begin(), vals.end(), [&](const auto& x) { return x.value == v.value; }))
      vals.push_back(v);
  }
  if (std::all_of(vals.begin(), vals.end(), [](const auto& p) { return p.num_value.has_value(); })) sort_values(vals);
  return vals;
}

// Mean and spread of metric `m` over `configs` that match `keep`: one configuration gives its
// mean ± std over seeds, several the mean and std of their means.
std::optional<MeanStd> pooled(const std::vector<const Configuration*>& configs, const std::string& m, bool is_test,
                              const std::function<bool(const Configuration&)>& keep) {
  std::vector<const MeanStd*> found;
  for (const auto* c : configs) {
    if (!keep(*c)) continue;
    const auto& stats = is_test ? c->test : c->valid;
    const auto it = stats.find(m);
    if (it != stats.end() && it->second.n > 0) found.push_back(&it->second);
  }
  if (found.empty()) return std::nullopt;
  if (found.size() == 1) return *found.front();
  std::vector<double> means;
  for (const auto* s : found) means.push_back(s->mean);
  return mean_std(means);
}

// Each metric (the validation monitor and the test metrics at its cut-off) against the swept
// parameters of each group: a features x fusion grid of bars when a group sweeps two
// categorical parameters, bars for one categorical parameter, a line for a numeric one; the
// baseline groups as reference lines on each.
std::string params_section(const ExperimentData& d) {
  std::string out = "<section id=\"params\">\n<h2>Metrics against swept parameters</h2>\n";
  out += "<p class=\"note\">Bars start at 0. Dashed lines are the baselines, on every chart "
         "of the same metric: a group with a single configuration of the same model, and the "
         "popularity floor. A line chart of a narrow range says that its y axis is zoomed "
         "in.</p>\n";
  std::vector<std::pair<std::string, bool>> metrics = {{d.monitor, false}};
  const std::string k = cutoff(d.monitor);
  for (const auto& t : shown_test_columns(d))
    if (cutoff(t) == k) metrics.emplace_back(t, true);
  int charts = 0;
  for (const auto& g : group_order(d)) {
    const auto& swept = d.swept_params.at(g);
    if (swept.empty()) continue;
    std::vector<const Configuration*> configs;
    for (const auto& c : d.configurations)
      if (c.group == g) configs.push_back(&c);
    out += fmt::format("<h3>group {}</h3>\n<div class=\"charts\">\n", html::escape(g));
    const auto value_text = [](const std::vector<results::Param>& vals) {
      std::vector<std::string> out;
      for (const auto& v : vals) out.push_back(display_value(v));
      return out;
    };
    const auto chart_options = [&](const std::string& m, bool is_test, const std::string& by) {
      html::ChartOptions o;
      o.title = fmt::format("{} {} by {}", is_test ? "test" : "valid", heading(d, m), by);
      o.y_label = fmt::format("{} {}", is_test ? "test" : "valid", m);
      o.references = references(d, m, is_test, g);
      o.data = {{"group", g}, {"metric", (is_test ? "test " : "valid ") + m}};
      return o;
    };
    if (swept.size() == 2 && categorical(values_of(configs, swept[0])) && categorical(values_of(configs, swept[1]))) {
      // A grid: clusters by the parameter with more values, a bar per value of the other.
      const std::string across = values_of(configs, swept[0]).size() >= values_of(configs, swept[1]).size()
                                     ? swept[0] : swept[1];
      const std::string within = across == swept[0] ? swept[1] : swept[0];
      const auto across_values = values_of(configs, across), within_values = values_of(configs, within);
      for (const auto& [m, is_test] : metrics) {
        std::vector<html::BarSeries> series;
        for (const auto& w : within_values) {
          html::BarSeries s;
          s.name = fmt::format("{}={}", within, display_value(w));
          for (const auto& a : across_values) {
            const auto v = pooled(configs, m, is_test, [&](const Configuration& c) {
              return c.swept.at(across).value == a.value && c.swept.at(within).value == w.value;
            });
            s.values.push_back(v ? v->mean : NAN);
            s.errors.push_back(v ? v->stdev : 0.0);
          }
          series.push_back(std::move(s));
        }
        auto o = chart_options(m, is_test, fmt::format("{} × {}", across, within));
        o.x_label = across;
        o.kind = "param-grid";
        o.data["param"] = across;
        o.data["within"] = within;
        o.width = 640;
        o.height = 260;
        out += html::grouped_bar_chart(value_text(across_values), series, o) + "\n";
        ++charts;
      }
    } else {
      for (const auto& pname : swept) {
        const auto vals = values_of(configs, pname);
        const bool others = swept.size() > 1;
        for (const auto& [m, is_test] : metrics) {
          auto o = chart_options(m, is_test, pname);
          o.x_label = pname;
          o.kind = "param";
          o.data["param"] = pname;
          if (categorical(vals)) {
            html::BarSeries s;
            s.name = others ? "mean over the other parameters" : heading(d, m);
            for (const auto& v : vals) {
              const auto pv = pooled(configs, m, is_test,
                                     [&](const Configuration& c) { return c.swept.at(pname).value == v.value; });
              s.values.push_back(pv ? pv->mean : NAN);
              s.errors.push_back(pv ? pv->stdev : 0.0);
            }
            o.width = std::max(360, 90 * static_cast<int>(vals.size()) + 80);
            o.height = 240;
            out += html::grouped_bar_chart(value_text(vals), {s}, o) + "\n";
          } else {
            // Numeric: a line over the values (each configuration a point when others vary).
            std::vector<std::string> categories = value_text(vals);
            const auto x_of = [&](const Configuration& c) {
              return static_cast<double>(
                  std::find_if(vals.begin(), vals.end(),
                               [&](const auto& v) { return v.value == c.swept.at(pname).value; }) -
                  vals.begin());
            };
            std::vector<std::tuple<double, double, double>> at;
            for (const auto* c : configs) {
              const auto& stats = is_test ? c->test : c->valid;
              const auto it = stats.find(m);
              if (it != stats.end() && it->second.n > 0) at.emplace_back(x_of(*c), it->second.mean, it->second.stdev);
            }
            std::sort(at.begin(), at.end());
            html::Series points;
            points.name = others ? "each configuration" : heading(d, m);
            points.line = !others;
            for (const auto& [x, y, e] : at) {
              points.points.emplace_back(x, y);
              points.errors.push_back(e);
            }
            std::vector<html::Series> series = {points};
            if (others) {
              html::Series mean;
              mean.name = "mean over the other parameters";
              for (std::size_t i = 0; i < vals.size(); ++i) {
                const auto pv = pooled(configs, m, is_test,
                                       [&](const Configuration& c) { return c.swept.at(pname).value == vals[i].value; });
                if (pv) mean.points.emplace_back(static_cast<double>(i), pv->mean);
              }
              series.push_back(std::move(mean));
            }
            o.x_categories = categories;
            o.width = 360;
            o.height = 230;
            out += html::line_chart(series, o) + "\n";
          }
          ++charts;
        }
      }
    }
    out += "</div>\n";
  }
  if (charts == 0) out += "<p>No group sweeps a parameter.</p>\n";
  return out + "</section>\n";
}

std::string label_of(const ExperimentData& d, const RunRow& r) {
  for (const auto& c : d.configurations)
    if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) return c.label;
  return {};
}

std::string run_title(const ExperimentData& d, const RunRow& r) {
  const std::string label = label_of(d, r);
  return fmt::format("{}{}{} · seed {} · {} ({})", r.group_name, label.empty() ? "" : " · ", label,
                     r.seed, r.trial_key.substr(0, 12), results::to_string(r.status));
}

// One colour per gate source (the item id embedding first), the same on every chart.
std::map<std::string, std::string> source_colours(const ExperimentData& d) {
  std::set<std::string> names;
  for (const auto& [key, points] : d.curves)
    for (const auto& p : points)
      if (p.split == results::SplitName::valid && p.name.rfind("val_gate/", 0) == 0) names.insert(p.name.substr(9));
  std::vector<std::string> order(names.begin(), names.end());
  std::stable_partition(order.begin(), order.end(), [](const std::string& n) { return n == "item"; });
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < order.size(); ++i) out[order[i]] = html::palette_colour(i);
  return out;
}

// Learning curves: per group, the validation monitor and the training loss of every run on one
// chart each (the group's best run drawn thick, each run's kept epoch ringed), and the gate
// weights of the runs that logged them.
std::pair<std::string, std::string> curve_sections(const ExperimentData& d) {
  std::string curves = "<section id=\"curves\">\n<h2>Learning curves</h2>\n";
  curves += fmt::format(
      "<p class=\"note\">Per group, every run's validation {} and training loss per epoch on one "
      "chart each. The group's best run (highest validation {}) is drawn thick; a ring marks the "
      "epoch each run kept (its best checkpoint). Dashed lines: the baseline groups and the "
      "popularity floor.</p>\n",
      html::escape(d.monitor), html::escape(d.monitor));
  int groups_drawn = 0, single_epoch = 0;
  for (const auto& g : group_order(d)) {
    std::vector<const RunRow*> runs;
    for (const auto& r : d.runs)
      if (r.group_name == g) runs.push_back(&r);
    // Seeds vary within a configuration: the seed joins the name.
    std::set<std::string> labels;
    bool seeds_vary = false;
    for (const auto* r : runs) seeds_vary = seeds_vary || !labels.insert(label_of(d, *r)).second;
    const RunRow* best = nullptr;
    double best_value = -std::numeric_limits<double>::infinity();
    for (const auto* r : runs) {
      const auto v = metric(r->valid_metrics, d.monitor);
      if (r->status == RunStatus::finished && v && *v > best_value) best = r, best_value = *v;
    }
    std::vector<html::Series> valid, loss;
    std::size_t longest = 0;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const RunRow& r = *runs[i];
      const std::string label = label_of(d, r);
      html::Series v, l;
      v.name = fmt::format("{}{}{}", &r == best ? "best: " : "", label.empty() ? r.model : label,
                           seeds_vary ? fmt::format(" seed {}", r.seed) : "");
      v.colour = html::palette_colour(i);
      v.emphasis = &r == best;
      l.name = v.name;
      l.colour = v.colour;
      l.emphasis = v.emphasis;
      for (const auto& p : d.curves.at(r.trial_key)) {
        const double x = static_cast<double>(p.epoch);
        if (p.split == results::SplitName::train && p.name == "loss") l.points.emplace_back(x, p.value);
        if (p.split == results::SplitName::valid && p.name == d.monitor) {
          if (r.best_epoch && p.epoch == *r.best_epoch) v.marks.push_back(v.points.size());
          v.points.emplace_back(x, p.value);
        }
      }
      longest = std::max({longest, v.points.size(), l.points.size()});
      if (!v.points.empty()) valid.push_back(std::move(v));
      if (!l.points.empty()) loss.push_back(std::move(l));
    }
    if (longest == 1) ++single_epoch;
    if (longest <= 1) continue;
    ++groups_drawn;
    curves += fmt::format("<div class=\"card group-curves\" data-group=\"{}\" data-runs=\"{}\"><h3>group {}: "
                          "{} run{}</h3><div class=\"charts\">\n",
                          html::escape(g), valid.size(), html::escape(g), valid.size(), valid.size() == 1 ? "" : "s");
    html::ChartOptions o;
    o.title = fmt::format("validation {} per epoch", d.monitor);
    o.x_label = "epoch";
    o.y_label = "valid " + d.monitor;
    o.kind = "curve";
    o.width = 620;
    o.height = 260;
    o.references = references(d, d.monitor, false, g);
    o.data = {{"group", g}, {"metric", "valid " + d.monitor}, {"runs", std::to_string(valid.size())}};
    curves += html::line_chart(valid, o) + "\n";
    if (!loss.empty()) {
      o.title = "training loss per epoch";
      o.y_label = "loss";
      o.references.clear();
      o.data = {{"group", g}, {"metric", "loss"}, {"runs", std::to_string(loss.size())}};
      curves += html::line_chart(loss, o) + "\n";
    }
    curves += "</div></div>\n";
  }
  if (single_epoch > 0)
    curves += fmt::format("<p class=\"note\">{} group(s) logged a single epoch per run (closed-form "
                          "models such as EASE and popularity): they have no curve; the tables "
                          "above show their values.</p>\n",
                          single_epoch);
  if (groups_drawn == 0 && single_epoch == 0) curves += "<p>No run has logged epochs yet.</p>\n";

  // Gate weights: one colour per source on every chart, the y axis from 0 to 1 (the weights of
  // a position sum to 1), the equal split as a reference.
  std::string gates = "<section id=\"gates\">\n<h2>Gate weights</h2>\n";
  const auto colours = source_colours(d);
  std::vector<std::pair<const Configuration*, const RunRow*>> gate_runs;
  std::map<std::string, std::vector<double>> summary;  // source -> weight at the kept epoch, per run
  std::string cards;
  int with_gates = 0;
  for (const auto& r : d.runs) {
    std::map<std::string, html::Series> gate;
    for (const auto& p : d.curves.at(r.trial_key))
      if (p.split == results::SplitName::valid && p.name.rfind("val_gate/", 0) == 0) {
        auto& s = gate[p.name.substr(9)];
        s.name = p.name.substr(9);
        s.colour = colours.at(s.name);
        if (r.best_epoch && p.epoch == *r.best_epoch) s.marks.push_back(s.points.size());
        s.points.emplace_back(static_cast<double>(p.epoch), p.value);
      }
    if (gate.empty()) continue;
    ++with_gates;
    std::vector<html::Series> series;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& name : colours | std::views::keys) {
      const auto it = gate.find(name);
      if (it == gate.end()) continue;
      for (const auto& [x, y] : it->second.points)
        if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
      series.push_back(it->second);
    }
    std::stable_partition(series.begin(), series.end(), [](const html::Series& s) { return s.name == "item"; });
    // The kept epoch's weights (the last validation's when none is marked), for the summary.
    const Configuration* config = nullptr;
    for (const auto& c : d.configurations)
      if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) config = &c;
    gate_runs.emplace_back(config, &r);
    for (const auto& name : colours | std::views::keys) {
      const auto it = gate.find(name);
      double v = NAN;
      if (it != gate.end() && !it->second.points.empty())
        v = it->second.marks.empty() ? it->second.points.back().second
                                     : it->second.points[it->second.marks.front()].second;
      summary[name].push_back(v);
    }
    html::ChartOptions o;
    o.title = "mean gate weight per source";
    o.x_label = "epoch";
    o.y_label = "weight";
    o.kind = "gate";
    o.width = 420;
    o.height = 230;
    o.y_min = 0;
    o.y_max = 1;
    o.references = {{fmt::format("equal weights (1/{})", series.size()), 1.0 / static_cast<double>(series.size()),
                     "#6b7280"}};
    if (std::isfinite(lo))
      o.note = fmt::format("weights {}–{}{}", html::number(lo, 3), html::number(hi, 3),
                           hi - lo < 0.1 ? ": a narrow range, drawn on 0–1" : "");
    o.data = {{"trial", r.trial_key}, {"features", std::to_string(series.size())}};
    cards += fmt::format("<div class=\"card gate-run\" data-trial=\"{}\"><h3>{}</h3>\n{}\n</div>\n",
                         html::escape(r.trial_key), html::escape(run_title(d, r)), html::line_chart(series, o));
  }
  if (with_gates == 0) {
    gates += "<p>No run logged gate weights (val_gate/&lt;feature&gt;): only runs with "
             "fusion = \"gate\" do.</p>\n";
  } else {
    gates += "<p class=\"note\">The mean weight the gate gives each source (the item id "
             "embedding and each feature) over the validation users, after each validation. The "
             "weights of a position sum to 1, so the axes run from 0 to 1 and the dashed line is "
             "the equal split; each source has one colour on every chart.</p>\n";
    // Each run named by what differs between the gate runs (fusion = "gate" is common to all).
    std::set<std::string> differ;
    for (const auto& [config, run] : gate_runs)
      if (config)
        for (const auto& [pname, value] : config->swept)
          for (const auto& [other, other_run] : gate_runs)
            if (other && (!other->swept.count(pname) || other->swept.at(pname).value != value.value)) differ.insert(pname);
    std::vector<std::string> summary_groups;
    for (const auto& [config, run] : gate_runs) {
      std::vector<std::string> parts;
      if (config)
        for (const auto& [pname, value] : config->swept)
          if (differ.count(pname)) parts.push_back(fmt::format("{}={}", pname, display_value(value)));
      if (parts.empty()) parts.push_back(config && !config->label.empty() ? config->label : run->group_name);
      if (config && config->runs.size() > 1) parts.push_back(fmt::format("seed {}", run->seed));
      summary_groups.push_back(fmt::format("{}", fmt::join(parts, " ")));
    }
    std::vector<html::BarSeries> bars;
    for (const auto& [name, values] : summary) bars.push_back({name, values, {}, colours.at(name)});
    std::stable_partition(bars.begin(), bars.end(), [](const html::BarSeries& s) { return s.name == "item"; });
    html::ChartOptions o;
    o.title = "gate weights at the kept epoch, per run";
    o.y_label = "weight";
    o.kind = "gate-summary";
    o.width = std::max(420, 150 * static_cast<int>(summary_groups.size()) + 80);
    o.width = std::min(o.width, 1300);
    o.height = 240;
    o.y_max = 1;
    gates += html::grouped_bar_chart(summary_groups, bars, o) + "\n<div class=\"charts\">\n" + cards + "</div>\n";
  }
  return {curves + "</section>\n", gates + "</section>\n"};
}

// An ensemble's members as its runs resolve them, with each member's own metrics, and each
// ensemble configuration's weights beside its result.
std::string ensemble_section(const ExperimentData& d) {
  if (d.members.empty()) return {};
  std::string out = "<section id=\"ensemble\">\n<h2>Ensemble members</h2>\n";
  out += fmt::format(
      "<p class=\"note\">Each member reference resolved against results.db as a trial resolves "
      "it (a best: reference is the finished run with the highest validation {} of that model, "
      "experiment and group; a later, better run would change it), with the member's own "
      "metrics.</p>\n",
      html::escape(d.monitor));
  const auto tests = shown_test_columns(d);
  std::vector<std::string> headers = {"member", "resolved run", "model", "experiment / group", "valid " + d.monitor};
  for (const auto& t : tests) headers.push_back("test " + heading(d, t));
  std::vector<std::vector<html::Cell>> rows;
  for (const auto& [ref, m] : d.members) {
    std::vector<html::Cell> row = {html::Cell(ref)};
    if (!m.run) {
      row.push_back(html::Cell("not resolved: " + m.why, std::nullopt, "error"));
      row.push_back(html::Cell("–"));
      row.push_back(html::Cell("–"));
      row.push_back(num_cell(std::nullopt));
      for (std::size_t i = 0; i < tests.size(); ++i) row.push_back(num_cell(std::nullopt));
    } else {
      html::Cell key(m.run->trial_key.substr(0, 12));
      key.title = m.run->trial_key;
      row.push_back(key);
      row.push_back(html::Cell(m.run->model));
      row.push_back(html::Cell(m.run->experiment.empty() ? "(a single run)"
                                                         : fmt::format("{} / {}", m.run->experiment, m.run->group_name)));
      row.push_back(num_cell(metric(m.run->valid_metrics, d.monitor)));
      for (const auto& t : tests) row.push_back(num_cell(metric(m.run->test_metrics, t)));
    }
    rows.push_back(std::move(row));
  }
  out += html::table("members", headers, rows);

  // The ensembles: members with their weights, the result, and the best member's test value.
  const std::string test_monitor = d.monitor;
  std::vector<std::vector<html::Cell>> ens;
  for (const auto& c : d.configurations) {
    const RunRow* first = c.runs.empty() ? nullptr : c.runs.front();
    if (!first) continue;
    std::vector<std::string> members;
    std::vector<double> weights;
    std::string combine;
    for (const auto& p : first->params) {
      const auto j = nlohmann::json::parse(p.value, nullptr, /*allow_exceptions=*/false);
      if (p.name == "members" && j.is_array())
        for (const auto& e : j)
          if (e.is_string()) members.push_back(e.get<std::string>());
      if (p.name == "weights" && j.is_array())
        for (const auto& e : j)
          if (e.is_number()) weights.push_back(e.get<double>());
      if (p.name == "combine") combine = p.value;
    }
    if (members.empty()) continue;
    std::vector<std::string> parts;
    std::optional<double> best_member;
    for (std::size_t i = 0; i < members.size(); ++i) {
      const auto it = d.members.find(members[i]);
      const bool ok = it != d.members.end() && it->second.run;
      parts.push_back(fmt::format("{} × {}", ok ? it->second.run->model : members[i],
                                  weights.empty() ? std::string("1") : i < weights.size() ? html::tick_label(weights[i]) : "?"));
      if (ok)
        if (const auto v = metric(it->second.run->test_metrics, test_monitor); v && (!best_member || *v > *best_member))
          best_member = v;
    }
    const auto own = c.test.find(test_monitor);
    std::string gain = "–";
    std::optional<double> gain_value;
    if (own != c.test.end() && own->second.n > 0 && best_member) {
      gain_value = own->second.mean - *best_member;
      gain = fmt::format("{:+.4f}", *gain_value);
    }
    ens.push_back({html::Cell(c.group), html::Cell(combine.empty() ? "–" : combine),
                   html::Cell(fmt::format("{}", fmt::join(parts, " + "))), stat_cell(c.valid, d.monitor),
                   stat_cell(c.test, test_monitor), num_cell(best_member),
                   html::Cell(gain, gain_value, "num")});
  }
  if (!ens.empty())
    out += "<h3>Ensembles and their weights</h3>\n" +
           html::table("ensembles",
                       {"group", "combine", "members × weight", "valid " + d.monitor, "test " + test_monitor,
                        "best member's test " + test_monitor, "gain over it"},
                       ens);
  return out + "</section>\n";
}

// The searches ([group.search]): how the best finished value grew with the trials and with the
// seconds they took, and each trial's validation curve, a pruned one ending at its pruning point.
std::string search_section(const ExperimentData& d) {
  if (d.searches.empty()) return {};
  std::string out = "<section id=\"search\">\n<h2>Searches</h2>\n";
  out += fmt::format(
      "<p class=\"note\">For each random or TPE search: the best validation {} among its "
      "finished trials after each trial, against the number of trials and against the trials' "
      "summed wall seconds (fit and evaluation, each trial on its own worker; pruned trials "
      "count their seconds and never count as a best); then every trial's validation curve, "
      "where a pruned trial's curve ends at the rung that stopped it (marked).</p>\n",
      html::escape(d.monitor));
  std::map<std::string, const RunRow*> row_of;
  for (const auto& r : d.runs) row_of[r.trial_key] = &r;
  for (const auto& s : d.searches) {
    const auto pruner = results::pruner_of_spec(s.record.spec_json);
    // The trials in the order they were registered (the order TPE suggested them in).
    std::vector<const RunRow*> rows;
    std::map<std::string, std::int64_t> index_of;
    for (const auto& t : s.trials) {
      const auto it = row_of.find(t.trial_key);
      if (it == row_of.end()) continue;
      rows.push_back(it->second);
      index_of[t.trial_key] = t.index;
    }
    std::sort(rows.begin(), rows.end(),
              [](const RunRow* a, const RunRow* b) { return a->id < b->id; });
    html::Series by_trial, by_seconds;
    by_trial.name = by_seconds.name = "best finished " + d.monitor;
    std::int64_t done = 0, finished = 0, pruned = 0, epochs = 0;
    double seconds = 0, best = -std::numeric_limits<double>::infinity();
    std::string best_key;
    for (const auto* r : rows) {
      const bool is_finished = r->status == results::RunStatus::finished;
      if (!is_finished && r->status != results::RunStatus::pruned) continue;
      ++done;
      is_finished ? ++finished : ++pruned;
      epochs += r->epochs_run.value_or(0);
      seconds += r->total_seconds.value_or(0);
      if (const auto v = metric(r->valid_metrics, d.monitor); is_finished && v && *v > best) {
        best = *v;
        best_key = r->trial_key;
      }
      if (std::isfinite(best)) {
        by_trial.points.emplace_back(static_cast<double>(done), best);
        by_seconds.points.emplace_back(seconds, best);
      }
    }
    out += fmt::format("<div class=\"card search\" data-search=\"{}\" data-group=\"{}\">"
                       "<h3>group {}: {} search{}</h3>\n",
                       html::escape(s.record.search_key), html::escape(s.record.group_name),
                       html::escape(s.record.group_name), html::escape(s.record.method),
                       pruner ? fmt::format(" with {} pruning", html::escape(pruner->kind))
                              : std::string());
    std::string budget;
    if (pruner && pruner->max_epochs > 0 && done > 0)
      budget = fmt::format("; {} epochs trained where the same trials unpruned would train {} "
                           "({:.0f}%)",
                           epochs, done * pruner->max_epochs,
                           100.0 * static_cast<double>(epochs) /
                               static_cast<double>(done * pruner->max_epochs));
    out += fmt::format("<p class=\"meta\">{} trials ended: {} finished, {} pruned; {:.0f} "
                       "trial seconds{}{}</p>\n",
                       done, finished, pruned, seconds, budget,
                       best_key.empty() ? std::string()
                                        : fmt::format("; best {:.4f} (trial {})", best,
                                                      html::escape(best_key.substr(0, 12))));
    out += "<div class=\"charts\">\n";
    html::ChartOptions o;
    o.title = fmt::format("best validation {} by trial", d.monitor);
    o.x_label = "trials ended";
    o.y_label = d.monitor;
    o.kind = "search-trials";
    o.data = {{"search", s.record.search_key}};
    out += html::line_chart({by_trial}, o) + "\n";
    o.title = fmt::format("best validation {} by trial seconds", d.monitor);
    o.x_label = "trial seconds (summed)";
    o.kind = "search-seconds";
    out += html::line_chart({by_seconds}, o) + "\n";
    // Every trial's curve; the pruning points as marks.
    std::vector<html::Series> curves;
    html::Series marks;
    marks.name = "pruned here";
    marks.line = false;
    for (const auto* r : rows) {
      html::Series c;
      const auto idx = index_of[r->trial_key];
      c.name = fmt::format("#{}{}", idx, r->status == results::RunStatus::pruned ? " (pruned)" : "");
      for (const auto& p : d.curves.at(r->trial_key))
        if (p.split == results::SplitName::valid && p.name == d.monitor)
          c.points.emplace_back(static_cast<double>(p.epoch), p.value);
      if (c.points.empty()) continue;
      if (r->status == results::RunStatus::pruned) marks.points.push_back(c.points.back());
      curves.push_back(std::move(c));
    }
    if (!marks.points.empty()) curves.push_back(marks);
    o.title = fmt::format("validation {} of every trial", d.monitor);
    o.x_label = "epoch";
    o.kind = "search-curves";
    o.data = {{"search", s.record.search_key},
              {"trials", std::to_string(curves.size() - (marks.points.empty() ? 0 : 1))},
              {"pruned", std::to_string(marks.points.size())}};
    o.width = 560;
    out += html::line_chart(curves, o) + "\n</div></div>\n";
  }
  return out + "</section>\n";
}

// A trial key as a table shows it: its first 12 characters (a unique prefix that every command
// taking a run accepts), the whole key as the tooltip.
html::Cell key_cell(const std::string& key) {
  html::Cell c(key.substr(0, 12));
  c.title = key;
  return c;
}

std::string failures_section(const ExperimentData& d) {
  std::string out = "<section id=\"failures\">\n<h2>Failed, interrupted and waiting trials</h2>\n";
  std::vector<std::vector<html::Cell>> rows;
  for (const auto& r : d.runs) {
    if (r.status != RunStatus::failed && r.status != RunStatus::interrupted && r.status != RunStatus::waiting)
      continue;
    std::string label;
    for (const auto& c : d.configurations)
      if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) label = c.label;
    rows.push_back({key_cell(r.trial_key),
                    html::Cell(r.group_name),
                    html::Cell(label),
                    html::Cell(std::to_string(r.seed), static_cast<double>(r.seed), "num"),
                    html::Cell(std::string(results::to_string(r.status))),
                    html::Cell(std::to_string(r.attempts), static_cast<double>(r.attempts), "num"),
                    html::Cell(r.error.empty() ? "(no reason recorded)" : r.error, std::nullopt, "error")});
  }
  if (rows.empty())
    out += "<p>None.</p>\n";
  else
    out += html::table("failures", {"trial", "group", "configuration", "seed", "status", "attempts", "reason"}, rows);
  return out + "</section>\n";
}

std::string runs_section(const ExperimentData& d) {
  std::string out = "<section id=\"runs\">\n<h2>All runs</h2>\n";
  std::vector<std::vector<html::Cell>> rows;
  const std::string test_monitor = d.monitor;
  for (const auto& r : d.runs) {
    std::string label;
    for (const auto& c : d.configurations)
      if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) label = c.label;
    const auto opt = [](std::optional<std::int64_t> v) {
      return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
    };
    rows.push_back({key_cell(r.trial_key),
                    html::Cell(r.group_name),
                    html::Cell(r.model),
                    html::Cell(label),
                    html::Cell(std::to_string(r.seed), static_cast<double>(r.seed), "num"),
                    html::Cell(std::string(results::to_string(r.status))),
                    num_cell(opt(r.best_epoch), 0),
                    num_cell(opt(r.epochs_run), 0),
                    num_cell(r.total_seconds, 1),
                    num_cell(metric(r.valid_metrics, d.monitor)),
                    num_cell(metric(r.test_metrics, test_monitor))});
  }
  out += html::table("runs",
                     {"trial", "group", "model", "configuration", "seed", "status", "best epoch",
                      "epochs", "seconds", "valid " + d.monitor, "test " + d.monitor},
                     rows);
  return out + "</section>\n";
}

std::string experiment_section(const ExperimentData& d) {
  std::string out = "<section id=\"experiment\">\n<h2>Experiment file and data</h2>\n";
  std::map<std::pair<std::string, std::string>, int> data;
  for (const auto& r : d.runs) ++data[{r.data_path, r.data_fingerprint}];
  std::vector<std::vector<html::Cell>> rows;
  for (const auto& [key, n] : data)
    rows.push_back({html::Cell(key.first), html::Cell(key.second.empty() ? "(none recorded)" : key.second),
                    html::Cell(std::to_string(n), static_cast<double>(n), "num")});
  out += "<h3>Data</h3>\n" +
         html::table("data", {"data directory", "fingerprint", "runs"}, rows);
  if (!d.runs.empty())
    out += fmt::format("<h3>Protocol</h3>\n<pre class=\"protocol\">{}</pre>\n",
                       html::escape(d.runs.back().protocol_json));
  for (auto it = d.versions.rbegin(); it != d.versions.rend(); ++it) {
    const bool latest = it == d.versions.rbegin();
    const std::string head = fmt::format("{} version {} (hash {}, first swept {})",
                                          latest ? "Latest" : "Earlier", it->id, it->hash, it->created_at);
    if (latest)
      out += fmt::format("<h3>{}</h3>\n<pre class=\"toml\">{}</pre>\n", html::escape(head),
                         html::escape(it->toml_text));
    else
      out += fmt::format("<details><summary>{}</summary><pre class=\"toml\">{}</pre></details>\n",
                         html::escape(head), html::escape(it->toml_text));
  }
  return out + "</section>\n";
}

}  // namespace

std::string render_experiment_report(const ExperimentData& d, std::string_view source,
                                     std::string_view generated_at) {
  const auto best = best_configurations(d);
  std::string body = fmt::format("<h1>Experiment {}</h1>\n", html::escape(d.name));
  body += fmt::format("<p class=\"meta\">{} runs: {} finished, {}{} failed, {} interrupted, {} "
                      "running, {} pending{} · {} configurations · monitor {}</p>\n",
                      d.counts.total(), d.counts.finished,
                      d.counts.pruned > 0 ? fmt::format("{} pruned (stopped by their search's "
                                                        "pruner; never a best), ",
                                                        d.counts.pruned)
                                          : std::string(),
                      d.counts.failed, d.counts.interrupted, d.counts.running, d.counts.pending,
                      d.counts.waiting > 0 ? fmt::format(", {} waiting for their members", d.counts.waiting)
                                           : std::string(),
                      d.configurations.size(), html::escape(d.monitor));
  body += fmt::format("<p class=\"meta\">from {} · made {}</p>\n", html::escape(source),
                      html::escape(generated_at));
  if (d.counts.running > 0 || d.counts.pending > 0)
    body += "<p class=\"note\">The sweep has not finished: this page shows the runs recorded so "
            "far.</p>\n";
  body += "<nav class=\"meta\"><a href=\"#sweep\">sweep</a> · <a href=\"#params\">parameters</a> · "
          "<a href=\"#curves\">curves</a> · " +
          std::string(d.searches.empty() ? "" : "<a href=\"#search\">searches</a> · ") +
          "<a href=\"#gates\">gate weights</a> · " +
          std::string(d.members.empty() ? "" : "<a href=\"#ensemble\">ensemble members</a> · ") +
          "<a href=\"#failures\">failures</a> · <a href=\"#runs\">runs</a> · "
          "<a href=\"#experiment\">experiment file</a></nav>\n";
  body += sweep_section(d, best);
  body += params_section(d);
  const auto [curves, gates] = curve_sections(d);
  body += curves;
  body += search_section(d);
  body += gates;
  body += ensemble_section(d);
  body += failures_section(d);
  body += runs_section(d);
  body += experiment_section(d);
  return html::page(fmt::format("recrun report: {}", d.name), body);
}

}  // namespace recrun::report
