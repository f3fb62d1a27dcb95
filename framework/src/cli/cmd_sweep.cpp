// `recrun sweep FILE`: expands an experiment file into trials, validates all of them, registers
// them in results.db and runs the ones not yet finished in worker processes.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <csignal>
#include <fstream>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "trial/recorder.hpp"
#include "results/results_store.hpp"
#include "results/shards.hpp"
#include "sweep/experiment.hpp"
#include "sweep/members.hpp"
#include "sweep/progress.hpp"
#include "sweep/scheduler.hpp"
#include "sweep/search.hpp"
#include "sweep/slurm.hpp"
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

void print_collect(const sweep::CollectReport& r) {
  for (const auto& note : r.notes) fmt::print("  {}\n", note);
  fmt::print("collected {} shard(s): {} finished, {} failed, {} already in results.db; {} trial(s) "
             "still pending or running in Slurm{}\n",
             r.shards, r.merged_finished, r.merged_failed, r.already, r.active,
             r.unknown ? fmt::format("; {} ended without a trace Slurm still keeps", r.unknown)
                       : std::string());
  std::fflush(stdout);
}

// --wait: polls the job until none of its array tasks is pending or running, collecting what
// has ended on the way, and printing a line whenever the picture changes.
void wait_for_job(results::ResultsStore& store, const trial::ResultsLayout& layout,
                  const std::string& experiment, const std::string& job_id, std::size_t tasks,
                  double poll_seconds) {
  const auto start = std::chrono::steady_clock::now();
  std::string last;
  std::size_t finished = 0, failed = 0, silent_polls = 0;
  while (true) {
    const auto active = sweep::active_tasks(job_id);
    const auto report = sweep::collect(store, layout, experiment);
    finished += report.merged_finished;
    failed += report.merged_failed;
    for (const auto& note : report.notes) fmt::print("  {}\n", note);
    if (!active) {
      if (++silent_polls >= sweep::kMaxFailedPolls)
        throw Error(fmt::format(
            "slurm job {}: the Slurm controller did not answer {} polls in a row ({}); stopped "
            "waiting. The job may still run: once the controller is back, `recrun sweep FILE "
            "--collect` gathers its results",
            job_id, silent_polls, sweep::controller_status()));
      if (silent_polls % 6 == 1)
        fmt::print("slurm job {}: the controller does not answer (scontrol); still waiting\n",
                   job_id);
    } else {
      silent_polls = 0;
      std::string states;
      for (const auto& [state, n] : *active)
        states += fmt::format("{}{} {}", states.empty() ? "" : ", ", n, fmt::format("{}", state));
      const std::string line =
          fmt::format("slurm job {}: {}; collected {} finished, {} failed of {}", job_id,
                      states.empty() ? "no task pending or running" : states, finished, failed,
                      tasks);
      if (line != last) {
        fmt::print("[{:6.0f}s] {}\n", std::chrono::duration<double>(
                                          std::chrono::steady_clock::now() - start).count(),
                   line);
        last = line;
      }
      if (active->empty() && report.active == 0) break;
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_seconds));
  }
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
  std::string executor = "local";
  sweep::SlurmOptions slurm;
  bool wait = false, collect = false;
  double poll_seconds = 10;
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
      "run only the trials that match: KEY=VALUE terms (values as in --set, e.g. "
      "'features=[genre,year] fusion=gate'), or a glob (*, ?) or substring of the group, model, "
      "key or label; alternatives joined by ','")(
      "retry-failed", po::bool_switch(&retry_failed), "run trials that failed before again")(
      "results", po::value(&results_dir)->default_value("results"),
      "results directory (results.db, tensorboard/, checkpoints/, logs/)")(
      "no-live", po::bool_switch(&no_live), "plain log lines even on a terminal")(
      "no-zygote", po::bool_switch(&no_zygote),
      "exec every worker instead of forking it from the trial zygote (execution.zygote = false)")(
      "executor", po::value(&executor)->default_value(executor),
      "local (worker processes here) or slurm (one sbatch --array job; docs/cluster.md)")(
      "partition", po::value(&slurm.partition), "slurm: the partition to submit to")(
      "time", po::value(&slurm.time),
      "slurm: time limit of each array task (minutes, H:M:S, D-H:M:S, ...)")(
      "cpus-per-task", po::value(&slurm.cpus_per_task)->default_value(slurm.cpus_per_task),
      "slurm: CPUs of each array task (its trial's threads)")(
      "array-limit", po::value(&slurm.array_limit),
      "slurm: array tasks running at once (sbatch --array=...%K); default: no limit")(
      "wait", po::bool_switch(&wait),
      "slurm: wait for the job, showing progress, then collect its results")(
      "poll-interval", po::value(&poll_seconds)->default_value(poll_seconds, "10"),
      "slurm --wait: seconds between looks at the job")(
      "collect", po::bool_switch(&collect),
      "merge the results of finished Slurm array tasks (results/shards/) into results.db and "
      "record the failed ones; safe to repeat");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  const auto vm = parse(desc, args,
                        "recrun sweep FILE [--dry-run] [--set GROUP.KEY=VALUE ...] [--jobs N] "
                        "[--only PATTERN] [--retry-failed] [--results DIR]\n"
                        "       recrun sweep FILE --executor slurm [--partition P] [--time T] "
                        "[--cpus-per-task N] [--array-limit K] [--wait]\n"
                        "       recrun sweep FILE --collect",
                        &pos);
  if (vm.count("help")) return 0;
  const int max_jobs = max_workers();
  if (vm.count("jobs") && (jobs < 1 || jobs > max_jobs))
    throw Error(fmt::format("--jobs {}: must be 1..{} (4 x this machine's {} cores; each worker "
                            "is a process with at least one thread, and more only thrash)",
                            jobs, max_jobs, max_jobs / 4));
  if (max_trials < 1)
    throw Error(fmt::format("--max-trials {}: must be >= 1", max_trials));
  if (executor != "local" && executor != "slurm")
    throw Error(fmt::format("--executor '{}': must be 'local' or 'slurm'", executor));
  const bool on_slurm = executor == "slurm";
  if (!on_slurm) {
    for (const char* flag : {"partition", "time", "array-limit", "poll-interval"})
      if (vm.count(flag) && !vm[flag].defaulted())
        throw Error(fmt::format("--{} is an option of the Slurm executor: add --executor slurm",
                                flag));
    if (!vm["cpus-per-task"].defaulted())
      throw Error("--cpus-per-task is an option of the Slurm executor: add --executor slurm "
                  "(the local executor splits --threads between --jobs workers)");
    if (wait)
      throw Error("--wait is an option of the Slurm executor: add --executor slurm (a local "
                  "sweep always waits)");
  } else {
    sweep::check_slurm_options(slurm, vm.count("array-limit") > 0);
    if (vm.count("jobs"))
      throw Error("--jobs is an option of the local executor; with --executor slurm every trial "
                  "is an array task, and --array-limit bounds how many run at once");
    if (!(poll_seconds >= 0.1 && poll_seconds <= 3600))
      throw Error(fmt::format("--poll-interval {}: must be 0.1..3600 seconds", poll_seconds));
  }
  if (collect && (on_slurm || dry_run))
    throw Error(fmt::format("--collect merges what earlier Slurm submissions produced; it takes "
                            "no {} (`--executor slurm --wait` submits and collects)",
                            on_slurm ? "--executor" : "--dry-run"));
  // sbatch is needed before anything is registered: a sweep that cannot submit changes nothing.
  if (on_slurm && !dry_run) sweep::slurm_tool("sbatch");

  if (results_dir.empty())
    throw Error("--results is empty: name the results directory (default: results)");
  // 1. Everything that can be checked without data, before anything runs or loads.
  const sweep::Experiment x = sweep::load_experiment(file, sets);
  if (!vm.count("jobs") && x.execution.jobs > max_jobs)
    throw sweep::ExperimentError(
        x.execution.jobs_origin,
        fmt::format("execution.jobs = {}: must be 1..{} (4 x this machine's {} cores); --jobs "
                    "overrides it",
                    x.execution.jobs, max_jobs, max_jobs / 4));
  const trial::ResultsLayout layout{results_dir};
  if (collect) {
    bool any = !sweep::submissions(layout, x.name).empty();
    if (!any)
      throw Error(fmt::format("--collect: nothing to collect for experiment '{}': no Slurm "
                              "submission in {} and no shard in {} (submit with --executor "
                              "slurm first)",
                              x.name, (layout.root / "slurm" / x.name).string(),
                              sweep::SubmissionPaths::shards_dir(layout).string()));
  }
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
    fmt::print(stderr, "warning: {}\n", text::terminal_safe(w));
  fmt::print("{}: {} trials in {} groups; data {} ({}: {} users, {} items, {} interactions, "
             "loaded in {:.2f}s)\n",
             x.name, trials.size(), x.groups.size(), x.data_path.string(), source,
             dataset.num_users(), dataset.num_items(), dataset.num_interactions(),
             std::chrono::duration<double>(Clock::now() - t_data).count());

  std::vector<sweep::Trial> selected;
  std::optional<sweep::OnlyFilter> only_filter;
  if (!only.empty()) only_filter.emplace(only);
  for (const auto& t : trials)
    if (!only_filter || only_filter->matches(t)) selected.push_back(t);
  if (only_filter) {
    only_filter->check(trials);
    fmt::print("--only: {} of {} trials selected ({})\n", selected.size(), trials.size(),
               only_filter->summary());
  }
  // Searches ([group.search]): TPE's trials are suggested while the sweep runs.
  std::vector<sweep::SearchPlan> searches;
  bool adaptive = false;
  for (auto& plan : sweep::plan_searches(x, registry)) {
    sweep::Trial probe;
    probe.group = plan.group;
    probe.model = plan.model;
    if (only_filter && !only_filter->selects(probe)) continue;  // not counted: no trial yet
    sweep::finalize_search(plan, x, dataset.fingerprint);
    adaptive |= plan.spec.method == sweep::SearchMethod::tpe;
    if (on_slurm && (plan.spec.method == sweep::SearchMethod::tpe || plan.pruned()))
      throw Error(fmt::format("group '{}': {} needs results.db while its trials run (TPE suggests "
                              "from finished trials, a pruner compares trials at each rung), "
                              "which Slurm array tasks never open; run it with the local "
                              "executor (grid and random searches without a pruner run on Slurm)",
                              plan.group, plan.pruned() ? "a pruner" : "method = \"tpe\""));
    searches.push_back(std::move(plan));
  }
  if (selected.empty() && !adaptive)
    throw Error(fmt::format("--only '{}' matches none of the {} trials (it is matched against "
                            "group, model, key and params; `--dry-run` lists them)",
                            only, trials.size()));

  // [experiment] depends: what this sweep's member references name in other experiments runs
  // first, in a sweep of its own (finished trials are not run again).
  {
    sweep::DependencyRun how;
    how.results = results_dir;
    how.jobs = jobs;
    how.threads = host.threads;
    how.plugin_dirs = host.plugin_dirs;
    how.no_live = no_live;
    how.no_zygote = no_zygote;
    how.only_print = dry_run || collect || on_slurm;
    if (const int rc = sweep::run_dependencies(selected, x, registry, how); rc != 0) return rc;
  }

  // Models built from other runs (an ensemble's members): what each reference names now. On
  // Slurm a missing member stops the sweep before any trial, saying which file makes it; here,
  // a trial whose members are missing when its turn comes is recorded 'waiting'.
  std::vector<sweep::MemberCheck> members;
  {
    std::optional<results::ResultsStore> reader;
    std::error_code exists_ec;
    if (fs::exists(layout.db(), exists_ec)) {
      try {
        results::StoreOptions ro;
        ro.read_only = true;
        reader.emplace(layout.db(), ro);
      } catch (const std::exception&) {
        // Unreadable: every member is reported missing, with the reason the real run gives.
      }
    }
    members = sweep::check_members(selected, x, registry, reader ? &*reader : nullptr);
  }

  if (dry_run) {
    for (const auto& m : members) fmt::print("{}\n", sweep::describe(m, x.protocol.monitor));
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
    for (const auto& plan : searches)
      for (const auto& line : sweep::describe_search(plan)) fmt::print("{}\n", line);
    if (!selected.empty()) print_trial_table(selected, rows);
    std::size_t suggested = 0;  // TPE's trials, registered as they are suggested
    for (const auto& plan : searches)
      if (plan.spec.method == sweep::SearchMethod::tpe)
        suggested += static_cast<std::size_t>(plan.spec.trials) * plan.seeds.size();
    fmt::print("{} trials{}{}; dry run: nothing was run\n", selected.size() + suggested,
               suggested ? fmt::format(" ({} suggested by TPE as the search runs)", suggested)
                         : std::string(),
               only.empty() ? "" : fmt::format(" (of {}, --only '{}')", trials.size(), only));
    if (on_slurm) {
      std::size_t to_run = 0;
      for (const auto& t : selected) {
        const auto it = rows.find(t.key);
        if (it == rows.end() || (it->second.status != results::RunStatus::finished &&
                                 (it->second.status != results::RunStatus::failed || retry_failed)))
          ++to_run;
      }
      sweep::ScriptSpec spec;
      spec.paths = {layout, x.name, "SUBMISSION"};
      spec.executable = fs::read_symlink("/proc/self/exe");
      spec.workdir = fs::current_path();
      spec.results_arg = results_dir;
      spec.tasks = to_run;
      spec.slurm = slurm;
      spec.plugin_dirs = host.plugin_dirs;
      spec.checkpoint_every_s = x.execution.checkpoint_every_s;
      spec.checkpoints = x.execution.checkpoints;
      fmt::print("the sbatch script for the {} unfinished trial(s) (SUBMISSION: the submission's "
                 "name):\n{}",
                 to_run, sweep::sbatch_script(spec));
    }
    return 0;
  }

  if (on_slurm) {
    std::vector<std::string> missing;
    for (const auto& m : members)
      if (!m.run && !m.from_this_experiment) missing.push_back(sweep::describe(m, x.protocol.monitor));
    if (!missing.empty())
      throw Error(fmt::format("{} member reference(s) name no finished run yet, so their trials "
                              "cannot run; nothing was run or recorded:\n  {}",
                              missing.size(), fmt::join(missing, "\n  ")));
  }

  // 3. Register, recover what a dead sweep left running, decide what to run.
  check_writable_results(layout.root);
  results::StoreOptions store_options;
  // Collecting moves a shard aside once its merge is committed: the commit must be on disk.
  store_options.durable_commits = on_slurm || collect;
  results::ResultsStore store(layout.db(), store_options);
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
  sweep::register_searches(store, searches, trials, x);
  const std::string dataset_fingerprint = dataset.fingerprint;
  dataset = Dataset{};  // workers load their own; the sweep only needed the fingerprint

  // The summary a Slurm --collect or --wait ends with; 3 when a selected trial failed.
  const auto summarize_and_exit_code = [&] {
    const auto rows = rows_of(store, selected);
    sweep::print_summary(stdout, x, selected, rows);
    fmt::print("results: {}\n", layout.db().string());
    for (const auto& [key, row] : rows)
      if (row.status == results::RunStatus::failed) return 3;
    return 0;
  };
  // Slurm: first take in whatever earlier submissions have finished since.
  sweep::CollectReport collected;
  if (on_slurm || collect) {
    collected = sweep::collect(store, layout, x.name);
    print_collect(collected);
  }
  if (collect) {
    return summarize_and_exit_code();
  }

  std::vector<const sweep::Trial*> queue;
  std::size_t finished = 0, failed_skipped = 0, elsewhere = 0, resuming = 0;
  for (const auto& t : selected) {
    const auto row = store.find(t.key);
    const auto status = row ? row->status : results::RunStatus::pending;
    if (collected.active_keys.contains(t.key)) {
      ++elsewhere;  // an array task of an earlier submission has it, pending or running
    } else if (status == results::RunStatus::finished) {
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
  fmt::print("{} to run ({} resuming), {} already finished, {} failed before{}, {} {}\n",
             queue.size(), resuming, finished, failed_skipped,
             failed_skipped && !retry_failed ? " (skipped: --retry-failed reruns them)" : "",
             elsewhere,
             on_slurm ? "queued or running in Slurm already" : "running in another sweep");

  // HParams columns for the whole experiment, so that TensorBoard lists every trial.
  {
    std::vector<std::map<std::string, tensorboard::HParamValue>> sessions;
    for (const auto& t : trials) sessions.push_back(trial::hparams_of(t.params, t.model, t.group, t.seed));
    std::vector<std::string> metric_names;
    for (const auto& m : x.protocol.metrics)
      for (const auto k : x.protocol.ks) metric_names.push_back(fmt::format("{}@{}", m, k));
    trial::write_experiment_config(layout.tensorboard(x.name), sessions, metric_names);
  }

  // 4. Run: on Slurm, one array job; here, worker processes.
  if (on_slurm) {
    if (queue.empty()) {
      fmt::print("nothing to submit\n");
      const auto rows = rows_of(store, selected);
      sweep::print_summary(stdout, x, selected, rows);
      for (const auto& [key, row] : rows)
        if (row.status == results::RunStatus::failed) return 3;
      return 0;
    }
    sweep::SubmissionPaths sub{layout, x.name, sweep::new_submission_id()};
    std::vector<std::string> keys;
    for (const auto* t : queue) keys.push_back(t->key);
    std::map<std::string, const results::TrialSpec*> spec_of;
    for (const auto& s : specs) spec_of.emplace(s.trial_key, &s);
    const results::ExperimentRow experiment_row{experiment_id, x.name, x.hash, x.text, {}};
    std::vector<fs::path> made;
    try {
      sweep::write_trials_file(sub.trials_file(), keys);
      for (const auto* t : queue) {
        const auto row = store.find(t->key);
        // A retried failure starts over, as with the local executor.
        if (row && row->status == results::RunStatus::failed) {
          std::error_code ec;
          fs::remove_all(layout.checkpoints(x.name, t->key), ec);
        }
        results::create_shard(sub.shard(t->key), experiment_row, *spec_of.at(t->key));
        made.push_back(sub.shard(t->key));
      }
      sweep::ScriptSpec spec;
      spec.paths = sub;
      spec.executable = fs::read_symlink("/proc/self/exe");
      spec.workdir = fs::current_path();
      spec.results_arg = results_dir;
      spec.tasks = keys.size();
      spec.slurm = slurm;
      spec.plugin_dirs = host.plugin_dirs;
      spec.checkpoint_every_s = x.execution.checkpoint_every_s;
      spec.checkpoints = x.execution.checkpoints;
      std::ofstream(sub.script()) << sweep::sbatch_script(spec);
      const std::string job_id = sweep::submit(sub.script());
      std::ofstream(sub.job_id_file()) << job_id << '\n';
      fmt::print("submitted Slurm job {}: {} array task(s){}, submission {}\n"
                 "  follow:  squeue -r -j {}    (task i runs line i+1 of {})\n"
                 "  logs:    {}/<trial>.log\n"
                 "  collect: recrun sweep {} --collect{}\n",
                 job_id, keys.size(),
                 slurm.array_limit > 0 ? fmt::format(" ({} at once)", slurm.array_limit) : "",
                 sub.dir().string(), job_id, sub.trials_file().string(),
                 (layout.root / "logs" / x.name).string(), file,
                 results_dir == "results" ? "" : " --results " + results_dir);
      std::fflush(stdout);
      if (!wait) return 0;
      wait_for_job(store, layout, x.name, job_id, keys.size(), poll_seconds);
    } catch (const Error&) {
      // Not submitted: nothing may be left that a later collect would take for a job.
      if (!fs::exists(sub.job_id_file())) {
        std::error_code ec;
        for (const auto& m : made)
          for (const char* suffix : {"", "-wal", "-shm", "-journal"})
            fs::remove(m.string() + suffix, ec);
        fs::remove_all(sub.dir(), ec);
      }
      throw;
    }
    return summarize_and_exit_code();
  }

  sweep::ScheduleResult schedule;
  sweep::SearchDriver driver(store, x, searches, dataset_fingerprint, source, experiment_id);
  if (!queue.empty() || adaptive) {
    sweep::SchedulerOptions so;
    const std::size_t planned = queue.size() + driver.planned();
    so.jobs = std::max(1, std::min<int>(jobs > 0 ? jobs : x.execution.jobs,
                                        static_cast<int>(planned)));
    if (adaptive) so.more = [&driver] { return driver.next(); };
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
    so.readiness = sweep::member_readiness(queue, x, registry, store, members);
    fmt::print("running {} trial(s){} with {} worker(s) x {} thread(s); logs in {}\n",
               queue.size(),
               adaptive ? fmt::format(" and up to {} suggested by TPE", driver.planned()) : "",
               so.jobs, so.threads_per_worker, (layout.root / "logs" / x.name).string());
    std::fflush(stdout);
    sweep::ProgressDisplay display(stdout, ::isatty(STDOUT_FILENO) && !no_live, so.jobs,
                                   planned, x.protocol.monitor);
    std::map<std::string, std::size_t> per_model;
    for (const auto* t : queue) ++per_model[t->model];
    for (const auto& plan : searches)
      if (plan.spec.method == sweep::SearchMethod::tpe)
        per_model[plan.model] += static_cast<std::size_t>(plan.spec.trials) * plan.seeds.size();
    display.plan(per_model);
    // Every finished trial of these models in results.db, whatever its experiment, times a
    // model until this sweep's own trials of it finish.
    {
      std::map<std::string, std::vector<double>> earlier;
      for (const auto& row : store.runs())
        if (row.status == results::RunStatus::finished && per_model.count(row.model) &&
            row.total_seconds)
          earlier[row.model].push_back(*row.total_seconds);
      for (const auto& [model, seconds] : earlier) display.history(model, seconds);
    }
    schedule = sweep::run_trials(store, queue, so, display);
    display.close();
  }

  // 5. Report.
  for (auto& t : driver.registered()) selected.push_back(std::move(t));
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
  bool waiting = false;
  for (const auto& [key, row] : rows) {
    if (row.status == results::RunStatus::failed) return 3;
    waiting |= row.status == results::RunStatus::waiting;
  }
  return waiting ? 4 : 0;
}

}  // namespace recrun::cli
