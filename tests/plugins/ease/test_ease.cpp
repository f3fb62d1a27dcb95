#include <gtest/gtest.h>

#include <random>

#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

// Random sparse interactions with some item co-occurrence structure.
Interactions random_interactions(std::int64_t users, std::int64_t items, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  for (std::int64_t u = 0; u < users; ++u) {
    const std::int64_t base = static_cast<std::int64_t>(rng() % items);
    std::vector<bool> seen(items, false);
    const int n = 3 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) {
      const auto i = static_cast<std::int32_t>((base + rng() % 9) % items);  // clustered
      if (!seen[i]) {
        seen[i] = true;
        flat.push_back(i);
      }
    }
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  return Interactions(offsets, flat, items);
}

// The textbook formula in float64 with a general inverse: B = I - P diag(1/diag(P)).
torch::Tensor dense_ease(const Interactions& train, double lambda) {
  std::vector<std::int64_t> all(train.num_users());
  std::iota(all.begin(), all.end(), 0);
  const auto x = train.dense_rows(all).to(torch::kFloat64);
  auto g = x.t().mm(x) + lambda * torch::eye(train.num_items(), torch::kFloat64);
  const auto p = torch::inverse(g);
  auto b = torch::eye(train.num_items(), torch::kFloat64) - p / p.diagonal().unsqueeze(0);
  b.diagonal().zero_();
  return b;
}

std::unique_ptr<Model> make_ease(double lambda, const std::string& dtype, std::int64_t chunk) {
  const auto& info = test::test_registry().model("ease");
  const Params p = resolve_params(
      info.params, {{"lambda", lambda}, {"dtype", dtype}, {"gram_chunk", chunk}}, "model 'ease'");
  static const Dataset empty;
  return info.make(p, ModelEnv{empty, test::test_registry(), 1});
}

torch::Tensor scores_of(Model& m, const Interactions& train) {
  std::vector<std::int64_t> users;
  std::vector<std::span<const std::int32_t>> hist;
  for (std::int64_t u = 0; u < train.num_users(); ++u) {
    users.push_back(u);
    hist.push_back(train.items(u));
  }
  torch::NoGradGuard ng;
  return m.score(UserBatch(users, hist, train.num_items()));
}

TEST(Ease, MatchesDenseInverseFormula) {
  const Interactions train = random_interactions(300, 60, 7);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 1);
  for (const std::string dtype : {"float64", "float32"}) {
    // A small chunk forces the chunked Gram accumulation through several passes.
    auto model = make_ease(25.0, dtype, 64);
    EXPECT_TRUE(model->fit_epoch(ctx).converged);
    Archive a;
    model->save(a);
    const auto b = a.read("weights").to(torch::kFloat64);
    const auto expected = dense_ease(train, 25.0);
    const double tol = dtype == "float64" ? 1e-6 : 1e-4;
    EXPECT_TRUE(torch::allclose(b, expected, tol, tol))
        << dtype << " max diff " << (b - expected).abs().max().item<double>();
    EXPECT_EQ(b.diagonal().abs().max().item<double>(), 0.0);
    // Scores are history @ B.
    std::vector<std::int64_t> all(train.num_users());
    std::iota(all.begin(), all.end(), 0);
    const auto s = scores_of(*model, train).to(torch::kFloat64);
    const auto s_expected = train.dense_rows(all).to(torch::kFloat64).mm(expected);
    EXPECT_TRUE(torch::allclose(s, s_expected, 1e-3, 1e-3));
  }
}

TEST(Ease, SaveLoadRoundTripGivesIdenticalScores) {
  const Interactions train = random_interactions(120, 40, 3);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 1);
  auto model = make_ease(10.0, "float32", 4096);
  model->fit_epoch(ctx);
  Archive a;
  model->save(a);
  const auto path = test::temp_dir("ease") / "m.ckpt";
  a.save_file(path);
  auto restored = make_ease(10.0, "float32", 4096);
  restored->load(Archive::load_file(path));
  EXPECT_TRUE(torch::equal(scores_of(*model, train), scores_of(*restored, train)));
}

}  // namespace
}  // namespace recrun
