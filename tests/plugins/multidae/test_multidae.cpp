// Mult-DAE: learns planted taste clusters far beyond popularity, checkpoints round-trip, and
// resumes exactly.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <random>

#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/conformance.hpp"
#include "recrun/archive.hpp"
#include "recrun/optim.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

// 10 taste groups of 30 items; each user takes 14 distinct items of their group and 2 from
// anywhere, in random order. Item popularity is flat across groups, so popularity ranks a held-out
// item near chance (10/300), while the rest of the bag names the group.
Dataset taste_groups(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  DatasetBuilder b;
  for (int i = 0; i < 300; ++i) b.add_interaction("seed", std::to_string(i), 0);
  for (int u = 0; u < 500; ++u) {
    const int group = static_cast<int>(rng() % 10);
    std::vector<int> items;
    while (items.size() < 14) {
      const int i = group * 30 + static_cast<int>(rng() % 30);
      if (std::find(items.begin(), items.end(), i) == items.end()) items.push_back(i);
    }
    for (int k = 0; k < 2; ++k) items.push_back(static_cast<int>(rng() % 300));
    std::shuffle(items.begin(), items.end(), rng);
    for (std::size_t t = 0; t < items.size(); ++t)
      b.add_interaction("u" + std::to_string(u), std::to_string(items[t]),
                        static_cast<std::int64_t>(t));
  }
  return b.build("taste-groups", {}, "taste-groups");
}

core::RunOutcome run(const std::string& model, const std::map<std::string, ParamValue>& raw,
                     const Dataset& d, const core::Split& split) {
  const auto& info = test::test_registry().model(model);
  const Params p = resolve_params(concat(info.params, core::trainer_params()), raw, model);
  core::TrainerOptions opt;
  core::apply_trainer_params(p, opt);
  opt.threads = 2;
  opt.seed = 3;
  core::seed_and_threads(opt.seed, opt.threads);
  auto m = info.make(p, ModelEnv{d, test::test_registry(), opt.seed});
  core::RunObserver quiet;
  return core::train_and_evaluate(*m, d, split, opt, quiet);
}

TEST(MultiDae, LearnsTasteGroupsFarBeyondPopularity) {
  const Dataset d = taste_groups(5);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto pop = run("popularity", {}, d, split);
  const auto dae = run("multidae",
                       {{"hidden", std::int64_t{64}}, {"batch_size", std::int64_t{50}},
                        {"epochs", std::int64_t{40}}, {"lr", 3e-3}, {"patience", std::int64_t{0}}},
                       d, split);
  std::cout << "popularity Hit@10 " << pop.test.at("Hit@10") << ", multidae Hit@10 "
            << dae.test.at("Hit@10") << "\n";
  // Within the right group a held-out item is ~10 of ~16 unseen group items (Hit@10 up to ~0.8
  // for the 7/8 of targets inside the group); popularity is near 10/300.
  EXPECT_GT(dae.test.at("Hit@10"), 3 * pop.test.at("Hit@10") + 0.2)
      << "dae " << dae.test.at("Hit@10") << " pop " << pop.test.at("Hit@10");
  EXPECT_GT(dae.test.at("NDCG@10"), 3 * pop.test.at("NDCG@10"));
}

std::vector<std::span<const std::int32_t>> histories(const Interactions& train,
                                                     const std::vector<std::int64_t>& users) {
  std::vector<std::span<const std::int32_t>> h;
  for (const auto u : users) h.push_back(train.items(u));
  return h;
}

TEST(MultiDae, SaveLoadRoundTripAndResumeAreExact) {
  const Dataset d = taste_groups(9);
  const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto& info = test::test_registry().model("multidae");
  const Params p =
      resolve_params(info.params, {{"hidden", std::int64_t{32}}, {"batch_size", std::int64_t{64}}},
                     "multidae");
  torch::manual_seed(1);
  auto a = info.make(p, ModelEnv{d, test::test_registry(), 1});
  TrainContext ctx(d, split.train, 1, 1);
  a->fit_epoch(ctx);
  Archive saved;
  a->save(saved);
  const torch::Tensor torch_rng = at::detail::getDefaultCPUGenerator().get_state();
  const std::mt19937_64 rng = ctx.rng();

  torch::manual_seed(2);
  auto b = info.make(p, ModelEnv{d, test::test_registry(), 2});
  const std::vector<std::int64_t> users{0, 5, 17, 40};
  const UserBatch batch(users, histories(split.train, users), d.num_items());
  EXPECT_FALSE(torch::equal(a->score(batch), b->score(batch)));
  b->load(saved);
  EXPECT_TRUE(torch::equal(a->score(batch), b->score(batch)));

  // One more epoch on each, from the same generators: identical (Adam moments restored).
  auto generator = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
  generator.set_state(torch_rng);  // building b drew from it
  recrun::conformance::begin_epoch(ctx, 1);
  const double loss = a->fit_epoch(ctx).loss;
  generator.set_state(torch_rng);
  TrainContext ctx2(d, split.train, 1, 1);
  ctx2.rng() = rng;
  recrun::conformance::begin_epoch(ctx2, 1);
  EXPECT_EQ(b->fit_epoch(ctx2).loss, loss);
  EXPECT_TRUE(torch::equal(a->score(batch), b->score(batch)));
}

}  // namespace
}  // namespace recrun
