// SASRec: causal masking, the four losses against hand-computed values, sampled losses that
// never build [positions, items] logits, batch-independent scoring, checkpoint round trips
// (optimizer included), parameter errors, feature fusion, and learning planted item chains far
// beyond popularity.
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "../../../plugins/models/sasrec/sasrec_net.hpp"
#include "../bert4rec/bert4rec_support.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/conformance.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"

namespace recrun::test {
namespace {

using sasrec::NetOptions;
using sasrec::SasrecNet;

NetOptions small_net(std::int64_t num_items) {
  NetOptions o;
  o.num_items = num_items;
  o.hidden = 16;
  o.heads = 2;
  o.layers = 2;
  o.max_len = 12;
  o.dropout = 0.2;
  return o;
}

// --- the network ---------------------------------------------------------------------------------

TEST(SasrecNet, APositionNeverSeesLaterItems) {
  torch::manual_seed(5);
  for (const bool norm_first : {true, false}) {
    NetOptions o = small_net(30);
    o.norm_first = norm_first;
    SasrecNet net(o);
    net->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor lengths = torch::tensor({12, 7, 3}, torch::kInt64);
    const torch::Tensor valid = sasrec::SasrecNetImpl::valid_mask(torch::zeros({3, 12}), lengths);
    const torch::Tensor tokens =
        torch::randint(1, 31, {3, 12}, torch::kInt64).masked_fill(valid.logical_not(), 0);
    const torch::Tensor h = net->hidden_all(tokens, lengths);
    for (std::int64_t p = 0; p < 11; ++p) {
      // Change every item after column p (padding stays padding): columns 0..p are unchanged.
      const torch::Tensor later = torch::arange(12).gt(p).unsqueeze(0).logical_and(valid);
      const torch::Tensor changed = torch::where(later, tokens % 30 + 1, tokens);  // all differ
      const torch::Tensor h2 = net->hidden_all(changed, lengths);
      const torch::Tensor upto = h.narrow(1, 0, p + 1), upto2 = h2.narrow(1, 0, p + 1);
      const torch::Tensor real = valid.narrow(1, 0, p + 1).unsqueeze(-1).expand_as(upto);
      EXPECT_TRUE(upto.masked_select(real).equal(upto2.masked_select(real)))
          << "column <= " << p << " changed (norm_first " << norm_first << ")";
      // ... while the later columns do change.
      if (p < 6) EXPECT_FALSE(h.narrow(1, p + 1, 1)[0].equal(h2.narrow(1, p + 1, 1)[0]));
    }
    // The last-position read-out (last block for one row only) agrees with the full pass.
    const torch::Tensor last = net->hidden_last(tokens, lengths);
    const torch::Tensor full =
        h.gather(1, (lengths - 1).view({3, 1, 1}).expand({3, 1, 16})).squeeze(1);
    EXPECT_TRUE(torch::allclose(last, full, 1e-5, 1e-5));
  }
}

TEST(SasrecNet, ActivationOptionDefaultsToGeluAndSwitchesToRelu) {
  EXPECT_EQ(TransformerOptions(8, 2).activation(), Activation::gelu) << "BERT4Rec relies on it";
  torch::manual_seed(1);
  TransformerBlock gelu(TransformerOptions(8, 2).dropout(0).attention_dropout(0));
  TransformerBlock relu(
      TransformerOptions(8, 2).dropout(0).attention_dropout(0).activation(Activation::relu));
  {
    torch::NoGradGuard no_grad;
    const auto src = gelu->named_parameters();
    for (auto& p : relu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const torch::Tensor x = torch::randn({2, 5, 8});
  const torch::Tensor bias = torch::zeros({2, 1, 1, 5});
  EXPECT_FALSE(torch::allclose(gelu->forward(x, x, bias), relu->forward(x, x, bias)));
}

TEST(SasrecNet, NextItemBatchShiftsTargetsByOne) {
  const std::vector<std::int32_t> a{4, 5, 6, 7, 8}, b{1, 2};
  const std::vector<std::span<const std::int32_t>> h{a, b};
  const auto batch = sasrec::next_item_batch(h, /*max_len=*/3);  // last 4 items of a
  EXPECT_TRUE(batch.lengths.equal(torch::tensor({3, 1}, torch::kInt64)));
  EXPECT_TRUE(batch.inputs.equal(torch::tensor({{6, 7, 8}, {2, 0, 0}}, torch::kInt64)));
  EXPECT_TRUE(batch.targets.masked_select(batch.valid).equal(
      torch::tensor({6, 7, 8, 2}, torch::kInt64)));
  EXPECT_EQ(batch.positions, 4);
}

// --- losses on fixed embeddings ------------------------------------------------------------------

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct Tiny {
  // 5 items in 2 dimensions; one row, two positions, both real.
  torch::Tensor items = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}, {-1.0f, 0.5f},
                                       {0.5f, -2.0f}});
  torch::Tensor h = torch::tensor({{{0.5f, -1.0f}, {2.0f, 0.25f}}});  // [1, 2, 2]
  torch::Tensor valid = torch::ones({1, 2}, torch::kBool);
  torch::Tensor targets = torch::tensor({{2, 0}}, torch::kInt64);
  // Two negatives per position; at position 1 the second negative is the target (left out).
  torch::Tensor negatives = torch::tensor({{{3, 4}, {1, 0}}}, torch::kInt64);
  double dot(int t, int item) const {
    return h[0][t][0].item<double>() * items[item][0].item<double>() +
           h[0][t][1].item<double>() * items[item][1].item<double>();
  }
};

TEST(SasrecLoss, ScoresAreDotProductsAndCollisionsAreLeftOut) {
  const Tiny c;
  const auto s = sasrec::score_candidates(c.h, c.valid, c.targets, c.negatives, c.items);
  ASSERT_EQ(s.positive.sizes(), (std::vector<std::int64_t>{2}));
  ASSERT_EQ(s.negative.sizes(), (std::vector<std::int64_t>{2, 2}));
  EXPECT_NEAR(s.positive[0].item<double>(), c.dot(0, 2), 1e-6);  // -0.5
  EXPECT_NEAR(s.positive[1].item<double>(), c.dot(1, 0), 1e-6);  // 2
  EXPECT_NEAR(s.negative[0][1].item<double>(), c.dot(0, 4), 1e-6);  // 2.25
  EXPECT_TRUE(s.keep.equal(torch::tensor({{true, true}, {true, false}})));
}

TEST(SasrecLoss, BceMatchesHandComputation) {
  const Tiny c;
  const auto s = sasrec::score_candidates(c.h, c.valid, c.targets, c.negatives, c.items);
  const double p0 = -std::log(sig(c.dot(0, 2))) - std::log(1 - sig(c.dot(0, 3))) -
                    std::log(1 - sig(c.dot(0, 4)));
  const double p1 = -std::log(sig(c.dot(1, 0))) - std::log(1 - sig(c.dot(1, 1)));
  EXPECT_NEAR(sasrec::bce_loss(s).item<double>(), (p0 + p1) / 2, 1e-5);
}

TEST(SasrecLoss, GbceBetaAndLossMatchThePaper) {
  // alpha = k / (N - 1) = 2 / 4; beta = alpha (t (1 - 1/alpha) + 1/alpha) = 0.5 (0.75 (-1) + 2).
  EXPECT_DOUBLE_EQ(sasrec::gbce_beta(2, 5, 0.75), 0.625);
  EXPECT_DOUBLE_EQ(sasrec::gbce_beta(2, 5, 0.0), 1.0);   // plain BCE
  EXPECT_DOUBLE_EQ(sasrec::gbce_beta(2, 5, 1.0), 0.5);   // beta = alpha
  const Tiny c;
  const auto s = sasrec::score_candidates(c.h, c.valid, c.targets, c.negatives, c.items);
  const double beta = 0.625;
  const double p0 = -std::log(std::pow(sig(c.dot(0, 2)), beta)) -
                    std::log(1 - sig(c.dot(0, 3))) - std::log(1 - sig(c.dot(0, 4)));
  const double p1 = -std::log(std::pow(sig(c.dot(1, 0)), beta)) - std::log(1 - sig(c.dot(1, 1)));
  EXPECT_NEAR(sasrec::gbce_loss(s, beta).item<double>(), (p0 + p1) / 2, 1e-5);
}

TEST(SasrecLoss, SampledSoftmaxMatchesHandComputationWithAndWithoutLogQ) {
  const Tiny c;
  const auto s = sasrec::score_candidates(c.h, c.valid, c.targets, c.negatives, c.items);
  const auto nll = [](double pos, std::vector<double> negs) {
    double z = std::exp(pos);
    for (const double n : negs) z += std::exp(n);
    return -std::log(std::exp(pos) / z);
  };
  const double plain = (nll(c.dot(0, 2), {c.dot(0, 3), c.dot(0, 4)}) +
                        nll(c.dot(1, 0), {c.dot(1, 1)})) / 2;
  EXPECT_NEAR(sasrec::sampled_softmax_loss(s).item<double>(), plain, 1e-5);
  const std::vector<double> q{0.1, 0.2, 0.3, 0.25, 0.15};
  torch::Tensor log_q = torch::empty({5});
  for (int i = 0; i < 5; ++i) log_q[i] = std::log(q[i]);
  const auto corr = [&](int t, int item) { return c.dot(t, item) - std::log(q[item]); };
  const double corrected =
      (nll(corr(0, 2), {corr(0, 3), corr(0, 4)}) + nll(corr(1, 0), {corr(1, 1)})) / 2;
  EXPECT_NEAR(sasrec::sampled_softmax_loss(s, log_q).item<double>(), corrected, 1e-5);
}

TEST(SasrecLoss, FullCrossEntropyMatchesHandComputation) {
  const Tiny c;
  double expected = 0;
  for (int t = 0; t < 2; ++t) {
    double z = 0;
    for (int i = 0; i < 5; ++i) z += std::exp(c.dot(t, i));
    expected += -std::log(std::exp(c.dot(t, c.targets[0][t].item<int>())) / z);
  }
  EXPECT_NEAR(sasrec::full_ce_loss(c.h, c.valid, c.targets, c.items).item<double>(), expected / 2,
              1e-5);
}

TEST(SasrecLoss, SharedNegativesEqualTheSameDrawPerPosition) {
  torch::manual_seed(2);
  const torch::Tensor items = torch::randn({50, 8});
  const torch::Tensor h = torch::randn({3, 6, 8});
  const torch::Tensor lengths = torch::tensor({6, 2, 4}, torch::kInt64);
  const torch::Tensor valid = sasrec::SasrecNetImpl::valid_mask(h.select(2, 0), lengths);
  const torch::Tensor targets = torch::randint(0, 50, {3, 6}, torch::kInt64);
  const torch::Tensor shared = torch::randint(0, 50, {3, 7}, torch::kInt64);
  const auto a = sasrec::score_candidates(h, valid, targets, shared, items);
  const auto b = sasrec::score_candidates(h, valid, targets,
                                          shared.unsqueeze(1).expand({3, 6, 7}).contiguous(), items);
  EXPECT_EQ(a.negative.size(0), 12);
  EXPECT_TRUE(torch::allclose(a.negative, b.negative, 1e-5, 1e-5));
  EXPECT_TRUE(a.keep.equal(b.keep));
  EXPECT_NEAR(sasrec::bce_loss(a).item<double>(), sasrec::bce_loss(b).item<double>(), 1e-5);
}

// Wraps LibTorch's CPU allocator and records the largest single allocation.
class LargestAllocation final : public c10::Allocator {
 public:
  LargestAllocation() : base_(c10::GetCPUAllocator()) { c10::SetCPUAllocator(this, kPriority); }
  ~LargestAllocation() override { c10::SetCPUAllocator(base_, kPriority); }
  c10::DataPtr allocate(std::size_t n) const override {
    std::size_t seen = largest_.load();
    while (n > seen && !largest_.compare_exchange_weak(seen, n)) {
    }
    return base_->allocate(n);
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_->raw_deleter(); }
  std::size_t largest() const { return largest_.load(); }

 private:
  static constexpr std::uint8_t kPriority = 200;
  c10::Allocator* base_;
  mutable std::atomic<std::size_t> largest_{0};
};

TEST(SasrecLoss, NoLossBuildsFullLogitsOnA200kCatalogue) {
  torch::manual_seed(3);
  constexpr std::int64_t kItems = 200'000;
  NetOptions o = small_net(kItems);
  o.layers = 1;
  o.max_len = 50;
  SasrecNet net(o);
  net->train();
  std::vector<std::vector<std::int32_t>> raw(2, std::vector<std::int32_t>(51));
  for (auto& r : raw)
    for (auto& i : r) i = static_cast<std::int32_t>(torch::randint(0, kItems, {1}).item<int>());
  const std::vector<std::span<const std::int32_t>> histories{raw[0], raw[1]};
  const auto batch = sasrec::next_item_batch(histories, o.max_len);
  ASSERT_EQ(batch.positions, 100);
  const std::size_t full_logits = 100 * kItems * sizeof(float);  // 80 MB
  const std::size_t table = (kItems + 1) * 16 * sizeof(float);    // 12.8 MB (its gradient)
  const sasrec::NegativeSampler uniform(kItems);
  for (const auto loss : {sasrec::Loss::bce, sasrec::Loss::sampled_softmax, sasrec::Loss::gbce,
                          sasrec::Loss::ce}) {
    for (const auto sharing : {sasrec::Sharing::position, sasrec::Sharing::sequence}) {
      // ce goes 10 positions at a time: [10, items] logits (8 MB), below the table's gradient.
      sasrec::LossSpec spec{.loss = loss, .negatives = 64, .sharing = sharing, .ce_chunk = 10};
      net->zero_grad();
      std::size_t largest = 0;
      {
        LargestAllocation probe;
        net->loss(batch, spec, uniform).backward();
        largest = probe.largest();
      }
      EXPECT_LE(largest, table + (1 << 20))
          << "loss " << static_cast<int>(loss) << " allocated " << largest
          << " bytes at once; full logits would be " << full_logits;
    }
  }
}

// --- the plugin ----------------------------------------------------------------------------------

class SasrecPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    GenreChainSpec spec;
    spec.users = 120;
    spec.genres = 4;
    spec.items_per_genre = 10;
    spec.min_len = 4;
    spec.max_len = 30;  // longer than max_len below: some histories are truncated
    dataset_ = genre_chain_dataset(spec);
    split_ = core::make_split(dataset_, {});
  }
  std::map<std::string, ParamValue> params(const std::string& loss = "ce") const {
    return {{"hidden_units", std::int64_t{32}}, {"num_heads", std::int64_t{2}},
            {"max_len", std::int64_t{20}},      {"batch_size", std::int64_t{16}},
            {"features", std::vector<std::string>{"genre", "year"}},
            {"fusion", std::string("gate")},    {"loss", loss}};
  }
  torch::Tensor score(Model& model, const std::vector<std::int64_t>& users) const {
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto u : users) histories.push_back(split_.train.items(u));
    return model.score(UserBatch(users, histories, dataset_.num_items()));
  }
  Dataset dataset_;
  core::Split split_;
};

TEST_F(SasrecPlugin, ScoresDoNotDependOnBatchComposition) {
  auto model = make_model("sasrec", dataset_, params());
  TrainContext ctx(dataset_, split_.train, 11, 2);
  model->fit_epoch(ctx);
  const std::vector<std::int64_t>& users = split_.eval_users;
  const torch::Tensor together = score(*model, users);
  ASSERT_EQ(together.size(0), static_cast<std::int64_t>(users.size()));
  ASSERT_EQ(together.size(1), dataset_.num_items());
  EXPECT_TRUE(together.isfinite().all().item<bool>());
  const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::allclose(a, b, /*rtol=*/1e-5, /*atol=*/1e-5);
  };
  for (std::size_t i = 0; i < users.size(); i += 7) {
    EXPECT_TRUE(same(score(*model, {users[i]})[0], together[i])) << "user " << users[i];
    const torch::Tensor trio = score(*model, {users[i], users.back(), users.front()});
    EXPECT_TRUE(same(trio[0], together[i])) << "user " << users[i] << " in a trio";
  }
  std::vector<std::int64_t> reversed(users.rbegin(), users.rend());
  EXPECT_TRUE(same(score(*model, reversed).flip({0}), together));
  EXPECT_TRUE(score(*model, users).equal(together));
}

TEST_F(SasrecPlugin, CeChunkChangesTheMemoryNotTheTraining) {
  // Chunks of 7 positions against automatic sizing (all of a batch's positions at once here):
  // the same losses and weights to float rounding, in fp32 and in bf16.
  for (const std::string precision : {"fp32", "bf16"}) {
    std::vector<torch::Tensor> scores;
    std::vector<double> losses;
    for (const std::int64_t chunk : {0, 7}) {
      auto p = params("ce");
      p["ce_chunk"] = chunk;
      p["precision"] = precision;
      auto model = make_model("sasrec", dataset_, p, 5);
      TrainContext ctx(dataset_, split_.train, 15, 2);
      losses.push_back(model->fit_epoch(ctx).loss);
      scores.push_back(score(*model, split_.eval_users));
    }
    // bf16 logits carry 8 bits: one unit in the last place is 0.03 at scores of 4 to 8.
    const double tol = precision == "fp32" ? 1e-4 : 6e-2;
    EXPECT_NEAR(losses[0], losses[1], tol * losses[0]) << precision;
    EXPECT_TRUE(torch::allclose(scores[0], scores[1], tol, tol))
        << precision << ": scores differ by " << (scores[0] - scores[1]).abs().max().item<double>();
  }
}

TEST_F(SasrecPlugin, SaveLoadRoundTripGivesIdenticalScores) {
  for (const std::string loss : {"ce", "gbce"}) {
    auto model = make_model("sasrec", dataset_, params(loss), 1);
    TrainContext ctx(dataset_, split_.train, 12, 2);
    model->fit_epoch(ctx);
    Archive archive;
    model->save(archive);
    const auto file = temp_dir("sasrec") / "m.ckpt";
    archive.save_file(file);
    auto other = make_model("sasrec", dataset_, params(loss), 99);
    const auto& users = split_.eval_users;
    EXPECT_FALSE(score(*other, users).equal(score(*model, users)));
    other->load(Archive::load_file(file));
    EXPECT_TRUE(score(*other, users).equal(score(*model, users))) << loss;
  }
}

TEST_F(SasrecPlugin, ResumedTrainingContinuesExactlyWithSampledNegatives) {
  for (const std::string loss : {"bce", "sampled_softmax"}) {
    auto straight = make_model("sasrec", dataset_, params(loss), 1);
    TrainContext ctx(dataset_, split_.train, 13, 2);
    straight->fit_epoch(ctx);
    Archive checkpoint;
    straight->save(checkpoint);
    const torch::Tensor torch_rng = at::detail::getDefaultCPUGenerator().get_state();
    const std::mt19937_64 rng = ctx.rng();
    recrun::conformance::begin_epoch(ctx, 1);
    const double loss_value = straight->fit_epoch(ctx).loss;

    auto resumed = make_model("sasrec", dataset_, params(loss), 77);
    resumed->load(checkpoint);
    auto generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(torch_rng);
    TrainContext ctx2(dataset_, split_.train, 13, 2);
    ctx2.rng() = rng;
    recrun::conformance::begin_epoch(ctx2, 1);
    EXPECT_EQ(resumed->fit_epoch(ctx2).loss, loss_value) << loss;
    const auto& users = split_.eval_users;
    EXPECT_TRUE(score(*resumed, users).equal(score(*straight, users)))
        << loss << ": optimizer state or RNG was not restored";
  }
}

TEST_F(SasrecPlugin, EveryLossTrainsAndLowersItsLoss) {
  for (const std::string loss : {"ce", "bce", "sampled_softmax", "gbce"}) {
    auto p = params(loss);
    p["lr"] = 0.005;
    p["features"] = std::vector<std::string>{};
    auto model = make_model("sasrec", dataset_, p);
    TrainContext ctx(dataset_, split_.train, 14, 2);
    const EpochResult first = model->fit_epoch(ctx);
    EpochResult last;
    for (int e = 1; e < 5; ++e) {
      recrun::conformance::begin_epoch(ctx, e);
      last = model->fit_epoch(ctx);
    }
    std::int64_t trainable = 0;
    for (std::int64_t u = 0; u < split_.train.num_users(); ++u)
      trainable += split_.train.items(u).size() >= 2;
    EXPECT_EQ(first.examples, trainable) << loss;
    EXPECT_TRUE(std::isfinite(first.loss)) << loss;
    EXPECT_LT(last.loss, first.loss) << loss;
  }
  // Popularity-sampled negatives with logQ correction train too.
  auto p = params("sampled_softmax");
  p["sampling"] = std::string("popularity");
  p["num_negatives"] = std::int64_t{8};
  auto model = make_model("sasrec", dataset_, p);
  TrainContext ctx(dataset_, split_.train, 15, 2);
  EXPECT_TRUE(std::isfinite(model->fit_epoch(ctx).loss));
}

TEST_F(SasrecPlugin, OutOfTimeStopsBetweenBatches) {
  auto model = make_model("sasrec", dataset_, params());
  TrainContext ctx(dataset_, split_.train, 15, 2);
  recrun::conformance::set_deadline(ctx, std::chrono::steady_clock::now());
  EXPECT_EQ(model->fit_epoch(ctx).examples, 0);
}

TEST_F(SasrecPlugin, GateDiagnosticsAreMeanWeightsPerSource) {
  auto model = make_model("sasrec", dataset_, params());
  EXPECT_TRUE(model->diagnostics().empty()) << "nothing scored yet";
  score(*model, split_.eval_users);
  const auto d = model->diagnostics();
  ASSERT_EQ(d.size(), 3u);
  double sum = 0;
  for (const auto& key : {"gate/item", "gate/genre", "gate/year"}) {
    ASSERT_TRUE(d.count(key)) << key;
    sum += d.at(key);
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_TRUE(model->diagnostics().empty()) << "diagnostics() must reset";
  for (const std::string fusion : {"concat", "add"}) {
    auto p = params("bce");
    p["fusion"] = fusion;
    auto m = make_model("sasrec", dataset_, p);
    TrainContext ctx(dataset_, split_.train, 16, 2);
    EXPECT_TRUE(std::isfinite(m->fit_epoch(ctx).loss)) << fusion;
    EXPECT_TRUE(score(*m, {0, 1, 2}).isfinite().all().item<bool>()) << fusion;
  }
}

TEST_F(SasrecPlugin, UserMistakesGetHelpfulErrors) {
  auto p = params();
  p["features"] = std::vector<std::string>{"genre", "genrr"};
  try {
    make_model("sasrec", dataset_, p);
    FAIL() << "unknown feature accepted";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'genre'"), std::string::npos) << e.what();
  }
  p = params();
  p["fusion"] = std::string("none");
  try {
    make_model("sasrec", dataset_, p);
    FAIL() << "features without a fusion accepted";
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("sasrec: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gate"), std::string::npos) << e.what();
  }
  p = params();
  p["num_heads"] = std::int64_t{3};
  EXPECT_THROW(make_model("sasrec", dataset_, p), ParamError);
  p = params("bce");
  p["num_negatives"] = std::int64_t{dataset_.num_items()};
  EXPECT_THROW(make_model("sasrec", dataset_, p), ParamError);
  p = params("gbce");
  p["sampling"] = std::string("popularity");
  EXPECT_THROW(make_model("sasrec", dataset_, p), ParamError);
  p = params();
  p["loss"] = std::string("bpr");
  EXPECT_ANY_THROW(make_model("sasrec", dataset_, p));
}

// --- learning ------------------------------------------------------------------------------------

// 60 items on a ring; each user starts anywhere and walks i -> i + 1 (with a random jump 10% of
// the time) for 8-20 steps. Popularity is nearly flat, so it ranks the next item near chance;
// the next item is almost a function of the last one.
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

core::RunOutcome run(const std::string& model, const std::map<std::string, ParamValue>& raw,
                     const Dataset& d, const core::Split& split) {
  const auto& info = test_registry().model(model);
  const Params p = resolve_params(recrun::concat(info.params, core::trainer_params()), raw, model);
  core::TrainerOptions opt;
  core::apply_trainer_params(p, opt);
  opt.threads = 2;
  opt.seed = 3;
  opt.eval.ks = {10};
  opt.eval.metrics = {"Hit", "NDCG"};
  core::seed_and_threads(opt.seed, opt.threads);
  auto m = info.make(p, ModelEnv{d, test_registry(), opt.seed});
  core::RunObserver quiet;
  return core::train_and_evaluate(*m, d, split, opt, quiet);
}

TEST(SasrecLearning, EveryLossLearnsPlantedChainsFarBeyondPopularity) {
  const Dataset d = chains(5);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run("popularity", {}, d, split);
  std::cout << fmt::format("popularity: Hit@10 {:.3f} NDCG@10 {:.3f}\n", pop.test.at("Hit@10"),
                           pop.test.at("NDCG@10"));
  for (const std::string loss : {"ce", "bce", "sampled_softmax", "gbce"}) {
    const auto r = run("sasrec",
                       {{"loss", loss}, {"hidden_units", std::int64_t{32}},
                        {"max_len", std::int64_t{20}}, {"batch_size", std::int64_t{64}},
                        {"dropout", 0.1}, {"lr", 0.005}, {"epochs", std::int64_t{15}},
                        {"patience", std::int64_t{0}}},
                       d, split);
    std::cout << fmt::format("sasrec {}: Hit@10 {:.3f} NDCG@10 {:.3f}\n", loss,
                             r.test.at("Hit@10"), r.test.at("NDCG@10"));
    // The next item follows from the last one 90% of the time; popularity is near 10/60.
    EXPECT_GT(r.test.at("Hit@10"), pop.test.at("Hit@10") + 0.4) << loss;
    EXPECT_GT(r.test.at("NDCG@10"), 2.5 * pop.test.at("NDCG@10")) << loss;
  }
}

}  // namespace
}  // namespace recrun::test
