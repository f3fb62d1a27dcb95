#include "core/evaluator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "recrun/distributed.hpp"
#include "recrun/error.hpp"
#include "recrun/params.hpp"

namespace recrun::core {

const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> known{"Hit",       "NDCG", "MRR",      "Recall",
                                              "Precision", "MAP",  "Coverage", "ARP"};
  return known;
}

bool needs_top_k(const std::string& family) { return family == "Coverage" || family == "ARP"; }

void validate(const EvalOptions& options) {
  const std::vector<std::string>& known = known_metrics();
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
  for (std::size_t i = 0; i < options.metrics.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (options.metrics[i] == options.metrics[j])
        throw ParamError(fmt::format("protocol.metrics: '{}' is listed twice", options.metrics[i]));
  for (std::size_t i = 0; i < options.ks.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (options.ks[i] == options.ks[j])
        throw ParamError(fmt::format("protocol.ks: cut-off {} is listed twice", options.ks[i]));
  if (options.batch_size < 1) throw ParamError("protocol.eval_batch_size must be >= 1");
}

void top_k(const float* s, std::int64_t num_items, std::int64_t k,
           std::vector<std::int32_t>& heap, std::vector<std::int32_t>& out) {
  // One pass keeping the k best so far in a heap whose front is the worst of them: an item
  // enters only when it beats that one, which after the first few hundred items is rare.
  const auto better = [s](std::int32_t a, std::int32_t b) {
    return s[a] > s[b] || (s[a] == s[b] && a < b);
  };
  const auto take = static_cast<std::size_t>(std::max<std::int64_t>(0, std::min(k, num_items)));
  heap.clear();
  constexpr float kSeen = -std::numeric_limits<float>::infinity();
  for (std::int64_t j = 0; j < num_items; ++j) {
    if (s[j] == kSeen) continue;
    const auto item = static_cast<std::int32_t>(j);
    if (heap.size() < take) {
      heap.push_back(item);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (take > 0 && better(item, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = item;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better);
  out.assign(heap.begin(), heap.end());
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
  if (family == "MRR" || family == "MAP") return 1.0 / (static_cast<double>(rank) + 1.0);
  if (family == "Precision") return 1.0 / static_cast<double>(k);
  if (needs_top_k(family))
    throw ParamError(fmt::format("{} is computed from top-K lists, not from a target's rank",
                                 family));
  throw ParamError(fmt::format("unknown metric '{}'", family));
}

namespace {

// Sums each rank's part of the per-user ranks and ARP values (zero outside its part) and its
// top-K item marks over the ranks, in one all-reduce; marks become "listed by any rank".
void reduce_over_ranks(Collective& group, std::vector<std::int64_t>& ranks,
                       std::vector<std::vector<double>>& arp,
                       std::vector<std::vector<char>>& listed) {
  std::int64_t size = static_cast<std::int64_t>(ranks.size());
  for (const auto& a : arp) size += static_cast<std::int64_t>(a.size());
  for (const auto& l : listed) size += static_cast<std::int64_t>(l.size());
  torch::Tensor buffer = torch::zeros({size}, torch::kFloat64);
  double* b = buffer.data_ptr<double>();
  for (const auto r : ranks) *b++ = static_cast<double>(r);
  for (const auto& a : arp) b = std::copy(a.begin(), a.end(), b);
  for (const auto& l : listed)
    for (const char c : l) *b++ = c;
  group.all_reduce_sum(buffer);
  const double* in = buffer.data_ptr<double>();
  for (auto& r : ranks) r = static_cast<std::int64_t>(std::llround(*in++));
  for (auto& a : arp)
    for (auto& v : a) v = *in++;
  for (auto& l : listed)
    for (auto& c : l) c = *in++ > 0 ? 1 : 0;
}

}  // namespace

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
  // Coverage and ARP need each user's top-K list: one list of the largest K, whose prefixes
  // are the lists of the smaller ones.
  bool want_coverage = false, want_arp = false;
  for (const auto& f : options.metrics) {
    want_coverage |= f == "Coverage";
    want_arp |= f == "ARP";
  }
  const bool want_lists = want_coverage || want_arp;
  const std::int64_t k_max = *std::max_element(options.ks.begin(), options.ks.end());
  std::vector<double> popularity;
  if (want_arp) {
    if (options.item_popularity) {
      if (static_cast<std::int64_t>(options.item_popularity->size()) != num_items)
        throw Error(fmt::format("evaluate: item popularity has {} entries for {} items",
                                options.item_popularity->size(), num_items));
      popularity = *options.item_popularity;
    } else {
      popularity.assign(num_items, 0.0);
      for (const auto i : history.flat_items()) popularity[i] += 1.0;
    }
  }
  // listed[k index][item]: whether the item is in anyone's top-k; arp[k index][user].
  std::vector<std::vector<char>> listed(want_coverage ? options.ks.size() : 0,
                                        std::vector<char>(num_items, 0));
  std::vector<std::vector<double>> arp(want_arp ? options.ks.size() : 0,
                                       std::vector<double>(users.size(), 0.0));
  std::vector<std::int32_t> scratch, list;
  // Data-parallel: each rank scores its contiguous part of the users; the zero-filled ranks,
  // ARP values and top-K item counts are summed over the ranks below, so every rank ends with
  // every user's values, in the same order as alone.
  Collective* group = collective();
  const bool sharded = group && group->world_size() > 1;
  const auto [first, last] =
      sharded ? shard_range(static_cast<std::int64_t>(users.size()), group->rank(),
                            group->world_size())
              : std::pair<std::int64_t, std::int64_t>{0, static_cast<std::int64_t>(users.size())};
  for (std::size_t begin = static_cast<std::size_t>(first); begin < static_cast<std::size_t>(last);
       begin += static_cast<std::size_t>(options.batch_size)) {
    const std::size_t end = std::min(static_cast<std::size_t>(last), begin + options.batch_size);
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
      if (!want_lists) continue;
      top_k(row, num_items, k_max, scratch, list);
      for (std::size_t ki = 0; ki < options.ks.size(); ++ki) {
        const auto n = std::min<std::size_t>(list.size(), static_cast<std::size_t>(options.ks[ki]));
        if (want_coverage)
          for (std::size_t j = 0; j < n; ++j) listed[ki][list[j]] = 1;
        if (want_arp && n > 0) {
          double sum = 0;
          for (std::size_t j = 0; j < n; ++j) sum += popularity[list[j]];
          arp[ki][begin + r] = sum / static_cast<double>(n);
        }
      }
    }
  }
  if (sharded) reduce_over_ranks(*group, ranks, arp, listed);
  EvalResult result;
  result.users = static_cast<std::int64_t>(users.size());
  const auto n_users = static_cast<double>(users.size());
  for (const auto& family : options.metrics)
    for (std::size_t ki = 0; ki < options.ks.size(); ++ki) {
      const std::int64_t k = options.ks[ki];
      const std::string name = fmt::format("{}@{}", family, k);
      if (family == "Coverage") {
        const auto covered = std::count(listed[ki].begin(), listed[ki].end(), char{1});
        result.metrics[name] =
            num_items == 0 ? 0.0 : static_cast<double>(covered) / static_cast<double>(num_items);
        continue;
      }
      std::vector<double> values;
      if (family == "ARP") {
        values = std::move(arp[ki]);
      } else {
        values.reserve(ranks.size());
        for (const auto r : ranks) values.push_back(metric_value(family, r, k));
      }
      double sum = 0;
      for (const auto v : values) sum += v;
      result.metrics[name] = users.empty() ? 0.0 : sum / n_users;
      if (options.keep_per_user) result.per_user[name] = std::move(values);
    }
  if (options.keep_ranks) result.ranks = std::move(ranks);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace recrun::core
