// ItemKNN: similarities and top-k against a hand computation, against a dense reference on random
// data (two threads, re-consumed items), the SDK conformance check, parameter bounds, and taste
// groups learned far beyond popularity.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "baseline_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;

// u0 {0, 1}, u1 {0, 1, 2}, u2 {1, 2}, u3 {2, 3}:
// users per item n = (2, 3, 3, 1); common users c01 = 2, c02 = 1, c12 = 2, c23 = 1, others 0.
Dataset four_items() { return dataset_of({{0, 1}, {0, 1, 2}, {1, 2}, {2, 3}}, 4); }

struct Table {
  torch::Tensor index, value;
};

Table fit_table(const Dataset& d, const std::map<std::string, ParamValue>& raw,
                std::unique_ptr<Model>* keep = nullptr) {
  auto m = make_model("itemknn", d, raw);
  const Interactions train = cf::all_interactions(d);
  TrainContext ctx(d, train, 1, 1);
  EXPECT_TRUE(m->fit_epoch(ctx).converged);
  Archive a;
  m->save(a);
  if (keep) *keep = std::move(m);
  return {a.read("neighbors"), a.read("similarity")};
}

TEST(ItemKnn, CosineWithShrinkAndTopOneMatchHandComputation) {
  const Dataset d = four_items();
  std::unique_ptr<Model> m;
  const Table t = fit_table(d, {{"shrink", 1.0}, {"neighbors", std::int64_t{1}}}, &m);
  const double s01 = 2 / (std::sqrt(2.0 * 3.0) + 1);
  const double s12 = 2 / (std::sqrt(3.0 * 3.0) + 1), s23 = 1 / (std::sqrt(3.0 * 1.0) + 1);
  // Row 0: {1: s01, 2: 1 / (sqrt(6) + 1)} -> 1. Row 1: {0: s01, 2: s12} -> 0 (s01 = 0.580 > s12 = 0.5).
  // Row 2: {0: 1 / (sqrt(6) + 1), 1: s12, 3: s23} -> 1. Row 3: {2: s23} -> 2.
  EXPECT_TRUE(t.index.equal(torch::tensor({{1}, {0}, {1}, {2}}, torch::kInt32))) << t.index;
  const std::vector<double> expected{s01, s01, s12, s23};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(t.value[i][0].item<double>(), expected[i], 1e-6) << i;
  // A user with history {0, 2, 0}: row 0 gives item 1 s01, row 2 gives item 1 s12; the
  // repeated 0 counts once.
  const std::vector<std::int32_t> h{0, 2, 0};
  const torch::Tensor s = m->score(UserBatch({0}, {h}, 4));
  EXPECT_NEAR(s[0][1].item<double>(), s01 + s12, 1e-6);
  EXPECT_EQ(s[0][0].item<double>(), 0.0);
  EXPECT_EQ(s[0][2].item<double>(), 0.0);
  EXPECT_EQ(s[0][3].item<double>(), 0.0);
}

TEST(ItemKnn, AsymmetricCosineIsAConditionalProbabilityAtAlphaOneAndLocalitySquares) {
  const Dataset d = four_items();
  const Table t = fit_table(d, {{"similarity", std::string("asymmetric_cosine")},
                                {"alpha", 1.0}, {"shrink", 0.0}, {"neighbors", std::int64_t{3}},
                                {"locality", 2.0}});
  // s(i, j) = (c_ij / n_i)^2. Row 1: c10 / 3 = c12 / 3 = 2/3 (tie: lower index first), item 3
  // shares no user and is absent (-1).
  EXPECT_TRUE(t.index[1].equal(torch::tensor({0, 2, -1}, torch::kInt32))) << t.index[1];
  EXPECT_NEAR(t.value[1][0].item<double>(), 4.0 / 9, 1e-6);
  EXPECT_NEAR(t.value[1][1].item<double>(), 4.0 / 9, 1e-6);
  EXPECT_EQ(t.value[1][2].item<double>(), 0.0);
  // Row 3 (n = 1): P(2 | 3) = 1. Row 2: P(1 | 2) = 2/3, P(0 | 2) = P(3 | 2) = 1/3.
  EXPECT_TRUE(t.index[3].equal(torch::tensor({2, -1, -1}, torch::kInt32)));
  EXPECT_NEAR(t.value[3][0].item<double>(), 1.0, 1e-6);
  EXPECT_TRUE(t.index[2].equal(torch::tensor({1, 0, 3}, torch::kInt32)));
  EXPECT_NEAR(t.value[2][0].item<double>(), 4.0 / 9, 1e-6);
  EXPECT_NEAR(t.value[2][2].item<double>(), 1.0 / 9, 1e-6);
}

TEST(ItemKnn, MatchesADenseReferenceOnRandomDataWithTwoThreads) {
  std::mt19937_64 rng(3);
  std::vector<std::vector<std::int32_t>> rows;
  std::vector<std::int32_t> first(40);
  for (int i = 0; i < 40; ++i) first[i] = i;
  rows.push_back(first);  // introduces the items in id order
  for (int u = 0; u < 120; ++u) {
    std::vector<std::int32_t> r;
    const int base = static_cast<int>(rng() % 40), n = 3 + static_cast<int>(rng() % 8);
    for (int t = 0; t < n; ++t) r.push_back(static_cast<std::int32_t>((base + rng() % 7) % 40));
    rows.push_back(r);  // repeats included: they count once
  }
  const Dataset d = dataset_of(rows, 40);
  const Interactions train = cf::all_interactions(d);
  const torch::Tensor x = train.dense_rows(all_users(train)).to(torch::kFloat64);
  const torch::Tensor c = x.t().mm(x), n = x.sum(0);
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  for (const double alpha : {0.5, 0.8}) {
    const Table t = fit_table(d, {{"similarity", std::string("asymmetric_cosine")},
                                  {"alpha", alpha}, {"shrink", 3.0},
                                  {"neighbors", std::int64_t{5}}});
    torch::Tensor s = c / (n.pow(alpha).unsqueeze(1) * n.pow(1 - alpha).unsqueeze(0) + 3.0);
    s.fill_diagonal_(-1);
    // The sixth is there to tell whether the fifth is tied with the first one left out.
    const auto [top, where] = s.topk(6, 1);
    EXPECT_TRUE(torch::allclose(t.value.to(torch::kFloat64), top.slice(1, 0, 5), 1e-5, 1e-6))
        << alpha;
    // Indices agree wherever the value is not tied with a neighbour's.
    for (int i = 0; i < 40; ++i)
      for (int m = 0; m < 5; ++m) {
        const double v = top[i][m].item<double>();
        const bool tied = (m > 0 && std::abs(top[i][m - 1].item<double>() - v) < 1e-9) ||
                          std::abs(top[i][m + 1].item<double>() - v) < 1e-9;
        if (!tied) {
          EXPECT_EQ(t.index[i][m].item<int>(), where[i][m].item<int>()) << i << "," << m;
        }
      }
  }
  at::set_num_threads(saved);
}

TEST(ItemKnn, PassesTheConformanceCheckBitwise) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o;
  o.epochs = 1;
  o.bitwise = true;  // each row is summed on its own, in the same order
  o.temp_dir = temp_dir("itemknn");
  for (const std::string sim : {"cosine", "asymmetric_cosine"}) {
    const cf::Report r = cf::check(
        [&] {
          return make_model("itemknn", data,
                            {{"similarity", sim}, {"neighbors", std::int64_t{7}}, {"alpha", 0.3}});
        },
        data, o);
    EXPECT_TRUE(r.ok()) << sim << "\n" << r.summary();
  }
}

TEST(ItemKnn, OutOfRangeParametersAreRefusedNamingThem) {
  const Dataset d = four_items();
  try {
    make_model("itemknn", d, {{"alpha", 1.5}});
    FAIL() << "alpha 1.5 accepted";
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("alpha"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_model("itemknn", d, {{"neighbors", std::int64_t{0}}}), ParamError);
  EXPECT_THROW(make_model("itemknn", d, {{"similarity", std::string("jaccard")}}), ParamError);
}

TEST(ItemKnnLearning, TasteGroupsFarBeyondPopularity) {
  const Dataset d = taste_groups();
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run_model("popularity", {}, d, split);
  const auto knn = run_model("itemknn", {{"neighbors", std::int64_t{30}}}, d, split);
  EXPECT_GT(knn.test.at("Hit@10"), pop.test.at("Hit@10") + 0.3);
  EXPECT_GT(knn.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10"));
}

}  // namespace
}  // namespace recrun::test
