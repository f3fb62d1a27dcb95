// The questions of `recrun results` on hand-made rows: filters, sorting, configurations over
// seeds (mean ± std), best per group by validation, key resolution and the output formats.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "recrun/error.hpp"
#include "results/query.hpp"
#include "results/table.hpp"

namespace recrun::results {
namespace {

RunRow row(std::int64_t id, std::string key, std::string group, std::string model, double lambda,
           std::int64_t seed, double valid, double test,
           RunStatus status = RunStatus::finished) {
  RunRow r;
  r.id = id;
  r.trial_key = std::move(key);
  r.experiment = "study";
  r.group_name = std::move(group);
  r.model = std::move(model);
  r.seed = seed;
  r.status = status;
  r.protocol_json = R"({"monitor":"NDCG@20","ks":[5,20]})";
  r.params = {Param::of_float("lambda", lambda), Param::of_string("loss", "mse")};
  if (status == RunStatus::finished) {
    r.valid_metrics = {{"NDCG@20", valid}};
    r.test_metrics = {{"NDCG@20", test}, {"Hit@5", test * 2}};
  }
  return r;
}

// Two EASE configurations with three seeds each, one popularity run and a failed run.
std::vector<RunRow> rows() {
  return {row(1, "aa11", "ease", "ease", 100, 1, 0.30, 0.20),
          row(2, "aa22", "ease", "ease", 100, 2, 0.32, 0.22),
          row(3, "aa33", "ease", "ease", 100, 3, 0.34, 0.24),
          // lambda = 500: one seed is better than any of lambda 100, but its mean is lower.
          row(4, "bb11", "ease", "ease", 500, 1, 0.36, 0.10),
          row(5, "bb22", "ease", "ease", 500, 2, 0.20, 0.30),
          row(6, "bb33", "ease", "ease", 500, 3, 0.22, 0.30),
          row(7, "cc11", "pop", "popularity", 0, 1, 0.10, 0.05),
          row(8, "dd11", "ease", "ease", 1000, 1, 0, 0, RunStatus::failed)};
}

TEST(ResultsQuery, FiltersByExperimentModelStatusAndParams) {
  const auto all = rows();
  RunFilter f;
  f.model = "ease";
  EXPECT_EQ(filter_runs(all, f).size(), 7u);
  f.status = RunStatus::finished;
  EXPECT_EQ(filter_runs(all, f).size(), 6u);
  f.where = {"lambda=5e2"};  // numbers compare as numbers: 5e2 is 500
  const auto five = filter_runs(all, f);
  ASSERT_EQ(five.size(), 3u);
  EXPECT_EQ(five[0]->trial_key, "bb11");
  f.where = {"lambda=500", "loss=mse"};
  EXPECT_EQ(filter_runs(all, f).size(), 3u);
  f.where = {"loss=bpr"};
  EXPECT_TRUE(filter_runs(all, f).empty());
  f = {};
  f.experiment = "other";
  EXPECT_TRUE(filter_runs(all, f).empty());
  f = {};
  f.where = {"lamda=500"};
  try {
    filter_runs(all, f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'lambda'"), std::string::npos) << e.what();
  }
  f.where = {"lambda"};
  EXPECT_THROW(filter_runs(all, f), Error);
}

// A list parameter matches in the form the dry run and the labels print (features=[genre]) as
// well as the stored JSON; a --where that matches nothing says which values there are.
TEST(ResultsQuery, WhereReadsValuesAsTheirTypeAndExplainsAnEmptyResult) {
  auto all = rows();
  all[0].params.push_back(Param::of_list("features", R"(["genre"])"));
  all[1].params.push_back(Param::of_list("features", R"(["genre","year"])"));
  RunFilter f;
  for (const std::string w : {"features=[genre]", R"(features=["genre"])", "features=genre",
                              "features=[ genre ]"}) {
    f.where = {w};
    const auto one = filter_runs(all, f);
    ASSERT_EQ(one.size(), 1u) << w;
    EXPECT_EQ(one[0]->trial_key, all[0].trial_key) << w;
  }
  f.where = {"features=[genre,year]"};
  ASSERT_EQ(filter_runs(all, f).size(), 1u);
  EXPECT_EQ(filter_runs(all, f)[0]->trial_key, all[1].trial_key);
  f.where = {"features=[year]"};
  EXPECT_TRUE(filter_runs(all, f).empty());
  EXPECT_EQ(explain_no_match(all, f),
            R"(--where features=[year]: no run has this value; values present: ["genre"], ["genre","year"])");
  f.where = {"lambda=50"};
  f.model = "ease";
  EXPECT_TRUE(filter_runs(all, f).empty());
  // Nearest first by edit distance: 500 is one edit from 50, 100 two, 1000 three.
  EXPECT_EQ(explain_no_match(all, f),
            "--where lambda=50: no run has this value; values present: 500, 100, 1000");
  f.model = "popularity";
  f.where = {"features=[genre]"};
  EXPECT_EQ(explain_no_match(all, f),
            "--where features=[genre]: no run passing the other filters has this parameter");
}

TEST(ResultsQuery, SortsByAMetricWithMissingValuesLast) {
  const auto all = rows();
  auto runs = filter_runs(all, {});
  sort_runs(runs, parse_metric_ref("test_ndcg@20"), false);
  // 0.30, 0.30 (stable: bb22 before bb33), 0.24, 0.22, 0.20, 0.10, 0.05, then the failed run.
  std::vector<std::string> keys;
  for (const auto* r : runs) keys.push_back(r->trial_key);
  EXPECT_EQ(keys, (std::vector<std::string>{"bb22", "bb33", "aa33", "aa22", "aa11", "bb11", "cc11",
                                            "dd11"}));
  sort_runs(runs, parse_metric_ref("valid_NDCG@20"), true);
  EXPECT_EQ(runs.front()->trial_key, "cc11");
  EXPECT_EQ(runs.back()->trial_key, "dd11");
  EXPECT_THROW(sort_runs(runs, parse_metric_ref("MRR@10"), false), Error);
  EXPECT_EQ(parse_metric_ref("Hit@5").split, SplitName::test);
  EXPECT_THROW(parse_metric_ref("valid_"), Error);
}

TEST(ResultsQuery, BestPerGroupAveragesOverSeeds) {
  const auto all = rows();
  const auto best = best_per_group(filter_runs(all, {}));
  ASSERT_EQ(best.size(), 2u);
  // lambda 100: valid 0.30, 0.32, 0.34 -> mean 0.32, std 0.02; lambda 500: mean 0.26. The single
  // best seed (0.36, lambda 500) does not decide it.
  EXPECT_EQ(best[0].group, "ease");
  ASSERT_EQ(best[0].runs.size(), 3u);
  EXPECT_EQ(best[0].runs[0]->trial_key, "aa11");
  EXPECT_NEAR(best[0].monitor.mean, 0.32, 1e-12);
  EXPECT_NEAR(best[0].monitor.std, 0.02, 1e-12);
  EXPECT_EQ(best[0].monitor.n, 3u);
  const auto test = summarize_metric(best[0], SplitName::test, "NDCG@20");
  EXPECT_NEAR(test.mean, 0.22, 1e-12);
  EXPECT_NEAR(test.std, 0.02, 1e-12);
  EXPECT_EQ(common_metrics(best[0], SplitName::test), (std::vector<std::string>{"Hit@5", "NDCG@20"}));
  EXPECT_EQ(best[1].group, "pop");
  EXPECT_EQ(best[1].monitor.n, 1u);
  EXPECT_TRUE(std::isnan(best[1].monitor.std));
  EXPECT_EQ(varying_params(filter_runs(all, {})), (std::vector<std::string>{"lambda"}));
  EXPECT_EQ(params_label(*best[0].runs[0], {"lambda"}), "lambda=100");
}

TEST(ResultsQuery, SidesAreRunsKeyPrefixesIdsOrGroups) {
  const auto all = rows();
  EXPECT_EQ(resolve_run("bb2", all).trial_key, "bb22");
  EXPECT_EQ(resolve_run("id:7", all).trial_key, "cc11");
  EXPECT_THROW(resolve_run("aa", all), Error);  // three keys start with it
  EXPECT_THROW(resolve_run("zz", all), Error);
  EXPECT_THROW(resolve_run("id:x", all), Error);
  EXPECT_THROW(resolve_run("id:99", all), Error);
  const Side one = resolve_side("aa22", all, false);
  EXPECT_EQ(one.config.runs.size(), 1u);
  const Side pooled = resolve_side("aa22", all, true);
  EXPECT_EQ(pooled.config.runs.size(), 3u);
  const Side group = resolve_side("study/ease", all, false);
  ASSERT_EQ(group.config.runs.size(), 3u);
  EXPECT_EQ(group.config.runs[0]->trial_key, "aa11");
  EXPECT_THROW(resolve_side("study/nope", all, false), Error);
  EXPECT_THROW(resolve_side("nope/ease", all, false), Error);
  EXPECT_THROW(resolve_side("dd11", all, false), Error);  // failed: nothing to compare
}

TEST(ResultsQuery, FormatsQuoteAndEscape) {
  Table t;
  t.header = {"key", "params", "NDCG@10"};
  t.rows.push_back({Cell::of("a1"), Cell::of("loss=\"bpr\",x|y"), Cell::of(0.25)});
  t.rows.push_back({Cell::of("b2"), Cell::of("-"), Cell::of(std::optional<double>{})});
  EXPECT_EQ(render(t, Format::csv),
            "key,params,NDCG@10\n"
            "a1,\"loss=\"\"bpr\"\",x|y\",0.2500\n"
            "b2,,\n");
  EXPECT_EQ(render(t, Format::md),
            "| key | params | NDCG@10 |\n"
            "|---|---|---|\n"
            "| a1 | loss=\"bpr\",x\\|y | 0.2500 |\n"
            "| b2 | - | - |\n");
  const auto j = nlohmann::json::parse(render(t, Format::json));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["params"], "loss=\"bpr\",x|y");
  EXPECT_EQ(j[0]["NDCG@10"].get<double>(), 0.25);  // a number, at full precision
  EXPECT_TRUE(j[1]["NDCG@10"].is_null());
  EXPECT_TRUE(j[1]["params"].is_null());
  EXPECT_EQ(render(t, Format::table),
            "key  params          NDCG@10\n"
            "----------------------------\n"
            "a1   loss=\"bpr\",x|y   0.2500\n"
            "b2   -                     -\n");
  EXPECT_THROW(parse_format("xml"), Error);
}

}  // namespace
}  // namespace recrun::results
