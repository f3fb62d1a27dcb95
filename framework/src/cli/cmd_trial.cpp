// `recrun trial KEY`: runs one registered trial in this process. A sweep's workers are this
// command; it also runs a trial by hand or on a cluster node (it then claims the row itself).
// Everything the trial needs comes from its row in results.db, so a trial is self-contained:
// the experiment file may have changed since, and no other process has to be alive.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/split.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "results/results_store.hpp"
#include "results/shards.hpp"
#include "trial/key.hpp"
#include "trial/layout.hpp"
#include "trial/runner.hpp"

namespace recrun::cli {
namespace {

// Exit codes the sweep's scheduler reads (scheduler.cpp).
constexpr int kExitFinished = 0;
constexpr int kExitFailedRecorded = 3;
constexpr int kExitNotRun = 4;

// Keeps a standalone trial's row alive during long epochs (a sweep heartbeats for its workers).
class Heartbeat {
 public:
  Heartbeat(results::ResultsStore& store, std::string key)
      : thread_([this, &store, key = std::move(key)] {
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, std::chrono::seconds(30), [this] { return stop_; })) {
            lock.unlock();
            try {
              store.heartbeat(key);
            } catch (const std::exception&) {
              // A busy database now and then is harmless: the next beat will do.
            }
            lock.lock();
          }
        }) {}
  ~Heartbeat() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Seconds since this process was started (exec, dynamic loading and static initialisers of
// LibTorch included), from /proc: 0 when unavailable.
double seconds_since_process_start() {
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long long start_ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 22) {
      start_ticks = std::stoull(field);
      break;
    }
  }
  double uptime = 0;
  std::ifstream("/proc/uptime") >> uptime;
  return uptime - static_cast<double>(start_ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

int cmd_trial(const Args& args) { return run_trial(args, nullptr); }

int run_trial(const Args& args, Registry* preloaded) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  HostOptions host;
  std::string key, results_dir;
  std::int64_t owner_pid = 0;
  int progress_fd = -1;
  double checkpoint_every = 30;
  bool retry_failed = false;
  std::string checkpoints = "best";
  std::string shard;
  auto desc = host_options(host);
  desc.add_options()("key", po::value(&key)->required(), "trial key (see `recrun sweep --dry-run`)")(
      "results", po::value(&results_dir)->default_value("results"), "results directory")(
      "retry-failed", po::bool_switch(&retry_failed), "run the trial even if it failed before")(
      "checkpoint-every", po::value(&checkpoint_every)->default_value(30.0, "30"),
      "seconds between resumable checkpoints (last.ckpt); 0 = after every epoch")(
      "checkpoints", po::value(&checkpoints)->default_value("best"),
      "checkpoints kept after the trial finishes: best, last (best.ckpt and last.ckpt) or none")(
      "shard", po::value(&shard),
      "record into this shard (a one-trial results database a Slurm sweep created) instead of "
      "results.db; checkpoints, events and logs still go under --results");
  // Flags only a sweep passes to its workers: accepted, not shown by --help.
  po::options_description internal("internal");
  internal.add_options()("owner-pid", po::value(&owner_pid)->default_value(0),
                         "the sweep that claimed the trial (workers write as that owner)")(
      "progress-fd", po::value(&progress_fd)->default_value(-1),
      "write progress lines to this file descriptor");
  po::positional_options_description pos;
  pos.add("key", 1);
  const auto vm =
      parse(desc, args, "recrun trial KEY [--results DIR] [--threads N]", &pos, &internal);
  if (vm.count("help")) return 0;
  const auto policy = trial::parse_checkpoint_policy(checkpoints, "--checkpoints");

  const trial::ResultsLayout layout{results_dir};
  const auto t_store = Clock::now();
  results::StoreOptions store_options;
  if (owner_pid > 0) store_options.owner.pid = owner_pid;
  if (!shard.empty()) store_options = results::shard_store_options(false, std::chrono::seconds(60));
  results::ResultsStore store(shard.empty() ? layout.db() : std::filesystem::path(shard),
                              store_options);
  // A process that died (a crashed plugin, a full disk) must not leave its row running for ever.
  if (const auto reaped = store.reap_dead_owners(); reaped > 0)
    fmt::print(stderr, "note: {} run(s) whose process had died are now marked interrupted\n",
               reaped);
  const auto row = store.find(key);
  if (!row)
    throw Error(fmt::format("no trial with key '{}' in {} (keys come from `recrun sweep`; "
                            "`recrun sweep FILE --dry-run` lists them)",
                            key, store.path().string()));
  if (const std::string note = trial::legacy_key_note(key); !note.empty()) {
    fmt::print(stderr, "recrun trial: {}\n", note);
    return kExitNotRun;
  }

  if (owner_pid > 0) {
    // A worker: the sweep claimed the row for us; refuse anything else rather than run twice.
    if (row->status != results::RunStatus::running || row->owner_pid != owner_pid) {
      fmt::print(stderr, "recrun trial: trial {} is {} (owner pid {}), not claimed by sweep {}\n",
                 key, results::to_string(row->status), row->owner_pid.value_or(0), owner_pid);
      return kExitNotRun;
    }
  } else {
    const auto claim = store.claim(key, retry_failed);
    if (claim != results::ClaimResult::claimed) {
      fmt::print("trial {}: not run: {}\n", key, results::to_string(claim));
      return claim == results::ClaimResult::already_finished ? kExitFinished : kExitNotRun;
    }
  }
  std::optional<Heartbeat> heartbeat;
  if (owner_pid <= 0) heartbeat.emplace(store, key);

  const std::string experiment =
      row->experiment.empty() ? trial::kSingleRunExperiment : row->experiment;
  FILE* progress_out = progress_fd >= 0 ? ::fdopen(progress_fd, "w") : nullptr;
  // A worker's stdout is its log file: line-buffered, so that a crash loses no finished line.
  if (progress_out) std::setvbuf(stdout, nullptr, _IOLBF, 0);
  trial::Job job;
  job.key = key;
  job.group = row->group_name;
  job.model = row->model;
  job.seed = row->seed;
  job.threads = host.threads;
  job.checkpoint_dir = layout.checkpoints(experiment, key);
  job.checkpoint_every_s = checkpoint_every;
  job.checkpoints = policy;
  job.tensorboard_dir = layout.tensorboard(experiment, key);
  job.console = progress_out == nullptr;
  if (progress_out) {
    job.progress = [progress_out](const std::string& line) {
      fmt::print(progress_out, "{}\n", line);
      std::fflush(progress_out);
    };
  }

  // Set-up failures (plugins, data, a schema that changed) are the trial's failure too.
  Registry loaded;
  Registry& registry = preloaded ? *preloaded : loaded;
  Dataset dataset;
  core::Split split;
  try {
    if (preloaded) {
      check_threads(host.threads);
    } else {
      load_registry(host, registry, false);
    }
    const auto t_plugins = Clock::now();
    job.protocol = trial::Protocol::from_json(row->protocol_json);
    const ModelInfo& info = registry.model(row->model);
    const auto schema = trial::full_schema(info);
    job.params = trial::params_from_store(row->params, schema, fmt::format("model '{}'", row->model));
    const auto t_data = Clock::now();
    dataset = data::load_dataset(registry, row->data_path,
                                 trial::Protocol::data_source_from_json(row->protocol_json));
    if (dataset.fingerprint != row->data_fingerprint)
      throw DataError(fmt::format(
          "the data at {} changed since the trial was registered (fingerprint {} then, {} now); "
          "run the sweep again to register trials for the new data",
          row->data_path, row->data_fingerprint, dataset.fingerprint));
    const std::string again =
        trial::make_key(row->model, job.params, dataset.fingerprint, job.protocol, row->seed);
    if (again != key)
      throw Error(fmt::format("trial {} no longer resolves to the same key ({}): the model's "
                              "parameter schema changed since it was registered",
                              key, again));
    const auto t_split = Clock::now();
    split = core::make_split(dataset, {job.protocol.split, job.protocol.min_interactions});
    const auto secs = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double>(b - a).count();
    };
    // Where a trial's time outside fit and evaluate goes (the sweep reports the total).
    fmt::print("trial {}: {} {} seed {}; data {} ({} users, {} items); start-up{}: process {:.2f}s, "
               "store {:.2f}s, plugins {:.2f}s, data {:.2f}s, split {:.2f}s\n",
               key, row->group_name, row->model, row->seed, row->data_path, dataset.num_users(),
               dataset.num_items(), preloaded ? " (forked from the zygote)" : "",
               seconds_since_process_start() - secs(t0, Clock::now()),
               secs(t0, t_store), secs(t_store, t_plugins), secs(t_data, t_split),
               secs(t_split, Clock::now()));
  } catch (const results::StoreError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string why = fmt::format("set-up failed: {}", e.what());
    fmt::print(stderr, "recrun trial: {}\n", why);
    store.fail(key, why);
    return kExitFailedRecorded;
  }

  // From exec, so that total_seconds in results.db is the trial's whole wall time.
  job.startup_seconds = std::max(seconds_since_process_start(),
                                 std::chrono::duration<double>(Clock::now() - t0).count());
  const trial::JobResult result = trial::execute(registry, dataset, split, job, store);
  if (!result.finished) {
    fmt::print(stderr, "recrun trial: trial {} failed: {}\n", key, text::terminal_safe(result.error));
    return kExitFailedRecorded;
  }
  const auto& out = result.outcome;
  fmt::print("trial {}: finished (best epoch {}, {} epochs, stop: {}; fit {:.2f}s, eval {:.2f}s, "
             "start-up {:.2f}s)\n",
             key, out.best_epoch, out.epochs_run, out.stop_reason, out.fit_seconds,
             out.eval_seconds, job.startup_seconds);
  for (const auto& [k, v] : out.test) fmt::print("  test {} {:.4f}\n", k, v);
  if (progress_out) std::fclose(progress_out);
  return kExitFinished;
}

}  // namespace recrun::cli
