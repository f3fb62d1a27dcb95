#include <torch/torch.h>
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <tuple>

#include "../../../plugins/models/ease/ease_route.hpp"
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

std::unique_ptr<Model> make_ease(double lambda, const std::string& dtype) {
  const auto& info = test::test_registry().model("ease");
  const Params p =
      resolve_params(info.params, {{"lambda", lambda}, {"dtype", dtype}}, "model 'ease'");
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

// Scores of users whose histories are the single items 0..n-1: the rows of B.
torch::Tensor b_rows(Model& m, std::int64_t n) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<std::int64_t> users;
  std::vector<std::span<const std::int32_t>> hist;
  for (std::int64_t j = 0; j < n; ++j) {
    users.push_back(j);
    hist.emplace_back(ids.data() + j, 1);
  }
  torch::NoGradGuard ng;
  return m.score(UserBatch(users, hist, n));
}

TEST(Ease, MatchesDenseInverseFormula) {
  const Interactions train = random_interactions(300, 60, 7);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 1);
  for (const std::string dtype : {"float64", "float32"}) {
    auto model = make_ease(25.0, dtype);
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

TEST(Ease, MatchesDenseFormulaAcrossTilesWithRepeatsAndTwoThreads) {
  // 150 items span three of the solve's 64-wide tiles; repeated items count once, as in
  // dense_rows; two threads share the Gram rows and the tiles.
  Interactions base = random_interactions(400, 150, 11);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  for (std::int64_t u = 0; u < base.num_users(); ++u) {
    for (const auto i : base.items(u)) flat.push_back(i);
    if (!base.items(u).empty() && u % 3 == 0) flat.push_back(base.items(u)[0]);  // re-consumed
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  const Interactions train(offsets, flat, 150);
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 2);
  auto model = make_ease(40.0, "float64");
  model->fit_epoch(ctx);
  at::set_num_threads(saved);
  Archive a;
  model->save(a);
  const auto b = a.read("weights").to(torch::kFloat64);
  const auto expected = dense_ease(train, 40.0);
  EXPECT_TRUE(torch::allclose(b, expected, 1e-6, 1e-6))
      << "max diff " << (b - expected).abs().max().item<double>();
  EXPECT_EQ(b.diagonal().abs().max().item<double>(), 0.0);
}

TEST(Ease, ZeroLambdaWithAnUnseenItemIsAClearError) {
  // Item 2 is never seen: X^T X has a zero row, and lambda = 0 leaves it singular.
  const Interactions train({0, 2, 4}, {0, 1, 1, 0}, 3);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 1);
  auto model = make_ease(0.0, "float32");
  try {
    model->fit_epoch(ctx);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not positive definite"), std::string::npos) << e.what();
  }
}

TEST(Ease, ManyMoreItemsThanUsersTakesTheWoodburyPathAndMatchesTheTextbookFormula) {
  // 40 users, 320 items (five tiles): the fit goes through the Woodbury identity (an m x m
  // factorisation and a rank-m product), with empty histories and re-consumed items, in both
  // precisions and on two threads.
  Interactions base = random_interactions(40, 320, 5);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  for (std::int64_t u = 0; u < base.num_users(); ++u) {
    if (u % 7 == 3) {  // nothing in training
      offsets.push_back(static_cast<std::int64_t>(flat.size()));
      continue;
    }
    for (const auto i : base.items(u)) flat.push_back(i);
    if (u % 4 == 0) flat.push_back(base.items(u)[0]);
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  const Interactions train(offsets, flat, 320);
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 2);
  for (const double lambda : {0.5, 30.0}) {
    const auto expected = dense_ease(train, lambda);
    for (const std::string dtype : {"float64", "float32"}) {
      auto model = make_ease(lambda, dtype);
      EXPECT_TRUE(model->fit_epoch(ctx).converged);
      Archive a;
      model->save(a);
      // B is never formed: the checkpoint holds the [m, n] factor, 34 x 320 floats, not 320^2.
      EXPECT_FALSE(a.contains("weights"));
      ASSERT_TRUE(a.contains("woodbury_w"));
      EXPECT_EQ(a.read("woodbury_w").sizes(), (std::vector<std::int64_t>{34, 320}));
      // The scores of a one-item history are that item's row of B.
      const auto b = b_rows(*model, 320).to(torch::kFloat64);
      const double tol = dtype == "float64" ? 2e-6 : 2e-4;
      EXPECT_TRUE(torch::allclose(b, expected, tol, tol))
          << dtype << " lambda " << lambda << " max diff "
          << (b - expected).abs().max().item<double>();
      EXPECT_LT(b.diagonal().abs().max().item<double>(), tol);
      std::vector<std::int64_t> all(train.num_users());
      std::iota(all.begin(), all.end(), 0);
      const auto s = scores_of(*model, train).to(torch::kFloat64);
      const auto s_expected = train.dense_rows(all).to(torch::kFloat64).mm(expected);
      EXPECT_TRUE(torch::allclose(s, s_expected, 10 * tol, 10 * tol))
          << "max diff " << (s - s_expected).abs().max().item<double>();
      // And a restored model scores the same.
      auto restored = make_ease(lambda, dtype);
      restored->load(a);
      EXPECT_TRUE(torch::equal(scores_of(*model, train), scores_of(*restored, train)));
    }
  }
  at::set_num_threads(saved);
}

TEST(Ease, TheRouteIsChosenByFitPlusScoringCost) {
  using ease::Route;
  const auto shape = [](double m, double n, double x) {
    return ease::Shape{.users = m, .items = n, .items_per_user = x, .scored_users = 2 * m};
  };
  // ML-1M: fewer items than users, the Gram route.
  EXPECT_EQ(ease::choose_route(shape(6040, 3416, 165.6), true), Route::gram);
  // The bundled MovieLens (610 users, 9,724 items) and the 8k x 27k shape: Woodbury.
  EXPECT_EQ(ease::choose_route(shape(610, 9724, 165), true), Route::woodbury);
  const auto big = shape(8000, 27000, 150);
  EXPECT_EQ(ease::choose_route(big, true), Route::woodbury);
  // There scoring through W costs more than the Woodbury fit: counting it is what matters.
  EXPECT_GT(ease::cost(Route::woodbury, big).score, ease::cost(Route::woodbury, big).fit);
  // A shape where the fit alone favours Woodbury, but scoring 2 m users through W outweighs it.
  auto middle = shape(2000, 4000, 50);
  EXPECT_LT(ease::cost(Route::woodbury, middle).fit, ease::cost(Route::gram, middle).fit);
  EXPECT_EQ(ease::choose_route(middle, true), Route::gram);
  middle.scored_users = 0;
  EXPECT_EQ(ease::choose_route(middle, true), Route::woodbury);
  // lambda = 0 (or no user) rules Woodbury out.
  EXPECT_EQ(ease::choose_route(shape(610, 9724, 165), false), Route::gram);
  EXPECT_EQ(ease::choose_route(shape(0, 9724, 0), true), Route::gram);
}

TEST(Ease, TheModelTakesTheChosenRouteAndBothScoreTheTextbookFormula) {
  // 200 users, 400 items: by fit cost alone Woodbury, with the scoring of 400 users the Gram
  // route; 40 x 320 (the test above) stays Woodbury. Both score x B for every user.
  static const Dataset empty;
  for (const auto& [users, items, weights] :
       {std::tuple{200, 400, true}, std::tuple{40, 320, false}}) {
    const Interactions train = random_interactions(users, items, 8);
    double distinct = 0;
    for (std::int64_t u = 0; u < train.num_users(); ++u) distinct += train.items(u).size();
    const ease::Shape s{.users = static_cast<double>(users),
                        .items = static_cast<double>(items),
                        .items_per_user = distinct / users,
                        .scored_users = 2.0 * users};
    EXPECT_EQ(ease::choose_route(s, true), weights ? ease::Route::gram : ease::Route::woodbury);
    if (weights) {
      auto fit_only = s;
      fit_only.scored_users = 0;
      EXPECT_EQ(ease::choose_route(fit_only, true), ease::Route::woodbury);
    }
    TrainContext ctx(empty, train, 1, 1);
    auto model = make_ease(20.0, "float32");
    model->fit_epoch(ctx);
    Archive a;
    model->save(a);
    EXPECT_EQ(a.contains("weights"), weights);
    EXPECT_EQ(a.contains("woodbury_w"), !weights);
    std::vector<std::int64_t> all(train.num_users());
    std::iota(all.begin(), all.end(), 0);
    const auto expected = train.dense_rows(all).to(torch::kFloat64).mm(dense_ease(train, 20.0));
    const auto got = scores_of(*model, train).to(torch::kFloat64);
    EXPECT_TRUE(torch::allclose(got, expected, 1e-3, 1e-3))
        << users << "x" << items << " max diff " << (got - expected).abs().max().item<double>();
  }
}

TEST(Ease, SaveLoadRoundTripGivesIdenticalScores) {
  const Interactions train = random_interactions(120, 40, 3);
  static const Dataset empty;
  TrainContext ctx(empty, train, 1, 1);
  auto model = make_ease(10.0, "float32");
  model->fit_epoch(ctx);
  Archive a;
  model->save(a);
  const auto path = test::temp_dir("ease") / "m.ckpt";
  a.save_file(path);
  auto restored = make_ease(10.0, "float32");
  restored->load(Archive::load_file(path));
  EXPECT_TRUE(torch::equal(scores_of(*model, train), scores_of(*restored, train)));
}

}  // namespace
}  // namespace recrun
