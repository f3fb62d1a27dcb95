// The training loop every model runs under: epochs, validation, early stopping, checkpoints,
// time budget, seeding, NaN detection and the final test of the best checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/evaluator.hpp"
#include "core/split.hpp"
#include "recrun/model_interface.hpp"
#include "recrun/params.hpp"

namespace recrun::core {

/// Loop settings. Built from trainer_params() values plus the protocol.
struct TrainerOptions {
  /// Upper bound on epochs.
  std::int64_t max_epochs = 100;
  /// Validate every this many epochs (and after the last).
  std::int64_t eval_every = 1;
  /// Stop after this many validations without improvement; 0 disables early stopping.
  std::int64_t patience = 20;
  /// Validation metric that picks the best epoch (higher is better).
  std::string monitor = "NDCG@10";
  /// Wall-clock budget for training in seconds; 0 means none. When spent, training stops and
  /// the best checkpoint is tested.
  double time_budget_s = 0;
  /// Seed for LibTorch and the model's generator.
  std::uint64_t seed = 42;
  /// LibTorch intra-op threads; 0 picks the number of cores.
  int threads = 0;
  /// Metrics and cut-offs.
  EvalOptions eval;
  /// Where best.ckpt and last.ckpt go; empty keeps the best state in memory only.
  std::filesystem::path checkpoint_dir;
  /// Seconds between writes of last.ckpt (model, optimizer, loop state, RNGs and the best
  /// weights so far, in one file); 0 = after every epoch. best.ckpt is written when training ends.
  double checkpoint_every_s = 30;
  /// Continue from checkpoint_dir/last.ckpt when it exists.
  bool resume = true;
  /// The trial this run is; recorded in last.ckpt, and a last.ckpt of another trial is refused
  /// instead of resumed. Empty: not recorded, not checked.
  std::string trial_key;
  /// The attempt of the trial this run is (the results row's `attempts` once claimed); stamped
  /// with the key into every checkpoint written. 0: not recorded.
  std::int64_t attempt = 0;
  /// Asked after each validation but the last with the epochs trained so far and the monitor's
  /// value; true stops the run as pruned (a search's pruner, trial/pruning.hpp): its best
  /// checkpoint is kept and not tested. Empty: never asked.
  std::function<bool(std::int64_t epochs_trained, double value)> should_prune;
};

/// Stamps a checkpoint as trial `key`'s attempt `attempt` (either may be empty/0: not stamped).
void bind_checkpoint(Archive& archive, const std::string& key, std::int64_t attempt);

/// Refuses a best checkpoint (read from `file`) that another trial or another attempt wrote,
/// naming both: a valid checkpoint of another run of the same model would otherwise load
/// silently. A staging key "<key>~attempt-<n>" is trial <key>'s attempt n. Checkpoints written
/// before the stamp existed carry none and pass.
void check_checkpoint_binding(const Archive& archive, const std::string& key,
                              std::int64_t attempt, const std::filesystem::path& file);

/// The framework's per-run parameters, accepted beside every model's own:
/// epochs, eval_every, patience, time_budget.
const std::vector<ParamSpec>& trainer_params();

/// Applies trainer_params() values to options.
void apply_trainer_params(const Params& params, TrainerOptions& options);

/// Receives progress; every hook is optional.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  /// After each training epoch: its result, scalars the model logged, and its duration.
  virtual void on_epoch(std::int64_t epoch, const EpochResult& result,
                        const std::map<std::string, double>& logged, double seconds) {}
  /// After each validation, with the model's diagnostics and whether the monitor improved.
  virtual void on_validation(std::int64_t epoch, const EvalResult& result,
                             const std::map<std::string, double>& diagnostics, bool improved) {}
  /// After the final test of the best checkpoint.
  virtual void on_test(const EvalResult& result) {}
  /// When a run continues from a checkpoint written at `epoch`.
  virtual void on_resume(std::int64_t epoch) {}
};

/// What a run produced.
struct RunOutcome {
  /// Epoch whose checkpoint was tested (0-based).
  std::int64_t best_epoch = -1;
  /// Epochs trained, including those before a resume.
  std::int64_t epochs_run = 0;
  /// Validation metrics of the best epoch.
  std::map<std::string, double> valid;
  /// Test metrics of the best checkpoint (empty in full-data mode).
  std::map<std::string, double> test;
  /// Each evaluated user's validation value of every metric but Coverage at the best epoch, in
  /// the order of Split::eval_users (empty in full-data mode, and after resuming a checkpoint
  /// written before they were kept).
  std::map<std::string, std::vector<double>> valid_per_user;
  /// The same for the test metrics of the best checkpoint.
  std::map<std::string, std::vector<double>> test_per_user;
  /// Model diagnostics at the best epoch.
  std::map<std::string, double> diagnostics;
  /// Seconds in fit_epoch.
  double fit_seconds = 0;
  /// Seconds in evaluation.
  double eval_seconds = 0;
  /// "converged", "early_stopping", "max_epochs", "time_budget", "pruned" or "full_data".
  std::string stop_reason;
  /// Stopped by should_prune: no test metrics.
  bool pruned = false;
  /// Whether the run continued from a checkpoint.
  bool resumed = false;
};

/// Seeds LibTorch and sets its thread count (0 = all cores).
void seed_and_threads(std::uint64_t seed, int threads);

/// Trains `model` on the split, validating and early-stopping, then tests the best checkpoint.
/// Throws recrun::Error on a non-finite loss or bad scores (the run fails, the caller goes on).
RunOutcome train_and_evaluate(Model& model, const Dataset& dataset, const Split& split,
                              const TrainerOptions& options, RunObserver& observer);

}  // namespace recrun::core
