#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "core/evaluator.hpp"
#include "recrun/error.hpp"

namespace recrun::core {
namespace {

// Scores that depend only on (user, item): any batching must give the same ranks.
class HashScorer final : public Model {
 public:
  EpochResult fit_epoch(TrainContext&) override { return EpochResult::done(); }
  torch::Tensor score(const UserBatch& batch) override {
    auto out = torch::empty({batch.size(), batch.num_items()});
    auto* o = out.data_ptr<float>();
    for (std::int64_t b = 0; b < batch.size(); ++b)
      for (std::int64_t i = 0; i < batch.num_items(); ++i) {
        const std::uint64_t h = (batch.users()[b] * 2654435761u) ^ (i * 40503u + 17);
        o[b * batch.num_items() + i] = static_cast<float>(h % 97);  // many ties on purpose
      }
    ++calls;
    return out;
  }
  void save(Archive&) const override {}
  void load(const Archive&) override {}
  int calls = 0;
};

// Returns a fixed row for every user.
class FixedScorer final : public Model {
 public:
  explicit FixedScorer(std::vector<float> row) : row_(std::move(row)) {}
  EpochResult fit_epoch(TrainContext&) override { return EpochResult::done(); }
  torch::Tensor score(const UserBatch& batch) override {
    return torch::tensor(row_).unsqueeze(0).repeat({batch.size(), 1});
  }
  void save(Archive&) const override {}
  void load(const Archive&) override {}

 private:
  std::vector<float> row_;
};

TEST(Evaluator, RankCountsHigherScoresAndTiesWithSmallerIds) {
  const std::vector<float> s{0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
  EXPECT_EQ(rank_of(s.data(), 5, 1), 0);
  EXPECT_EQ(rank_of(s.data(), 5, 0), 1);  // behind item 1
  EXPECT_EQ(rank_of(s.data(), 5, 2), 2);  // behind 1, and tied item 0 has a smaller id
  EXPECT_EQ(rank_of(s.data(), 5, 4), 3);
  EXPECT_EQ(rank_of(s.data(), 5, 3), 4);
}

TEST(Evaluator, HandComputedMetricValues) {
  EXPECT_DOUBLE_EQ(metric_value("Hit", 0, 10), 1.0);
  EXPECT_DOUBLE_EQ(metric_value("Hit", 9, 10), 1.0);
  EXPECT_DOUBLE_EQ(metric_value("Hit", 10, 10), 0.0);
  EXPECT_DOUBLE_EQ(metric_value("NDCG", 0, 10), 1.0);
  EXPECT_DOUBLE_EQ(metric_value("NDCG", 2, 10), 0.5);  // 1 / log2(4)
  EXPECT_DOUBLE_EQ(metric_value("NDCG", 6, 10), 1.0 / 3.0);  // 1 / log2(8)
  EXPECT_DOUBLE_EQ(metric_value("NDCG", 6, 5), 0.0);
  EXPECT_DOUBLE_EQ(metric_value("MRR", 3, 10), 0.25);
  EXPECT_DOUBLE_EQ(metric_value("Recall", 4, 5), 1.0);
  EXPECT_DOUBLE_EQ(metric_value("Recall", 5, 5), 0.0);
  EXPECT_DOUBLE_EQ(metric_value("Precision", 4, 5), 0.2);
  EXPECT_DOUBLE_EQ(metric_value("Precision", 5, 5), 0.0);
  EXPECT_DOUBLE_EQ(metric_value("MAP", 3, 10), 0.25);
  EXPECT_DOUBLE_EQ(metric_value("MAP", 10, 10), 0.0);
}

TEST(Evaluator, SeenItemsAreExcludedAndAveragesAreHandComputed) {
  // 6 items; scores fall with the item id. Users: u0 saw {0,1}, u1 saw {2}, u2 saw nothing.
  Interactions history({0, 2, 3, 3}, {0, 1, 2}, 6);
  FixedScorer model({6, 5, 4, 3, 2, 1});
  EvalOptions opt;
  opt.ks = {1, 3};
  // u0 target 3: ahead only item 2 -> rank 1. u1 target 2: its own history holds 2 but the
  // target stays rankable; ahead 0,1 -> rank 2. u2 target 5: ahead 0..4 -> rank 5.
  const EvalResult r = evaluate(model, history, {0, 1, 2}, {3, 2, 5}, opt);
  EXPECT_EQ(r.users, 3);
  EXPECT_DOUBLE_EQ(r.metrics.at("Hit@1"), 0.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("Hit@3"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("NDCG@3"), (1 / std::log2(3.0) + 1 / std::log2(4.0)) / 3);
  EXPECT_DOUBLE_EQ(r.metrics.at("MRR@3"), (1.0 / 2 + 1.0 / 3) / 3);
  EXPECT_DOUBLE_EQ(r.metrics.at("Recall@3"), 2.0 / 3.0);
}

TEST(Evaluator, ResultsDoNotDependOnBatchSize) {
  const std::int64_t users = 53, items = 211;
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  std::vector<std::int64_t> ids;
  std::vector<std::int32_t> targets;
  for (std::int64_t u = 0; u < users; ++u) {
    for (std::int64_t k = 0; k < u % 9; ++k) flat.push_back(static_cast<std::int32_t>((u * 7 + k * 13) % items));
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
    ids.push_back(u);
    targets.push_back(static_cast<std::int32_t>((u * 31 + 5) % items));
  }
  Interactions history(offsets, flat, items);
  EvalOptions opt;
  opt.ks = {1, 5, 10, 50};
  opt.metrics = known_metrics();
  opt.keep_ranks = true;
  opt.keep_per_user = true;
  HashScorer model;
  opt.batch_size = users;
  const EvalResult whole = evaluate(model, history, ids, targets, opt);
  EXPECT_EQ(model.calls, 1);
  for (const std::int64_t bs : {1, 2, 7, 16, 52}) {
    opt.batch_size = bs;
    const EvalResult r = evaluate(model, history, ids, targets, opt);
    EXPECT_EQ(r.ranks, whole.ranks) << "batch size " << bs;
    EXPECT_EQ(r.metrics, whole.metrics) << "batch size " << bs;  // bit-identical
    EXPECT_EQ(r.per_user, whole.per_user) << "batch size " << bs;
  }
  // Every mean is the mean of its per-user values; Coverage alone has none.
  EXPECT_EQ(whole.per_user.size(), whole.metrics.size() - opt.ks.size());
  for (const auto& [name, values] : whole.per_user) {
    ASSERT_EQ(values.size(), ids.size()) << name;
    double sum = 0;
    for (const double v : values) sum += v;
    EXPECT_EQ(whole.metrics.at(name), sum / static_cast<double>(values.size())) << name;
  }
  EXPECT_GT(whole.metrics.at("Coverage@50"), whole.metrics.at("Coverage@5"));
  EXPECT_LE(whole.metrics.at("Coverage@50"), 1.0);
}

TEST(Evaluator, TopKIsAStableSelectionWithoutSeenItems) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> s{0.5f, 0.9f, 0.5f, 0.1f, 0.5f, -inf};
  std::vector<std::int32_t> scratch, out;
  top_k(s.data(), 6, 3, scratch, out);
  EXPECT_EQ(out, (std::vector<std::int32_t>{1, 0, 2}));  // ties by smaller id, as rank_of counts
  top_k(s.data(), 6, 1, scratch, out);
  EXPECT_EQ(out, (std::vector<std::int32_t>{1}));
  top_k(s.data(), 6, 10, scratch, out);  // K beyond the candidates: the -inf item is not listed
  EXPECT_EQ(out, (std::vector<std::int32_t>{1, 0, 2, 4, 3}));
  // The list agrees with rank_of for every listed item.
  for (std::size_t j = 0; j < out.size(); ++j)
    EXPECT_EQ(rank_of(s.data(), 6, out[j]), static_cast<std::int64_t>(j));
}

TEST(Evaluator, PrecisionMapCoverageAndArpAreHandComputed) {
  // The data of SeenItemsAreExcludedAndAveragesAreHandComputed: 6 items scored 6..1, u0 saw
  // {0,1}, u1 saw {2}, u2 nothing; targets 3, 2, 5 at ranks 1, 2, 5.
  Interactions history({0, 2, 3, 3}, {0, 1, 2}, 6);
  FixedScorer model({6, 5, 4, 3, 2, 1});
  EvalOptions opt;
  opt.ks = {1, 3};
  opt.metrics = {"Precision", "MAP", "Coverage", "ARP"};
  opt.keep_per_user = true;
  const EvalResult r = evaluate(model, history, {0, 1, 2}, {3, 2, 5}, opt);
  // Precision@3 = hits / 3: u0 and u1 hit -> (1/3 + 1/3 + 0) / 3 = 2/9.
  EXPECT_DOUBLE_EQ(r.metrics.at("Precision@1"), 0.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("Precision@3"), 2.0 / 9.0);
  // MAP@3 with one relevant item: precision at the hit's position = 1/(rank+1): (1/2+1/3+0)/3.
  EXPECT_DOUBLE_EQ(r.metrics.at("MAP@3"), 5.0 / 18.0);
  // Top-3 lists: u0 [2,3,4] (0 and 1 seen); u1 [0,1,2] (its target 2 stays rankable);
  // u2 [0,1,2]. Union {0,1,2,3,4}: 5 of 6 items. Top-1: u0 [2], u1 [0], u2 [0] -> {0,2}.
  EXPECT_DOUBLE_EQ(r.metrics.at("Coverage@3"), 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("Coverage@1"), 2.0 / 6.0);
  // Popularity from the history passed in: items 0, 1, 2 once each. ARP@3: u0 (1+0+0)/3,
  // u1 (1+1+1)/3, u2 1 -> (1/3 + 1 + 1) / 3 = 7/9. ARP@1: 1, 1, 1.
  EXPECT_DOUBLE_EQ(r.metrics.at("ARP@3"), 7.0 / 9.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("ARP@1"), 1.0);
  ASSERT_EQ(r.per_user.at("ARP@3").size(), 3u);
  EXPECT_DOUBLE_EQ(r.per_user.at("ARP@3")[0], 1.0 / 3.0);
  EXPECT_EQ(r.per_user.at("MAP@3"), (std::vector<double>{0.5, 1.0 / 3.0, 0.0}));
  EXPECT_EQ(r.per_user.at("Precision@3"), (std::vector<double>{1.0 / 3.0, 1.0 / 3.0, 0.0}));
  EXPECT_EQ(r.per_user.count("Coverage@3"), 0u);

  // Given popularity (training counts) instead: 10, 8, 6, 4, 2, 0.
  opt.item_popularity = std::make_shared<std::vector<double>>(std::vector<double>{10, 8, 6, 4, 2, 0});
  const EvalResult p = evaluate(model, history, {0, 1, 2}, {3, 2, 5}, opt);
  // ARP@3: u0 (6+4+2)/3 = 4, u1 (10+8+6)/3 = 8, u2 8 -> 20/3. ARP@1: 6, 10, 10 -> 26/3.
  EXPECT_DOUBLE_EQ(p.metrics.at("ARP@3"), 20.0 / 3.0);
  EXPECT_DOUBLE_EQ(p.metrics.at("ARP@1"), 26.0 / 3.0);
  for (const auto& [name, values] : p.per_user) {
    double sum = 0;
    for (const double v : values) sum += v;
    EXPECT_EQ(p.metrics.at(name), sum / 3.0) << name;
  }
  opt.item_popularity = std::make_shared<std::vector<double>>(std::vector<double>{1, 2});
  EXPECT_THROW(evaluate(model, history, {0}, {3}, opt), Error);  // wrong length
}

TEST(Evaluator, RejectsBadOptionsAndBadScores) {
  EvalOptions opt;
  opt.metrics = {"NDGC"};
  try {
    validate(opt);
    FAIL();
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'NDCG'"), std::string::npos) << e.what();
  }
  opt = {};
  opt.ks = {0};
  EXPECT_THROW(validate(opt), ParamError);
  opt = {};
  opt.ks = {5, 5};
  EXPECT_THROW(validate(opt), ParamError);
  opt = {};
  opt.metrics = {"MAP", "MAP"};
  EXPECT_THROW(validate(opt), ParamError);
  opt.metrics = {"Precision", "MAP", "Coverage", "ARP"};
  EXPECT_NO_THROW(validate(opt));
  Interactions history({0, 0}, {}, 3);
  FixedScorer nan_model({1.0f, NAN, 0.0f});
  EXPECT_THROW(evaluate(nan_model, history, {0}, {0}, EvalOptions{}), Error);
  FixedScorer short_model({1.0f, 2.0f});
  EXPECT_THROW(evaluate(short_model, history, {0}, {0}, EvalOptions{}), Error);
}

}  // namespace
}  // namespace recrun::core
