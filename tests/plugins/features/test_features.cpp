// Feature encoder plugins: genre, director, writer, title, year.
#include <torch/torch.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "recrun/feature.hpp"
#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun::test {
namespace {

// Six items: i0..i5. i5 has no metadata at all.
Dataset metadata_dataset() {
  DatasetBuilder b;
  for (int i = 0; i < 6; ++i) b.add_interaction("u", fmt::format("i{}", i), i);
  const auto id = [&](int i) { return *b.item_id(fmt::format("i{}", i)); };
  b.add_category("genre", id(0), "Drama");
  b.add_category("genre", id(0), "War");
  b.add_category("genre", id(1), "Drama");
  b.add_category("genre", id(2), "Comedy");
  b.add_category("genre", id(3), "Comedy");
  b.add_category("genre", id(3), "Drama");
  b.add_category("genre", id(3), "War");
  b.add_category("genre", id(4), "War");
  b.add_category("director", id(0), "Kubrick");
  b.add_category("director", id(1), "Kubrick");
  b.add_category("director", id(2), "Coen");  // co-directed: the first one counts
  b.add_category("director", id(2), "Other Coen");
  b.add_category("writer", id(0), "A");
  b.add_category("writer", id(0), "B");
  b.add_category("writer", id(3), "B");
  for (int i = 0; i < 5; ++i) b.set_numeric("year", id(i), 1990.0f + static_cast<float>(i % 3));
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> v{static_cast<float>(i), 1.0f, -1.0f, 0.5f * i, 2.0f, 0.0f, 1.0f};
    b.set_dense("title", id(i), v);
  }
  return b.build("meta", {}, "meta");
}

std::shared_ptr<FeatureEncoderImpl> make_feature(const std::string& name, const Dataset& d,
                                                 std::int64_t hidden = 8, double dropout = 0.0) {
  torch::manual_seed(1);
  return test_registry().feature(name).make(
      FeatureEnv{.dataset = d, .hidden = hidden, .metadata_dropout = dropout});
}

torch::Tensor all_items(const Dataset& d) { return torch::arange(d.num_items(), torch::kInt64); }

TEST(FeaturePlugins, EveryEncoderMapsItemsToHiddenAndTrains) {
  const Dataset d = metadata_dataset();
  for (const std::string name : {"genre", "director", "writer", "title", "year"}) {
    auto enc = make_feature(name, d, 8);
    const torch::Tensor items = torch::tensor({{0, 1, 2}, {3, 4, 5}}, torch::kInt64);
    const torch::Tensor out = enc->forward(items);
    ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 3, 8})) << name;
    EXPECT_TRUE(out.isfinite().all().item<bool>()) << name;
    out.pow(2).sum().backward();
    bool any_grad = false;
    for (const auto& p : enc->parameters()) any_grad |= p.grad().defined();
    EXPECT_TRUE(any_grad) << name;
  }
}

TEST(FeaturePlugins, ItemsWithoutAValueShareTheMissingEmbedding) {
  const Dataset d = metadata_dataset();
  // Items without a value: genre {5}, director {3, 4, 5}, writer {1, 2, 4, 5}, year {5},
  // title {4, 5}.
  const std::map<std::string, std::vector<std::int64_t>> missing{
      {"genre", {5}}, {"director", {3, 4, 5}}, {"writer", {1, 2, 4, 5}},
      {"year", {5}},  {"title", {4, 5}}};
  for (const auto& [name, items] : missing) {
    auto enc = make_feature(name, d);
    torch::NoGradGuard no_grad;
    const torch::Tensor out = enc->forward(all_items(d));
    for (const auto i : items) EXPECT_TRUE(out[i].equal(out[items[0]])) << name << " item " << i;
    for (std::int64_t i = 0; i < d.num_items(); ++i)
      if (std::find(items.begin(), items.end(), i) == items.end())
        EXPECT_FALSE(out[i].equal(out[items[0]])) << name << " item " << i << " looks missing";
  }
}

TEST(FeaturePlugins, GenreIsTheMeanAndDirectorALookup) {
  const Dataset d = metadata_dataset();
  torch::NoGradGuard no_grad;
  const torch::Tensor genre = make_feature("genre", d)->forward(all_items(d));
  // i0 = mean(Drama, War); i1 = Drama; i4 = War; i3 = mean(Comedy, Drama, War); i2 = Comedy.
  EXPECT_TRUE(torch::allclose(genre[0], (genre[1] + genre[4]) / 2, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(genre[3], (genre[2] + genre[1] + genre[4]) / 3, 1e-6, 1e-6));
  const torch::Tensor director = make_feature("director", d)->forward(all_items(d));
  EXPECT_TRUE(director[0].equal(director[1]));   // same director
  EXPECT_FALSE(director[0].equal(director[2]));  // Kubrick vs Coen
}

TEST(FeaturePlugins, YearBucketsSeparateDistinctYears) {
  const Dataset d = metadata_dataset();
  torch::NoGradGuard no_grad;
  const torch::Tensor year = make_feature("year", d)->forward(all_items(d));
  EXPECT_TRUE(year[0].equal(year[3]));  // both 1990
  EXPECT_FALSE(year[0].equal(year[1]));
  EXPECT_FALSE(year[1].equal(year[2]));
}

TEST(FeaturePlugins, TitleIsALinearProjectionOfTheVectors) {
  const Dataset d = metadata_dataset();
  auto enc = make_feature("title", d);
  enc->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor out = enc->forward(all_items(d));
  // Linear: f(i3) - f(i2) == f(i1) - f(i0) since the vectors differ by the same step.
  EXPECT_TRUE(torch::allclose(out[3] - out[2], out[1] - out[0], 1e-5, 1e-6));
  // Cached while scoring, refreshed after a parameter changes.
  for (auto& p : enc->parameters()) p.add_(0.5);
  EXPECT_FALSE(enc->forward(all_items(d)).equal(out));
}

TEST(FeaturePlugins, MetadataDropoutOnlyWhileTraining) {
  const Dataset d = metadata_dataset();
  auto enc = make_feature("genre", d, 64, 0.5);
  const torch::Tensor items = torch::zeros({200}, torch::kInt64);
  enc->train();
  const double zeros = enc->forward(items).eq(0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(zeros, 0.5, 0.05);
  enc->eval();
  EXPECT_EQ(enc->forward(items).eq(0).sum().item<std::int64_t>(), 0);
}

TEST(FeaturePlugins, MissingFeatureInTheDataSetIsAClearError) {
  DatasetBuilder b;
  b.add_interaction("u", "i", 0);
  const Dataset bare = b.build("bare", {}, "bare");
  for (const std::string name : {"genre", "director", "writer", "title", "year"}) {
    try {
      make_feature(name, bare);
      FAIL() << name;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace recrun::test
