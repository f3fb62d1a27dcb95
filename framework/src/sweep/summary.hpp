// The end-of-sweep report: the best trial of each group with its parameters and metrics, what
// failed and why, and how much time the sweep machinery itself cost per trial.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "sweep/experiment.hpp"
#include "sweep/scheduler.hpp"
#include "sweep/trials.hpp"

namespace recrun::sweep {

/// The best configuration of one group: its finished trials, which differ only in seed.
struct GroupBest {
  std::string group;
  /// The first of the configuration's finished trials (its parameters and model).
  const Trial* trial = nullptr;
  const results::RunRow* row = nullptr;
  /// Every finished trial of the configuration with a monitor value, and their rows (by seed
  /// order in the experiment).
  std::vector<const Trial*> trials;
  std::vector<const results::RunRow*> rows;
  /// Mean over those trials of the validation value of the protocol's monitor.
  double valid = 0;
  /// Its sample standard deviation (NaN for one trial).
  double valid_std = 0;
};

/// Per group (in experiment order), the configuration (trials that differ only in seed) whose
/// finished trials have the highest mean validation monitor (never the test metric: picking by
/// test would leak it); ties go to the configuration that comes first. Groups without a
/// finished trial are left out.
std::vector<GroupBest> best_per_group(const Experiment& experiment, const std::vector<Trial>& trials,
                                      const std::map<std::string, results::RunRow>& rows);

/// Prints the summary table, status counts and failures.
void print_summary(std::FILE* out, const Experiment& experiment, const std::vector<Trial>& trials,
                   const std::map<std::string, results::RunRow>& rows);

/// Time outside fit and evaluate for trials this sweep ran to the end.
struct Overhead {
  /// Trials measured.
  std::size_t trials = 0;
  /// Mean worker wall time (launch to exit), seconds.
  double mean_wall = 0;
  /// Mean fit + evaluate time, seconds.
  double mean_work = 0;
  /// Mean of wall - (fit + evaluate), seconds.
  double mean_overhead = 0;
  /// mean_overhead / mean_wall.
  double share = 0;
  /// Mean CPU seconds of a worker (all threads), for comparison on a busy machine.
  double mean_cpu = 0;
};

/// Measures Overhead over the finished runs of a schedule.
Overhead measure_overhead(const ScheduleResult& schedule,
                          const std::map<std::string, results::RunRow>& rows);

}  // namespace recrun::sweep
