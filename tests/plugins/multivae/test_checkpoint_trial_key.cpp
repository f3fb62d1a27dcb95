// A last.ckpt records the trial it belongs to: a run with other parameters (here lr=0.01 where
// the checkpoint was written with lr=0.003) refuses to resume it instead of recording a mixture
// of the two runs as its own; the same trial resumes it as before.
#include <gtest/gtest.h>

#include <random>

#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/archive.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

Dataset small_clusters() {
  std::mt19937_64 rng(4);
  DatasetBuilder b;
  for (int u = 0; u < 120; ++u) {
    for (int t = 0; t < 8; ++t) {
      const int item = (u % 4) * 10 + static_cast<int>(rng() % 10);
      b.add_interaction("u" + std::to_string(u), std::to_string(item), t);
    }
  }
  return b.build("small", {}, "fp");
}

core::RunOutcome run(double lr, std::int64_t epochs, const std::string& key,
                     const std::filesystem::path& dir) {
  static const Dataset d = small_clusters();
  static const core::Split split = core::make_split(d, {core::SplitMode::leave_one_out, 3});
  const auto& info = test::test_registry().model("multivae");
  const auto schema = concat(info.params, core::trainer_params());
  const Params p = resolve_params(schema,
                                  {{"hidden", std::int64_t{16}}, {"latent", std::int64_t{4}},
                                   {"batch_size", std::int64_t{40}}, {"lr", lr},
                                   {"epochs", epochs}, {"patience", std::int64_t{0}}},
                                  "multivae");
  core::TrainerOptions opt;
  core::apply_trainer_params(p, opt);
  opt.threads = 1;
  opt.seed = 3;
  opt.checkpoint_dir = dir;
  opt.checkpoint_every_s = 0;
  opt.trial_key = key;
  core::seed_and_threads(opt.seed, opt.threads);
  auto m = info.make(p, ModelEnv{d, test::test_registry(), opt.seed});
  core::RunObserver quiet;
  return core::train_and_evaluate(*m, d, split, opt, quiet);
}

TEST(CheckpointTrialKey, AnotherTrialsLastCheckpointIsRefusedNamingBothKeysAndTheFile) {
  const auto dir = test::temp_dir("ckpt-key");
  run(0.003, 2, "trial-lr0.003", dir);
  ASSERT_TRUE(std::filesystem::exists(dir / "last.ckpt"));
  EXPECT_EQ(Archive::load_file(dir / "last.ckpt").read_text("__trainer__.trial_key"), "trial-lr0.003");
  try {
    run(0.01, 4, "trial-lr0.01", dir);
    ADD_FAILURE() << "a run with lr=0.01 resumed the lr=0.003 trial's checkpoint";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("trial-lr0.003"), std::string::npos) << what;
    EXPECT_NE(what.find("trial-lr0.01"), std::string::npos) << what;
    EXPECT_NE(what.find((dir / "last.ckpt").string()), std::string::npos) << what;
    EXPECT_NE(what.find("--checkpoint-dir"), std::string::npos) << what;
  }
  // The other trial's file is left as it was.
  EXPECT_EQ(Archive::load_file(dir / "last.ckpt").read_text("__trainer__.trial_key"), "trial-lr0.003");
  // The trial it belongs to resumes it.
  const auto resumed = run(0.003, 4, "trial-lr0.003", dir);
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.epochs_run, 4);
}

TEST(CheckpointTrialKey, ACheckpointWithoutAKeyStillResumes) {
  const auto dir = test::temp_dir("ckpt-nokey");
  run(0.003, 2, "", dir);  // written as before trial keys were recorded
  EXPECT_FALSE(Archive::load_file(dir / "last.ckpt").contains("__trainer__.trial_key"));
  EXPECT_TRUE(run(0.003, 3, "some-trial", dir).resumed);
}

}  // namespace
}  // namespace recrun
