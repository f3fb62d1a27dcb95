#include "report/experiment_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "recrun/error.hpp"
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
          parts.push_back(fmt::format("{}={}", pname, value.value));
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

// The sweep tables: best per group, then every configuration.
std::string sweep_section(const ExperimentData& d, const std::vector<std::size_t>& best) {
  std::string out = "<section id=\"sweep\">\n<h2>Sweep</h2>\n";
  out += fmt::format(
      "<p class=\"note\">The best configuration of each group is picked by the mean validation "
      "{} over its finished seeds (never by a test metric); test metrics are those of each "
      "run's best checkpoint. Values are mean ± standard deviation where there are several "
      "seeds. Click a column header to sort.</p>\n",
      html::escape(d.monitor));
  std::vector<std::string> headers = {"group", "model", "configuration", "seeds",
                                      "valid " + d.monitor};
  for (const auto& c : d.test_columns) headers.push_back("test " + c);
  const auto row_of = [&](const Configuration& c) {
    std::vector<html::Cell> row = {
        html::Cell(c.group),
        html::Cell(c.model),
        html::Cell(c.label.empty() ? "(no swept parameter)" : c.label),
        html::Cell(fmt::format("{}/{}", c.finished, c.runs.size()), static_cast<double>(c.finished),
                   "num"),
        stat_cell(c.valid, d.monitor)};
    for (const auto& t : d.test_columns) row.push_back(stat_cell(c.test, t));
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

// Each metric (the validation monitor and the test metrics at its cut-off) against each swept
// parameter of each group.
std::string params_section(const ExperimentData& d) {
  std::string out = "<section id=\"params\">\n<h2>Metrics against swept parameters</h2>\n";
  std::vector<std::pair<std::string, bool>> metrics = {{d.monitor, false}};
  const std::string k = cutoff(d.monitor);
  for (const auto& t : d.test_columns)
    if (cutoff(t) == k) metrics.emplace_back(t, true);
  int charts = 0;
  std::vector<std::string> groups;
  for (const auto& c : d.configurations)
    if (std::find(groups.begin(), groups.end(), c.group) == groups.end()) groups.push_back(c.group);
  for (const auto& g : groups) {
    const auto& swept = d.swept_params.at(g);
    if (swept.empty()) continue;
    std::vector<const Configuration*> configs;
    for (const auto& c : d.configurations)
      if (c.group == g) configs.push_back(&c);
    out += fmt::format("<h3>group {}</h3>\n", html::escape(g));
    for (const auto& pname : swept) {
      std::vector<results::Param> vals;
      for (const auto* c : configs) {
        const auto& v = c->swept.at(pname);
        if (std::none_of(vals.begin(), vals.end(), [&](const auto& x) { return x.value == v.value; }))
          vals.push_back(v);
      }
      sort_values(vals);
      std::vector<std::string> categories;
      for (const auto& v : vals) categories.push_back(v.value);
      const auto x_of = [&](const Configuration& c) {
        const auto& v = c.swept.at(pname).value;
        return static_cast<double>(std::find(categories.begin(), categories.end(), v) - categories.begin());
      };
      const bool others = swept.size() > 1;
      out += "<div class=\"charts\">\n";
      for (const auto& [m, is_test] : metrics) {
        // (x, mean, std) of each configuration, in x order.
        std::vector<std::tuple<double, double, double>> at;
        std::vector<std::vector<double>> per_x(categories.size());
        for (const auto* c : configs) {
          const auto& stats = is_test ? c->test : c->valid;
          const auto it = stats.find(m);
          if (it == stats.end() || it->second.n == 0) continue;
          const double x = x_of(*c);
          at.emplace_back(x, it->second.mean, it->second.stdev);
          per_x[static_cast<std::size_t>(x)].push_back(it->second.mean);
        }
        std::sort(at.begin(), at.end());
        html::Series points{.name = others ? "each configuration" : m, .points = {}, .errors = {},
                            .line = !others};
        for (const auto& [x, y, e] : at) {
          points.points.emplace_back(x, y);
          points.errors.push_back(e);
        }
        std::vector<html::Series> series;
        series.push_back(std::move(points));
        if (others) {
          html::Series mean{.name = "mean over the other parameters", .points = {}, .errors = {}, .line = true};
          for (std::size_t i = 0; i < per_x.size(); ++i)
            if (!per_x[i].empty()) mean.points.emplace_back(static_cast<double>(i), mean_std(per_x[i]).mean);
          series.push_back(std::move(mean));
        }
        html::ChartOptions o;
        o.title = fmt::format("{} {} by {}", is_test ? "test" : "valid", m, pname);
        o.x_label = pname;
        o.y_label = fmt::format("{} {}", is_test ? "test" : "valid", m);
        o.x_categories = categories;
        o.kind = "param";
        o.data = {{"group", g}, {"param", pname}, {"metric", (is_test ? "test " : "valid ") + m}};
        o.width = 330;
        o.height = 220;
        out += html::line_chart(series, o) + "\n";
        ++charts;
      }
      out += "</div>\n";
    }
  }
  if (charts == 0) out += "<p>No group sweeps a parameter.</p>\n";
  return out + "</section>\n";
}

std::string run_title(const ExperimentData& d, const RunRow& r) {
  std::string label;
  for (const auto& c : d.configurations)
    if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) label = c.label;
  return fmt::format("{}{}{} · seed {} · {} ({})", r.group_name, label.empty() ? "" : " · ", label,
                     r.seed, r.trial_key, results::to_string(r.status));
}

// Learning curves (train loss; validation metrics at the monitor's cut-off) of every run that
// logged epochs, and the gate weights of the runs that logged them.
std::pair<std::string, std::string> curve_sections(const ExperimentData& d) {
  std::string curves = "<section id=\"curves\">\n<h2>Learning curves</h2>\n";
  std::string gates = "<section id=\"gates\">\n<h2>Gate weights</h2>\n";
  const std::string k = cutoff(d.monitor);
  int with_curves = 0, with_gates = 0, single_epoch = 0;
  for (const auto& r : d.runs) {
    const auto& points = d.curves.at(r.trial_key);
    if (points.empty()) continue;
    std::map<std::string, html::Series> loss, valid, gate;
    for (const auto& p : points) {
      const double x = static_cast<double>(p.epoch);
      if (p.split == results::SplitName::train && p.name == "loss") {
        loss[p.name].name = "train loss";
        loss[p.name].points.emplace_back(x, p.value);
      } else if (p.split == results::SplitName::valid && p.name.rfind("val_gate/", 0) == 0) {
        auto& s = gate[p.name];
        s.name = p.name.substr(9);
        s.points.emplace_back(x, p.value);
      } else if (p.split == results::SplitName::valid && p.name.rfind("val_", 0) != 0 &&
                 cutoff(p.name) == k) {
        auto& s = valid[p.name];
        s.name = "valid " + p.name;
        s.points.emplace_back(x, p.value);
      }
    }
    const auto values = [](std::map<std::string, html::Series>& m) {
      std::vector<html::Series> v;
      for (auto& [name, s] : m) v.push_back(std::move(s));
      return v;
    };
    const std::string title = run_title(d, r);
    // A run that logged one epoch (a closed-form model) has values, not curves: the tables
    // show them.
    std::size_t longest = 0;
    for (const auto* m : {&loss, &valid})
      for (const auto& [name, s] : *m) longest = std::max(longest, s.points.size());
    if (longest == 1) ++single_epoch;
    if (longest > 1) {
      ++with_curves;
      curves += fmt::format("<div class=\"card run\" data-trial=\"{}\"><h3>{}</h3><div class=\"charts\">\n",
                            html::escape(r.trial_key), html::escape(title));
      if (!loss.empty()) {
        html::ChartOptions o;
        o.title = "train loss";
        o.x_label = "epoch";
        o.y_label = "loss";
        o.kind = "curve";
        o.data = {{"trial", r.trial_key}, {"metric", "loss"}};
        curves += html::line_chart(values(loss), o) + "\n";
      }
      if (!valid.empty()) {
        html::ChartOptions o;
        o.title = fmt::format("validation @{}", k);
        o.x_label = "epoch";
        o.y_label = "metric";
        o.kind = "curve";
        o.data = {{"trial", r.trial_key}, {"metric", "valid"}};
        curves += html::line_chart(values(valid), o) + "\n";
      }
      curves += "</div></div>\n";
    }
    if (!gate.empty()) {
      ++with_gates;
      html::ChartOptions o;
      o.title = "mean gate weight per feature";
      o.x_label = "epoch";
      o.y_label = "weight";
      o.kind = "gate";
      o.width = 420;
      o.data = {{"trial", r.trial_key}, {"features", std::to_string(gate.size())}};
      gates += fmt::format("<div class=\"card gate-run\" data-trial=\"{}\"><h3>{}</h3>\n{}\n</div>\n",
                           html::escape(r.trial_key), html::escape(title),
                           html::line_chart(values(gate), o));
    }
  }
  if (single_epoch > 0)
    curves += fmt::format("<p class=\"note\">{} run(s) logged a single epoch (closed-form models "
                          "such as EASE and popularity): they have no curve; the tables above "
                          "show their values.</p>\n",
                          single_epoch);
  if (with_curves == 0 && single_epoch == 0) curves += "<p>No run has logged epochs yet.</p>\n";
  if (with_gates == 0)
    gates += "<p>No run logged gate weights (val_gate/&lt;feature&gt;): only runs with "
             "fusion = \"gate\" do.</p>\n";
  else
    gates = "<section id=\"gates\">\n<h2>Gate weights</h2>\n<p class=\"note\">The mean weight the "
            "gate gives each source (the item id embedding and each feature) over the "
            "validation users, after each validation.</p>\n" + gates.substr(gates.find("</h2>\n") + 6);
  return {curves + "</section>\n", gates + "</section>\n"};
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
    html::Series by_trial{.name = "best finished " + d.monitor},
        by_seconds{.name = "best finished " + d.monitor};
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
    html::Series marks{.name = "pruned here", .line = false};
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

std::string failures_section(const ExperimentData& d) {
  std::string out = "<section id=\"failures\">\n<h2>Failed and interrupted trials</h2>\n";
  std::vector<std::vector<html::Cell>> rows;
  for (const auto& r : d.runs) {
    if (r.status != RunStatus::failed && r.status != RunStatus::interrupted) continue;
    std::string label;
    for (const auto& c : d.configurations)
      if (std::find(c.runs.begin(), c.runs.end(), &r) != c.runs.end()) label = c.label;
    rows.push_back({html::Cell(r.trial_key),
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
    rows.push_back({html::Cell(r.trial_key),
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
                      "running, {} pending · {} configurations · monitor {}</p>\n",
                      d.counts.total(), d.counts.finished,
                      d.counts.pruned > 0 ? fmt::format("{} pruned (stopped by their search's "
                                                        "pruner; never a best), ",
                                                        d.counts.pruned)
                                          : std::string(),
                      d.counts.failed, d.counts.interrupted, d.counts.running, d.counts.pending,
                      d.configurations.size(), html::escape(d.monitor));
  body += fmt::format("<p class=\"meta\">from {} · made {}</p>\n", html::escape(source),
                      html::escape(generated_at));
  if (d.counts.running > 0 || d.counts.pending > 0)
    body += "<p class=\"note\">The sweep has not finished: this page shows the runs recorded so "
            "far.</p>\n";
  body += "<nav class=\"meta\"><a href=\"#sweep\">sweep</a> · <a href=\"#params\">parameters</a> · "
          "<a href=\"#curves\">curves</a> · " +
          std::string(d.searches.empty() ? "" : "<a href=\"#search\">searches</a> · ") +
          "<a href=\"#gates\">gate weights</a> · "
          "<a href=\"#failures\">failures</a> · <a href=\"#runs\">runs</a> · "
          "<a href=\"#experiment\">experiment file</a></nav>\n";
  body += sweep_section(d, best);
  body += params_section(d);
  const auto [curves, gates] = curve_sections(d);
  body += curves;
  body += search_section(d);
  body += gates;
  body += failures_section(d);
  body += runs_section(d);
  body += experiment_section(d);
  return html::page(fmt::format("recrun report: {}", d.name), body);
}

}  // namespace recrun::report
