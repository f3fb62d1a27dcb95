#include <gtest/gtest.h>

#include <random>

#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/archive.hpp"
#include "recrun/optim.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

// 8 taste clusters of 25 items each; every user draws 12 items from their cluster, 1 from
// anywhere. Popular items are spread over all clusters, so popularity ranks targets poorly.
Dataset clustered(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  DatasetBuilder b;
  for (int i = 0; i < 200; ++i) b.add_interaction("seed", std::to_string(i), 0);  // fix item ids
  for (int u = 0; u < 400; ++u) {
    const int cluster = u % 8;
    std::vector<int> items;
    while (items.size() < 12) {
      const int i = cluster * 25 + static_cast<int>(rng() % 25);
      if (std::find(items.begin(), items.end(), i) == items.end()) items.push_back(i);
    }
    items.insert(items.begin() + 3, static_cast<int>(rng() % 200));
    for (std::size_t t = 0; t < items.size(); ++t)
      b.add_interaction("u" + std::to_string(u), std::to_string(items[t]), static_cast<std::int64_t>(t));
  }
  return b.build("clustered", {}, "fp");
}

core::RunOutcome run(const std::string& model, const std::map<std::string, ParamValue>& raw,
                     const Dataset& d, const core::Split& split,
                     const std::filesystem::path& checkpoint_dir = {}, double checkpoint_every = 0) {
  const auto& info = test::test_registry().model(model);
  const auto schema = concat(info.params, core::trainer_params());
  const Params p = resolve_params(schema, raw, model);
  core::TrainerOptions opt;
  core::apply_trainer_params(p, opt);
  opt.threads = 2;
  opt.seed = 3;
  opt.checkpoint_dir = checkpoint_dir;
  opt.checkpoint_every_s = checkpoint_every;
  core::seed_and_threads(opt.seed, opt.threads);
  auto m = info.make(p, ModelEnv{d, test::test_registry(), opt.seed});
  core::RunObserver quiet;
  return core::train_and_evaluate(*m, d, split, opt, quiet);
}

TEST(MultiVae, LearnsClustersFarBeyondPopularity) {
  const Dataset d = clustered(5);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run("popularity", {}, d, split);
  const auto vae = run("multivae",
                       {{"hidden", std::int64_t{64}}, {"latent", std::int64_t{16}},
                        {"batch_size", std::int64_t{64}}, {"epochs", std::int64_t{40}},
                        {"total_anneal_steps", std::int64_t{200}}, {"lr", 3e-3}},
                       d, split);
  // Chance within the right cluster is ~10/14 for Hit@10; popularity is near 10/200 per cluster.
  EXPECT_GT(vae.valid.at("Hit@10"), 2 * pop.valid.at("Hit@10") + 0.1)
      << "vae " << vae.valid.at("Hit@10") << " pop " << pop.valid.at("Hit@10");
  EXPECT_GT(vae.test.at("NDCG@10"), pop.test.at("NDCG@10"));
}

// The trainer's checkpoints with a real model: a run stopped after 3 epochs and continued to 8
// from last.ckpt (weights, Adam moments, RNGs, loop state and the best weights so far, in one
// file) ends exactly where a straight 8-epoch run does.
TEST(TrainerCheckpoints, AContinuedRunEndsExactlyWhereAStraightRunDoes) {
  const Dataset d = clustered(11);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const std::map<std::string, ParamValue> base = {
      {"hidden", std::int64_t{32}}, {"latent", std::int64_t{8}}, {"batch_size", std::int64_t{50}},
      {"total_anneal_steps", std::int64_t{40}}, {"lr", 3e-3}, {"patience", std::int64_t{0}}};
  auto with_epochs = [&](std::int64_t e) {
    auto raw = base;
    raw["epochs"] = e;
    return raw;
  };
  const auto dir = test::temp_dir("trainer-ckpt");
  const auto straight = run("multivae", with_epochs(8), d, split, dir / "straight");
  const auto first = run("multivae", with_epochs(3), d, split, dir / "split");
  ASSERT_TRUE(std::filesystem::exists(dir / "split" / "last.ckpt"));
  ASSERT_TRUE(std::filesystem::exists(dir / "split" / "best.ckpt"));
  const auto keys = Archive::load_file(dir / "split" / "last.ckpt").keys();
  EXPECT_TRUE(std::any_of(keys.begin(), keys.end(), [](const std::string& k) {
    return k.starts_with("__best__.net.");
  })) << "last.ckpt does not carry the best weights";
  const auto continued = run("multivae", with_epochs(8), d, split, dir / "split");
  EXPECT_TRUE(continued.resumed);
  EXPECT_EQ(continued.epochs_run, 8);
  EXPECT_EQ(continued.best_epoch, straight.best_epoch);
  EXPECT_EQ(continued.valid, straight.valid);  // bit for bit
  EXPECT_EQ(continued.test, straight.test);
  EXPECT_NE(first.valid, straight.valid);      // and the first leg really stopped early

  // With a long interval, last.ckpt is never written during a short run; best.ckpt still is.
  run("multivae", with_epochs(3), d, split, dir / "rare", /*checkpoint_every=*/3600);
  EXPECT_FALSE(std::filesystem::exists(dir / "rare" / "last.ckpt"));
  EXPECT_TRUE(std::filesystem::exists(dir / "rare" / "best.ckpt"));
}

TEST(MultiVae, SaveLoadRoundTripGivesIdenticalScores) {
  const Dataset d = clustered(9);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto& info = test::test_registry().model("multivae");
  const Params p = resolve_params(info.params, {{"hidden", std::int64_t{32}}, {"latent", std::int64_t{8}}}, "multivae");
  auto a = info.make(p, ModelEnv{d, test::test_registry(), 1});
  TrainContext ctx(d, split.train, 1, 1);
  a->fit_epoch(ctx);
  Archive saved;
  a->save(saved);
  auto b = info.make(p, ModelEnv{d, test::test_registry(), 2});
  b->load(saved);
  std::vector<std::int64_t> users{0, 5, 17};
  std::vector<std::span<const std::int32_t>> hist;
  for (auto u : users) hist.push_back(split.train.items(u));
  const UserBatch batch(users, hist, d.num_items());
  EXPECT_TRUE(torch::equal(a->score(batch), b->score(batch)));
}

}  // namespace
}  // namespace recrun
