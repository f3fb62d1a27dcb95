// EASE fit on ML-1M-shaped data: the plugin's Cholesky solve against the plain inverse formula
// (B = I - P / diag(P) with P = inverse(G)), both on the same Gram matrix in the same run.
//
//   build/bin/bench_ease [--users 6040] [--items 3416] [--per-user 165] [--threads 2] [--reps 3]
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <random>

#include "core/plugin_loader.hpp"
#include "core/trainer.hpp"
#include "recrun/registry.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Popularity-skewed random histories (Zipf-like item draws), about users*per_user interactions.
recrun::Interactions synth(std::int64_t users, std::int64_t items, std::int64_t per_user) {
  std::mt19937_64 rng(1);
  std::vector<double> weights(items);
  for (std::int64_t i = 0; i < items; ++i) weights[i] = 1.0 / std::pow(i + 10.0, 0.9);
  std::discrete_distribution<std::int32_t> pick(weights.begin(), weights.end());
  std::geometric_distribution<std::int64_t> len(1.0 / per_user);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  std::vector<char> seen(items);
  for (std::int64_t u = 0; u < users; ++u) {
    std::fill(seen.begin(), seen.end(), 0);
    const std::int64_t n = std::min<std::int64_t>(items / 2, 20 + len(rng));
    for (std::int64_t k = 0; k < n; ++k) {
      const auto i = pick(rng);
      if (!seen[i]) { seen[i] = 1; flat.push_back(i); }
    }
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  return recrun::Interactions(offsets, flat, items);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t users = 6040, items = 3416, per_user = 165, reps = 3;
  int threads = 2;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string k = argv[a];
    const std::int64_t v = std::stoll(argv[a + 1]);
    if (k == "--users") users = v;
    else if (k == "--items") items = v;
    else if (k == "--per-user") per_user = v;
    else if (k == "--threads") threads = static_cast<int>(v);
    else if (k == "--reps") reps = v;
  }
  recrun::core::seed_and_threads(1, threads);
  const recrun::Interactions train = synth(users, items, per_user);
  fmt::print("data: {} users, {} items, {} interactions; {} threads\n", users, items, train.size(),
             threads);

  recrun::Registry registry;
  recrun::core::load_plugins(recrun::core::plugin_search_path({}), registry);
  const auto& info = registry.model("ease");
  const recrun::Dataset empty;
  recrun::TrainContext ctx(empty, train, 1, threads);
  const double lambda = 500.0;

  double best_plugin = 1e30, best_gram = 1e30, best_chol = 1e30, best_inv = 1e30;
  torch::Tensor b_plugin, b_inv;
  for (std::int64_t r = 0; r < reps; ++r) {
    // 1. The plugin end to end (Gram + Cholesky solve + B).
    auto params = recrun::resolve_params(info.params, {{"lambda", lambda}}, "ease");
    auto model = info.make(params, recrun::ModelEnv{empty, registry, 1});
    auto t = Clock::now();
    model->fit_epoch(ctx);
    best_plugin = std::min(best_plugin, since(t));
    recrun::Archive a;
    model->save(a);
    b_plugin = a.read("weights");

    // 2. The same Gram, then the solve both ways.
    std::vector<std::int64_t> all(users);
    std::iota(all.begin(), all.end(), 0);
    t = Clock::now();
    const auto x = train.dense_rows(all);
    auto g = x.t().mm(x);
    g.diagonal().add_(lambda);
    best_gram = std::min(best_gram, since(t));

    t = Clock::now();
    auto p = torch::cholesky_inverse(torch::linalg_cholesky(g));
    auto b = p / p.diagonal().neg().unsqueeze(0);
    b.diagonal().zero_();
    best_chol = std::min(best_chol, since(t));

    t = Clock::now();
    auto pi = torch::inverse(g);
    b_inv = torch::eye(items) - pi / pi.diagonal().unsqueeze(0);
    b_inv.diagonal().zero_();
    best_inv = std::min(best_inv, since(t));
  }
  fmt::print("ease plugin fit (Gram + Cholesky solve): {:.3f} s (best of {})\n", best_plugin, reps);
  fmt::print("  Gram X^T X:                            {:.3f} s\n", best_gram);
  fmt::print("  solve, Cholesky (potrf + potri):       {:.3f} s\n", best_chol);
  fmt::print("  solve, plain inverse (getrf + getri):  {:.3f} s\n", best_inv);
  fmt::print("  inverse / Cholesky solve time ratio:   {:.2f}x\n", best_inv / best_chol);
  fmt::print("  max |B_cholesky - B_inverse|:          {:.2e}\n",
             (b_plugin - b_inv).abs().max().item<double>());
  return 0;
}
