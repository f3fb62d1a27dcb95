// BPR-MF: the loss against hand values and an epoch's loss against an independent computation
// from the same triples, negatives never consumed by the user, exact resume, the SDK conformance
// check, and taste groups learned far beyond popularity.
#include <gtest/gtest.h>

#include <cmath>

#include "../../../plugins/models/bpr/bpr.hpp"
#include "../itemknn/baseline_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;

double softplus(double x) { return std::log1p(std::exp(x)); }  // -log sigmoid(-x)

TEST(BprLoss, MatchesHandValues) {
  const torch::Tensor pos = torch::tensor({2.0, -1.0}, torch::kFloat64);
  const torch::Tensor sq = torch::tensor({3.0, 5.0}, torch::kFloat64);
  // One negative each: -log sigmoid(2 - 1) and -log sigmoid(-1 - 0.5), mean, + 0.1 * mean(3, 5).
  const torch::Tensor one = torch::tensor({1.0, 0.5}, torch::kFloat64);
  EXPECT_NEAR(bpr::bpr_loss(pos, one, sq, 0.1).item<double>(),
              (softplus(-1.0) + softplus(1.5)) / 2 + 0.4, 1e-12);
  // Two negatives each: the mean over all four differences.
  const torch::Tensor two = torch::tensor({{1.0, 3.0}, {0.5, -2.0}}, torch::kFloat64);
  EXPECT_NEAR(bpr::bpr_loss(pos, two, sq, 0.0).item<double>(),
              (softplus(-1.0) + softplus(1.0) + softplus(1.5) + softplus(-1.0)) / 4, 1e-12);
}

TEST(BprSampling, NegativesAreNeverConsumedWhenTheUserLeavesRoom) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const auto p = bpr::Positives::of(train.num_users(), [&](std::int64_t u) { return train.items(u); });
  std::mt19937_64 rng(4);
  std::vector<std::int64_t> all(static_cast<std::size_t>(p.pairs()));
  std::iota(all.begin(), all.end(), 0);
  const auto t = bpr::draw_triples(p, all, 3, d.num_items(), rng);
  for (std::int64_t r = 0; r < p.pairs(); ++r) {
    const auto u = t.users[r].item<std::int64_t>();
    // The data set's first user consumed every item: nothing is left to draw from.
    if (p.offsets[u + 1] - p.offsets[u] > d.num_items() / 2) continue;
    ASSERT_TRUE(p.has(u, static_cast<std::int32_t>(t.positives[r].item<std::int64_t>())));
    for (int s = 0; s < 3; ++s)
      ASSERT_FALSE(p.has(u, static_cast<std::int32_t>(t.negatives[r][s].item<std::int64_t>())));
  }
}

TEST(Bpr, AnEpochsLossIsTheBprLossOfItsTriples) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const double reg = 0.01;
  auto model = make_model("bpr", d,
                          {{"dim", std::int64_t{8}}, {"reg", reg}, {"num_negatives", std::int64_t{2}},
                           {"batch_size", std::int64_t{1 << 20}}});  // one batch: the loss is
                                                                       // that of the start weights
  Archive start;
  model->save(start);
  TrainContext ctx(d, train, 9, 2);
  std::mt19937_64 rng = ctx.rng();
  const double reported = model->fit_epoch(ctx).loss;
  // The same triples, drawn as the plugin draws them, and the loss computed in double by hand.
  const auto p = bpr::Positives::of(train.num_users(), [&](std::int64_t u) { return train.items(u); });
  std::vector<std::int64_t> order(static_cast<std::size_t>(p.pairs()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const auto t = bpr::draw_triples(p, order, 2, d.num_items(), rng);
  const auto w = start.read("user_embedding").to(torch::kFloat64);
  const auto h = start.read("item_embedding").to(torch::kFloat64);
  const auto b = start.read("item_bias").to(torch::kFloat64);
  double sum = 0;
  const std::int64_t n = p.pairs();
  for (std::int64_t r = 0; r < n; ++r) {
    const auto u = t.users[r].item<std::int64_t>(), i = t.positives[r].item<std::int64_t>();
    const double xi = w[u].dot(h[i]).item<double>() + b[i].item<double>();
    double sq = w[u].square().sum().item<double>() + h[i].square().sum().item<double>() +
                std::pow(b[i].item<double>(), 2);
    for (int s = 0; s < 2; ++s) {
      const auto j = t.negatives[r][s].item<std::int64_t>();
      const double xj = w[u].dot(h[j]).item<double>() + b[j].item<double>();
      sum += softplus(-(xi - xj)) / 2;
      sq += (h[j].square().sum().item<double>() + std::pow(b[j].item<double>(), 2)) / 2;
    }
    sum += reg * sq;
  }
  EXPECT_NEAR(reported, sum / static_cast<double>(n), 1e-5);
}

TEST(Bpr, ResumedTrainingContinuesExactly) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const std::map<std::string, ParamValue> raw{{"dim", std::int64_t{8}},
                                              {"batch_size", std::int64_t{256}}};
  auto straight = make_model("bpr", d, raw, 1);
  TrainContext ctx(d, train, 13, 2);
  straight->fit_epoch(ctx);
  Archive checkpoint;
  straight->save(checkpoint);
  const std::mt19937_64 rng = ctx.rng();
  recrun::conformance::begin_epoch(ctx, 1);
  const double loss = straight->fit_epoch(ctx).loss;

  auto resumed = make_model("bpr", d, raw, 77);
  resumed->load(checkpoint);
  TrainContext ctx2(d, train, 13, 2);
  ctx2.rng() = rng;
  recrun::conformance::begin_epoch(ctx2, 1);
  EXPECT_EQ(resumed->fit_epoch(ctx2).loss, loss);
  const auto users = all_users(train);
  EXPECT_TRUE(score_users(*resumed, train, users).equal(score_users(*straight, train, users)))
      << "optimizer state or triples differ after the resume";
}

TEST(Bpr, PassesTheConformanceCheck) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o;
  o.epochs = 2;
  o.temp_dir = temp_dir("bpr");
  auto seed = std::make_shared<std::uint64_t>(1);
  const cf::Report r = cf::check(
      [&] {
        return make_model("bpr", data, {{"dim", std::int64_t{8}}, {"batch_size", std::int64_t{64}}},
                          (*seed)++);
      },
      data, o);
  EXPECT_TRUE(r.ok()) << r.summary();
}

TEST(BprLearning, TasteGroupsFarBeyondPopularity) {
  const Dataset d = taste_groups();
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run_model("popularity", {}, d, split);
  const auto bpr = run_model("bpr",
                             {{"dim", std::int64_t{16}}, {"lr", 0.01}, {"batch_size", std::int64_t{256}},
                              {"epochs", std::int64_t{30}}, {"eval_every", std::int64_t{5}},
                              {"patience", std::int64_t{0}}},
                             d, split);
  EXPECT_GT(bpr.test.at("Hit@10"), pop.test.at("Hit@10") + 0.3);
  EXPECT_GT(bpr.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10"));
}

}  // namespace
}  // namespace recrun::test
