#include "core/evaluator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "recrun/error.hpp"
#include "recrun/params.hpp"

namespace recrun::core {

void validate(const EvalOptions& options) {
  static const std::vector<std::string> known{"Hit", "NDCG", "MRR", "Recall"};
  if (options.ks.empty()) throw ParamError("protocol.ks: at least one cut-off is needed");
  for (const auto k : options.ks)
    if (k < 1) throw ParamError(fmt::format("protocol.ks: cut-off must be >= 1, got {}", k));
  if (options.metrics.empty()) throw ParamError("protocol.metrics: at least one metric is needed");
  for (const auto& m : options.metrics)
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      std::string hint;
      if (auto s = did_you_mean(m, known)) hint = fmt::format(" (did you mean '{}'?)", *s);
      throw ParamError(fmt::format("protocol.metrics: unknown metric '{}'{}; valid: {}", m, hint,
                                   fmt::join(known, ", ")));
    }
  if (options.batch_size < 1) throw ParamError("protocol.eval_batch_size must be >= 1");
}

std::int64_t rank_of(const float* s, std::int64_t num_items, std::int32_t target) {
  const float t = s[target];
  std::int64_t rank = 0;
  for (std::int64_t j = 0; j < target; ++j) rank += s[j] >= t;
  for (std::int64_t j = target + 1; j < num_items; ++j) rank += s[j] > t;
  return rank;
}

double metric_value(const std::string& family, std::int64_t rank, std::int64_t k) {
  if (rank >= k) return 0.0;
  if (family == "Hit" || family == "Recall") return 1.0;
  if (family == "NDCG") return 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  if (family == "MRR") return 1.0 / (static_cast<double>(rank) + 1.0);
  throw ParamError(fmt::format("unknown metric '{}'", family));
}

EvalResult evaluate(Model& model, const Interactions& history,
                    const std::vector<std::int64_t>& users, const std::vector<std::int32_t>& targets,
                    const EvalOptions& options) {
  validate(options);
  if (users.size() != targets.size())
    throw Error(fmt::format("evaluate: {} users but {} targets", users.size(), targets.size()));
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const std::int64_t num_items = history.num_items();
  std::vector<std::int64_t> ranks(users.size());
  for (std::size_t begin = 0; begin < users.size();
       begin += static_cast<std::size_t>(options.batch_size)) {
    const std::size_t end = std::min(users.size(), begin + options.batch_size);
    std::vector<std::int64_t> batch_users(users.begin() + begin, users.begin() + end);
    std::vector<std::span<const std::int32_t>> histories;
    histories.reserve(batch_users.size());
    for (const auto u : batch_users) histories.push_back(history.items(u));
    const UserBatch batch(batch_users, histories, num_items);
    torch::Tensor scores = model.score(batch);
    const auto b = static_cast<std::int64_t>(batch_users.size());
    if (!scores.defined() || scores.dim() != 2 || scores.size(0) != b ||
        scores.size(1) != num_items)
      throw Error(fmt::format("model returned scores of shape [{}] for a batch of {} users and {} "
                              "items; expected [{}, {}]",
                              scores.defined() ? fmt::format("{}", fmt::join(scores.sizes(), ", "))
                                               : "undefined",
                              b, num_items, b, num_items));
    scores = scores.to(torch::kFloat).contiguous();
    if (!scores.isfinite().logical_or(scores.isinf()).all().item<bool>())
      throw Error("model produced NaN scores");
    float* s = scores.data_ptr<float>();
    for (std::int64_t r = 0; r < b; ++r) {
      float* row = s + r * num_items;
      const std::int32_t target = targets[begin + r];
      const float target_score = row[target];
      for (const std::int32_t seen : histories[r]) row[seen] = -std::numeric_limits<float>::infinity();
      row[target] = target_score;  // a re-consumed target stays rankable
      ranks[begin + r] = rank_of(row, num_items, target);
    }
  }
  EvalResult result;
  result.users = static_cast<std::int64_t>(users.size());
  for (const auto& family : options.metrics)
    for (const auto k : options.ks) {
      double sum = 0;
      for (const auto r : ranks) sum += metric_value(family, r, k);
      result.metrics[fmt::format("{}@{}", family, k)] = users.empty() ? 0.0 : sum / users.size();
    }
  if (options.keep_ranks) result.ranks = std::move(ranks);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace recrun::core
