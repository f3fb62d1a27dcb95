// recrun predict's top-K path at the seed study's scale (31k users by 6.8k items): users per
// second of predict::top_k with a trained Mult-VAE, beside the model's own score() time and
// beside ranking by a full sort of every row, all on the same model and users in one run.
//
//   build/bin/bench_predict [--users 31000] [--items 6800] [--per-user 30] [--topk 10]
//                           [--threads 2] [--batch 512]
#include <torch/torch.h>
#include <fmt/format.h>

#include <chrono>
#include <numeric>

#include "bench_args.hpp"
#include "core/plugin_loader.hpp"
#include "core/trainer.hpp"
#include "data/synth.hpp"
#include "predict/topk.hpp"
#include "recrun/registry.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::int64_t users = 31000, items = 6800, per_user = 30, topk = 10, batch = 512;
  int threads = 2;
  recrun::bench::for_each_flag(argc, argv, "bench_predict [--users 31000] [--items 6800] [--per-user 30] [--topk 10] [--threads 2] [--batch 512]", [&](const std::string& k, const std::string& value) {
    const auto v = [&] { return std::stoll(value); };
    if (k == "--users") users = v();
    else if (k == "--items") items = v();
    else if (k == "--per-user") per_user = v();
    else if (k == "--topk") topk = v();
    else if (k == "--threads") threads = static_cast<int>(v());
    else if (k == "--batch") batch = v();
    else return false;
    return true;
  });
  recrun::core::seed_and_threads(1, threads);
  recrun::data::SynthOptions so;
  so.users = users;
  so.items = items;
  so.interactions_per_user = static_cast<double>(per_user);
  const auto t_data = Clock::now();
  const recrun::Dataset data = recrun::data::synthesize(so).dataset;
  fmt::print("data: {} users, {} items, {} interactions (synthesized in {:.1f}s); {} threads\n",
             data.num_users(), data.num_items(), data.num_interactions(), since(t_data), threads);

  recrun::Registry registry;
  recrun::core::load_plugins(recrun::core::plugin_search_path({}), registry);
  const auto& info = registry.model("multivae");
  const recrun::Params params = recrun::resolve_params(info.params, {}, "model 'multivae'");
  auto model = info.make(params, recrun::ModelEnv{data, registry, 1, nullptr});
  // One epoch on everything: scoring cost does not depend on how well it is trained.
  std::vector<std::int64_t> all(static_cast<std::size_t>(data.num_users()));
  std::iota(all.begin(), all.end(), 0);
  const recrun::Interactions train(data.user_offsets, data.items, data.num_items());
  recrun::TrainContext ctx(data, train, 1, threads);
  const auto t_fit = Clock::now();
  model->fit_epoch(ctx);
  fmt::print("multivae: one training epoch in {:.1f}s\n", since(t_fit));

  // Scores every user in batches and hands each batch's scores to `use`.
  const auto score_all = [&](const auto& use) {
    torch::NoGradGuard ng;
    const auto t = Clock::now();
    for (std::size_t b = 0; b < all.size(); b += batch) {
      const std::size_t e = std::min(all.size(), b + static_cast<std::size_t>(batch));
      std::vector<std::int64_t> us(all.begin() + b, all.begin() + e);
      std::vector<std::span<const std::int32_t>> hs;
      for (auto u : us) hs.push_back(data.user_items(u));
      use(model->score(recrun::UserBatch(us, hs, data.num_items())));
    }
    return since(t);
  };
  // 1. The model's own scoring of every user (the floor for any top-K path).
  const double score_s = score_all([](const torch::Tensor& s) { (void)s.sum().item<float>(); });
  // 2. predict::top_k: scoring, seen and future exclusion, partial selection.
  recrun::predict::TopKOptions options;
  options.k = topk;
  options.batch_size = batch;
  options.exclude_future = recrun::predict::has_release_years(data);
  const auto t_topk = Clock::now();
  const auto lists = recrun::predict::top_k(*model, data, all, options);
  const double topk_s = since(t_topk);
  // 3. The naive baseline: the same scores ranked by a full descending sort of every row.
  const double sort_s = score_all([&](const torch::Tensor& s) {
    auto order = std::get<1>(s.sort(/*stable=*/true, 1, /*descending=*/true));
    (void)order.index({torch::indexing::Slice(), torch::indexing::Slice(0, topk)})
        .sum()
        .item<std::int64_t>();
  });
  const double n = static_cast<double>(all.size());
  fmt::print("\n| path | seconds | users/s | vs score() alone |\n| --- | --- | --- | --- |\n");
  fmt::print("| model.score() only | {:.2f} | {:.0f} | 1.00x |\n", score_s, n / score_s);
  fmt::print("| predict::top_k (k={}, seen + future excluded) | {:.2f} | {:.0f} | {:.2f}x |\n", topk,
             topk_s, n / topk_s, topk_s / score_s);
  fmt::print("| score() + full sort of every row | {:.2f} | {:.0f} | {:.2f}x |\n", sort_s, n / sort_s,
             sort_s / score_s);
  fmt::print("\n{} lists; top_k is {:.2f}x the time of the full-sort baseline\n", lists.size(),
             topk_s / sort_s);
  return 0;
}
