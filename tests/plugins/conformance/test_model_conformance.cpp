// Every in-tree model passes the SDK's conformance check (recrun/conformance.hpp), built through
// the real plugins and trained briefly on the check's tiny synthetic data set.
#include <gtest/gtest.h>

#include "plugins/bert4rec/bert4rec_support.hpp"
#include "recrun/conformance.hpp"

namespace recrun {
namespace {

namespace cf = recrun::conformance;

// Each call builds the model with the next seed, so the model the checkpoint is loaded into
// starts from other weights than the trained one.
cf::ModelFactory factory(const std::string& name, const Dataset& data,
                         std::map<std::string, ParamValue> raw) {
  auto seed = std::make_shared<std::uint64_t>(1);
  return [name, &data, raw = std::move(raw), seed] {
    return test::make_model(name, data, raw, (*seed)++);
  };
}

cf::Options options(std::int64_t epochs) {
  cf::Options o;
  o.epochs = epochs;
  o.temp_dir = test::temp_dir("conformance");
  return o;
}

const std::vector<std::string> kAll = {"shape",      "finite",     "repeatable",
                                       "batch_independence", "round_trip", "resave"};

TEST(ModelConformance, PopularityIsBitwiseConformant) {
  const Dataset data = cf::tiny_dataset();
  cf::Options o = options(1);
  o.bitwise = true;  // every row is the same count vector: no rounding anywhere
  const cf::Report r = cf::check(factory("popularity", data, {}), data, o);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
}

TEST(ModelConformance, Ease) {
  const Dataset data = cf::tiny_dataset();
  const cf::Report r = cf::check(factory("ease", data, {{"lambda", 20.0}}), data, options(1));
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
}

TEST(ModelConformance, MultiVae) {
  const Dataset data = cf::tiny_dataset();
  const cf::Report r = cf::check(
      factory("multivae", data,
              {{"hidden", std::int64_t{16}}, {"latent", std::int64_t{8}},
               {"batch_size", std::int64_t{16}}, {"total_anneal_steps", std::int64_t{10}}}),
      data, options(2));
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
}

const std::map<std::string, ParamValue> kSmallBert = {
    {"hidden_units", std::int64_t{16}}, {"num_heads", std::int64_t{2}},
    {"num_layers", std::int64_t{1}},    {"max_len", std::int64_t{16}},
    // Smaller than the 32 users scored: scoring runs in several length-bucketed chunks.
    {"batch_size", std::int64_t{8}}};

TEST(ModelConformance, Bert4Rec) {
  const Dataset data = cf::tiny_dataset();
  const cf::Report r = cf::check(factory("bert4rec", data, kSmallBert), data, options(2));
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
}

TEST(ModelConformance, Bert4RecWithGatedGenreAndYear) {
  const Dataset data = cf::tiny_dataset();  // has "genre" and "year"
  auto raw = kSmallBert;
  raw["features"] = std::vector<std::string>{"genre", "year"};
  raw["fusion"] = std::string("gate");
  const cf::Report r = cf::check(factory("bert4rec", data, raw), data, options(2));
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
}

}  // namespace
}  // namespace recrun
