// BERT4Rec: Cloze masking statistics, padding isolation, batch-independent scoring, checkpoint
// round trips (optimizer included) and parameter errors.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "../../../plugins/models/bert4rec/bert4rec_net.hpp"
#include "bert4rec_support.hpp"
#include "core/split.hpp"
#include "recrun/conformance.hpp"
#include "recrun/error.hpp"

namespace recrun::test {
namespace {

using bert4rec::Bert4RecNet;
using bert4rec::cloze_mask;
using bert4rec::NetOptions;

TEST(Bert4RecCloze, MaskingStatisticsFollowMaskProbAnd80_10_10) {
  torch::manual_seed(3);
  const std::int64_t b = 2000, t = 60, num_items = 5000;
  const torch::Tensor lengths = torch::randint(1, t + 1, {b}, torch::kInt64);
  const torch::Tensor valid = torch::arange(t).unsqueeze(0).lt(lengths.unsqueeze(1));
  const torch::Tensor tokens =
      torch::randint(1, num_items + 1, {b, t}, torch::kInt64).masked_fill(valid.logical_not(), 0);
  const auto c = cloze_mask(tokens, lengths, num_items, 0.15, 0.0);

  EXPECT_FALSE(c.chosen.logical_and(valid.logical_not()).any().item<bool>())
      << "padding was chosen";
  EXPECT_TRUE(c.inputs.masked_select(valid.logical_not()).eq(0).all().item<bool>())
      << "padding was altered";
  const double real = valid.sum().item<double>();
  const double chosen = c.chosen.sum().item<double>();
  EXPECT_NEAR(chosen / real, 0.15, 0.005);  // ~60k real positions: sd 0.0015

  const torch::Tensor in = c.inputs.masked_select(c.chosen);
  const torch::Tensor orig = tokens.masked_select(c.chosen);
  const double masked = in.eq(num_items + 1).sum().item<double>() / chosen;
  const double unchanged = in.eq(orig).sum().item<double>() / chosen;
  const double random = 1.0 - masked - unchanged;
  EXPECT_NEAR(masked, 0.8, 0.02);
  EXPECT_NEAR(random, 0.1, 0.015);  // a random draw equal to the original counts as unchanged
  EXPECT_NEAR(unchanged, 0.1, 0.015);
  EXPECT_TRUE(in.le(num_items + 1).all().item<bool>());
  EXPECT_TRUE(in.ge(1).all().item<bool>());

  // Unchosen real positions are untouched; labels are the original items, row-major.
  EXPECT_TRUE(c.inputs.masked_select(c.chosen.logical_not()).equal(
      tokens.masked_select(c.chosen.logical_not())));
  EXPECT_TRUE(c.labels.equal(orig - 1));
}

TEST(Bert4RecCloze, LastItemMaskRatioMasksTheLastRealItem) {
  torch::manual_seed(4);
  const std::int64_t b = 400, t = 20, num_items = 100;
  const torch::Tensor lengths = torch::randint(1, t + 1, {b}, torch::kInt64);
  const torch::Tensor valid = torch::arange(t).unsqueeze(0).lt(lengths.unsqueeze(1));
  const torch::Tensor tokens =
      torch::randint(1, num_items + 1, {b, t}, torch::kInt64).masked_fill(valid.logical_not(), 0);

  const auto always = cloze_mask(tokens, lengths, num_items, 1e-6, 1.0);
  const torch::Tensor last = (lengths - 1).unsqueeze(1);
  EXPECT_TRUE(always.inputs.gather(1, last).eq(num_items + 1).all().item<bool>());
  EXPECT_TRUE(always.chosen.gather(1, last).all().item<bool>());

  const auto half = cloze_mask(tokens, lengths, num_items, 1e-6, 0.5);
  const double share = half.chosen.gather(1, last).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(share, 0.5, 0.1);
}

NetOptions small_net(std::int64_t num_items) {
  NetOptions o;
  o.num_items = num_items;
  o.hidden = 32;
  o.heads = 4;
  o.layers = 2;
  o.max_len = 24;
  o.dropout = 0.2;
  return o;
}

TEST(Bert4RecNet, PaddingTokensNeverReachRealPositions) {
  torch::manual_seed(5);
  Bert4RecNet net(small_net(50));
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor lengths = torch::tensor({3, 17, 9, 1}, torch::kInt64);
  const torch::Tensor valid = torch::arange(17).unsqueeze(0).lt(lengths.unsqueeze(1));
  const torch::Tensor tokens =
      torch::randint(1, 51, {4, 17}, torch::kInt64).masked_fill(valid.logical_not(), 0);
  // Anything at all in the padded columns, even real items and [MASK].
  const torch::Tensor garbage =
      torch::where(valid, tokens, torch::randint(0, 52, {4, 17}, torch::kInt64));
  const torch::Tensor h1 = net->hidden_all(tokens, lengths);
  const torch::Tensor h2 = net->hidden_all(garbage, lengths);
  const torch::Tensor mask = valid.unsqueeze(-1).expand_as(h1);
  EXPECT_TRUE(h1.masked_select(mask).equal(h2.masked_select(mask)));

  // The last block computed for a few columns only agrees with the full pass.
  const torch::Tensor query = (lengths - 1).unsqueeze(1);
  const torch::Tensor at = net->hidden_at(tokens, lengths, query).squeeze(1);
  const torch::Tensor full = h1.gather(1, query.unsqueeze(-1).expand({4, 1, 32})).squeeze(1);
  EXPECT_TRUE(torch::allclose(at, full, 1e-5, 1e-5));
}

TEST(Bert4RecNet, MaskedOnlyLossEqualsLossOverFullLogits) {
  torch::manual_seed(6);
  Bert4RecNet net(small_net(40));
  net->eval();  // no dropout: both paths must see the same network
  const torch::Tensor lengths = torch::tensor({5, 20, 12}, torch::kInt64);
  const torch::Tensor valid = torch::arange(20).unsqueeze(0).lt(lengths.unsqueeze(1));
  const torch::Tensor tokens =
      torch::randint(1, 41, {3, 20}, torch::kInt64).masked_fill(valid.logical_not(), 0);
  const auto c = cloze_mask(tokens, lengths, 40, 0.3, 0.0);
  ASSERT_GT(c.labels.numel(), 0);
  const torch::Tensor fast = net->cloze_loss(c, lengths);
  const torch::Tensor logits = net->logits(net->hidden_all(c.inputs, lengths));  // [B, T, N]
  const torch::Tensor targets = torch::where(c.chosen, tokens - 1, torch::full_like(tokens, -100));
  const torch::Tensor slow =
      torch::nn::functional::cross_entropy(logits.reshape({-1, 40}), targets.reshape({-1}));
  EXPECT_NEAR(fast.item<double>(), slow.item<double>(), 1e-5);
}

TEST(Bert4RecNet, ChunkedClozeLossHasTheUnchunkedGradients) {
  // Both output layers (tied embedding plus bias, and a Linear of its own), chunks of 3 masked
  // positions against LibTorch's cross_entropy over the full logits.
  for (const bool share : {true, false}) {
    torch::manual_seed(9);
    auto o = small_net(40);
    o.share_embeddings = share;
    Bert4RecNet net(o);
    net->eval();
    const torch::Tensor lengths = torch::tensor({5, 20, 12}, torch::kInt64);
    const torch::Tensor valid = torch::arange(20).unsqueeze(0).lt(lengths.unsqueeze(1));
    const torch::Tensor tokens =
        torch::randint(1, 41, {3, 20}, torch::kInt64).masked_fill(valid.logical_not(), 0);
    const auto c = cloze_mask(tokens, lengths, 40, 0.4, 0.0);
    ASSERT_GT(c.labels.numel(), 3);
    const auto gradients = [&](const torch::Tensor& loss) {
      net->zero_grad();
      loss.backward();
      std::map<std::string, torch::Tensor> out;
      for (const auto& p : net->named_parameters())
        if (p.value().grad().defined()) out[p.key()] = p.value().grad().clone();
      return out;
    };
    const torch::Tensor chunked = net->cloze_loss(c, lengths, 3);
    const auto got = gradients(chunked);
    const torch::Tensor full = torch::nn::functional::cross_entropy(
        net->logits(net->masked_hidden(c, lengths)), c.labels);
    const auto want = gradients(full);
    EXPECT_NEAR(chunked.item<double>(), full.item<double>(), 1e-5);
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [name, g] : want) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_TRUE(torch::allclose(got.at(name), g, 1e-5, 1e-6))
          << (share ? "shared " : "own ") << name << " differs by "
          << (got.at(name) - g).abs().max().item<double>();
    }
  }
}

TEST(Bert4RecNet, InitialisationIsBertLike) {
  torch::manual_seed(8);
  Bert4RecNet net(small_net(300));
  const auto params = net->named_parameters();
  const torch::Tensor items = params["item_emb.weight"];
  EXPECT_TRUE(items[0].eq(0).all().item<bool>()) << "padding row must start at zero";
  EXPECT_NEAR(items.narrow(0, 1, 300).std().item<double>(), 0.02, 0.002);
  EXPECT_TRUE(params["out_bias"].eq(0).all().item<bool>());
}

// --- the plugin ---------------------------------------------------------------------------------

class Bert4RecPlugin : public ::testing::Test {
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
  std::map<std::string, ParamValue> params() const {
    return {{"hidden_units", std::int64_t{32}}, {"num_heads", std::int64_t{2}},
            {"max_len", std::int64_t{20}},      {"batch_size", std::int64_t{16}},
            {"features", std::vector<std::string>{"genre", "year"}},
            {"fusion", std::string("gate")},    {"last_item_mask_ratio", 0.2}};
  }
  torch::Tensor score(Model& model, const std::vector<std::int64_t>& users) const {
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto u : users) histories.push_back(split_.train.items(u));
    return model.score(UserBatch(users, histories, dataset_.num_items()));
  }
  Dataset dataset_;
  core::Split split_;
};

TEST_F(Bert4RecPlugin, ScoresDoNotDependOnBatchComposition) {
  auto model = make_model("bert4rec", dataset_, params());
  TrainContext ctx(dataset_, split_.train, 11, 2);
  model->fit_epoch(ctx);

  const std::vector<std::int64_t>& users = split_.eval_users;
  const torch::Tensor together = score(*model, users);
  ASSERT_EQ(together.size(0), static_cast<std::int64_t>(users.size()));
  ASSERT_EQ(together.size(1), dataset_.num_items());
  EXPECT_TRUE(together.isfinite().all().item<bool>());
  // Alone, in a different order, and mixed with other users: the same row every time. Padding
  // contributes exactly nothing, but BLAS may pick another kernel (and summation order) for
  // another matrix shape, so rows agree to float rounding rather than bit for bit.
  const auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::allclose(a, b, /*rtol=*/1e-5, /*atol=*/1e-5);
  };
  double worst = 0;
  for (std::size_t i = 0; i < users.size(); i += 7) {
    const torch::Tensor alone = score(*model, {users[i]});
    worst = std::max(worst, (alone[0] - together[i]).abs().max().item<double>());
    EXPECT_TRUE(same(alone[0], together[i])) << "user " << users[i] << " alone differs";
  }
  std::cout << "largest difference alone vs together: " << worst << "\n";
  std::vector<std::int64_t> reversed(users.rbegin(), users.rend());
  EXPECT_TRUE(same(score(*model, reversed).flip({0}), together));
  // Mixed with users of very different lengths: the longest history next to each user.
  for (std::size_t i = 0; i < users.size(); i += 11) {
    const torch::Tensor pair = score(*model, {users[i], users.back(), users.front()});
    EXPECT_TRUE(same(pair[0], together[i])) << "user " << users[i] << " in a pair differs";
  }
  // Scoring twice gives the same result (no state leaks between calls).
  EXPECT_TRUE(score(*model, users).equal(together));
}

TEST_F(Bert4RecPlugin, SaveLoadRoundTripGivesIdenticalScores) {
  auto model = make_model("bert4rec", dataset_, params(), 1);
  TrainContext ctx(dataset_, split_.train, 12, 2);
  model->fit_epoch(ctx);
  Archive archive;
  model->save(archive);
  const auto file = temp_dir("b4r") / "m.ckpt";
  archive.save_file(file);

  auto other = make_model("bert4rec", dataset_, params(), 99);  // different initial weights
  const auto& users = split_.eval_users;
  EXPECT_FALSE(score(*other, users).equal(score(*model, users)));
  other->load(Archive::load_file(file));
  EXPECT_TRUE(score(*other, users).equal(score(*model, users)));
}

TEST_F(Bert4RecPlugin, ResumedTrainingContinuesExactly) {
  // Straight run: two epochs.
  auto straight = make_model("bert4rec", dataset_, params(), 1);
  TrainContext ctx(dataset_, split_.train, 13, 2);
  straight->fit_epoch(ctx);
  Archive checkpoint;
  straight->save(checkpoint);
  const torch::Tensor torch_rng = at::detail::getDefaultCPUGenerator().get_state();
  const std::mt19937_64 rng = ctx.rng();
  recrun::conformance::begin_epoch(ctx, 1);
  const double loss = straight->fit_epoch(ctx).loss;

  // Resumed run: a fresh model from the checkpoint, with the trainer's generators restored.
  auto resumed = make_model("bert4rec", dataset_, params(), 77);
  resumed->load(checkpoint);
  auto generator = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
  generator.set_state(torch_rng);
  TrainContext ctx2(dataset_, split_.train, 13, 2);
  ctx2.rng() = rng;
  recrun::conformance::begin_epoch(ctx2, 1);
  EXPECT_EQ(resumed->fit_epoch(ctx2).loss, loss);
  const auto& users = split_.eval_users;
  EXPECT_TRUE(score(*resumed, users).equal(score(*straight, users)))
      << "optimizer state or RNG was not restored";
}

TEST_F(Bert4RecPlugin, TrainingLowersTheLossAndReportsExamples) {
  auto p = params();
  p["lr"] = 0.005;
  auto model = make_model("bert4rec", dataset_, p);
  TrainContext ctx(dataset_, split_.train, 14, 2);
  const EpochResult first = model->fit_epoch(ctx);
  EpochResult last;
  for (int e = 1; e < 6; ++e) {
    recrun::conformance::begin_epoch(ctx, e);
    last = model->fit_epoch(ctx);
  }
  std::int64_t with_history = 0;
  for (std::int64_t u = 0; u < split_.train.num_users(); ++u)
    with_history += !split_.train.items(u).empty();
  EXPECT_EQ(first.examples, with_history);
  EXPECT_TRUE(std::isfinite(first.loss));
  EXPECT_LT(last.loss, first.loss);
}

TEST_F(Bert4RecPlugin, OutOfTimeStopsBetweenBatches) {
  auto model = make_model("bert4rec", dataset_, params());
  TrainContext ctx(dataset_, split_.train, 15, 2);
  recrun::conformance::set_deadline(ctx, std::chrono::steady_clock::now());
  const EpochResult r = model->fit_epoch(ctx);
  EXPECT_EQ(r.examples, 0);
}

TEST_F(Bert4RecPlugin, GateDiagnosticsAreMeanWeightsPerSource) {
  auto model = make_model("bert4rec", dataset_, params());
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
}

TEST_F(Bert4RecPlugin, EveryFusionAndFeatureBuildsAndScores) {
  for (const std::string fusion : {"concat", "add", "gate"}) {
    auto p = params();
    p["fusion"] = fusion;
    p["share_embeddings"] = false;
    auto model = make_model("bert4rec", dataset_, p);
    TrainContext ctx(dataset_, split_.train, 16, 2);
    EXPECT_TRUE(std::isfinite(model->fit_epoch(ctx).loss)) << fusion;
    EXPECT_TRUE(score(*model, {0, 1, 2}).isfinite().all().item<bool>()) << fusion;
  }
  // No features: the plain model, whatever `fusion` says.
  auto p = params();
  p["features"] = std::vector<std::string>{};
  auto plain = make_model("bert4rec", dataset_, p);
  EXPECT_TRUE(plain->diagnostics().empty());
}

TEST_F(Bert4RecPlugin, UserMistakesGetHelpfulErrors) {
  auto p = params();
  p["features"] = std::vector<std::string>{"genre", "genrr"};
  try {
    make_model("bert4rec", dataset_, p);
    FAIL() << "unknown feature accepted";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'genre'"), std::string::npos) << e.what();
  }
  p = params();
  p["fusion"] = std::string("none");
  try {
    make_model("bert4rec", dataset_, p);
    FAIL() << "features without a fusion accepted";
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("gate"), std::string::npos) << e.what();
  }
  p = params();
  p["features"] = std::vector<std::string>{"director"};  // not in this data set
  EXPECT_THROW(make_model("bert4rec", dataset_, p), DataError);
  p = params();
  p["num_heads"] = std::int64_t{3};
  EXPECT_THROW(make_model("bert4rec", dataset_, p), ParamError);
}

}  // namespace
}  // namespace recrun::test
