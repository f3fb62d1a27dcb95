#include <fmt/format.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <map>
#include <optional>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "distributed/distributed.hpp"
#include "sdk/host_access.hpp"
#include "distributed/launcher.hpp"
#include "core/memory_check.hpp"
#include "core/supervisor.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"
#include "results/results_store.hpp"
#include "trial/key.hpp"
#include "trial/layout.hpp"
#include "trial/param_input.hpp"
#include "trial/runner.hpp"
#include "trial/single_run.hpp"

namespace recrun::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::int64_t> parse_ks(const std::string& text) {
  std::vector<std::int64_t> ks;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      ks.push_back(std::stoll(part));
    } catch (const std::exception&) {
      throw ParamError(fmt::format("--ks: '{}' is not an integer", part));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ks;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    out.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// A data-parallel rank other than 0: learns rank 0's decision and attempt, then trains beside
// it in the same checkpoint directory (resuming what rank 0 resumes), recording nothing.
template <class Agree>
int run_peer(const Registry& registry, const Dataset& dataset, const core::Split& split,
             const trial::ResultsLayout& layout, const std::string& key,
             const std::string& ckpt_dir, const Params& params, const trial::Protocol& protocol,
             const std::string& model_name, std::uint64_t seed, int threads, Agree& agree,
             results::ResultsStore& store) {
  const auto [stop, attempt] = agree(false, 0);
  if (stop) return 0;
  trial::Job job;
  job.key = attempt > 0 ? std::string() : key;  // a fresh attempt directory has nothing to check
  job.checkpoint_dir =
      ckpt_dir.empty() ? layout.checkpoints(trial::kSingleRunExperiment, key) : fs::path(ckpt_dir);
  if (attempt > 0) job.checkpoint_dir /= fmt::format("attempt-{}", attempt);
  job.model = model_name;
  job.params = params;
  job.seed = static_cast<std::int64_t>(seed);
  job.protocol = protocol;
  job.threads = threads;
  trial::execute_peer(registry, dataset, split, job, store);
  return 0;
}

// The parent of a supervised run (core/supervisor.hpp) says what the run's own process could
// not: a SIGKILL that recrun did not send is most likely the kernel's out-of-memory killer. The
// row the child announced is recorded failed with that reason (a --force attempt's staging row
// is dropped), and the reason is printed. Other signals end the parent the same way.
int report_supervised_end(const core::ChildEnd& end, const fs::path& db) {
  if (!WIFSIGNALED(end.status)) return end.exit_code();
  const int sig = WTERMSIG(end.status);
  if (sig != SIGKILL) {
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      mark_dead_runs_interrupted(db);  // its row is not left 'running'
      std::signal(sig, SIG_DFL);  // end as the child did, so a calling shell sees the signal
      std::raise(sig);
    }
    fmt::print(stderr, "recrun run: error: the run's process was {}\n",
               core::describe_wait_status(end.status));
    return end.exit_code();
  }
  const std::string reason = fmt::format("{} at {:.0f} MiB peak resident",
                                         core::describe_wait_status(end.status), end.peak_rss_mib);
  const auto space = end.announced.find(' ');
  const std::string kind = end.announced.substr(0, space);
  const std::string key = space == std::string::npos ? "" : end.announced.substr(space + 1);
  std::string where;
  try {
    if (kind == "run" && !key.empty()) {
      results::ResultsStore(db).fail(key, reason);
      where = fmt::format(" (recorded in {})", db.string());
    } else if (kind == "staging" && !key.empty()) {
      results::ResultsStore(db).discard_replacement(key);
      where = fmt::format("; the earlier finished result in {} is kept unchanged", db.string());
    }
  } catch (const std::exception& e) {
    where = fmt::format(" (not recorded: {})", e.what());
  }
  fmt::print(stderr, "recrun run: error: run {}failed: {}{}\n", key.empty() ? "" : key + " ",
             reason, where);
  return end.exit_code();
}

}  // namespace

int cmd_run(const Args& args) {
  HostOptions host;
  std::string model_name, data_dir, source, split_mode, ks_text, metrics_text, monitor, ckpt_dir;
  double checkpoint_every = 30;
  std::string results_dir, checkpoints = "best";
  bool force = false;
  std::vector<std::string> sets;
  std::int64_t min_interactions = 3, eval_batch = 512;
  std::uint64_t seed = 42;
  std::string seed_text;
  int nproc = 1;
  double memory_limit_mb = 0;
  auto desc = host_options(host);
  desc.add_options()("model,m", po::value(&model_name)->required(), "model plugin name")(
      "data,d", po::value(&data_dir)->required(), "data directory")(
      "source", po::value(&source)->default_value("auto"), "data source plugin (auto-detected)")(
      "set,s", po::value(&sets)->composing(), "parameter key=value (repeatable)")(
      "seed", po::value(&seed_text)->default_value("42"), "random seed (an integer >= 0)")(
      "split", po::value(&split_mode)->default_value("leave_one_out"), "leave_one_out or full")(
      "min-interactions", po::value(&min_interactions)->default_value(3),
      "drop users with fewer interactions")(
      "ks", po::value(&ks_text)->default_value("10"), "metric cut-offs, comma-separated")(
      "metrics", po::value(&metrics_text)->default_value("Hit,NDCG,MRR,Recall"),
      "metric families")("monitor", po::value(&monitor)->default_value("NDCG@10"),
                         "validation metric that picks the best epoch")(
      "eval-batch-size", po::value(&eval_batch)->default_value(512), "users per scoring call")(
      "checkpoint-every", po::value(&checkpoint_every)->default_value(30.0, "30"),
      "seconds between resumable checkpoints (last.ckpt); 0 = after every epoch")(
      "checkpoint-dir", po::value(&ckpt_dir),
      "write best.ckpt/last.ckpt here and resume from last.ckpt "
      "(default: RESULTS/checkpoints/runs/<trial>/, started afresh)")(
      "results", po::value(&results_dir)->default_value("results"),
      "results directory: the run is recorded in results.db, its curves under tensorboard/runs/")(
      "checkpoints", po::value(&checkpoints)->default_value("best"),
      "checkpoints kept after the run finishes: best (best.ckpt), last (best.ckpt and "
      "last.ckpt) or none")(
      "force", po::bool_switch(&force),
      "run a finished run again; its result is replaced only when the new attempt finishes")(
      "nproc", po::value(&nproc)->default_value(1),
      "train data-parallel over N processes on this machine (Gloo all-reduce; each gets "
      "--threads, default cores / N); under srun the tasks are the processes")(
      "memory-limit-mb", po::value(&memory_limit_mb)->default_value(0, "0"),
      "refuse the run before training when the model's estimated peak memory exceeds this "
      "many MiB (0: only the machine's available memory is checked)");
  const auto vm = parse(desc, args, "recrun run --model NAME --data DIR [--set key=value ...]");
  if (vm.count("help")) return 0;
  if (results_dir.empty())
    throw Error("--results is empty: name the results directory (default: results)");
  if (!(memory_limit_mb >= 0 && memory_limit_mb <= 1e9))
    throw ParamError(fmt::format("--memory-limit-mb {}: must be a number of MiB from 0 to 1e9",
                                 memory_limit_mb));
  if (memory_limit_mb > 0)  // read by the check before training, also in --nproc's ranks
    ::setenv(core::kMemoryLimitEnv, fmt::format("{}", memory_limit_mb).c_str(), 1);
  // A process cannot report its own SIGKILL: a single-process run goes on in a child, and this
  // process records and prints how it ended.
  if (nproc == 1 && !distributed::distributed_from_environment(results_dir))
    if (const auto end = core::supervise())
      return report_supervised_end(*end, trial::ResultsLayout{results_dir}.db());

  Registry registry;
  load_registry(host, registry, false);
  const ModelInfo& info = registry.model(model_name);
  const std::string component = fmt::format("model '{}'", model_name);
  const auto schema = concat(info.params, core::trainer_params());
  const auto raw = parse_sets(sets, schema, component);
  for (const auto& [key, value] : raw)  // fusion=gat is refused here, not by a failed run
    for (const auto& spec : schema)
      if (spec.name == key) {
        trial::check_references(spec, value, registry, component);
        if (!spec.deprecated.empty())
          fmt::print(stderr, "note: --set {}: parameter '{}' is deprecated: {}\n", key, key,
                     spec.deprecated);
      }
  Params params = resolve_params(schema, raw, component);
  // Parameters without effect take their default, so the run has the key a sweep would give it.
  for (const auto& why : apply_relevance(schema, params)) fmt::print(stderr, "note: {}\n", why);

  trial::Protocol protocol;
  const auto mode = core::parse_split_mode(split_mode);
  if (!mode)
    throw ParamError(fmt::format("--split '{}': must be leave_one_out or full", split_mode));
  protocol.split = *mode;
  protocol.min_interactions = min_interactions;
  protocol.ks = parse_ks(ks_text);
  protocol.metrics = split_list(metrics_text);
  protocol.monitor = monitor;
  protocol.eval_batch_size = eval_batch;
  // Every option is checked before the run claims its row: a bad flag never reaches the store.
  {
    try {
      protocol.validate(core::ProtocolUse::run);
    } catch (const core::ProtocolError& e) {
      // The same rule a sweep applies, named by the flag that set it here.
      static const std::map<std::string, std::string> flags = {
          {"split", "--split"},     {"min_interactions", "--min-interactions"},
          {"metrics", "--metrics"}, {"ks", "--ks"},
          {"monitor", "--monitor"}, {"eval_batch_size", "--eval-batch-size"}};
      const auto it = flags.find(e.field());
      throw ParamError(fmt::format("{}: {}", it == flags.end() ? e.field() : it->second, e.what()));
    }
    if (!(checkpoint_every >= 0) || !std::isfinite(checkpoint_every))
      throw ParamError(fmt::format(
          "--checkpoint-every {}: must be a finite number of seconds >= 0 (0 = after every epoch)",
          checkpoint_every));
    trial::parse_checkpoint_policy(checkpoints, "--checkpoints");
    if (seed_text.find_first_not_of("0123456789") != std::string::npos || seed_text.empty() ||
        seed_text.size() > 18)
      throw ParamError(fmt::format("--seed '{}': must be an integer in [0, 10^18)", seed_text));
    seed = std::stoull(seed_text);
    if (nproc < 1 || nproc > max_workers())
      throw ParamError(fmt::format("--nproc {}: must be between 1 and {} (4 x this machine's cores)",
                                   nproc, max_workers()));
  }

  // Data-parallel: with --nproc N this process only starts the N ranks (each one this command
  // again, without --nproc) and waits for them; under srun, or as one of those ranks, it joins
  // the group. Rank 0 does everything a run does; the others train beside it and record nothing.
  const auto parallel = distributed::distributed_from_environment(results_dir);
  if (nproc > 1) {
    if (parallel)
      throw ParamError(fmt::format("--nproc {}: this process is already rank {} of {} ({}); drop "
                                   "--nproc under srun",
                                   nproc, parallel->rank, parallel->world_size,
                                   parallel->origin));
    distributed::LaunchOptions launch;
    launch.nproc = nproc;
    launch.args = {"run"};
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--nproc") { ++i; continue; }
      if (args[i].starts_with("--nproc=")) continue;
      launch.args.push_back(args[i]);
    }
    if (host.threads == 0) {
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      launch.args.push_back(fmt::format("--threads={}", std::max(1, cores / nproc)));
    }
    launch.rendezvous_dir = fs::path(results_dir) / ".rendezvous";
    const int code = distributed::launch_ranks(launch);
    // Rank 0 stopped by a signal (Ctrl-C is forwarded to every rank) leaves its row 'running'.
    if (code != 0) mark_dead_runs_interrupted(trial::ResultsLayout{results_dir}.db());
    return code;
  }
  std::unique_ptr<distributed::GlooGroup> group;
  if (parallel) {
    group = distributed::GlooGroup::connect(*parallel);
    sdk_internal::set_collective(group.get());
  }
  const bool leader = !group || group->rank() == 0;
  // Rank 0's decision (run, or stop because the run is already finished) and its attempt
  // number, handed to every rank; alone it is just returned.
  const auto agree = [&](bool stop, std::int64_t attempt) -> std::pair<bool, std::int64_t> {
    if (!group) return {stop, attempt};
    torch::Tensor t = torch::tensor({leader && stop ? std::int64_t{1} : std::int64_t{0},
                                     leader ? attempt : std::int64_t{0}});
    group->all_reduce_sum(t);
    return {t[0].item<std::int64_t>() > 0, t[1].item<std::int64_t>()};
  };

  // The resolved configuration, before anything runs: every parameter and where it came from.
  if (leader) {
    const std::string origin = registry.origin(ComponentKind::model, model_name);
    fmt::print("run: model {}{}, seed {}, data {}\n", model_name,
               origin.empty() ? "" : fmt::format(" ({})", origin), seed, data_dir);
    for (const auto& spec : schema)
      fmt::print("  {:<22} = {:<12} ({})\n", spec.name, to_string(params.at(spec.name)),
                 raw.count(spec.name) ? "--set" : "default");
    fmt::print("  protocol: split {}, min_interactions {}, metrics {} @ {}, monitor {}, "
               "eval_batch_size {}\n",
               core::to_string(protocol.split), protocol.min_interactions, fmt::join(protocol.metrics, ","),
               fmt::join(protocol.ks, ","), protocol.monitor, protocol.eval_batch_size);
  }

  const auto t0 = std::chrono::steady_clock::now();
  const std::string source_name = data::resolve_source(registry, data_dir, source);
  const Dataset dataset = data::load_dataset(registry, data_dir, source_name);
  const core::Split split = core::make_split(dataset, {protocol.split, min_interactions});
  if (protocol.split != core::SplitMode::full && split.eval_users.empty())
    throw DataError(fmt::format(
        "{}: no user has at least {} interactions (--min-interactions), so there is nothing to "
        "evaluate; lower --min-interactions",
        data_dir, min_interactions));
  if (leader)
    fmt::print("data: {} users, {} items, {} interactions ({} users evaluated, {} dropped) in {:.2f}s\n",
             dataset.num_users(), dataset.num_items(), dataset.num_interactions(),
             split.eval_users.size(), split.dropped_users,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // The run is a trial like any other: same key, same row, same event files as in a sweep.
  const trial::ResultsLayout layout{results_dir};
  const auto seed_i = static_cast<std::int64_t>(seed);
  const std::string key =
      trial::make_key(model_name, params, dataset.fingerprint, protocol, seed_i);
  results::TrialSpec spec;
  spec.trial_key = key;
  spec.model = model_name;
  spec.data_path = std::filesystem::absolute(data_dir).lexically_normal().string();
  spec.data_fingerprint = dataset.fingerprint;
  spec.protocol_json = protocol.to_json(source_name);
  spec.seed = seed_i;
  spec.params = trial::store_params(params, schema);
  // Every rank opens the store (an ensemble's members are read from it); only rank 0 writes.
  results::ResultsStore store(layout.db());
  trial::SingleRun run;
  if (leader) run = trial::prepare_single_run(store, spec, layout);
  if (!leader)
    return run_peer(registry, dataset, split, layout, key, ckpt_dir, params, protocol, model_name,
                    seed, host.threads, agree, store);
  if (run.finished_before && !force) {
    agree(true, 0);
    // A finished result is immutable: asking for it again reports it.
    trial::print_finished_run(*run.existing, layout);
    return 0;
  }

  trial::Job job;
  job.key = key;
  job.tensorboard_dir = layout.tensorboard(trial::kSingleRunExperiment, key);
  job.checkpoint_dir =
      ckpt_dir.empty() ? layout.checkpoints(trial::kSingleRunExperiment, key) : fs::path(ckpt_dir);
  trial::claim_single_run(store, run, job, /*fresh_checkpoints=*/ckpt_dir.empty());
  const bool finished_before = run.finished_before;
  const std::int64_t attempt = run.attempt;

  core::announce(fmt::format("{} {}", finished_before ? "staging" : "run", job.key));
  agree(false, attempt);
  job.checkpoint_every_s = checkpoint_every;
  job.checkpoints = trial::parse_checkpoint_policy(checkpoints, "--checkpoints");
  job.group = "";
  job.model = model_name;
  job.params = params;
  job.seed = seed_i;
  job.protocol = protocol;
  job.threads = host.threads;
  job.console = true;
  const double collective_before = group ? group->seconds_in_collectives() : 0.0;
  const trial::JobResult result =
      trial::finish_single_run(registry, dataset, split, job, key, run, store, layout);
  const core::RunOutcome& out = result.outcome;

  fmt::print("\n{} (best epoch {}, {} epochs, stop: {}, fit {:.2f}s, eval {:.2f}s)\n", model_name,
             out.best_epoch, out.epochs_run, out.stop_reason, out.fit_seconds, out.eval_seconds);
  if (!out.valid.empty()) {
    fmt::print("  {:<12} {:>10} {:>10}\n", "metric", "valid", "test");
    for (const auto& [k, v] : out.valid)
      fmt::print("  {:<12} {:>10.4f} {:>10.4f}\n", k, v, out.test.count(k) ? out.test.at(k) : 0.0);
  }
  fmt::print("recorded as run {}{} in {}; events in {}\n", key,
             finished_before ? fmt::format(" (attempt {}, replacing the earlier one)", attempt) : "",
             layout.db().string(), job.tensorboard_dir.string());
  if (group) {
    const double busy = out.fit_seconds + out.eval_seconds;
    const double reducing = group->seconds_in_collectives() - collective_before;
    fmt::print("data-parallel: {} ranks; rank 0 spent {:.2f}s of {:.2f}s training and evaluating "
               "in all-reduce ({:.0f}%: communication and waiting for the other ranks)\n",
               group->world_size(), reducing, busy, busy > 0 ? 100 * reducing / busy : 0.0);
    // srun's FileStore lives in the results directory (--nproc's launcher removes its own).
    if (parallel->origin == "srun" && parallel->rendezvous.starts_with("file:")) {
      std::error_code ec;
      fs::remove(parallel->rendezvous.substr(5), ec);
    }
  }
  return 0;
}

}  // namespace recrun::cli
