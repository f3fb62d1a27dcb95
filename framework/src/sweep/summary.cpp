#include "sweep/summary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "results/stats.hpp"

namespace recrun::sweep {

namespace {

std::optional<double> metric(const std::vector<results::Metric>& list, const std::string& name) {
  for (const auto& m : list)
    if (m.name == name) return m.value;
  return std::nullopt;
}

std::string cell(std::optional<double> v) { return v ? fmt::format("{:.4f}", *v) : "-"; }

// "mean ± std" over seeds, or the one value.
std::string cell(const results::Summary& s) {
  if (s.n == 0) return "-";
  if (s.n < 2) return fmt::format("{:.4f}", s.mean);
  return fmt::format("{:.4f} ± {:.4f}", s.mean, s.std);
}

// Display width of UTF-8 text (± is one column, two bytes).
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The trial's label without its seed: the configuration's varying parameters.
std::string config_label(const Trial& t) {
  std::vector<std::string> parts;
  for (const auto& k : t.varying)
    if (t.params.contains(k)) parts.push_back(fmt::format("{}={}", k, to_string(t.params.at(k))));
  return parts.empty() ? std::string("-") : fmt::format("{}", fmt::join(parts, " "));
}

}  // namespace

std::vector<GroupBest> best_per_group(const Experiment& x, const std::vector<Trial>& trials,
                                      const std::map<std::string, results::RunRow>& rows) {
  std::vector<GroupBest> out;
  for (const auto& g : x.groups) {
    // Configurations of the group in order of first appearance: model and every parameter.
    std::vector<GroupBest> configs;
    std::map<std::string, std::size_t> index;
    std::vector<std::vector<double>> values;
    for (const auto& t : trials) {
      if (t.group != g.name) continue;
      const auto it = rows.find(t.key);
      if (it == rows.end() || it->second.status != results::RunStatus::finished) continue;
      const auto v = metric(it->second.valid_metrics, x.protocol.monitor);
      if (!v) continue;
      std::string id = t.model;
      for (const auto& [k, value] : t.params.values()) id += fmt::format("\x1f{}={}", k, to_string(value));
      auto [pos, inserted] = index.emplace(id, configs.size());
      if (inserted) {
        configs.emplace_back();
        configs.back().group = g.name;
        configs.back().trial = &t;
        configs.back().row = &it->second;
        values.emplace_back();
      }
      configs[pos->second].trials.push_back(&t);
      configs[pos->second].rows.push_back(&it->second);
      values[pos->second].push_back(*v);
    }
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const auto s = results::summarize(values[i]);
      configs[i].valid = s.mean;
      configs[i].valid_std = s.std;
      if (!best || configs[i].valid > configs[*best].valid) best = i;
    }
    if (best) out.push_back(std::move(configs[*best]));
  }
  return out;
}

void print_summary(std::FILE* out, const Experiment& x, const std::vector<Trial>& trials,
                   const std::map<std::string, results::RunRow>& rows) {
  const auto& monitor = x.protocol.monitor;
  const std::string k = monitor.substr(monitor.find('@') + 1);
  std::vector<std::string> test_cols;
  for (const auto& m : x.protocol.metrics) test_cols.push_back(fmt::format("{}@{}", m, k));

  const auto best = best_per_group(x, trials, rows);
  bool seeds = false;
  for (const auto& b : best) seeds |= b.rows.size() > 1;
  fmt::print(out, "\n{}: best {} per group (picked by valid {}{}; test = {} best checkpoint)\n",
             x.name, seeds ? "configuration" : "trial", monitor,
             seeds ? " averaged over its seeds, mean ± std over n" : "",
             seeds ? "each seed's" : "its");
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"group", "model", "trial", "params"};
  if (seeds) header.push_back("n");
  header.push_back("valid " + monitor);
  for (const auto& c : test_cols) header.push_back("test " + c);
  table.push_back(header);
  for (const auto& b : best) {
    std::vector<std::string> row = {b.group, b.trial->model, b.trial->key,
                                    seeds ? config_label(*b.trial) : b.trial->label()};
    if (seeds) row.push_back(fmt::format("{}", b.rows.size()));
    row.push_back(seeds ? cell(results::Summary{b.valid, b.valid_std, b.rows.size()})
                        : fmt::format("{:.4f}", b.valid));
    for (const auto& c : test_cols) {
      std::vector<double> v;
      for (const auto* r : b.rows)
        if (auto m = metric(r->test_metrics, c)) v.push_back(*m);
      row.push_back(seeds ? cell(results::summarize(v)) : cell(metric(b.row->test_metrics, c)));
    }
    table.push_back(row);
  }
  const std::size_t first_number = 4;  // columns from here on are numbers, right-aligned
  std::vector<std::size_t> widths(header.size(), 0);
  for (const auto& r : table)
    for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], width(r[i]));
  // Long parameter lists would push the metrics off the screen.
  widths[3] = std::min<std::size_t>(widths[3], 48);
  for (std::size_t r = 0; r < table.size(); ++r) {
    std::string line = " ";
    for (std::size_t i = 0; i < table[r].size(); ++i) {
      std::string c = table[r][i];
      if (width(c) > widths[i]) c = c.substr(0, widths[i] - 3) + "...";
      const std::string pad(widths[i] - std::min(widths[i], width(c)), ' ');
      line += " " + (i >= first_number ? pad + c : c + pad);
    }
    fmt::print(out, "{}\n", line);
    if (r == 0) {
      std::size_t total = 1;
      for (const auto w : widths) total += w + 1;
      fmt::print(out, " {}\n", std::string(total - 1, '-'));
    }
  }
  if (best.empty()) fmt::print(out, "  (no finished trials yet)\n");

  std::map<std::string, std::size_t> counts;
  std::vector<std::string> failures, waiting;
  for (const auto& t : trials) {
    const auto it = rows.find(t.key);
    const std::string status =
        it == rows.end() ? "not registered" : std::string(results::to_string(it->second.status));
    ++counts[status];
    if (it != rows.end() && it->second.status == results::RunStatus::failed)
      failures.push_back(fmt::format("  {} {} {}: {}", t.key, t.group, t.label(), it->second.error));
    if (it != rows.end() && it->second.status == results::RunStatus::waiting)
      waiting.push_back(fmt::format("  {} {} {}: {}", t.key, t.group, t.label(), it->second.error));
  }
  std::vector<std::string> parts;
  for (const auto& [s, n] : counts) parts.push_back(fmt::format("{} {}", n, s));
  fmt::print(out, "\n{} trials: {}\n", trials.size(), fmt::join(parts, ", "));
  if (!failures.empty()) {
    fmt::print(out, "failed (rerun with --retry-failed):\n");
    for (const auto& f : failures) fmt::print(out, "{}\n", f);
  }
  if (!waiting.empty()) {
    fmt::print(out, "waiting for their members (make them, then sweep again):\n");
    for (const auto& w : waiting) fmt::print(out, "{}\n", w);
  }
}

Overhead measure_overhead(const ScheduleResult& schedule,
                          const std::map<std::string, results::RunRow>& rows) {
  Overhead o;
  double wall = 0, work = 0, cpu = 0;
  for (const auto& r : schedule.runs) {
    // A resumed trial's fit time includes earlier attempts: it would understate the overhead.
    if (r.outcome != "finished" || r.wall_seconds <= 0 || r.resumed) continue;
    const auto it = rows.find(r.key);
    if (it == rows.end() || !it->second.fit_seconds || !it->second.eval_seconds) continue;
    ++o.trials;
    wall += r.wall_seconds;
    cpu += r.cpu_seconds;
    work += *it->second.fit_seconds + *it->second.eval_seconds;
  }
  if (o.trials == 0) return o;
  o.mean_wall = wall / static_cast<double>(o.trials);
  o.mean_work = work / static_cast<double>(o.trials);
  o.mean_cpu = cpu / static_cast<double>(o.trials);
  o.mean_overhead = o.mean_wall - o.mean_work;
  o.share = o.mean_wall > 0 ? o.mean_overhead / o.mean_wall : 0;
  return o;
}

}  // namespace recrun::sweep
