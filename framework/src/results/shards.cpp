#include "results/shards.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <algorithm>

namespace recrun::results {

namespace fs = std::filesystem;

StoreOptions shard_store_options(bool create, std::chrono::milliseconds busy_timeout) {
  StoreOptions options;
  options.create = create;
  options.exclusive = true;
  options.busy_timeout = busy_timeout;
  return options;
}

void create_shard(const fs::path& path, const ExperimentRow& experiment, TrialSpec spec) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(fs::path(path.string() + suffix), ec);
  }
  ResultsStore shard(path, shard_store_options(true, std::chrono::seconds(60)));
  spec.experiment_id = shard.upsert_experiment(experiment.name, experiment.toml_text,
                                               experiment.hash);
  shard.register_trials({spec});
}

namespace {

// Opens a shard for reading. Two exclusive-mode connections that both hold SQLite's SHARED lock
// and both want it EXCLUSIVE wait for each other until one's busy timeout runs out; so each
// attempt waits briefly, and a busy one closes its connection (dropping its lock) and tries
// again after a random pause, until `busy_timeout` is spent.
ResultsStore open_for_reading(const fs::path& path, std::chrono::milliseconds busy_timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + busy_timeout;
  std::minstd_rand jitter(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto attempt = std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
    try {
      ResultsStore shard(path, shard_store_options(false, attempt));
      shard.runs();  // takes the lock now, inside the retry
      return shard;
    } catch (const StoreError& e) {
      if ((e.sqlite_code() & 0xff) != 5 /* SQLITE_BUSY */ || Clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + jitter() % 50));
  }
}

}  // namespace

ShardContent read_shard(const fs::path& path, std::chrono::milliseconds busy_timeout) {
  const ResultsStore shard = open_for_reading(path, busy_timeout);
  const auto rows = shard.runs();
  if (rows.size() != 1) {
    throw StoreError(fmt::format("a shard holds exactly one trial; this one holds {}",
                                 rows.size()),
                     path);
  }
  ShardContent out;
  out.row = rows.front();
  out.epochs = shard.epoch_metrics(out.row.trial_key);
  out.users = shard.user_metrics(out.row.trial_key);
  for (const auto& e : shard.experiments())
    if (out.row.experiment_id && e.id == *out.row.experiment_id) out.experiment = e;
  return out;
}

CompletedRun completed_run_of(const ShardContent& shard,
                              std::optional<std::int64_t> experiment_id) {
  const RunRow& row = shard.row;
  CompletedRun run;
  run.spec.trial_key = row.trial_key;
  run.spec.group_name = row.group_name;
  run.spec.model = row.model;
  run.spec.data_path = row.data_path;
  run.spec.data_fingerprint = row.data_fingerprint;
  run.spec.protocol_json = row.protocol_json;
  run.spec.seed = row.seed;
  run.spec.params = row.params;
  run.spec.experiment_id = experiment_id;

  FinishInfo& f = run.finish;
  f.best_epoch = row.best_epoch;
  f.epochs_run = row.epochs_run.value_or(0);
  f.fit_seconds = row.fit_seconds.value_or(0);
  f.eval_seconds = row.eval_seconds.value_or(0);
  f.total_seconds = row.total_seconds.value_or(0);
  f.checkpoint_path = row.checkpoint_path;
  f.tensorboard_path = row.tensorboard_path;
  f.valid_metrics = row.valid_metrics;
  f.test_metrics = row.test_metrics;
  if (shard.users) {
    f.users = shard.users->users;
    f.valid_user_metrics = shard.users->valid;
    f.test_user_metrics = shard.users->test;
  }

  // One record per (epoch, split, wall time): record_run() gives each record one wall time.
  std::map<std::tuple<std::int64_t, SplitName, double>, std::vector<Metric>> grouped;
  for (const EpochMetric& m : shard.epochs)
    grouped[{m.epoch, m.split, m.wall_time}].push_back(Metric{m.name, m.value});
  for (auto& [at, metrics] : grouped)
    run.epochs.push_back(EpochRecord{std::get<0>(at), std::get<1>(at), std::move(metrics),
                                     std::get<2>(at)});

  run.owner = Owner{row.owner_host, row.owner_pid.value_or(0)};
  run.attempts = std::max<std::int64_t>(row.attempts, 1);
  return run;
}

MergeOutcome merge_shard(ResultsStore& main, const ShardContent& shard,
                         const std::string& failure_context) {
  MergeOutcome out;
  out.trial_key = shard.row.trial_key;
  out.shard_status = shard.row.status;
  out.error = shard.row.error;
  const auto existing = main.find(out.trial_key);
  if (existing && existing->status == RunStatus::finished) {
    out.result = MergeResult::already_finished;
    return out;
  }
  if (shard.row.status == RunStatus::finished) {
    std::optional<std::int64_t> experiment_id;
    if (existing) {
      experiment_id = existing->experiment_id;
    } else if (!shard.experiment.name.empty()) {
      experiment_id = main.upsert_experiment(shard.experiment.name, shard.experiment.toml_text,
                                             shard.experiment.hash);
    }
    // false: another collector (or a local worker) finished it between find() and here.
    out.result = main.record_run(completed_run_of(shard, experiment_id))
                     ? MergeResult::merged_finished
                     : MergeResult::already_finished;
    return out;
  }
  if (shard.row.status == RunStatus::failed) {
    if (!existing) {
      // The trial is registered in results.db at submission; a missing row means results.db
      // was replaced since. Register it again (as the shard has it) to record the failure.
      TrialSpec spec = completed_run_of(shard, std::nullopt).spec;
      if (!shard.experiment.name.empty())
        spec.experiment_id = main.upsert_experiment(
            shard.experiment.name, shard.experiment.toml_text, shard.experiment.hash);
      main.register_trials({spec});
    }
    const std::string why = failure_context.empty()
                                ? shard.row.error
                                : fmt::format("{}: {}", failure_context, shard.row.error);
    out.result = main.fail(out.trial_key, why) ? MergeResult::merged_failed
                                               : MergeResult::already_finished;
    return out;
  }
  out.result = MergeResult::not_done;
  return out;
}

bool move_shard_aside(const fs::path& shard, const fs::path& merged_dir) {
  fs::create_directories(merged_dir);
  fs::path target = merged_dir / shard.filename();
  // Never replace a file: a trial merged before (an earlier submission) keeps its old shard.
  for (int n = 1; fs::exists(target) || fs::exists(target.string() + "-wal"); ++n)
    target = merged_dir / fmt::format("{}.{}", shard.filename().string(), n);
  // The -wal first: a shard found without its WAL would read as an older state.
  const fs::path wal = shard.string() + "-wal";
  if (fs::exists(wal) && std::rename(wal.c_str(), (target.string() + "-wal").c_str()) != 0 &&
      errno != ENOENT) {
    throw std::runtime_error(fmt::format("cannot move {} to {}: {}", wal.string(),
                                         merged_dir.string(), std::strerror(errno)));
  }
  if (std::rename(shard.c_str(), target.c_str()) != 0) {
    if (errno == ENOENT) return false;
    throw std::runtime_error(fmt::format("cannot move {} to {}: {}", shard.string(),
                                         merged_dir.string(), std::strerror(errno)));
  }
  return true;
}

}  // namespace recrun::results
