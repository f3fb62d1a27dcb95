#include <gtest/gtest.h>

#include <cmath>

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
  opt.keep_ranks = true;
  HashScorer model;
  opt.batch_size = users;
  const EvalResult whole = evaluate(model, history, ids, targets, opt);
  EXPECT_EQ(model.calls, 1);
  for (const std::int64_t bs : {1, 2, 7, 16, 52}) {
    opt.batch_size = bs;
    const EvalResult r = evaluate(model, history, ids, targets, opt);
    EXPECT_EQ(r.ranks, whole.ranks) << "batch size " << bs;
    EXPECT_EQ(r.metrics, whole.metrics) << "batch size " << bs;  // bit-identical
  }
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
  Interactions history({0, 0}, {}, 3);
  FixedScorer nan_model({1.0f, NAN, 0.0f});
  EXPECT_THROW(evaluate(nan_model, history, {0}, {0}, EvalOptions{}), Error);
  FixedScorer short_model({1.0f, 2.0f});
  EXPECT_THROW(evaluate(short_model, history, {0}, {0}, EvalOptions{}), Error);
}

}  // namespace
}  // namespace recrun::core
