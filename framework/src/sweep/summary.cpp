#include "sweep/summary.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace recrun::sweep {

namespace {

std::optional<double> metric(const std::vector<results::Metric>& list, const std::string& name) {
  for (const auto& m : list)
    if (m.name == name) return m.value;
  return std::nullopt;
}

std::string cell(std::optional<double> v) { return v ? fmt::format("{:.4f}", *v) : "-"; }

}  // namespace

std::vector<GroupBest> best_per_group(const Experiment& x, const std::vector<Trial>& trials,
                                      const std::map<std::string, results::RunRow>& rows) {
  std::vector<GroupBest> out;
  for (const auto& g : x.groups) {
    GroupBest best;
    best.group = g.name;
    for (const auto& t : trials) {
      if (t.group != g.name) continue;
      const auto it = rows.find(t.key);
      if (it == rows.end() || it->second.status != results::RunStatus::finished) continue;
      const auto v = metric(it->second.valid_metrics, x.protocol.monitor);
      if (!v) continue;
      if (!best.trial || *v > best.valid) {
        best.trial = &t;
        best.row = &it->second;
        best.valid = *v;
      }
    }
    if (best.trial) out.push_back(best);
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
  fmt::print(out, "\n{}: best trial per group (picked by valid {}; test = its best checkpoint)\n",
             x.name, monitor);
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"group", "model", "trial", "params", "valid " + monitor};
  for (const auto& c : test_cols) header.push_back("test " + c);
  table.push_back(header);
  for (const auto& b : best) {
    std::vector<std::string> row = {b.group, b.trial->model, b.trial->key, b.trial->label(),
                                    fmt::format("{:.4f}", b.valid)};
    for (const auto& c : test_cols) row.push_back(cell(metric(b.row->test_metrics, c)));
    table.push_back(row);
  }
  std::vector<std::size_t> widths(header.size(), 0);
  for (const auto& r : table)
    for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  // Long parameter lists would push the metrics off the screen.
  widths[3] = std::min<std::size_t>(widths[3], 48);
  for (std::size_t r = 0; r < table.size(); ++r) {
    std::string line = " ";
    for (std::size_t i = 0; i < table[r].size(); ++i) {
      std::string c = table[r][i];
      if (c.size() > widths[i]) c = c.substr(0, widths[i] - 3) + "...";
      line += i >= 4 ? fmt::format(" {:>{}}", c, widths[i]) : fmt::format(" {:<{}}", c, widths[i]);
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
  std::vector<std::string> failures;
  for (const auto& t : trials) {
    const auto it = rows.find(t.key);
    const std::string status =
        it == rows.end() ? "not registered" : std::string(results::to_string(it->second.status));
    ++counts[status];
    if (it != rows.end() && it->second.status == results::RunStatus::failed)
      failures.push_back(fmt::format("  {} {} {}: {}", t.key, t.group, t.label(), it->second.error));
  }
  std::vector<std::string> parts;
  for (const auto& [s, n] : counts) parts.push_back(fmt::format("{} {}", n, s));
  fmt::print(out, "\n{} trials: {}\n", trials.size(), fmt::join(parts, ", "));
  if (!failures.empty()) {
    fmt::print(out, "failed (rerun with --retry-failed):\n");
    for (const auto& f : failures) fmt::print(out, "{}\n", f);
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
