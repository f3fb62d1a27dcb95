// Fusion plugins: concat, add, gate.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include "recrun/feature.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun::test {
namespace {

std::shared_ptr<FusionImpl> make_fusion(const std::string& name, std::int64_t hidden,
                                        std::vector<std::string> sources) {
  torch::manual_seed(1);
  return test_registry().fusion(name).make(FusionEnv{.hidden = hidden, .sources = sources});
}

TEST(FusionPlugins, EveryFusionReturnsHiddenAndTrains) {
  const std::vector<torch::Tensor> inputs{torch::randn({2, 5, 8}, torch::requires_grad()),
                                          torch::randn({2, 5, 8}, torch::requires_grad()),
                                          torch::randn({2, 5, 8}, torch::requires_grad())};
  for (const std::string name : {"concat", "add", "gate"}) {
    auto fusion = make_fusion(name, 8, {"item", "genre", "year"});
    const torch::Tensor out = fusion->forward(inputs);
    ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 5, 8})) << name;
    out.sum().backward();
    for (const auto& x : inputs) EXPECT_TRUE(x.grad().defined()) << name;
  }
}

TEST(FusionPlugins, AddIsTheSum) {
  auto fusion = make_fusion("add", 4, {"item", "genre"});
  const torch::Tensor a = torch::randn({3, 4}), b = torch::randn({3, 4});
  EXPECT_TRUE(torch::allclose(fusion->forward({a, b}), a + b));
}

TEST(FusionPlugins, ConcatIsALinearMapOfTheConcatenation) {
  auto fusion = make_fusion("concat", 4, {"item", "genre"});
  const auto p = fusion->named_parameters();
  const torch::Tensor a = torch::randn({3, 4}), b = torch::randn({3, 4});
  const torch::Tensor expect =
      torch::cat({a, b}, -1).matmul(p["proj.weight"].t()) + p["proj.bias"];
  EXPECT_TRUE(torch::allclose(fusion->forward({a, b}), expect, 1e-5, 1e-6));
}

TEST(FusionPlugins, GateIsAConvexCombinationAndReportsMeanWeights) {
  auto fusion = make_fusion("gate", 4, {"item", "genre"});
  const torch::Tensor a = torch::randn({2, 3, 4}), b = torch::randn({2, 3, 4});
  // Steer the gate: a large bias on the second source makes it take (almost) everything.
  {
    torch::NoGradGuard no_grad;
    auto p = fusion->named_parameters();
    p["gate.weight"].zero_();
    p["gate.bias"].copy_(torch::tensor({0.0f, std::log(3.0f)}));  // weights 0.25 / 0.75
  }
  fusion->train();
  const torch::Tensor out = fusion->forward({a, b});
  EXPECT_TRUE(torch::allclose(out, 0.25 * a + 0.75 * b, 1e-5, 1e-6));
  EXPECT_TRUE(fusion->diagnostics().empty()) << "training must not feed the diagnostics";

  fusion->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor valid = torch::tensor({{1, 1, 0}, {0, 0, 0}}).to(torch::kBool);
  fusion->forward({a, b}, valid);
  fusion->forward({a, b});  // no mask: every position counts
  const auto d = fusion->diagnostics();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d.at("gate/item"), 0.25, 1e-6);
  EXPECT_NEAR(d.at("gate/genre"), 0.75, 1e-6);
  EXPECT_TRUE(fusion->diagnostics().empty()) << "diagnostics() resets";
}

TEST(FusionPlugins, UnknownFusionSuggestsAName) {
  try {
    test_registry().fusion("gates");
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'gate'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace recrun::test
