// Runs one claimed trial in this process: builds the model, trains it under the framework's
// Trainer with a Recorder attached, and writes the outcome (finished or failed, with the
// reason) through the results store. `recrun trial` (a sweep's worker) and `recrun run` use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/dataset.hpp"
#include "recrun/params.hpp"
#include "recrun/registry.hpp"
#include "trial/recorder.hpp"
#include "results/results_store.hpp"
#include "core/protocol.hpp"

namespace recrun::trial {

/// Which checkpoints a finished trial keeps (`execution.checkpoints`, `--checkpoints`).
/// last.ckpt is written while the trial runs either way, so that it can be resumed.
enum class CheckpointPolicy {
  best,  ///< best.ckpt only (the default)
  last,  ///< best.ckpt and last.ckpt
  none,  ///< nothing: both are removed when the trial finishes
};
std::string_view to_string(CheckpointPolicy policy);
/// "best", "last" or "none"; anything else throws ParamError naming `where` (a flag or key).
CheckpointPolicy parse_checkpoint_policy(std::string_view text, std::string_view where);

/// Everything one trial needs besides the data.
struct Job {
  /// Trial key (the row must be running under the store's owner).
  std::string key;
  /// Group name (HParams grouping) and model plugin name.
  std::string group;
  std::string model;
  /// Resolved model and trainer parameters.
  Params params;
  /// Random seed.
  std::int64_t seed = 0;
  /// The experiment's protocol.
  Protocol protocol;
  /// best.ckpt / last.ckpt go here; an existing last.ckpt is resumed from.
  std::filesystem::path checkpoint_dir;
  /// What stays in checkpoint_dir once the trial has finished.
  CheckpointPolicy checkpoints = CheckpointPolicy::best;
  /// Seconds between writes of last.ckpt; 0 = after every epoch.
  double checkpoint_every_s = 30;
  /// TensorBoard run directory; empty writes no events.
  std::filesystem::path tensorboard_dir;
  /// LibTorch threads (0 = all cores).
  int threads = 0;
  /// Print epoch and validation lines to stdout.
  bool console = false;
  /// Progress lines for a parent sweep.
  trial::ProgressSink progress;
  /// Seconds the process spent before this trial (start-up, plugins, data); added to the
  /// stored total_seconds so that it is the trial's whole wall time.
  double startup_seconds = 0;
};

/// What running a trial produced.
struct JobResult {
  /// True when the trial finished and was recorded as finished.
  bool finished = false;
  /// Why it failed (recorded in the store).
  std::string error;
  /// The trainer's outcome (valid when finished).
  core::RunOutcome outcome;
  /// Wall time of train_and_evaluate plus recording, seconds.
  double seconds = 0;
};

/// Trains and evaluates the trial and records finish() or fail(). Exceptions from the model
/// (its plugin) or the trainer become a failed trial; only results-store errors propagate.
JobResult execute(const Registry& registry, const Dataset& dataset,
                  const core::Split& split, const Job& job, results::ResultsStore& store);

/// A data-parallel run's rank other than 0: trains alongside rank 0 (which runs execute()) and
/// records nothing: no store row, no event file, no checkpoint. Exceptions propagate.
core::RunOutcome execute_peer(const Registry& registry, const Dataset& dataset,
                              const core::Split& split, const Job& job,
                              results::ResultsStore& store);

/// The trainer options of a job (its params, seed, threads, protocol, checkpoint dir).
core::TrainerOptions trainer_options(const Job& job);

}  // namespace recrun::trial
