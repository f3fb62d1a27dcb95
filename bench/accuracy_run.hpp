// Shared by bench_sasrec and bench_time_to_accuracy: train a model plugin through the real
// trainer under an epoch cap and a wall-clock budget, recording validation NDCG@10 against wall
// time at every validation.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/split.hpp"
#include "core/trainer.hpp"
#include "data/synth.hpp"
#include "recrun/registry.hpp"

namespace recrun::bench {

/// One validation: wall seconds since training started (training and earlier validations
/// included), the epoch, and validation NDCG@10.
struct CurvePoint {
  double seconds = 0;
  std::int64_t epoch = 0;
  double ndcg = 0;
};

struct AccuracyRun {
  std::vector<CurvePoint> curve;
  /// NDCG@10 of the best validation, and the run's wall seconds and epochs.
  double best_ndcg = 0, seconds = 0;
  std::int64_t epochs = 0;
};

class CurveObserver final : public core::RunObserver {
 public:
  explicit CurveObserver(std::chrono::steady_clock::time_point start) : start_(start) {}
  void on_validation(std::int64_t epoch, const core::EvalResult& result,
                     const std::map<std::string, double>&, bool) override {
    points.push_back({std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
                          .count(),
                      epoch, result.metrics.at("NDCG@10")});
  }
  std::vector<CurvePoint> points;

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Trains `model` with `params` on `dataset` for at most `max_epochs` epochs and `budget_s`
/// seconds of training (0: no budget), validating after every epoch, no early stopping.
inline AccuracyRun train_for_accuracy(const Registry& registry, const std::string& model,
                                      const Dataset& dataset, const core::Split& split,
                                      const std::map<std::string, ParamValue>& params,
                                      std::int64_t max_epochs, double budget_s,
                                      std::uint64_t seed, int threads) {
  const ModelInfo& info = registry.model(model);
  torch::manual_seed(seed);
  auto m = info.make(resolve_params(info.params, params, fmt::format("model '{}'", model)),
                     ModelEnv{.dataset = dataset, .registry = registry, .seed = seed});
  core::TrainerOptions options;
  options.max_epochs = max_epochs;
  options.patience = 0;
  options.time_budget_s = budget_s;
  options.seed = seed;
  options.threads = threads;
  options.eval.ks = {10};
  options.eval.metrics = {"NDCG"};
  const auto start = std::chrono::steady_clock::now();
  CurveObserver observer(start);
  const core::RunOutcome out = core::train_and_evaluate(*m, dataset, split, options, observer);
  AccuracyRun run;
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.curve = std::move(observer.points);
  run.best_ndcg = out.valid.count("NDCG@10") ? out.valid.at("NDCG@10") : 0.0;
  run.epochs = out.epochs_run;
  return run;
}

/// Mean and sample standard deviation.
inline std::pair<double, double> mean_sd(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (const double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (const double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

}  // namespace recrun::bench
