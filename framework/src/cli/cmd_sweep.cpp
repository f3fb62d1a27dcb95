// `recrun sweep FILE`: expands an experiment file into trials, validates all of them, registers
// them in results.db and runs the ones not yet finished in worker processes.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/error.hpp"
#include "report/recorder.hpp"
#include "results/results_store.hpp"
#include "sweep/experiment.hpp"
#include "sweep/progress.hpp"
#include "sweep/scheduler.hpp"
#include "sweep/summary.hpp"
#include "sweep/trials.hpp"
#include "trial/layout.hpp"

namespace recrun::cli {
namespace {

namespace fs = std::filesystem;

void print_trial_table(const std::vector<sweep::Trial>& trials,
                       const std::map<std::string, results::RunRow>& rows) {
  std::size_t group_w = 5, model_w = 5, label_w = 6;
  for (const auto& t : trials) {
    group_w = std::max(group_w, t.group.size());
    model_w = std::max(model_w, t.model.size());
    label_w = std::max(label_w, t.label().size());
  }
  label_w = std::min<std::size_t>(label_w, 70);
  fmt::print("  {:>3}  {:<32}  {:<{}}  {:<{}}  {:<{}}  {}\n", "#", "trial", "group", group_w,
             "model", model_w, "params", label_w, "status");
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const auto& t = trials[i];
    const auto it = rows.find(t.key);
    const std::string status =
        it == rows.end() ? "new" : std::string(results::to_string(it->second.status));
    fmt::print("  {:>3}  {:<32}  {:<{}}  {:<{}}  {:<{}}  {}\n", i + 1, t.key, t.group, group_w,
               t.model, model_w, t.label(), label_w, status);
  }
}

std::map<std::string, results::RunRow> rows_of(const results::ResultsStore& store,
                                               const std::vector<sweep::Trial>& trials) {
  std::map<std::string, results::RunRow> rows;
  for (const auto& t : trials)
    if (auto r = store.find(t.key)) rows.emplace(t.key, std::move(*r));
  return rows;
}

}  // namespace

int cmd_sweep(const Args& args) {
  using Clock = std::chrono::steady_clock;
  HostOptions host;
  std::string file, only, results_dir;
  std::vector<std::string> sets;
  int jobs = 0;
  std::int64_t max_trials = static_cast<std::int64_t>(sweep::kDefaultMaxTrials);
  bool dry_run = false, retry_failed = false, no_live = false, no_zygote = false;
  auto desc = host_options(host);
  desc.add_options()("experiment", po::value(&file)->required(), "experiment TOML file")(
      "dry-run,n", po::bool_switch(&dry_run), "validate, print the expanded trials and exit")(
      "set,s", po::value(&sets)->composing(),
      "override GROUP.KEY=VALUE ('*.KEY' for every group that has KEY; also experiment., data., "
      "protocol., execution.); repeatable")(
      "jobs,j", po::value(&jobs),
      "worker processes, 1 to 4 x the cores (default: [execution] jobs, else 1)")(
      "max-trials", po::value(&max_trials)->default_value(max_trials),
      "refuse an experiment that expands into more trials than this")(
      "only", po::value(&only),
      "run only trials whose group, model, key or params match (glob with * or substring; "
      "comma-separated alternatives)")(
      "retry-failed", po::bool_switch(&retry_failed), "run trials that failed before again")(
      "results", po::value(&results_dir)->default_value("results"),
      "results directory (results.db, tensorboard/, checkpoints/, logs/)")(
      "no-live", po::bool_switch(&no_live), "plain log lines even on a terminal")(
      "no-zygote", po::bool_switch(&no_zygote),
      "exec every worker instead of forking it from the trial zygote (execution.zygote = false)");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  const auto vm = parse(desc, args,
                        "recrun sweep FILE [--dry-run] [--set GROUP.KEY=VALUE ...] [--jobs N] "
                        "[--only PATTERN] [--retry-failed] [--results DIR]",
                        &pos);
  if (vm.count("help")) return 0;
  const int max_jobs = max_workers();
  if (vm.count("jobs") && (jobs < 1 || jobs > max_jobs))
    throw Error(fmt::format("--jobs {}: must be 1..{} (4 x this machine's {} cores; each worker "
                            "is a process with at least one thread, and more only thrash)",
                            jobs, max_jobs, max_jobs / 4));
  if (max_trials < 1)
    throw Error(fmt::format("--max-trials {}: must be >= 1", max_trials));

  // 1. Everything that can be checked without data, before anything runs or loads.
  const sweep::Experiment x = sweep::load_experiment(file, sets);
  if (!vm.count("jobs") && x.execution.jobs > max_jobs)
    throw sweep::ExperimentError(
        x.execution.jobs_origin,
        fmt::format("execution.jobs = {}: must be 1..{} (4 x this machine's {} cores); --jobs "
                    "overrides it",
                    x.execution.jobs, max_jobs, max_jobs / 4));
  Registry registry;
  load_registry(host, registry, false);
  std::vector<sweep::Trial> trials =
      sweep::expand_trials(x, registry, static_cast<std::uint64_t>(max_trials));

  // 2. The data, once: its fingerprint is part of every trial key.
  const auto t_data = Clock::now();
  std::string source;
  Dataset dataset;
  try {
    source = data::resolve_source(registry, x.data_path, x.data_source);
    dataset = data::load_dataset(registry, x.data_path, source);
  } catch (const Error& e) {
    throw sweep::ExperimentError(x.data_origin, e.what());
  }
  sweep::check_against_data(trials, dataset, registry);
  for (const auto& w : sweep::assign_keys(trials, x, dataset.fingerprint))
    fmt::print(stderr, "warning: {}\n", w);
  fmt::print("{}: {} trials in {} groups; data {} ({}: {} users, {} items, {} interactions, "
             "loaded in {:.2f}s)\n",
             x.name, trials.size(), x.groups.size(), x.data_path.string(), source,
             dataset.num_users(), dataset.num_items(), dataset.num_interactions(),
             std::chrono::duration<double>(Clock::now() - t_data).count());

  std::vector<sweep::Trial> selected;
  for (const auto& t : trials)
    if (only.empty() || sweep::matches(t, only)) selected.push_back(t);
  if (selected.empty())
    throw Error(fmt::format("--only '{}' matches none of the {} trials (it is matched against "
                            "group, model, key and params; `--dry-run` lists them)",
                            only, trials.size()));

  const trial::ResultsLayout layout{results_dir};
  if (dry_run) {
    std::map<std::string, results::RunRow> rows;
    // A dry run writes nothing; a results.db it cannot open (a read-only directory) only costs
    // the status column.
    if (fs::exists(layout.db())) {
      try {
        rows = rows_of(results::ResultsStore(layout.db()), selected);
      } catch (const std::exception& e) {
        fmt::print(stderr, "note: cannot read {} ({}); statuses are not shown\n",
                   layout.db().string(), e.what());
      }
    }
    fmt::print("protocol: {}; seeds per group as listed\n", x.protocol.canonical());
    print_trial_table(selected, rows);
    fmt::print("{} trials{}; dry run: nothing was run\n", selected.size(),
               only.empty() ? "" : fmt::format(" (of {}, --only '{}')", trials.size(), only));
    return 0;
  }

  // 3. Register, recover what a dead sweep left running, decide what to run.
  check_writable_results(layout.root);
  results::ResultsStore store(layout.db());
  const std::int64_t experiment_id = store.upsert_experiment(x.name, x.text, x.hash);
  if (const auto old = trial::count_legacy_keys(store.runs(x.name)); old > 0)
    fmt::print("note: {} run(s) of experiment '{}' in {} have version-1 trial keys (an older "
               "recrun); they stay readable there but are not resumed: this sweep registers its "
               "trials under version-{} keys and runs them\n",
               old, x.name, layout.db().string(), trial::kKeyVersion);
  if (const auto reaped = store.reap_dead_owners(); reaped > 0)
    fmt::print("{} trial(s) left running by a sweep that died are now 'interrupted' and resume "
               "from their last checkpoint\n",
               reaped);
  std::vector<results::TrialSpec> specs;
  for (const auto& t : selected) {
    const auto schema = trial::full_schema(registry.model(t.model));
    specs.push_back(sweep::trial_spec(t, x, dataset.fingerprint, source, schema, experiment_id));
  }
  store.register_trials(specs);
  dataset = Dataset{};  // workers load their own; the sweep only needed the fingerprint

  std::vector<const sweep::Trial*> queue;
  std::size_t finished = 0, failed_skipped = 0, elsewhere = 0, resuming = 0;
  for (const auto& t : selected) {
    const auto row = store.find(t.key);
    const auto status = row ? row->status : results::RunStatus::pending;
    if (status == results::RunStatus::finished) {
      ++finished;
    } else if (status == results::RunStatus::failed && !retry_failed) {
      ++failed_skipped;
    } else if (status == results::RunStatus::running) {
      ++elsewhere;  // a live sweep owns it (dead owners were just reaped)
    } else {
      if (status == results::RunStatus::interrupted) ++resuming;
      queue.push_back(&t);
    }
  }
  fmt::print("{} to run ({} resuming), {} already finished, {} failed before{}, {} running in "
             "another sweep\n",
             queue.size(), resuming, finished, failed_skipped,
             failed_skipped && !retry_failed ? " (skipped: --retry-failed reruns them)" : "",
             elsewhere);

  // HParams columns for the whole experiment, so that TensorBoard lists every trial.
  {
    std::vector<std::map<std::string, tensorboard::HParamValue>> sessions;
    for (const auto& t : trials) sessions.push_back(report::hparams_of(t.params, t.model, t.group, t.seed));
    std::vector<std::string> metric_names;
    for (const auto& m : x.protocol.metrics)
      for (const auto k : x.protocol.ks) metric_names.push_back(fmt::format("{}@{}", m, k));
    report::write_experiment_config(layout.tensorboard(x.name), sessions, metric_names);
  }

  // 4. Run.
  sweep::ScheduleResult schedule;
  if (!queue.empty()) {
    sweep::SchedulerOptions so;
    so.jobs = std::max(1, std::min<int>(jobs > 0 ? jobs : x.execution.jobs,
                                        static_cast<int>(queue.size())));
    const int cores = host.threads > 0 ? host.threads
                                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    so.threads_per_worker = std::max(1, cores / so.jobs);
    so.executable = fs::read_symlink("/proc/self/exe");
    so.plugin_dirs = host.plugin_dirs;
    so.layout = layout;
    so.experiment = x.name;
    so.retry_failed = retry_failed;
    so.trial_timeout_s = x.execution.trial_timeout_s;
    so.memory_limit_mb = x.execution.memory_limit_mb;
    so.checkpoint_every_s = x.execution.checkpoint_every_s;
    so.checkpoints = x.execution.checkpoints;
    so.zygote = x.execution.zygote && !no_zygote;
    fmt::print("running {} trial(s) with {} worker(s) x {} thread(s); logs in {}\n", queue.size(),
               so.jobs, so.threads_per_worker, (layout.root / "logs" / x.name).string());
    std::fflush(stdout);
    sweep::ProgressDisplay display(stdout, ::isatty(STDOUT_FILENO) && !no_live, so.jobs,
                                   queue.size(), x.protocol.monitor);
    std::map<std::string, std::size_t> per_model;
    for (const auto* t : queue) ++per_model[t->model];
    display.plan(per_model);
    schedule = sweep::run_trials(store, queue, so, display);
    display.close();
  }

  // 5. Report.
  const auto rows = rows_of(store, selected);
  sweep::print_summary(stdout, x, selected, rows);
  const auto overhead = sweep::measure_overhead(schedule, rows);
  if (overhead.trials > 0)
    fmt::print("sweep overhead: {:.2f}s per trial outside fit+evaluate ({:.1f}% of a mean trial "
               "of {:.2f}s wall, {:.2f}s CPU; over {} trials; per-step times in each trial's log)\n",
               overhead.mean_overhead, 100 * overhead.share, overhead.mean_wall,
               overhead.mean_cpu, overhead.trials);
  fmt::print("results: {}   tensorboard --logdir {}\n", layout.db().string(),
             layout.tensorboard(x.name).string());
  if (schedule.stopped_by != 0) return 128 + schedule.stopped_by;
  for (const auto& [key, row] : rows)
    if (row.status == results::RunStatus::failed) return 3;
  return 0;
}

}  // namespace recrun::cli
