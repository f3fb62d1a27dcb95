// `recrun results` on a real results.db made by real runs of the real binary (EASE and
// popularity on synthetic data): per-user metrics stored by the runner, list with filters,
// sorting and formats, best over seeds (also in the sweep summary), compare with paired tests,
// curve, and the errors.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "results/results_store.hpp"
#include "results/stats.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;
namespace results = recrun::results;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

class ResultsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(recrun::test::temp_dir("results-e2e"));
    const auto data = *dir_ / "data";
    auto r = run_command(fmt::format(
        "{} data synth --out {} --users 120 --items 60 --interactions-per-user 10 --min-length 5 "
        "--seed 5",
        recrun::test::recrun_bin(), shell_quote(data.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // id 1, 2: EASE lambda 10 and 200; id 3: popularity. ks = 5, 20 with every metric family.
    for (const std::string& m : {std::string("ease --set lambda=10"),
                                 std::string("ease --set lambda=200"), std::string("popularity")}) {
      r = run_command(fmt::format(
          "{} run --model {} --data {} --results {} --threads 1 --ks 5,20 --monitor NDCG@20 "
          "--metrics Hit,NDCG,MRR,Recall,Precision,MAP,Coverage,ARP",
          recrun::test::recrun_bin(), m, shell_quote(data.string()),
          shell_quote((*dir_ / "res").string())));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  recrun::test::CommandResult results_cmd(const std::string& args) const {
    return run_command(fmt::format("{} results {} --results {}", recrun::test::recrun_bin(), args,
                                   shell_quote((*dir_ / "res").string())));
  }
  static fs::path* dir_;
};
fs::path* ResultsE2E::dir_ = nullptr;

TEST_F(ResultsE2E, EveryFinishedRunStoresPerUserMetricsWhoseMeansAreTheMetrics) {
  results::ResultsStore store(*dir_ / "res" / "results.db");
  const auto runs = store.runs();
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& run : runs) {
    const auto per_user = store.user_metrics(run.trial_key);
    ASSERT_TRUE(per_user) << run.trial_key;
    ASSERT_GT(per_user->users.size(), 50u);
    EXPECT_TRUE(std::is_sorted(per_user->users.begin(), per_user->users.end()));
    // Every metric but Coverage, on both splits; each mean is its per-user values' mean.
    EXPECT_EQ(per_user->test.size(), 14u);  // 7 families x 2 cut-offs
    EXPECT_EQ(per_user->valid.size(), 14u);
    for (const auto& [split, list, metrics] :
         {std::tuple{"test", &per_user->test, &run.test_metrics},
          std::tuple{"valid", &per_user->valid, &run.valid_metrics}})
      for (const auto& m : *list) {
        double sum = 0;
        for (const float v : m.values) sum += v;
        double stored = std::nan("");
        for (const auto& x : *metrics)
          if (x.name == m.name) stored = x.value;
        // float32 storage: equal to the mean within float precision.
        EXPECT_NEAR(sum / m.values.size(), stored, 1e-6 * std::max(1.0, std::fabs(stored)))
            << run.model << " " << split << " " << m.name;
      }
    bool coverage = false;
    for (const auto& m : run.test_metrics) coverage |= m.name == "Coverage@20";
    EXPECT_TRUE(coverage);
  }
}

TEST_F(ResultsE2E, ListFiltersSortsAndFormats) {
  auto r = results_cmd("list --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 4u) << r.output;  // header + 3 runs
  EXPECT_EQ(lines[0].rfind("id,key,experiment,group,model,seed,status,params,valid_NDCG@20,", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[0].find("test_ARP@20"), std::string::npos);
  EXPECT_NE(lines[0].find("test_Precision@5"), std::string::npos);

  r = results_cmd("list --model ease --where lambda=200 --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  EXPECT_EQ(lines[1].rfind("2,", 0), 0u) << lines[1];

  // Sorted by test NDCG@20, highest first, as the stored values say.
  results::ResultsStore store(*dir_ / "res" / "results.db");
  std::vector<std::pair<double, std::string>> expected;
  for (const auto& run : store.runs())
    for (const auto& m : run.test_metrics)
      if (m.name == "NDCG@20") expected.push_back({m.value, run.trial_key});
  std::sort(expected.rbegin(), expected.rend());
  r = results_cmd("list --sort NDCG@20 --format json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j[i]["key"], expected[i].second);
    EXPECT_EQ(j[i]["test_NDCG@20"].get<double>(), expected[i].first);
  }
  // JSON types: integers for ids and seeds, the parameters as an object of typed values, null
  // for an absent error.
  r = results_cmd("list --model ease --format json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto typed = nlohmann::json::parse(r.output);
  ASSERT_EQ(typed.size(), 2u) << r.output;
  EXPECT_TRUE(typed[0]["id"].is_number_integer()) << r.output;
  EXPECT_EQ(typed[0]["id"].get<std::int64_t>(), 1);
  EXPECT_TRUE(typed[0]["seed"].is_number_integer()) << r.output;
  ASSERT_TRUE(typed[0]["params"].is_object()) << r.output;
  EXPECT_TRUE(typed[0]["params"]["lambda"].is_number_float()) << r.output;
  EXPECT_EQ(typed[1]["params"]["lambda"].get<double>(), 200.0);
  EXPECT_TRUE(typed[0]["error"].is_null()) << r.output;
  EXPECT_TRUE(typed[0]["experiment"].is_null()) << r.output;
  // A --where that matches nothing says so, with the values there are.
  r = results_cmd("list --model ease --where lambda=20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--where lambda=20: no run has this value; values present: 10, 200"),
            std::string::npos)
      << r.output;

  r = results_cmd("list --format md --status finished");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("| id | key |", 0), 0u) << r.output;
  r = results_cmd("list --status failed");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(none)"), std::string::npos) << r.output;

  // Mistakes: said, non-zero.
  r = results_cmd("list --where lamda=10");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("did you mean 'lambda'"), std::string::npos) << r.output;
  r = results_cmd("list --format xml");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--format 'xml'"), std::string::npos) << r.output;
  r = results_cmd("list --status done");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--status"), std::string::npos) << r.output;
  r = results_cmd("list --sort Nope@3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no listed run has this metric"), std::string::npos) << r.output;
  r = results_cmd("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown results command 'frobnicate'"), std::string::npos) << r.output;
  const auto none = run_command(fmt::format("{} results list --results {}",
                                            recrun::test::recrun_bin(),
                                            shell_quote((*dir_ / "nothing").string())));
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.output.find("no results database at"), std::string::npos) << none.output;
  EXPECT_FALSE(fs::exists(*dir_ / "nothing" / "results.db"));  // reading creates nothing
}

TEST_F(ResultsE2E, CompareRunsPairedTestsOnPerUserMetrics) {
  auto r = results_cmd("compare id:1 id:3 --metric NDCG@20 --format json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 1u);
  // The same test on the stored per-user values, B - A as the command reports it.
  results::ResultsStore store(*dir_ / "res" / "results.db");
  const auto runs = store.runs();
  const auto a = store.user_metrics(runs[0].trial_key), b = store.user_metrics(runs[2].trial_key);
  const auto values = [](const results::UserMetrics& u) {
    for (const auto& m : u.test)
      if (m.name == "NDCG@20") return std::vector<double>(m.values.begin(), m.values.end());
    return std::vector<double>{};
  };
  const auto t = results::paired_t_test(values(*b), values(*a));
  const auto w = results::wilcoxon_signed_rank(values(*b), values(*a));
  EXPECT_EQ(j[0]["users"].get<std::size_t>(), a->users.size());
  EXPECT_NEAR(j[0]["t_p"].get<double>(), t.p, 1e-12);
  EXPECT_NEAR(j[0]["t"].get<double>(), t.t, 1e-9);
  EXPECT_NEAR(j[0]["wilcoxon_p"].get<double>(), w.p, 1e-12);
  EXPECT_NEAR(j[0]["cohen_dz"].get<double>(), t.cohen_dz, 1e-9);
  EXPECT_NEAR(j[0]["rank_biserial"].get<double>(), w.rank_biserial, 1e-9);

  r = results_cmd("compare " + runs[0].trial_key.substr(0, 10) + " id:2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("paired t-test"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Wilcoxon signed-rank"), std::string::npos) << r.output;
  // lambda differs and is marked; the metric table has both splits.
  bool lambda_marked = false;
  for (const auto& line : lines_of(r.output))
    lambda_marked |= line.rfind("lambda ", 0) == 0 && line.back() == '*';
  EXPECT_TRUE(lambda_marked) << r.output;
  EXPECT_NE(r.output.find("valid_NDCG@20"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test_ARP@20"), std::string::npos) << r.output;

  r = results_cmd("compare id:1");
  EXPECT_NE(r.exit_code, 0);
  r = results_cmd("compare id:1 id:9");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no run has id 9"), std::string::npos) << r.output;
  r = results_cmd("compare id:1 id:2 --metric Nope@1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no per-user test metric 'Nope@1'"), std::string::npos) << r.output;
}

TEST_F(ResultsE2E, BestOfSingleRunsAndCurve) {
  auto r = results_cmd("best --format json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 2u) << r.output;  // ease and popularity
  results::ResultsStore store(*dir_ / "res" / "results.db");
  const auto runs = store.runs();
  const auto valid = [](const results::RunRow& row) {
    for (const auto& m : row.valid_metrics)
      if (m.name == "NDCG@20") return m.value;
    return -1.0;
  };
  const auto& best_ease = valid(runs[0]) >= valid(runs[1]) ? runs[0] : runs[1];
  EXPECT_EQ(j[0]["group"], "ease");
  EXPECT_EQ(j[0]["runs"], best_ease.trial_key);
  EXPECT_EQ(j[0]["n"].get<int>(), 1);
  EXPECT_EQ(j[0]["valid_NDCG@20_mean"].get<double>(), valid(best_ease));
  EXPECT_TRUE(j[0]["valid_NDCG@20_std"].is_null());  // one seed: no std

  r = results_cmd("curve id:1 --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = lines_of(r.output);
  ASSERT_GE(lines.size(), 2u) << r.output;
  EXPECT_EQ(lines[0].rfind("epoch,", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("valid/NDCG@20"), std::string::npos) << lines[0];
  r = results_cmd("curve id:1 --metric NDCG@20 --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto only = lines_of(r.output);
  ASSERT_EQ(only.size(), 2u) << r.output;  // EASE: one epoch
  EXPECT_EQ(only[0], "epoch,valid/NDCG@20");
  double logged = -1;
  for (const auto& p : store.epoch_metrics(runs[0].trial_key))
    if (p.name == "NDCG@20") logged = p.value;
  EXPECT_EQ(only[1], fmt::format("0,{:.6f}", logged));
  r = results_cmd("curve id:1 --metric loss2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("logged no such metric"), std::string::npos) << r.output;
}

TEST_F(ResultsE2E, SweepSummaryAndBestAverageOverSeeds) {
  const fs::path dir = recrun::test::temp_dir("results-seeds");
  std::ofstream(dir / "seeds.toml") << fmt::format(R"([experiment]
name = "seeds"
seeds = [1, 2]

[data]
path = "{}"

[protocol]
ks = [10]

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10.0, 200.0]
)",
                                                   (*dir_ / "data").string());
  const auto res = (dir / "res").string();
  auto r = run_command(fmt::format("{} sweep {} --results {} --threads 1 --no-live",
                                   recrun::test::recrun_bin(), shell_quote((dir / "seeds.toml").string()),
                                   shell_quote(res)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("best configuration per group"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("averaged over its seeds"), std::string::npos) << r.output;
  // EASE is deterministic: both seeds agree, so the std is 0.
  EXPECT_NE(r.output.find(" ± 0.0000"), std::string::npos) << r.output;
  r = run_command(fmt::format("{} results best seeds --results {} --format json",
                              recrun::test::recrun_bin(), shell_quote(res)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["n"].get<int>(), 2);
  EXPECT_EQ(j[0]["valid_NDCG@10_std"].get<double>(), 0.0);
  r = run_command(fmt::format("{} results best seeds --results {}", recrun::test::recrun_bin(),
                              shell_quote(res)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" ± 0.0000"), std::string::npos) << r.output;
  r = run_command(fmt::format("{} results best nope --results {}", recrun::test::recrun_bin(),
                              shell_quote(res)));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("experiments: seeds"), std::string::npos) << r.output;
  // Configurations compared with their seeds pooled: the same configuration against itself.
  r = run_command(fmt::format("{} results compare seeds/ease seeds/ease --results {} --format json",
                              recrun::test::recrun_bin(), shell_quote(res)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto c = nlohmann::json::parse(r.output);
  EXPECT_EQ(c[0]["t_p"].get<double>(), 1.0);
  EXPECT_EQ(c[0]["wilcoxon_p"].get<double>(), 1.0);
}

}  // namespace
