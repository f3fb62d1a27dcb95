// precision = fp32 | bf16 | auto for BERT4Rec and SASRec: what `auto` resolves to on this CPU
// (checked against the kernel's /proc/cpuinfo flags), that bf16 really changes the arithmetic
// while weights, scores and the thread's autocast state stay as they were, and that bf16
// training learns a planted signal as well as fp32 does.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "bert4rec_support.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/seq.hpp"

namespace recrun::test {
namespace {

std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> out;
    for (std::string w; words >> w;) out.insert(w);
    return out;
  }
  return {};
}

TEST(Precision, CpuFeaturesMatchTheKernelsFlagsAndAutoFollowsNativeBf16) {
  const CpuFeatures cpu = cpu_features();
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line";
  EXPECT_EQ(cpu.avx2, flags.count("avx2") == 1);
  EXPECT_EQ(cpu.avx512f, flags.count("avx512f") == 1);
  EXPECT_EQ(cpu.avx512_bf16, flags.count("avx512_bf16") == 1);
  EXPECT_EQ(cpu.amx_bf16, flags.count("amx_bf16") == 1);
  EXPECT_EQ(cpu.native_bf16(), cpu.avx512_bf16 || cpu.amx_bf16);
  std::cout << "cpu: " << cpu.describe() << "\n";

  EXPECT_EQ(resolve_precision(Precision::fp32), Precision::fp32);
  EXPECT_EQ(resolve_precision(Precision::bf16), Precision::bf16);
  EXPECT_EQ(resolve_precision(Precision::automatic),
            cpu.native_bf16() ? Precision::bf16 : Precision::fp32);
  EXPECT_EQ(precision_name(Precision::automatic), "auto");
}

TEST(Precision, AutocastScopeRunsMatmulsInBf16AndRestoresTheThread) {
  const torch::Tensor a = torch::randn({8, 16}), b = torch::randn({16, 4});
  ASSERT_FALSE(at::autocast::is_cpu_enabled());
  {
    const Bf16Autocast on(true);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({16}));
    EXPECT_EQ(layer_norm_fp32(norm, a.to(torch::kBFloat16)).scalar_type(), torch::kFloat);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  {
    const Bf16Autocast off(false);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  }
}

struct Fixture {
  Dataset dataset;
  core::Split split;
};

const Fixture& data() {
  static const Fixture f = [] {
    GenreChainSpec spec;  // the next item comes from the current item's genre (p = 0.9)
    spec.genres = 4;
    spec.items_per_genre = 10;
    spec.users = 400;
    spec.min_len = 6;
    spec.max_len = 20;
    Fixture out;
    out.dataset = genre_chain_dataset(spec);
    out.split = core::make_split(out.dataset, {});
    return out;
  }();
  return f;
}

std::map<std::string, ParamValue> params(const std::string& model, const std::string& precision) {
  std::map<std::string, ParamValue> p{{"hidden_units", std::int64_t{32}},
                                      {"num_heads", std::int64_t{2}},
                                      {"max_len", std::int64_t{20}},
                                      {"batch_size", std::int64_t{32}},
                                      {"dropout", 0.1},
                                      {"lr", 0.005},
                                      {"precision", precision}};
  if (model == "bert4rec") p["mask_prob"] = 0.3;
  return p;
}

torch::Tensor scores(Model& m) {
  const auto& f = data();
  std::vector<std::span<const std::int32_t>> histories;
  for (const auto u : f.split.eval_users) histories.push_back(f.split.train.items(u));
  return m.score(UserBatch(f.split.eval_users, histories, f.dataset.num_items()));
}

class PrecisionModels : public ::testing::TestWithParam<std::string> {};

TEST_P(PrecisionModels, Bf16ChangesTheArithmeticNotTheWeightsScoresOrThread) {
  const std::string name = GetParam();
  const auto& f = data();
  auto fp32 = make_model(name, f.dataset, params(name, "fp32"), 3);
  auto bf16 = make_model(name, f.dataset, params(name, "bf16"), 3);
  auto automatic = make_model(name, f.dataset, params(name, "auto"), 3);
  auto explicit_resolved = make_model(
      name, f.dataset,
      params(name, std::string(precision_name(resolve_precision(Precision::automatic)))), 3);
  for (auto* m : {fp32.get(), bf16.get(), automatic.get(), explicit_resolved.get()}) {
    torch::manual_seed(21);  // the same masks, negatives and dropout for every model
    TrainContext ctx(f.dataset, f.split.train, 21, 1);
    EXPECT_TRUE(std::isfinite(m->fit_epoch(ctx).loss));
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled()) << "a model left autocast on";
  Archive weights;
  bf16->save(weights);
  for (const auto& key : weights.keys()) {
    const torch::Tensor t = weights.read(key);
    if (t.is_floating_point()) {
      EXPECT_EQ(t.scalar_type(), torch::kFloat) << key << " is not fp32";
    }
  }
  const torch::Tensor s32 = scores(*fp32), s16 = scores(*bf16);
  EXPECT_EQ(s16.scalar_type(), torch::kFloat);
  EXPECT_TRUE(s16.isfinite().all().item<bool>());
  EXPECT_FALSE(s16.equal(s32)) << "bf16 gave fp32's exact scores: autocast did not engage";
  // Same start, one epoch: bf16 rounding moves the scores a little, not a lot.
  const double spread = s32.std().item<double>();
  EXPECT_LT((s16 - s32).abs().mean().item<double>(), 0.25 * spread);
  // auto is exactly the precision it resolves to.
  EXPECT_TRUE(scores(*automatic).equal(scores(*explicit_resolved)));
}

double valid_ndcg(const std::string& name, const std::string& precision, std::uint64_t seed) {
  const auto& f = data();
  std::unique_ptr<Model> model =
      name == "popularity" ? make_model(name, f.dataset, {}, seed)
                           : make_model(name, f.dataset, params(name, precision), seed);
  core::TrainerOptions options;
  options.max_epochs = 10;
  options.patience = 0;
  options.threads = 1;
  options.seed = seed;
  options.eval.ks = {10};
  options.eval.metrics = {"NDCG"};
  core::RunObserver quiet;
  return core::train_and_evaluate(*model, f.dataset, f.split, options, quiet).valid.at("NDCG@10");
}

TEST_P(PrecisionModels, Bf16TrainingLearnsThePlantedSignalLikeFp32) {
  const std::string name = GetParam();
  const double floor = valid_ndcg("popularity", "", 1);
  const double fp32 = valid_ndcg(name, "fp32", 1), bf16 = valid_ndcg(name, "bf16", 1);
  std::cout << name << " valid NDCG@10: popularity " << floor << ", fp32 " << fp32 << ", bf16 "
            << bf16 << "\n";
  EXPECT_GT(fp32, floor + 0.1);
  EXPECT_GT(bf16, floor + 0.1);
  EXPECT_NEAR(bf16, fp32, 0.05);
}

INSTANTIATE_TEST_SUITE_P(SequentialModels, PrecisionModels,
                         ::testing::Values(std::string("bert4rec"), std::string("sasrec")));

}  // namespace
}  // namespace recrun::test
