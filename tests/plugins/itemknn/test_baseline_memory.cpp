// The five baselines' memory estimates (recrun::MemoryEstimator): each is there, is at least the
// model's own tables, and falls when the parameter its message names as lowering it is lowered.
#include <gtest/gtest.h>

#include "baseline_support.hpp"
#include "recrun/conformance.hpp"
#include "recrun/memory.hpp"

namespace recrun::test {
namespace {

namespace cf = recrun::conformance;

MemoryEstimate estimate(const std::string& model, const Dataset& d,
                        const std::map<std::string, ParamValue>& raw, const Interactions& train) {
  auto m = make_model(model, d, raw);
  const auto* e = dynamic_cast<const MemoryEstimator*>(m.get());
  if (e == nullptr) throw std::logic_error(model + " has no memory estimate");
  const auto r = e->estimate_memory(MemoryQuery{.train = &train, .score_batch = 64});
  if (!r) throw std::logic_error(model + " gave no estimate");
  return *r;
}

struct Case {
  std::string model;
  std::map<std::string, ParamValue> big, small;
  std::string names;      // a parameter lowered_by must name
  std::int64_t at_least;  // bytes the big configuration's tables alone take
};

TEST(BaselineMemory, EachEstimateCoversItsTablesAndFallsWithTheParameterItNames) {
  const Dataset d = taste_groups();
  const Interactions train = cf::all_interactions(d);
  const std::int64_t m = d.num_users(), n = d.num_items();
  const std::vector<Case> cases = {
      {"itemknn", {{"neighbors", std::int64_t{100}}}, {{"neighbors", std::int64_t{5}}}, "neighbors",
       n * 100 * 8},
      {"ials", {{"dim", std::int64_t{256}}}, {{"dim", std::int64_t{8}}}, "dim", (m + n) * 256 * 4},
      {"bpr", {{"dim", std::int64_t{256}}}, {{"dim", std::int64_t{8}}}, "dim",
       3 * (m + n) * 256 * 4},  // gradients and Adam's two moments
      {"lightgcn", {{"dim", std::int64_t{128}}, {"layers", std::int64_t{4}}},
       {{"dim", std::int64_t{8}}, {"layers", std::int64_t{1}}}, "layers", 3 * (m + n) * 128 * 4},
      {"gru4rec", {{"batch_size", std::int64_t{256}}, {"hidden_units", std::int64_t{64}}},
       {{"batch_size", std::int64_t{4}}, {"hidden_units", std::int64_t{64}}}, "batch_size",
       3 * (n + 1) * 64 * 4}};
  for (const auto& c : cases) {
    const MemoryEstimate big = estimate(c.model, d, c.big, train);
    const MemoryEstimate small = estimate(c.model, d, c.small, train);
    EXPECT_GE(big.bytes, c.at_least) << c.model << ": " << big.detail;
    EXPECT_LT(small.bytes, big.bytes) << c.model << ": " << small.detail << " vs " << big.detail;
    EXPECT_NE(big.lowered_by.find(c.names), std::string::npos) << c.model << ": " << big.lowered_by;
    EXPECT_FALSE(big.detail.empty()) << c.model;
  }
}

}  // namespace
}  // namespace recrun::test
