// recrun results: questions about recorded runs answered without SQL. list (filters, sorting,
// formats), best (the best configuration per group over seeds), compare (two runs or
// configurations, with paired tests on per-user test metrics) and curve (a run's per-epoch
// metrics). The questions themselves live in results/query.hpp.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "recrun/error.hpp"
#include "results/query.hpp"
#include "results/results_store.hpp"
#include "results/table.hpp"

namespace recrun::cli {

namespace {

using namespace recrun::results;

constexpr const char* kUsage =
    "recrun results list|best|compare|curve ... [--results DIR]\n"
    "  list [--experiment NAME] [--model M] [--status S] [--where param=value]... [--sort METRIC "
    "[--ascending]] [--format table|csv|md|json]\n"
    "  best [EXPERIMENT] [--format table|csv|md|json]   (no EXPERIMENT: single runs by model)\n"
    "  compare A B [--seeds] [--metric M] [--format table|md|json]   (A, B: run keys, key "
    "prefixes, id:N, or EXPERIMENT/GROUP)\n"
    "  curve KEY [--metric M]... [--format table|csv|md|json]";

std::unique_ptr<ResultsStore> open_store(const std::string& dir) {
  if (dir.empty())
    throw Error("--results is empty: name the results directory (default: results)");
  const auto db = std::filesystem::path(dir) / "results.db";
  std::error_code ec;
  // Something that is not a file (a device, a FIFO) is named by the store; only absence is this.
  if (!std::filesystem::exists(std::filesystem::status(db, ec)))
    throw Error(fmt::format("no results database at {}: record runs first (`recrun run` or "
                            "`recrun sweep`), or pass the directory that holds results.db with "
                            "--results DIR",
                            db.string()));
  results::StoreOptions options;
  options.read_only = true;  // `results` only reads: a read-only archive is fine
  return std::make_unique<ResultsStore>(db, options);
}

// "K" of "NDCG@10" as a number for ordering; names without one sort first.
std::pair<std::string, long> metric_order(const std::string& name) {
  const auto at = name.rfind('@');
  long k = -1;
  if (at != std::string::npos) {
    const auto* first = name.data() + at + 1;
    std::from_chars(first, name.data() + name.size(), k);
  }
  return {at == std::string::npos ? name : name.substr(0, at), k};
}

void sort_metric_names(std::vector<std::string>& names) {
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    const auto x = metric_order(a), y = metric_order(b);
    if (x.second != y.second) return x.second < y.second;
    return x.first < y.first;
  });
}

std::string mean_std(const Summary& s) {
  if (s.n == 0) return "-";
  if (s.n < 2 || std::isnan(s.std)) return fmt::format("{:.4f}", s.mean);
  return fmt::format("{:.4f} ± {:.4f}", s.mean, s.std);
}

// Summary columns: one "mean ± std" cell for people, mean and std cells for machines.
void add_summary(std::vector<std::string>* header, std::vector<Cell>* row, const std::string& name,
                 const Summary& s, bool machine) {
  if (machine) {
    if (header) header->push_back(name + "_mean"), header->push_back(name + "_std");
    if (row) {
      row->push_back(Cell::of(s.n ? std::optional<double>(s.mean) : std::nullopt, 6));
      row->push_back(Cell::of(s.n >= 2 ? std::optional<double>(s.std) : std::nullopt, 6));
    }
  } else {
    if (header) header->push_back(name);
    if (row) row->push_back(Cell::of(mean_std(s)));
  }
}

int results_list(const Args& args) {
  std::string dir = "results", format = "table", status, sort;
  RunFilter filter;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "results", po::value(&dir)->default_value("results"), "results directory (holds results.db)")(
      "experiment", po::value(&filter.experiment), "only runs of this experiment")(
      "model", po::value(&filter.model), "only runs of this model")(
      "status", po::value(&status), "only runs in this status: pending, running, finished, failed, "
                                    "interrupted, pruned or waiting")(
      "where", po::value(&filter.where)->composing(),
      "param=value: only runs whose parameter has this value (repeatable; numbers compare as "
      "numbers)")(
      "sort", po::value(&sort), "sort by a metric, highest first: NDCG@10 (test), test_Hit@20, "
                                "valid_NDCG@10")(
      "ascending", "with --sort: lowest first (e.g. for ARP@K)")(
      "format", po::value(&format)->default_value("table"), "table, csv, md or json");
  const auto vm = parse(desc, args, "recrun results list [options]");
  if (vm.count("help")) return 0;
  const Format fmt_ = parse_format(format);
  if (!status.empty()) {
    try {
      filter.status = parse_run_status(status);
    } catch (const std::invalid_argument& e) {
      throw Error(fmt::format("--status: {}", e.what()));
    }
  }
  const auto store = open_store(dir);
  // An experiment's runs are read through their membership: a run that two experiments share
  // is listed under the one asked for, with its group there.
  const auto all = filter.experiment.empty() ? store->runs() : store->runs(filter.experiment);
  auto runs = filter_runs(all, filter);
  if (runs.empty() && !filter.where.empty())
    fmt::print(stderr, "{}\n", explain_no_match(all, filter));
  std::optional<MetricRef> sort_ref;
  if (!sort.empty()) {
    sort_ref = parse_metric_ref(sort);
    sort_runs(runs, *sort_ref, vm.count("ascending") > 0);
  } else if (vm.count("ascending")) {
    throw Error("--ascending needs --sort METRIC");
  }

  // Columns: the validation monitors and every test metric the listed runs have.
  std::set<std::string> monitors, tests;
  for (const auto* r : runs) {
    monitors.insert(monitor_of(*r));
    for (const auto& m : r->test_metrics) tests.insert(m.name);
  }
  std::vector<std::string> valid_cols(monitors.begin(), monitors.end());
  std::vector<std::string> test_cols(tests.begin(), tests.end());
  sort_metric_names(test_cols);
  if (sort_ref && sort_ref->split == SplitName::valid) {
    // Show the sorted-by column, spelled as the runs spell it.
    for (const auto* r : runs)
      for (const auto& m : r->valid_metrics)
        if (sort_ref->matches(m.name) &&
            std::find(valid_cols.begin(), valid_cols.end(), m.name) == valid_cols.end())
          valid_cols.push_back(m.name);
  }
  const auto varying = varying_params(runs);
  Table t;
  t.header = {"id", "key", "experiment", "group", "model", "seed", "status", "params"};
  for (const auto& c : valid_cols) t.header.push_back("valid_" + c);
  for (const auto& c : test_cols) t.header.push_back("test_" + c);
  if (fmt_ != Format::table && fmt_ != Format::md) t.header.push_back("error");
  for (const auto* r : runs) {
    std::vector<Cell> row = {Cell::of_int(r->id), Cell::of(r->trial_key),
                             Cell::of(r->experiment.empty() ? "-" : r->experiment),
                             Cell::of(r->group_name.empty() ? "-" : r->group_name),
                             Cell::of(r->model),
                             Cell::of_int(r->seed),
                             Cell::of(std::string(to_string(r->status))),
                             Cell::of_json(varying.empty() ? "-" : params_label(*r, varying),
                                           params_json(*r, varying))};
    for (const auto& c : valid_cols) row.push_back(Cell::of(find_metric(r->valid_metrics, c)));
    for (const auto& c : test_cols) row.push_back(Cell::of(find_metric(r->test_metrics, c)));
    if (fmt_ != Format::table && fmt_ != Format::md) row.push_back(Cell::of(r->error));
    t.rows.push_back(std::move(row));
  }
  fmt::print("{}", render(t, fmt_));
  return 0;
}

int results_best(const Args& args) {
  std::string dir = "results", format = "table", experiment;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "results", po::value(&dir)->default_value("results"), "results directory (holds results.db)")(
      "format", po::value(&format)->default_value("table"), "table, csv, md or json");
  po::options_description hidden;
  hidden.add_options()("experiment", po::value(&experiment));
  po::positional_options_description pos;
  pos.add("experiment", 1);
  const auto vm = parse(desc, args,
                        "recrun results best [EXPERIMENT] [options]   (no EXPERIMENT: the single "
                        "runs of `recrun run`, grouped by model)",
                        &pos, &hidden);
  if (vm.count("help")) return 0;
  const Format f = parse_format(format);
  const auto store = open_store(dir);
  const auto all = experiment.empty() ? store->runs() : store->runs(experiment);
  std::vector<const RunRow*> runs;
  std::set<std::string> experiments;
  for (const auto& e : store->experiments()) experiments.insert(e.name);
  for (const auto& r : all)
    if (r.experiment == experiment) runs.push_back(&r);
  if (runs.empty())
    throw Error(fmt::format("no {} in {}; experiments: {}",
                            experiment.empty() ? std::string("single runs (recrun run)")
                                               : fmt::format("runs of an experiment named '{}'",
                                                             experiment),
                            store->path().string(),
                            experiments.empty() ? std::string("(none: only single runs)")
                                                : fmt::format("{}", fmt::join(experiments, ", "))));
  const auto best = best_per_group(runs);
  const bool machine = f == Format::csv || f == Format::json;
  std::set<std::string> test_names;
  for (const auto& c : best)
    for (const auto& n : common_metrics(c, SplitName::test)) test_names.insert(n);
  std::vector<std::string> test_cols(test_names.begin(), test_names.end());
  sort_metric_names(test_cols);
  std::set<std::string> monitor_names;
  for (const auto& c : best) monitor_names.insert(c.monitor_name);

  Table t;
  t.header = {"group", "model", "params", "n"};
  for (const auto& m : monitor_names) add_summary(&t.header, nullptr, "valid_" + m, {}, machine);
  for (const auto& c : test_cols) add_summary(&t.header, nullptr, "test_" + c, {}, machine);
  t.header.push_back("runs");
  for (const auto& c : best) {
    // What tells this configuration apart from the others of its group.
    std::vector<const RunRow*> group;
    for (const auto* r : runs)
      if ((r->group_name.empty() ? r->model : r->group_name) == group_key(c) &&
          r->status == RunStatus::finished)
        group.push_back(r);
    auto varying = varying_params(group);
    std::vector<Cell> row = {Cell::of(group_key(c)), Cell::of(c.model),
                             Cell::of_json(varying.empty() ? "-" : params_label(*c.runs.front(), varying),
                                           params_json(*c.runs.front(), varying)),
                             Cell::of_int(static_cast<long long>(c.runs.size()))};
    for (const auto& m : monitor_names)
      add_summary(nullptr, &row, m, m == c.monitor_name ? c.monitor : Summary{0, 0, 0}, machine);
    for (const auto& n : test_cols)
      add_summary(nullptr, &row, n, summarize_metric(c, SplitName::test, n), machine);
    std::vector<std::string> keys;
    for (const auto* r : c.runs) keys.push_back(r->trial_key);
    row.push_back(Cell::of(fmt::format("{}", fmt::join(keys, " "))));
    t.rows.push_back(std::move(row));
  }
  if (f == Format::table)
    fmt::print("{}: best configuration per group, by mean validation monitor over seeds "
               "(mean ± std over n seeds; test = each seed's best checkpoint)\n",
               experiment.empty() ? std::string("single runs, grouped by model") : experiment);
  fmt::print("{}", render(t, f));
  return 0;
}

std::string side_text(const Side& s) {
  std::vector<std::string> keys;
  for (const auto* r : s.config.runs) keys.push_back(r->trial_key);
  return fmt::format("{} ({}, {}{}{}, {} run{}: {})", s.label, s.config.model,
                     s.config.experiment.empty() ? "recrun run" : s.config.experiment,
                     s.config.group.empty() ? "" : "/", s.config.group, s.config.runs.size(),
                     s.config.runs.size() == 1 ? "" : "s", fmt::join(keys, " "));
}

int results_compare(const Args& args) {
  std::string dir = "results", format = "table", metric, a_text, b_text;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "results", po::value(&dir)->default_value("results"), "results directory (holds results.db)")(
      "seeds", "a run key stands for its whole configuration: every finished seed of it")(
      "metric", po::value(&metric), "per-user test metric to test (default: the monitor of A)")(
      "format", po::value(&format)->default_value("table"), "table, md or json");
  po::options_description hidden;
  hidden.add_options()("sides", po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add("sides", 2);
  const auto vm = parse(desc, args, "recrun results compare A B [options]", &pos, &hidden);
  if (vm.count("help")) return 0;
  const Format f = parse_format(format);
  if (f == Format::csv)
    throw Error("--format csv: compare prints several tables; use table, md or json");
  const auto sides = vm.count("sides") ? vm["sides"].as<std::vector<std::string>>()
                                       : std::vector<std::string>{};
  if (sides.size() != 2)
    throw Error("recrun results compare: give two runs or configurations, A and B (run keys, "
                "key prefixes, id:N, or EXPERIMENT/GROUP)");
  const auto store = open_store(dir);
  const auto all = store->runs();
  const bool pool = vm.count("seeds") > 0;
  const Side a = resolve_side(sides[0], all, pool);
  const Side b = resolve_side(sides[1], all, pool);
  if (metric.empty()) metric = a.config.monitor_name;
  const bool md = f == Format::md;

  // Parameters side by side; '*' marks the ones that differ.
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> params;
  for (const auto* r : a.config.runs)
    for (const auto& p : r->params) params[p.name].first.insert(p.value);
  for (const auto* r : b.config.runs)
    for (const auto& p : r->params) params[p.name].second.insert(p.value);
  const auto joined = [](const std::set<std::string>& v) {
    return v.empty() ? std::string("-") : fmt::format("{}", fmt::join(v, " | "));
  };
  Table pt;
  pt.header = {"param", "A", "B", "differs"};
  if (a.config.model != b.config.model)
    pt.rows.push_back({Cell::of("(model)"), Cell::of(a.config.model), Cell::of(b.config.model),
                       Cell::of("*")});
  for (const auto& [name, v] : params)
    pt.rows.push_back({Cell::of(name), Cell::of(joined(v.first)), Cell::of(joined(v.second)),
                       Cell::of(v.first != v.second ? "*" : "")});

  // Final metrics over seeds.
  Table mt;
  mt.header = {"metric", "A", "B", "B - A"};
  for (const auto split : {SplitName::valid, SplitName::test}) {
    std::set<std::string> names;
    for (const auto& n : common_metrics(a.config, split)) names.insert(n);
    std::vector<std::string> both;
    for (const auto& n : common_metrics(b.config, split))
      if (names.count(n) && !n.starts_with("val_")) both.push_back(n);
    sort_metric_names(both);
    for (const auto& n : both) {
      const auto x = summarize_metric(a.config, split, n), y = summarize_metric(b.config, split, n);
      mt.rows.push_back({Cell::of(fmt::format("{}_{}", to_string(split), n)), Cell::of(mean_std(x)),
                         Cell::of(mean_std(y)), Cell::of(fmt::format("{:+.4f}", y.mean - x.mean))});
    }
  }

  // Paired tests on the per-user test metric.
  const UserValues ua = user_values(*store, a.config, SplitName::test, metric);
  const UserValues ub = user_values(*store, b.config, SplitName::test, metric);
  if (ua.users != ub.users)
    throw Error(fmt::format("A and B evaluated different users ({} and {}): they ran on other "
                            "data or protocols, so a paired test cannot match their users",
                            ua.users.size(), ub.users.size()));
  const TTest tt = paired_t_test(ub.values, ua.values);
  const WilcoxonTest wt = wilcoxon_signed_rank(ub.values, ua.values);
  const Summary sa = summarize(ua.values), sb = summarize(ub.values);

  if (f == Format::json) {
    Table j;
    j.header = {"A", "B", "metric", "users", "mean_A", "mean_B", "mean_diff", "t", "df", "t_p",
                "cohen_dz", "wilcoxon_w_plus", "wilcoxon_w_minus", "wilcoxon_z", "wilcoxon_p",
                "wilcoxon_nonzero", "rank_biserial"};
    j.rows.push_back({Cell::of(a.label), Cell::of(b.label), Cell::of("test_" + metric),
                      Cell::of_int(static_cast<long long>(ua.users.size())),
                      Cell::of(sa.mean, 6), Cell::of(sb.mean, 6), Cell::of(tt.mean_diff, 6),
                      Cell::of(tt.t, 6), Cell::of_int(static_cast<long long>(tt.n) - 1),
                      Cell::of(tt.p, 6), Cell::of(tt.cohen_dz, 6), Cell::of(wt.w_plus, 1),
                      Cell::of(wt.w_minus, 1), Cell::of(wt.z, 6), Cell::of(wt.p, 6),
                      Cell::of_int(static_cast<long long>(wt.n)), Cell::of(wt.rank_biserial, 6)});
    fmt::print("{}", render(j, Format::json));
    return 0;
  }
  const Format tf = md ? Format::md : Format::table;
  fmt::print("A: {}\nB: {}\n\nparameters (* = differs)\n{}\nmetrics (mean ± std over seeds)\n{}\n",
             side_text(a), side_text(b), render(pt, tf), render(mt, tf));
  fmt::print("per-user test {} over {} users (each user's mean over the seeds of a side): A {:.4f}, "
             "B {:.4f}, B - A {:+.4f}\n",
             metric, ua.users.size(), sa.mean, sb.mean, tt.mean_diff);
  fmt::print("  paired t-test:        t = {:.4f}, df = {}, p = {:.4g}; effect size Cohen's d_z = "
             "{:.4f}\n",
             tt.t, tt.n - 1, tt.p, tt.cohen_dz);
  fmt::print("  Wilcoxon signed-rank: W+ = {:.1f}, W- = {:.1f}, z = {:.4f}, p = {:.4g}; effect size "
             "rank-biserial r = {:.4f} ({} users differ, {} tie)\n",
             wt.w_plus, wt.w_minus, wt.z, wt.p, wt.rank_biserial, wt.n, wt.zeros);
  const auto verdict = [](double p, bool b_higher) {
    if (!(p < 0.05)) return std::string("no");
    return std::string(b_higher ? "yes, B higher" : "yes, A higher");
  };
  fmt::print("  significant at the 5% level: t-test {}; Wilcoxon {}\n",
             verdict(tt.p, tt.mean_diff > 0), verdict(wt.p, wt.w_plus > wt.w_minus));
  return 0;
}

int results_curve(const Args& args) {
  std::string dir = "results", format = "table", key;
  std::vector<std::string> wanted;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "results", po::value(&dir)->default_value("results"), "results directory (holds results.db)")(
      "metric", po::value(&wanted)->composing(),
      "only this metric (repeatable): NDCG@10 or valid/NDCG@10, loss or train/loss")(
      "format", po::value(&format)->default_value("table"), "table, csv, md or json");
  po::options_description hidden;
  hidden.add_options()("key", po::value(&key));
  po::positional_options_description pos;
  pos.add("key", 1);
  const auto vm = parse(desc, args, "recrun results curve KEY [--metric M]... [options]", &pos,
                        &hidden);
  if (vm.count("help")) return 0;
  const Format f = parse_format(format);
  if (key.empty()) throw Error("recrun results curve: name a run (usage: recrun results curve KEY)");
  const auto store = open_store(dir);
  const auto all = store->runs();
  const RunRow& run = resolve_run(key, all);
  const auto points = store->epoch_metrics(run.trial_key);
  if (points.empty())
    throw Error(fmt::format("run {} ({}) has no per-epoch metrics", run.trial_key,
                            to_string(run.status)));
  std::vector<std::string> columns;  // "split/name", in first-seen order within each split
  std::map<std::pair<std::int64_t, std::string>, double> value;
  for (const auto& p : points) {
    const std::string col = fmt::format("{}/{}", to_string(p.split), p.name);
    if (std::find(columns.begin(), columns.end(), col) == columns.end()) columns.push_back(col);
    value[{p.epoch, col}] = p.value;
  }
  std::stable_sort(columns.begin(), columns.end(), [](const std::string& a, const std::string& b) {
    return a.starts_with("train/") && !b.starts_with("train/");
  });
  if (!wanted.empty()) {
    std::vector<std::string> chosen;
    for (const auto& w : wanted) {
      bool found = false;
      for (const auto& c : columns)
        if (c == w || c.substr(c.find('/') + 1) == w) {
          if (std::find(chosen.begin(), chosen.end(), c) == chosen.end()) chosen.push_back(c);
          found = true;
        }
      if (!found)
        throw Error(fmt::format("--metric {}: run {} logged no such metric; it has: {}", w,
                                run.trial_key, fmt::join(columns, ", ")));
    }
    columns = chosen;
  }
  std::set<std::int64_t> epochs;
  for (const auto& p : points) epochs.insert(p.epoch);
  Table t;
  t.header = {"epoch"};
  for (const auto& c : columns) t.header.push_back(c);
  for (const auto e : epochs) {
    std::vector<Cell> row = {Cell::of_int(e)};
    bool any = false;
    for (const auto& c : columns) {
      const auto it = value.find({e, c});
      row.push_back(Cell::of(it == value.end() ? std::nullopt : std::optional<double>(it->second), 6));
      any |= it != value.end();
    }
    if (any) t.rows.push_back(std::move(row));
  }
  if (f == Format::table)
    fmt::print("{} ({}, {}): best epoch {}\n", run.trial_key, run.model, to_string(run.status),
               run.best_epoch ? fmt::format("{}", *run.best_epoch) : std::string("-"));
  fmt::print("{}", render(t, f));
  return 0;
}

}  // namespace

int cmd_results(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    fmt::print(args.empty() ? stderr : stdout, "usage: {}\n", kUsage);
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "list") return results_list(rest);
  if (args[0] == "best") return results_best(rest);
  if (args[0] == "compare") return results_compare(rest);
  if (args[0] == "curve") return results_curve(rest);
  throw Error(fmt::format("unknown results command '{}': list, best, compare or curve (usage: {})",
                          args[0], kUsage));
}

}  // namespace recrun::cli
