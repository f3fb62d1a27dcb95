// The evaluator's top-K lists (Coverage@K, ARP@K): the cost of evaluating with them against
// rank metrics alone, and partial selection (core::top_k: nth_element, then sorting the K
// chosen) against sorting each user's whole row, on the same random scores in the same run.
//
//   build/bin/bench_evaluator [--users 4000] [--items 6800] [--k 20] [--reps 3]
#include <torch/torch.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>

#include "bench_args.hpp"
#include "core/evaluator.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Scores fixed per (user, item), drawn once: the model costs nothing, so the evaluator is timed.
class TableScorer final : public recrun::Model {
 public:
  TableScorer(std::int64_t users, std::int64_t items) : table_(torch::rand({users, items})) {}
  recrun::EpochResult fit_epoch(recrun::TrainContext&) override { return recrun::EpochResult::done(); }
  torch::Tensor score(const recrun::UserBatch& batch) override {
    auto ids = torch::tensor(std::vector<std::int64_t>(batch.users().begin(), batch.users().end()));
    return table_.index_select(0, ids);
  }
  void save(recrun::Archive&) const override {}
  void load(const recrun::Archive&) override {}

 private:
  torch::Tensor table_;
};

}  // namespace

int main(int argc, char** argv) {
  std::int64_t users = 4000, items = 6800, k = 20, reps = 3;
  recrun::bench::for_each_flag(argc, argv, "bench_evaluator [--users 4000] [--items 6800] [--k 20] [--reps 3]", [&](const std::string& key, const std::string& value) {
    const auto v = [&] { return std::stoll(value); };
    if (key == "--users") users = v();
    else if (key == "--items") items = v();
    else if (key == "--k") k = v();
    else if (key == "--reps") reps = v();
    else return false;
    return true;
  });
  torch::manual_seed(1);
  at::set_num_threads(1);
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<std::int32_t> item(0, static_cast<std::int32_t>(items - 1));
  std::vector<std::int64_t> offsets{0}, ids;
  std::vector<std::int32_t> flat, targets;
  for (std::int64_t u = 0; u < users; ++u) {
    for (int j = 0; j < 30; ++j) flat.push_back(item(rng));
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
    ids.push_back(u);
    targets.push_back(item(rng));
  }
  const recrun::Interactions history(offsets, flat, items);
  TableScorer model(users, items);
  fmt::print("{} users x {} items, K = {}, best of {} repetitions, 1 thread\n", users, items, k,
             reps);

  const auto best_of = [&](auto&& f) {
    double best = std::numeric_limits<double>::infinity();
    for (std::int64_t r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      f();
      best = std::min(best, since(t0));
    }
    return best;
  };
  recrun::core::EvalOptions ranks;
  ranks.ks = {k};
  ranks.metrics = {"Hit", "NDCG", "MRR", "Recall", "Precision", "MAP"};
  recrun::core::EvalOptions lists = ranks;
  lists.metrics.push_back("Coverage");
  lists.metrics.push_back("ARP");
  lists.keep_per_user = true;
  const double t_ranks = best_of([&] { recrun::core::evaluate(model, history, ids, targets, ranks); });
  const double t_lists = best_of([&] { recrun::core::evaluate(model, history, ids, targets, lists); });
  fmt::print("evaluate, rank metrics only (baseline)   {:8.3f} s  {:9.0f} users/s\n", t_ranks,
             users / t_ranks);
  fmt::print("evaluate, + Coverage and ARP (top-K)     {:8.3f} s  {:9.0f} users/s  {:.2f}x the "
             "baseline's time\n",
             t_lists, users / t_lists, t_lists / t_ranks);

  // Selection alone, on the same rows: partial selection against a sort of the whole row.
  const torch::Tensor scores = model.score(recrun::UserBatch(
      ids, std::vector<std::span<const std::int32_t>>(users), items));
  const float* s = scores.data_ptr<float>();
  std::vector<std::int32_t> scratch, out;
  std::size_t checksum = 0;
  const double t_partial = best_of([&] {
    for (std::int64_t u = 0; u < users; ++u) {
      recrun::core::top_k(s + u * items, items, k, scratch, out);
      checksum += static_cast<std::size_t>(out[0]);
    }
  });
  std::vector<std::int32_t> order(items);
  const double t_sort = best_of([&] {
    for (std::int64_t u = 0; u < users; ++u) {
      const float* row = s + u * items;
      for (std::int64_t j = 0; j < items; ++j) order[j] = static_cast<std::int32_t>(j);
      std::sort(order.begin(), order.end(), [row](std::int32_t a, std::int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      checksum += static_cast<std::size_t>(order[0]);
    }
  });
  fmt::print("top-{} lists, full sort of each row (baseline) {:8.3f} s\n", k, t_sort);
  fmt::print("top-{} lists, partial selection (used)        {:8.3f} s  {:.1f}x faster\n", k,
             t_partial, t_sort / t_partial);
  fmt::print("(checksum {})\n", checksum % 1000);
  return 0;
}
