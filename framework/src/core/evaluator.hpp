// Full-ranking evaluation: every item is a candidate, seen items are excluded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recrun/model.hpp"

namespace recrun::core {

/// What to compute.
struct EvalOptions {
  /// Cut-offs; every metric is reported at each.
  std::vector<std::int64_t> ks{10};
  /// Metric families among "Hit", "NDCG", "MRR", "Recall".
  std::vector<std::string> metrics{"Hit", "NDCG", "MRR", "Recall"};
  /// Users scored per call to Model::score; results do not depend on it.
  std::int64_t batch_size = 512;
  /// Keep each user's rank in EvalResult::ranks (for significance tests).
  bool keep_ranks = false;
};

/// Metric values and timing of one evaluation.
struct EvalResult {
  /// "NDCG@10" -> mean over users.
  std::map<std::string, double> metrics;
  /// 0-based rank of each user's target (only with keep_ranks).
  std::vector<std::int64_t> ranks;
  /// Users evaluated.
  std::int64_t users = 0;
  /// Wall-clock seconds.
  double seconds = 0;
};

/// Checks metric names and cut-offs; throws ParamError naming the offending entry.
void validate(const EvalOptions& options);

/// Rank of `target` in `scores` (a [num_items] row with seen items already at -inf): the number
/// of items with a higher score, plus the items with an equal score and a smaller id. Ties thus
/// resolve as a stable top-K list would, and a constant scorer gains nothing from them.
std::int64_t rank_of(const float* scores, std::int64_t num_items, std::int32_t target);

/// Metric value for one rank. `family` is "Hit", "NDCG", "MRR" or "Recall" (single target, so
/// Recall@K equals Hit@K).
double metric_value(const std::string& family, std::int64_t rank, std::int64_t k);

/// Ranks each user's target among all items given their `history` and averages the metrics.
/// Items in the history other than the target are excluded from ranking.
EvalResult evaluate(Model& model, const Interactions& history,
                    const std::vector<std::int64_t>& users, const std::vector<std::int32_t>& targets,
                    const EvalOptions& options);

}  // namespace recrun::core
