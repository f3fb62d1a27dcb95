// Full-ranking evaluation: every item is a candidate, seen items are excluded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recrun/model_interface.hpp"

namespace recrun::core {

/// What to compute.
struct EvalOptions {
  /// Cut-offs; every metric is reported at each.
  std::vector<std::int64_t> ks{10};
  /// Metric families among known_metrics(): "Hit", "NDCG", "MRR", "Recall", "Precision", "MAP"
  /// (from the target's rank), "Coverage" and "ARP" (from each user's top-K list).
  std::vector<std::string> metrics{"Hit", "NDCG", "MRR", "Recall"};
  /// Users scored per call to Model::score; results do not depend on it.
  std::int64_t batch_size = 512;
  /// Keep each user's rank in EvalResult::ranks (for significance tests).
  bool keep_ranks = false;
  /// Keep each user's value of every metric but Coverage in EvalResult::per_user.
  bool keep_per_user = false;
  /// Popularity of each item for ARP@K (training interaction counts, indexed by dense item
  /// id). Null: ARP counts the interactions of the `history` passed to evaluate().
  std::shared_ptr<const std::vector<double>> item_popularity;
};

/// Metric values and timing of one evaluation.
struct EvalResult {
  /// "NDCG@10" -> mean over users.
  std::map<std::string, double> metrics;
  /// 0-based rank of each user's target (only with keep_ranks).
  std::vector<std::int64_t> ranks;
  /// "NDCG@10" -> the value of each user, in the order of `users` (only with keep_per_user).
  /// metrics[name] is exactly the sum of these, in this order, divided by their count.
  /// Coverage@K is a property of the whole catalogue and has none.
  std::map<std::string, std::vector<double>> per_user;
  /// Users evaluated.
  std::int64_t users = 0;
  /// Wall-clock seconds.
  double seconds = 0;
};

/// The metric families evaluate() computes.
const std::vector<std::string>& known_metrics();

/// Whether a family needs each user's top-K list (Coverage, ARP) rather than the target's rank.
bool needs_top_k(const std::string& family);

/// Checks metric names and cut-offs; throws ParamError naming the offending entry.
void validate(const EvalOptions& options);

/// Rank of `target` in `scores` (a [num_items] row with seen items already at -inf): the number
/// of items with a higher score, plus the items with an equal score and a smaller id. Ties thus
/// resolve as a stable top-K list would, and a constant scorer gains nothing from them.
std::int64_t rank_of(const float* scores, std::int64_t num_items, std::int32_t target);

/// The `k` best items of `scores` (a [num_items] row with seen items at -inf), best first:
/// higher score first, equal scores by smaller id (the order rank_of() counts). Items at -inf
/// are never listed, so the list is shorter than k when fewer items remain. Partial selection
/// (one pass with a bounded heap of the k best so far), not a sort of the whole row; `scratch`
/// is reused between calls.
void top_k(const float* scores, std::int64_t num_items, std::int64_t k,
           std::vector<std::int32_t>& scratch, std::vector<std::int32_t>& out);

/// Metric value for one rank. `family` is "Hit", "NDCG", "MRR", "Recall", "Precision" or "MAP".
/// With one target per user: Recall@K equals Hit@K, Precision@K is Hit@K / K, and MAP@K (average
/// precision normalised by min(K, relevant items) = 1) equals MRR@K.
double metric_value(const std::string& family, std::int64_t rank, std::int64_t k);

/// Ranks each user's target among all items given their `history` and averages the metrics.
/// Items in the history other than the target are excluded from ranking.
EvalResult evaluate(Model& model, const Interactions& history,
                    const std::vector<std::int64_t>& users, const std::vector<std::int32_t>& targets,
                    const EvalOptions& options);

}  // namespace recrun::core
