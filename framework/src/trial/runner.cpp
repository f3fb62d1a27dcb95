#include "trial/runner.hpp"

#include <fmt/format.h>

#include <chrono>

#include "core/memory_check.hpp"
#include "recrun/error.hpp"
#include "trial/members.hpp"
#include "trial/pruning.hpp"

namespace recrun::trial {

std::string_view to_string(CheckpointPolicy policy) {
  switch (policy) {
    case CheckpointPolicy::best: return "best";
    case CheckpointPolicy::last: return "last";
    case CheckpointPolicy::none: return "none";
  }
  return "?";
}

CheckpointPolicy parse_checkpoint_policy(std::string_view text, std::string_view where) {
  for (auto p : {CheckpointPolicy::best, CheckpointPolicy::last, CheckpointPolicy::none})
    if (to_string(p) == text) return p;
  throw ParamError(fmt::format("{} '{}': must be best (keep best.ckpt), last (best.ckpt and "
                               "last.ckpt) or none (keep no checkpoint)",
                               where, text));
}

core::TrainerOptions trainer_options(const Job& job) {
  core::TrainerOptions options;
  core::apply_trainer_params(job.params, options);
  options.seed = static_cast<std::uint64_t>(job.seed);
  options.threads = job.threads;
  options.monitor = job.protocol.monitor;
  options.eval.ks = job.protocol.ks;
  options.eval.metrics = job.protocol.metrics;
  options.eval.batch_size = job.protocol.eval_batch_size;
  options.checkpoint_dir = job.checkpoint_dir;
  options.checkpoint_every_s = job.checkpoint_every_s;
  options.resume = true;
  options.trial_key = job.key;
  return options;
}

namespace {

// Builds the job's model and trains it under the trainer, reporting to `observer`.
core::RunOutcome train(const Registry& registry, const Dataset& dataset, const core::Split& split,
                       const Job& job, results::ResultsStore& store, core::RunObserver& observer) {
  core::TrainerOptions options = trainer_options(job);
  // The attempt this is (claimed rows count them): stamped into its checkpoints with the key.
  if (const auto row = job.key.empty() ? std::nullopt : store.find(job.key)) options.attempt = row->attempts;
  // A trial of a search with a pruner asks it at each rung (results.db decides, once).
  options.should_prune = pruning_hook(store, job.key);
  const ModelInfo& info = registry.model(job.model);
  core::seed_and_threads(options.seed, options.threads);
  // Members of an ensemble come from this store and must share this run's data and split.
  const RunHost host(registry, dataset, &split, job.protocol, &store, job.threads);
  auto model = info.make(job.params, ModelEnv{dataset, registry, options.seed, &host});
  if (!model) throw PluginError(fmt::format("model '{}' returned no model", job.model));
  // Refused here, before the first epoch, rather than killed by the kernel halfway.
  core::check_memory(core::plan_memory(*model, split.train, dataset.num_items(),
                                       job.protocol.eval_batch_size),
                     fmt::format("model '{}'", job.model));
  return core::train_and_evaluate(*model, dataset, split, options, observer);
}

}  // namespace

JobResult execute(const Registry& registry, const Dataset& dataset,
                  const core::Split& split, const Job& job, results::ResultsStore& store) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  JobResult result;
  const core::TrainerOptions options = trainer_options(job);

  const auto best_ckpt = job.checkpoint_dir.empty() ? std::filesystem::path{}
                                                     : job.checkpoint_dir / "best.ckpt";
  store.set_artifact_paths(job.key, best_ckpt.string(), job.tensorboard_dir.string());

  trial::RecorderOptions ro;
  ro.trial_key = job.key;
  ro.store = &store;
  ro.tensorboard_dir = job.tensorboard_dir;
  ro.hparams = trial::hparams_of(job.params, job.model, job.group, job.seed);
  // Runs that differ only in seed share a group, so the HParams tab can average them.
  ro.hparams_group = fmt::format("{}:{}", job.group, job.model);
  for (const auto& [k, v] : job.params.values())
    ro.hparams_group += fmt::format(" {}={}", k, recrun::to_string(v));
  ro.monitor = job.protocol.monitor;
  ro.max_epochs = options.max_epochs;
  ro.progress = job.progress;
  ro.console = job.console;
  trial::Recorder recorder(std::move(ro));

  try {
    recorder.begin();
    result.outcome = train(registry, dataset, split, job, store, recorder);
  } catch (const results::StoreError&) {
    throw;  // the store is what would record the failure; let the caller decide
  } catch (const std::exception& e) {
    result.error = e.what();
    if (result.error.empty()) result.error = "unknown error";
  } catch (...) {
    result.error = "a non-standard exception escaped the model";
  }

  if (!result.error.empty()) {
    try {
      recorder.end(nullptr);
    } catch (const std::exception&) {
      // The event file is a courtesy; the store gets the failure either way.
    }
    store.fail(job.key, result.error);
    result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return result;
  }

  recorder.end(&result.outcome);
  const core::RunOutcome& out = result.outcome;
  results::FinishInfo info;
  info.best_epoch = out.best_epoch;
  info.epochs_run = out.epochs_run;
  info.pruned = out.pruned;
  info.fit_seconds = out.fit_seconds;
  info.eval_seconds = out.eval_seconds;
  // The checkpoint policy: last.ckpt served resuming while the trial ran; keep what was asked.
  if (!job.checkpoint_dir.empty()) {
    std::error_code ec;
    if (job.checkpoints != CheckpointPolicy::last)
      std::filesystem::remove(job.checkpoint_dir / "last.ckpt", ec);
    if (job.checkpoints == CheckpointPolicy::none) {
      std::filesystem::remove(best_ckpt, ec);
      std::filesystem::remove(job.checkpoint_dir, ec);  // only if nothing else is there
    }
  }
  info.checkpoint_path =
      job.checkpoints == CheckpointPolicy::none ? std::string() : best_ckpt.string();
  info.tensorboard_path = job.tensorboard_dir.string();
  info.valid_metrics = trial::metrics_of(out.valid);
  for (const auto& [k, v] : out.diagnostics) info.valid_metrics.push_back({"val_" + k, v});
  info.test_metrics = trial::metrics_of(out.test);
  // Per-user values, stored in finish()'s transaction: the users once, a float32 blob each.
  if (!out.valid_per_user.empty() || !out.test_per_user.empty()) {
    info.users = split.eval_users;
    for (const auto& [per_user, into] :
         {std::pair{&out.valid_per_user, &info.valid_user_metrics},
          std::pair{&out.test_per_user, &info.test_user_metrics}})
      for (const auto& [name, values] : *per_user)
        if (values.size() == info.users.size())
          into->push_back({name, std::vector<float>(values.begin(), values.end())});
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  info.total_seconds = job.startup_seconds + result.seconds;
  store.finish(job.key, info);
  result.finished = true;
  return result;
}

core::RunOutcome execute_peer(const Registry& registry, const Dataset& dataset,
                              const core::Split& split, const Job& job,
                              results::ResultsStore& store) {
  core::RunObserver quiet;
  return train(registry, dataset, split, job, store, quiet);
}

}  // namespace recrun::trial
