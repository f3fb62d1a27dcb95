// GRU4Rec: the cross-entropy and BPR-max losses against hand values, in-batch negatives against
// a loop over the batch, next-item batches, exact resume with sampled negatives and dropout, the
// SDK conformance check, and planted item chains learned far beyond popularity with either loss.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

#include "../../../plugins/models/gru4rec/gru4rec_net.hpp"
#include "../itemknn/baseline_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;
using gru4rec::Candidates;

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Two positions; the second one's last negative is left out (it is the target, say).
Candidates two_positions() {
  return {torch::tensor({1.0, -0.5}, torch::kFloat64),
          torch::tensor({{0.5, -1.0, 2.0}, {0.0, 1.5, 3.0}}, torch::kFloat64),
          torch::tensor({{true, true, true}, {true, true, false}})};
}

TEST(Gru4RecLoss, CrossEntropyMatchesHandValues) {
  const double p0 = -std::log(std::exp(1.0) / (std::exp(1.0) + std::exp(0.5) + std::exp(-1.0) +
                                               std::exp(2.0)));
  const double p1 = -std::log(std::exp(-0.5) / (std::exp(-0.5) + std::exp(0.0) + std::exp(1.5)));
  EXPECT_NEAR(gru4rec::ce_loss(two_positions()).item<double>(), (p0 + p1) / 2, 1e-12);
}

TEST(Gru4RecLoss, BprMaxMatchesHandValues) {
  // s = softmax of the kept negatives; loss = -log sum s_j sig(pos - neg_j) + bpreg sum s_j neg_j^2.
  const auto one = [](double pos, std::vector<double> neg, double bpreg) {
    double z = 0;
    for (const double n : neg) z += std::exp(n);
    double ranked = 0, reg = 0;
    for (const double n : neg) {
      ranked += std::exp(n) / z * sig(pos - n);
      reg += std::exp(n) / z * n * n;
    }
    return -std::log(ranked) + bpreg * reg;
  };
  for (const double bpreg : {0.0, 1.0}) {
    const double expected = (one(1.0, {0.5, -1.0, 2.0}, bpreg) + one(-0.5, {0.0, 1.5}, bpreg)) / 2;
    EXPECT_NEAR(gru4rec::bpr_max_loss(two_positions(), bpreg).item<double>(), expected, 1e-12)
        << bpreg;
  }
}

TEST(Gru4RecLoss, BprMaxLeavesOutPositionsWithoutNegativesAndStaysFinite) {
  Candidates c = two_positions();
  c.keep[1].fill_(false);
  c.pos.requires_grad_();
  const torch::Tensor loss = gru4rec::bpr_max_loss(c, 1.0);
  Candidates first{two_positions().pos.slice(0, 0, 1), two_positions().neg.slice(0, 0, 1),
                   two_positions().keep.slice(0, 0, 1)};
  EXPECT_NEAR(loss.item<double>(), gru4rec::bpr_max_loss(first, 1.0).item<double>(), 1e-12);
  loss.backward();
  EXPECT_TRUE(c.pos.grad().isfinite().all().item<bool>());
  EXPECT_EQ(c.pos.grad()[1].item<double>(), 0.0);
}

TEST(Gru4RecBatch, TargetsFollowInputsAndOnlyTheLastItemsAreKept) {
  const std::vector<std::int32_t> a{4, 5, 6, 7, 8}, b{1, 2};
  const std::vector<std::span<const std::int32_t>> h{a, b};
  const auto batch = gru4rec::next_item_batch(h, 3);  // last 4 items of a
  EXPECT_TRUE(batch.inputs.equal(torch::tensor({{6, 7, 8}, {2, 0, 0}}, torch::kInt64)));
  // Inputs are tokens (id + 1) of items 5, 6, 7 and 1; targets the ids of the next items.
  EXPECT_TRUE(batch.targets.equal(torch::tensor({{6, 7, 8}, {2, 0, 0}}, torch::kInt64)));
  EXPECT_TRUE(batch.valid.equal(torch::tensor({{true, true, true}, {true, false, false}})));
  EXPECT_EQ(batch.positions, 4);
}

TEST(Gru4RecBatch, InBatchNegativesAreTheOtherSequencesTargetsAtTheSameStep) {
  torch::manual_seed(2);
  gru4rec::NetOptions o;
  o.num_items = 12;
  o.hidden = 6;
  gru4rec::Gru4RecNet net(o);
  net->eval();
  const std::vector<std::int32_t> a{1, 2, 3, 4}, b{5, 2, 9}, c{7, 8, 3, 10, 11};
  const std::vector<std::span<const std::int32_t>> h{a, b, c};
  const auto batch = gru4rec::next_item_batch(h, 10);
  torch::NoGradGuard ng;
  const torch::Tensor hidden = net->forward(batch.inputs);
  const torch::Tensor sampled = torch::tensor({0, 3, 6}, torch::kInt64);
  const auto cand = net->candidates(hidden, batch, gru4rec::Negatives::batch_sampled, sampled);
  ASSERT_EQ(cand.neg.size(0), batch.positions);
  ASSERT_EQ(cand.neg.size(1), 3 + 3);
  const torch::Tensor w = net->item_weights();
  std::int64_t p = 0;
  for (std::int64_t r = 0; r < 3; ++r)
    for (std::int64_t t = 0; t < batch.inputs.size(1); ++t) {
      if (!batch.valid[r][t].item<bool>()) continue;
      const auto target = batch.targets[r][t].item<std::int64_t>();
      const auto score = [&](std::int64_t item) {
        return (hidden[r][t].dot(w[item]) + net->bias()[item]).item<double>();
      };
      EXPECT_NEAR(cand.pos[p].item<double>(), score(target), 1e-5);
      for (std::int64_t k = 0; k < 3; ++k) {
        const bool real = batch.valid[k][t].item<bool>();
        const auto other = batch.targets[k][t].item<std::int64_t>();
        EXPECT_EQ(cand.keep[p][k].item<bool>(), real && other != target) << r << "," << t << "," << k;
        if (real) {
          EXPECT_NEAR(cand.neg[p][k].item<double>(), score(other), 1e-5);
        }
      }
      for (std::int64_t s = 0; s < 3; ++s) {
        const auto item = sampled[s].item<std::int64_t>();
        EXPECT_EQ(cand.keep[p][3 + s].item<bool>(), item != target);
        EXPECT_NEAR(cand.neg[p][3 + s].item<double>(), score(item), 1e-5);
      }
      ++p;
    }
  EXPECT_EQ(p, batch.positions);
}

class Gru4RecPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    GenreChainSpec spec;
    spec.users = 120;
    spec.genres = 4;
    spec.items_per_genre = 10;
    spec.min_len = 4;
    spec.max_len = 30;
    dataset_ = genre_chain_dataset(spec);
    split_ = core::make_split(dataset_, {});
  }
  std::map<std::string, ParamValue> params(const std::string& loss, const std::string& negatives) const {
    return {{"hidden_units", std::int64_t{16}}, {"max_len", std::int64_t{20}},
            {"batch_size", std::int64_t{16}}, {"loss", loss}, {"negatives", negatives},
            {"num_negatives", std::int64_t{8}}, {"embedding_dropout", 0.1}, {"hidden_dropout", 0.1}};
  }
  Dataset dataset_;
  core::Split split_;
};

TEST_F(Gru4RecPlugin, ResumedTrainingContinuesExactly) {
  for (const auto& [loss, negatives] : std::vector<std::pair<std::string, std::string>>{
           {"bpr_max", "batch_sampled"}, {"ce", "all"}}) {
    auto straight = make_model("gru4rec", dataset_, params(loss, negatives), 1);
    TrainContext ctx(dataset_, split_.train, 13, 2);
    straight->fit_epoch(ctx);
    Archive checkpoint;
    straight->save(checkpoint);
    const torch::Tensor torch_rng = at::detail::getDefaultCPUGenerator().get_state();
    const std::mt19937_64 rng = ctx.rng();
    recrun::conformance::begin_epoch(ctx, 1);
    const double loss_value = straight->fit_epoch(ctx).loss;

    auto resumed = make_model("gru4rec", dataset_, params(loss, negatives), 77);
    resumed->load(checkpoint);
    auto generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(torch_rng);
    TrainContext ctx2(dataset_, split_.train, 13, 2);
    ctx2.rng() = rng;
    recrun::conformance::begin_epoch(ctx2, 1);
    EXPECT_EQ(resumed->fit_epoch(ctx2).loss, loss_value) << loss;
    const auto& users = split_.eval_users;
    EXPECT_TRUE(score_users(*resumed, split_.train, users).equal(score_users(*straight, split_.train, users)))
        << loss << ": optimizer state or generator was not restored";
  }
}

TEST_F(Gru4RecPlugin, EveryLossAndNegativeSourceLowersItsLoss) {
  for (const std::string loss : {"ce", "bpr_max"})
    for (const std::string negatives : {"all", "batch", "sampled", "batch_sampled"}) {
      auto p = params(loss, negatives);
      p["lr"] = 0.01;
      auto model = make_model("gru4rec", dataset_, p);
      TrainContext ctx(dataset_, split_.train, 14, 2);
      const EpochResult first = model->fit_epoch(ctx);
      EpochResult last;
      for (int e = 1; e < 5; ++e) {
        recrun::conformance::begin_epoch(ctx, e);
        last = model->fit_epoch(ctx);
      }
      EXPECT_TRUE(std::isfinite(first.loss)) << loss << "/" << negatives;
      EXPECT_LT(last.loss, first.loss) << loss << "/" << negatives;
    }
}

TEST(Gru4Rec, PassesTheConformanceCheck) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o;
  o.epochs = 2;
  o.temp_dir = temp_dir("gru4rec");
  auto seed = std::make_shared<std::uint64_t>(1);
  for (const std::string loss : {"ce", "bpr_max"}) {
    const cf::Report r = cf::check(
        [&] {
          return make_model("gru4rec", data,
                            {{"hidden_units", std::int64_t{8}}, {"max_len", std::int64_t{6}},
                             {"batch_size", std::int64_t{8}}, {"loss", loss},
                             {"negatives", std::string(loss == "ce" ? "all" : "batch_sampled")},
                             {"num_negatives", std::int64_t{5}}, {"tie_embeddings", loss == "ce"}},
                            (*seed)++);
        },
        data, o);
    EXPECT_TRUE(r.ok()) << loss << "\n" << r.summary();
  }
}

// 60 items on a ring; users walk i -> i + 1 (a random jump 10% of the time): the next item is
// almost a function of the last one, while popularity is flat.
Dataset chains(std::uint64_t seed) {
  constexpr int kItems = 60;
  std::mt19937_64 rng(seed);
  DatasetBuilder b;
  for (int i = 0; i < kItems; ++i) b.add_interaction("seed", std::to_string(i), i);
  for (int u = 0; u < 400; ++u) {
    int item = static_cast<int>(rng() % kItems);
    const int n = 8 + static_cast<int>(rng() % 13);
    for (int t = 0; t < n; ++t) {
      b.add_interaction("u" + std::to_string(u), std::to_string(item), t);
      item = rng() % 10 == 0 ? static_cast<int>(rng() % kItems) : (item + 1) % kItems;
    }
  }
  return b.build("chains", {}, "chains");
}

TEST(Gru4RecLearning, BothLossesLearnPlantedChainsFarBeyondPopularity) {
  const Dataset d = chains(5);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run_model("popularity", {}, d, split);
  for (const auto& [loss, negatives] : std::vector<std::pair<std::string, std::string>>{
           {"ce", "all"}, {"bpr_max", "batch_sampled"}}) {
    const auto r = run_model("gru4rec",
                             {{"loss", loss}, {"negatives", negatives},
                              {"num_negatives", std::int64_t{16}}, {"hidden_units", std::int64_t{32}},
                              {"max_len", std::int64_t{20}}, {"batch_size", std::int64_t{32}},
                              {"lr", 0.01}, {"epochs", std::int64_t{15}},
                              {"patience", std::int64_t{0}}},
                             d, split);
    EXPECT_GT(r.test.at("Hit@10"), pop.test.at("Hit@10") + 0.4) << loss;
    EXPECT_GT(r.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10")) << loss;
  }
}

}  // namespace
}  // namespace recrun::test
