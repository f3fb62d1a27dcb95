// iALS: one sweep against the closed-form weighted least-squares solution computed densely in
// float64 (item step and the user fold-in that scoring does, Cholesky and CG), a monotone
// objective, exact resume from a checkpoint, the SDK conformance check, and taste groups learned
// far beyond popularity.
#include <gtest/gtest.h>

#include <random>

#include "../itemknn/baseline_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;

Dataset random_rows(std::uint64_t seed, int users, int items) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::int32_t>> rows;
  std::vector<std::int32_t> first(static_cast<std::size_t>(items));
  for (int i = 0; i < items; ++i) first[i] = i;
  rows.push_back(first);
  for (int u = 1; u < users; ++u) {
    std::vector<std::int32_t> r;
    const int n = 2 + static_cast<int>(rng() % 6);
    for (int t = 0; t < n; ++t) r.push_back(static_cast<std::int32_t>(rng() % items));
    rows.push_back(r);  // with repeats: they count once
  }
  return dataset_of(rows, items);
}

// The closed-form argmin over each row x_r of
//   sum_c weight_rc (target_rc - x_r . y_c)^2 + reg_r |x_r|^2,
// weight = 1 + alpha0 and target = 1 / (1 + alpha0) where observed, weight = alpha0 and target 0
// elsewhere: the iALS objective written as the weighted least squares of Hu et al., solved
// densely. `obs` is the 0/1 matrix [rows, cols], `y` the fixed side's factors [cols, d].
torch::Tensor dense_solution(const torch::Tensor& obs, const torch::Tensor& y, double alpha0,
                             double reg, double nu) {
  const auto d = y.size(1);
  std::vector<torch::Tensor> out;
  for (std::int64_t r = 0; r < obs.size(0); ++r) {
    const torch::Tensor o = obs[r];
    const torch::Tensor weight = alpha0 + o;
    const torch::Tensor target = o / (1 + alpha0);
    const double reg_r = reg * std::pow(o.sum().item<double>() + alpha0 * obs.size(1), nu);
    const torch::Tensor a = y.t().mm(weight.unsqueeze(1) * y) + reg_r * torch::eye(d, torch::kFloat64);
    const torch::Tensor b = y.t().mv(weight * target);
    out.push_back(torch::linalg_solve(a, b.unsqueeze(1)).squeeze(1));
  }
  return torch::stack(out);
}

struct Fitted {
  std::unique_ptr<Model> model;
  torch::Tensor w, h;
};

Fitted fit(const Dataset& d, const std::map<std::string, ParamValue>& raw, int epochs) {
  Fitted f{make_model("ials", d, raw), {}, {}};
  const Interactions train = cf::all_interactions(d);
  TrainContext ctx(d, train, 1, 2);
  for (int e = 0; e < epochs; ++e) {
    recrun::conformance::begin_epoch(ctx, e);
    f.model->fit_epoch(ctx);
  }
  Archive a;
  f.model->save(a);
  f.w = a.read("user_factors").to(torch::kFloat64);
  f.h = a.read("item_factors").to(torch::kFloat64);
  return f;
}

TEST(Ials, OneSweepIsTheClosedFormLeastSquaresSolution) {
  const Dataset d = random_rows(5, 30, 12);
  const Interactions train = cf::all_interactions(d);
  const torch::Tensor x = train.dense_rows(all_users(train)).to(torch::kFloat64);
  for (const double nu : {1.0, 0.0}) {
    const double alpha0 = 0.3, reg = nu == 1.0 ? 0.02 : 0.5;
    Fitted f = fit(d, {{"dim", std::int64_t{4}}, {"alpha0", alpha0}, {"reg", reg},
                       {"reg_exponent", nu}, {"init_std", 1.0}},
                   1);
    // The epoch ended with the item step given W: H is its closed-form solution.
    const torch::Tensor h = dense_solution(x.t(), f.w, alpha0, reg, nu);
    EXPECT_TRUE(torch::allclose(f.h, h, 1e-4, 1e-5))
        << "nu " << nu << ": max diff " << (f.h - h).abs().max().item<double>();
    // Scoring solves each user from H and the history: scores = w*(H) . H.
    const torch::Tensor w = dense_solution(x, f.h, alpha0, reg, nu);
    const torch::Tensor s = score_users(*f.model, train, all_users(train)).to(torch::kFloat64);
    EXPECT_TRUE(torch::allclose(s, w.mm(f.h.t()), 1e-4, 1e-5))
        << "nu " << nu << ": max diff " << (s - w.mm(f.h.t())).abs().max().item<double>();
  }
}

TEST(Ials, ConjugateGradientWithDimStepsReachesTheSameSolution) {
  const Dataset d = random_rows(6, 30, 12);
  const Interactions train = cf::all_interactions(d);
  const torch::Tensor x = train.dense_rows(all_users(train)).to(torch::kFloat64);
  Fitted f = fit(d, {{"dim", std::int64_t{4}}, {"alpha0", 0.3}, {"reg", 0.02},
                     {"solver", std::string("cg")}, {"cg_steps", std::int64_t{8}},
                     {"init_std", 1.0}},
                 2);
  const torch::Tensor h = dense_solution(x.t(), f.w, 0.3, 0.02, 1.0);
  EXPECT_TRUE(torch::allclose(f.h, h, 1e-3, 1e-4)) << (f.h - h).abs().max().item<double>();
}

TEST(Ials, TheObjectiveNeverRisesAndResumeIsExact) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const std::map<std::string, ParamValue> raw{{"dim", std::int64_t{16}}, {"alpha0", 0.05},
                                              {"reg", 0.01}};
  auto model = make_model("ials", d, raw, 1);
  TrainContext ctx(d, train, 1, 2);
  double last = std::numeric_limits<double>::infinity();
  Archive after_two;
  for (int e = 0; e < 4; ++e) {
    recrun::conformance::begin_epoch(ctx, e);
    const double loss = model->fit_epoch(ctx).loss;
    EXPECT_LE(loss, last * (1 + 1e-6)) << "epoch " << e;  // each half-step is an exact argmin
    last = loss;
    if (e == 1) model->save(after_two);
  }
  auto resumed = make_model("ials", d, raw, 99);
  resumed->load(after_two);
  TrainContext ctx2(d, train, 1, 2);
  for (int e = 2; e < 4; ++e) {
    recrun::conformance::begin_epoch(ctx2, e);
    resumed->fit_epoch(ctx2);
  }
  Archive a, b;
  model->save(a);
  resumed->save(b);
  EXPECT_TRUE(a.read("user_factors").equal(b.read("user_factors")));
  EXPECT_TRUE(a.read("item_factors").equal(b.read("item_factors")));
}

TEST(Ials, PassesTheConformanceCheck) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o;
  o.epochs = 2;
  o.temp_dir = temp_dir("ials");
  auto seed = std::make_shared<std::uint64_t>(1);
  for (const std::string solver : {"cholesky", "cg"}) {
    const cf::Report r = cf::check(
        [&] {
          return make_model("ials", data, {{"dim", std::int64_t{8}}, {"solver", solver}},
                            (*seed)++);
        },
        data, o);
    EXPECT_TRUE(r.ok()) << solver << "\n" << r.summary();
  }
}

TEST(IalsLearning, TasteGroupsFarBeyondPopularity) {
  const Dataset d = taste_groups();
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run_model("popularity", {}, d, split);
  const auto ials = run_model("ials",
                              {{"dim", std::int64_t{16}}, {"alpha0", 0.05}, {"reg", 0.01},
                               {"epochs", std::int64_t{8}}, {"patience", std::int64_t{0}}},
                              d, split);
  EXPECT_GT(ials.test.at("Hit@10"), pop.test.at("Hit@10") + 0.3);
  EXPECT_GT(ials.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10"));
}

}  // namespace
}  // namespace recrun::test
