// The Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio and Kégl, "Algorithms for
// Hyper-Parameter Optimization", NeurIPS 2011), written for recrun's search spaces.
//
// The finished configurations are split into the best fraction `gamma` ("good") and the rest;
// each searched parameter gets two densities, l(x) from the good ones and g(x) from the rest
// (a Parzen window: one truncated Gaussian per observation plus a flat prior component, in log
// space for log_uniform; counts plus one for a choice). Candidates are drawn from l and the one
// with the largest sum over parameters of log l(x) - log g(x) is suggested.
//
// Everything is a function of (seed, index, observations): the same finished trials and seed
// give the same suggestion. Configurations that are running (registered, not finished) are
// passed as `pending`: they join the bad side ("constant liar" with the worst value), so that
// parallel workers are steered away from what the others are already trying.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "sweep/search_space.hpp"

namespace recrun::sweep {

/// A configuration the search has tried (or is trying).
struct Observation {
  Point point;
  /// The monitor value (higher is better); ignored when pending.
  double value = 0;
  /// How far it got: a pruned trial ranks below every trial that went further, whatever its
  /// value (epochs reached; kComplete for a trial that trained to the end).
  std::int64_t level = kComplete;
  /// Still running: counted among the bad configurations.
  bool pending = false;

  static constexpr std::int64_t kComplete = std::numeric_limits<std::int64_t>::max();
};

struct TpeOptions {
  /// Share of the (non-pending) observations that form the good side.
  double gamma = 0.25;
  /// Candidates drawn from l(x) per suggestion.
  int candidates = 24;
  /// Below this many finished observations, suggestions are random_point(seed, index).
  std::int64_t startup = 10;
};

/// The default number of random configurations before TPE for a search of `trials`.
std::int64_t default_startup_trials(std::int64_t trials);

/// The `index`-th suggestion of a TPE search with `seed`, given what has been observed.
Point suggest_tpe(const std::vector<Dim>& space, const std::vector<Observation>& observations,
                  std::int64_t seed, std::int64_t index, const TpeOptions& options = {});

}  // namespace recrun::sweep
