// LightGCN: the sparse propagation against a dense computation of mean_k (D^-1/2 A D^-1/2)^k E0,
// scores from it, exact resume, the SDK conformance check, and taste groups learned far beyond
// popularity.
#include <gtest/gtest.h>

#include <numeric>

#include "../../../plugins/models/bpr/bpr.hpp"
#include "../itemknn/baseline_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;

// mean over k = 0..layers of A_hat^k E0, with A_hat the normalised bipartite adjacency of the
// 0/1 matrix x [m, n] (users first), dense in float64.
torch::Tensor dense_representation(const torch::Tensor& x, const torch::Tensor& e0, int layers) {
  const auto m = x.size(0), n = x.size(1);
  torch::Tensor a = torch::zeros({m + n, m + n}, torch::kFloat64);
  a.slice(0, 0, m).slice(1, m, m + n).copy_(x);
  a.slice(0, m, m + n).slice(1, 0, m).copy_(x.t());
  const torch::Tensor deg = a.sum(1);
  const torch::Tensor inv = torch::where(deg > 0, deg.rsqrt(), torch::zeros_like(deg));
  const torch::Tensor a_hat = inv.unsqueeze(1) * a * inv.unsqueeze(0);
  torch::Tensor layer = e0, sum = e0.clone();
  for (int k = 0; k < layers; ++k) {
    layer = a_hat.mm(layer);
    sum += layer;
  }
  return sum / (layers + 1);
}

TEST(LightGcn, PropagationMatchesADenseComputation) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const torch::Tensor x = train.dense_rows(all_users(train)).to(torch::kFloat64);
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  for (const std::int64_t layers : {1, 3}) {
    auto model = make_model("lightgcn", d, {{"dim", std::int64_t{8}}, {"layers", layers},
                                            {"batch_size", std::int64_t{512}}});
    TrainContext ctx(d, train, 1, 2);
    model->fit_epoch(ctx);
    Archive a;
    model->save(a);
    const torch::Tensor e0 = a.read("embedding").to(torch::kFloat64);
    const torch::Tensor rep = a.read("representation").to(torch::kFloat64);
    const torch::Tensor expected = dense_representation(x, e0, static_cast<int>(layers));
    EXPECT_TRUE(torch::allclose(rep, expected, 1e-5, 1e-6))
        << "layers " << layers << ": max diff " << (rep - expected).abs().max().item<double>();
    // Scores are user representation . item representation.
    const auto m = train.num_users();
    const torch::Tensor s = score_users(*model, train, {0, 5, 17}).to(torch::kFloat64);
    const torch::Tensor s_expected =
        expected.index_select(0, torch::tensor({0, 5, 17})).mm(expected.slice(0, m).t());
    EXPECT_TRUE(torch::allclose(s, s_expected, 1e-5, 1e-6));
  }
  at::set_num_threads(saved);
}

TEST(LightGcn, OneStepFollowsTheGradientOfTheDenseComputation) {
  // One batch holding every pair and plain SGD's first step: E0 moves by -lr times the gradient of
  // the BPR loss, which autograd computes here through the dense propagation, from the very same
  // triples (drawn as the plugin draws them). This checks the sparse product's backward.
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const double lr = 10.0, reg = 0.01;  // one step of a mean over ~3,000 triples: tiny gradients
  auto model = make_model("lightgcn", d,
                          {{"dim", std::int64_t{8}}, {"layers", std::int64_t{2}}, {"reg", reg},
                           {"batch_size", std::int64_t{1 << 20}}, {"optimizer", std::string("sgd")},
                           {"lr", lr}});
  Archive start;
  model->save(start);
  TrainContext ctx(d, train, 1, 2);
  std::mt19937_64 rng = ctx.rng();
  model->fit_epoch(ctx);
  Archive after;
  model->save(after);

  const auto p = bpr::Positives::of(train.num_users(), [&](std::int64_t u) { return train.items(u); });
  std::vector<std::int64_t> order(static_cast<std::size_t>(p.pairs()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const auto t = bpr::draw_triples(p, order, 1, d.num_items(), rng);
  const auto m = train.num_users();
  const torch::Tensor x = train.dense_rows(all_users(train)).to(torch::kFloat64);
  const torch::Tensor e0 = start.read("embedding").to(torch::kFloat64).requires_grad_();
  const torch::Tensor e = dense_representation(x, e0, 2);
  const torch::Tensor u = t.users, i = t.positives + m, j = t.negatives.squeeze(1) + m;
  const torch::Tensor pos = (e.index_select(0, u) * e.index_select(0, i)).sum(1);
  const torch::Tensor neg = (e.index_select(0, u) * e.index_select(0, j)).sum(1);
  const torch::Tensor sq = (e0.index_select(0, u).square().sum(1) + e0.index_select(0, i).square().sum(1) +
                            e0.index_select(0, j).square().sum(1)) / 2;
  const torch::Tensor loss = -torch::log_sigmoid(pos - neg).mean() + reg * sq.mean();
  loss.backward();
  const torch::Tensor expected = e0.detach() - lr * e0.grad();
  const torch::Tensor got = after.read("embedding").to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6))
      << "max diff " << (got - expected).abs().max().item<double>();
  EXPECT_GT((got - e0.detach()).abs().max().item<double>(), 5e-4) << "the step moved nothing";
}

TEST(LightGcn, ResumedTrainingContinuesExactly) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const std::map<std::string, ParamValue> raw{{"dim", std::int64_t{8}},
                                              {"batch_size", std::int64_t{256}}};
  auto straight = make_model("lightgcn", d, raw, 1);
  TrainContext ctx(d, train, 13, 2);
  straight->fit_epoch(ctx);
  Archive checkpoint;
  straight->save(checkpoint);
  const std::mt19937_64 rng = ctx.rng();
  recrun::conformance::begin_epoch(ctx, 1);
  const double loss = straight->fit_epoch(ctx).loss;

  auto resumed = make_model("lightgcn", d, raw, 77);
  resumed->load(checkpoint);
  TrainContext ctx2(d, train, 13, 2);
  ctx2.rng() = rng;
  recrun::conformance::begin_epoch(ctx2, 1);
  EXPECT_EQ(resumed->fit_epoch(ctx2).loss, loss);
  const auto users = all_users(train);
  EXPECT_TRUE(score_users(*resumed, train, users).equal(score_users(*straight, train, users)));
}

TEST(LightGcn, PassesTheConformanceCheck) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o;
  o.epochs = 2;
  o.temp_dir = temp_dir("lightgcn");
  auto seed = std::make_shared<std::uint64_t>(1);
  const cf::Report r = cf::check(
      [&] {
        return make_model("lightgcn", data,
                          {{"dim", std::int64_t{8}}, {"batch_size", std::int64_t{64}}}, (*seed)++);
      },
      data, o);
  EXPECT_TRUE(r.ok()) << r.summary();
}

TEST(LightGcnLearning, TasteGroupsFarBeyondPopularity) {
  const Dataset d = taste_groups();
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run_model("popularity", {}, d, split);
  const auto gcn = run_model("lightgcn",
                             {{"dim", std::int64_t{16}}, {"lr", 0.01}, {"batch_size", std::int64_t{256}},
                              {"epochs", std::int64_t{30}}, {"eval_every", std::int64_t{5}},
                              {"patience", std::int64_t{0}}},
                             d, split);
  EXPECT_GT(gcn.test.at("Hit@10"), pop.test.at("Hit@10") + 0.3);
  EXPECT_GT(gcn.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10"));
}

}  // namespace
}  // namespace recrun::test
