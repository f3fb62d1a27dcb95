// End-to-end searches: the real `recrun` binary runs random and TPE searches with ASHA pruning
// over the `objective` fixture model (its quality is a known function of x, lr and kind), with
// kill -9 of the sweep at several moments, two sweeps sharing one search, the dry run, bad
// files, and pruned trials as `recrun results` and the views show them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "results/search_store.hpp"
#include "results/sqlite_db.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using recrun::results::ResultsStore;
using recrun::results::RunStatus;
using recrun::results::SearchStore;

using recrun::test::Outcome;
using recrun::test::read_file;
using recrun::test::spawn_recrun;
using recrun::test::wait_exit;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Users in four taste clusters, each preferring a block of items.
void write_data(const fs::path& dir) {
  std::mt19937 rng(11);
  std::ostringstream csv;
  csv << "user,item,time\n";
  for (int u = 0; u < 120; ++u) {
    const int n = 8 + static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) {
      const int item = rng() % 10 < 7 ? (u % 4) * 15 + static_cast<int>(rng() % 15)
                                      : static_cast<int>(rng() % 60);
      csv << "u" << u << ",i" << item << "," << 1000 + u * 100 + k << "\n";
    }
  }
  write_file(dir / "train_ratings.csv", csv.str());
}

class SearchE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("search");
    write_data(dir_ / "data");
    results_ = dir_ / "results";
  }

  fs::path experiment(const std::string& name, const std::string& body) {
    const fs::path file = dir_ / (name + ".toml");
    write_file(file, fmt::format(R"([experiment]
name = "{}"

[data]
path = "data"
source = "tiny_csv"

[protocol]
ks = [10]
metrics = ["NDCG", "Hit"]
monitor = "NDCG@10"
)",
                                 name) +
                         body);
    return file;
  }

  std::vector<std::string> args(std::vector<std::string> a) {
    a.push_back("--plugin-dir");
    a.push_back(recrun::test::fixture_plugin_dir().string());
    return a;
  }
  std::vector<std::string> sweep(const fs::path& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"sweep", file.string(), "--results", results_.string(),
                                  "--threads", "1", "--no-live"};
    a.insert(a.end(), extra.begin(), extra.end());
    return args(a);
  }
  Outcome run(const std::vector<std::string>& a) {
    const fs::path log = dir_ / fmt::format("recrun-{}.log", counter_++);
    const int code = wait_exit(spawn_recrun(a, log, dir_));
    return {code, read_file(log)};
  }
  pid_t start(const std::vector<std::string>& a) {
    return spawn_recrun(a, dir_ / fmt::format("recrun-{}.log", counter_++), dir_);
  }
  fs::path db() const { return results_ / "results.db"; }

  // The search keys of the results database (one per search).
  std::vector<std::string> search_keys() {
    recrun::results::Database d(db(), std::chrono::milliseconds(10'000));
    auto q = d.prepare("SELECT search_key FROM searches ORDER BY search_key");
    std::vector<std::string> out;
    while (q.step()) out.push_back(q.text(0));
    return out;
  }

  fs::path dir_, results_;
  int counter_ = 0;
};

// A TPE search with ASHA pruning: 12 configurations, rungs at 1, 2 and 4 of 8 epochs.
const char* kTpeAsha = R"(
[execution]
checkpoint_every = 0

[[group]]
name = "search"
model = "objective"
[group.params]
epoch_sleep = 0.12
patience = 0
[group.search]
method = "tpe"
trials = 12
seed = 3
startup_trials = 4
pruner = "asha"
min_epochs = 1
reduction_factor = 2
max_epochs = 8
[group.grid]
x = { uniform = [-5.0, 5.0] }
lr = { log_uniform = [1e-5, 1e-1] }
kind = { choice = ["a", "b", "c"] }
)";

// Checks every invariant of a finished TPE + ASHA search; returns the runs by key.
std::map<std::string, recrun::results::RunRow> check_search(const fs::path& db,
                                                            std::int64_t configurations,
                                                            std::int64_t eta,
                                                            std::int64_t max_epochs) {
  ResultsStore store(db);
  SearchStore ss(store);
  recrun::results::Database d(db, std::chrono::milliseconds(10'000));
  auto q = d.prepare("SELECT search_key FROM searches");
  EXPECT_TRUE(q.step());
  const std::string key = q.text(0);
  EXPECT_FALSE(q.step()) << "one search";
  const auto trials = ss.trials(key);
  // Every configuration once, each its own trial.
  std::set<std::int64_t> indexes;
  std::set<std::string> keys;
  for (const auto& t : trials) {
    EXPECT_TRUE(indexes.insert(t.index).second) << "index " << t.index << " registered twice";
    EXPECT_TRUE(keys.insert(t.trial_key).second) << t.trial_key << " linked twice";
  }
  EXPECT_EQ(static_cast<std::int64_t>(indexes.size()), configurations);
  EXPECT_EQ(*indexes.rbegin(), configurations - 1);
  std::map<std::string, recrun::results::RunRow> rows;
  for (const auto& k : keys) rows.emplace(k, *store.find(k));
  // Promotions: at each rung the decisions saw 0, 1, 2, ... earlier ones, and each follows
  // ASHA's rule against exactly those.
  const auto promotions = ss.promotions(key);
  std::map<std::int64_t, std::vector<recrun::results::PromotionRow>> by_rung;
  for (const auto& p : promotions) by_rung[p.rung].push_back(p);
  std::map<std::string, std::vector<recrun::results::PromotionRow>> by_trial;
  for (auto& [rung, list] : by_rung) {
    std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.compared < b.compared; });
    std::vector<double> earlier;
    for (std::size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(list[i].compared, static_cast<std::int64_t>(i)) << "rung " << rung;
      EXPECT_EQ(list[i].keep, recrun::results::asha_keeps(list[i].value, earlier, eta))
          << list[i].trial_key << " at rung " << rung;
      earlier.push_back(list[i].value);
      by_trial[list[i].trial_key].push_back(list[i]);
    }
  }
  const std::vector<std::int64_t> rungs =
      recrun::results::PrunerSettings{"asha", 1, eta, max_epochs}.rungs();
  for (const auto& [k, row] : rows) {
    auto decisions = by_trial[k];
    std::sort(decisions.begin(), decisions.end(), [](auto& a, auto& b) { return a.rung < b.rung; });
    for (std::size_t i = 0; i < decisions.size(); ++i) EXPECT_EQ(decisions[i].rung, static_cast<std::int64_t>(i)) << k;
    if (row.status == RunStatus::pruned) {
      EXPECT_FALSE(decisions.empty()) << k;
      if (decisions.empty()) continue;
      EXPECT_FALSE(decisions.back().keep) << k;
      for (std::size_t i = 0; i + 1 < decisions.size(); ++i) EXPECT_TRUE(decisions[i].keep) << k;
      // It stopped where it was judged, with its epochs and validation metrics, untested.
      EXPECT_EQ(row.epochs_run, rungs[static_cast<std::size_t>(decisions.back().rung)]) << k;
      EXPECT_FALSE(row.valid_metrics.empty()) << k;
      EXPECT_TRUE(row.test_metrics.empty()) << k;
    } else {
      EXPECT_EQ(row.status, RunStatus::finished) << k << " " << row.error;
      EXPECT_EQ(decisions.size(), rungs.size()) << k;
      for (const auto& dcs : decisions) EXPECT_TRUE(dcs.keep) << k;
      EXPECT_EQ(row.epochs_run, max_epochs) << k;
      EXPECT_FALSE(row.test_metrics.empty()) << k;
    }
  }
  return rows;
}

}  // namespace

TEST_F(SearchE2E, DryRunPrintsTheSpaceAndTheNumberOfTrials) {
  const fs::path file = experiment("dry", kTpeAsha);
  const Outcome out = run(sweep(file, {"--dry-run"}));
  ASSERT_EQ(out.code, 0) << out.output;
  EXPECT_NE(out.output.find("tpe search, 12 configuration(s) x 1 seed(s) = 12 trials"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("x ~ uniform[-5, 5]"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("lr ~ log_uniform[1e-05, 0.1]"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("kind ~ choice{a, b, c}"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("pruner asha: rungs at 1, 2, 4 epoch(s) of 8"), std::string::npos)
      << out.output;
  EXPECT_FALSE(fs::exists(db()));
}

TEST_F(SearchE2E, ARandomSearchListsTheSameTrialsForTheSameSeed) {
  const std::string body = R"(
[[group]]
name = "r"
model = "objective"
[group.params]
epochs = 2
[group.search]
method = "random"
trials = 6
seed = 5
[group.grid]
x = { uniform = [-5.0, 5.0] }
lr = { log_uniform = [1e-5, 1e-1] }
width = { int_uniform = [1, 64] }
)";
  const fs::path file = experiment("rand", body);
  const Outcome a = run(sweep(file, {"--dry-run"}));
  const Outcome b = run(sweep(file, {"--dry-run"}));
  const Outcome c = run(sweep(file, {"--dry-run", "--set", "r.search.seed=6"}));
  ASSERT_EQ(a.code, 0) << a.output;
  const auto table = [](const std::string& s) { return s.substr(s.find("  #  trial")); };
  EXPECT_EQ(table(a.output), table(b.output));
  EXPECT_NE(table(a.output), table(c.output));
  EXPECT_NE(a.output.find("6 trials; dry run"), std::string::npos) << a.output;
  // Run it: six trials, each finished once.
  const Outcome ran = run(sweep(file, {"--jobs", "2"}));
  ASSERT_EQ(ran.code, 0) << ran.output;
  ResultsStore store(db());
  EXPECT_EQ(store.status_counts().finished, 6);
  EXPECT_EQ(SearchStore(store).trials(search_keys().at(0)).size(), 6u);
}

TEST_F(SearchE2E, TpeWithAshaKilledAtSeveralMomentsRecordsEveryTrialOnceAndConsistently) {
  const fs::path file = experiment("killed", kTpeAsha);
  // Results that were final before a kill, to check that none is lost or changed after it.
  std::map<std::string, std::pair<RunStatus, double>> final_before;
  const auto remember = [&] {
    if (!fs::exists(db())) return;
    ResultsStore store(db());
    for (const auto& row : store.runs("killed")) {
      if (row.status != RunStatus::finished && row.status != RunStatus::pruned) continue;
      double v = -1;
      for (const auto& m : row.valid_metrics)
        if (m.name == "NDCG@10") v = m.value;
      final_before[row.trial_key] = {row.status, v};
    }
  };
  const auto count = [&](bool running) {
    if (!fs::exists(db())) return std::size_t{0};
    ResultsStore store(db());
    std::size_t n = 0;
    for (const auto& row : store.runs("killed"))
      n += running ? row.status == RunStatus::running
                   : (row.status == RunStatus::finished || row.status == RunStatus::pruned);
    return n;
  };
  // The moments are read from results.db, not from a clock, so that a fast machine cannot finish
  // the whole search before a kill: first in the middle of the first trials, then twice just
  // after one more result became final (the other worker is mid-trial then).
  for (int round = 0; round < 3; ++round) {
    const std::size_t final_at_start = count(false);
    const pid_t pid = start(sweep(file, {"--jobs", "2"}));
    const bool moment = recrun::test::wait_until(
        [&] { return round == 0 ? count(true) > 0 : count(false) > final_at_start; }, 120s, 20ms);
    ASSERT_TRUE(moment) << "round " << round << ": the sweep never reached its kill moment";
    if (round == 0) std::this_thread::sleep_for(150ms);  // into an epoch
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    EXPECT_EQ(wait_exit(pid), 128 + SIGKILL) << "round " << round;
    // Its workers die with it; what is final is read once they are gone (not after a fixed
    // delay, which a loaded machine can outlast while a worker still writes its result).
    EXPECT_TRUE(recrun::test::wait_until(
        [&] { return recrun::test::processes_mentioning(results_.string()).empty(); }, 120s))
        << "round " << round << ": workers outlived the killed sweep";
    remember();
  }
  const Outcome last = run(sweep(file, {"--jobs", "2"}));
  ASSERT_EQ(last.code, 0) << last.output;
  const auto rows = check_search(db(), 12, 2, 8);
  for (const auto& [key, was] : final_before) {
    ASSERT_TRUE(rows.count(key)) << key << " lost";
    EXPECT_EQ(rows.at(key).status, was.first) << key;
    for (const auto& m : rows.at(key).valid_metrics) {
      if (m.name == "NDCG@10") {
        EXPECT_DOUBLE_EQ(m.value, was.second) << key;
      }
    }
  }
  std::size_t pruned = 0;
  for (const auto& [k, r] : rows) pruned += r.status == RunStatus::pruned;
  EXPECT_GE(pruned, 1u) << "ASHA pruned nothing";
  EXPECT_FALSE(final_before.empty()) << "no trial had finished before the kills";
  // A further sweep has nothing left: the budget is spent and every trial is final.
  const Outcome again = run(sweep(file));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(ResultsStore(db()).runs("killed").size(), 12u);
}

TEST_F(SearchE2E, TwoSweepsShareOneSearch) {
  const fs::path file = experiment("shared", kTpeAsha);
  const pid_t a = start(sweep(file));
  std::this_thread::sleep_for(400ms);
  const pid_t b = start(sweep(file));
  EXPECT_EQ(wait_exit(a), 0);
  EXPECT_EQ(wait_exit(b), 0);
  const auto rows = check_search(db(), 12, 2, 8);
  std::set<std::int64_t> owners;
  for (const auto& [k, row] : rows) {
    EXPECT_EQ(row.attempts, 1) << k << " ran twice";
    owners.insert(row.owner_pid.value_or(0));
  }
  EXPECT_EQ(owners.size(), 2u) << "one sweep did all the work";
}

TEST_F(SearchE2E, PrunedTrialsShowAsPrunedAndNeverAsBest) {
  const fs::path file = experiment("shown", R"(
[[group]]
name = "g"
model = "objective"
[group.params]
patience = 0
[group.search]
method = "random"
trials = 8
seed = 1
pruner = "asha"
min_epochs = 1
reduction_factor = 2
max_epochs = 4
[group.grid]
x = { uniform = [-5.0, 5.0] }
lr = { log_uniform = [1e-5, 1e-1] }
)");
  const Outcome out = run(sweep(file));
  ASSERT_EQ(out.code, 0) << out.output;
  ResultsStore store(db());
  const auto counts = store.status_counts("shown");
  EXPECT_GE(counts.pruned, 1);
  EXPECT_EQ(counts.pruned + counts.finished, 8);
  const Outcome list = run({"results", "list", "--results", results_.string()});
  ASSERT_EQ(list.code, 0) << list.output;
  EXPECT_NE(list.output.find("pruned"), std::string::npos) << list.output;
  recrun::results::Database d(db(), std::chrono::milliseconds(10'000));
  auto best = d.prepare("SELECT v.status FROM v_best_per_model AS b JOIN v_runs AS v "
                        "ON v.run_id = b.run_id");
  ASSERT_TRUE(best.step());
  EXPECT_EQ(best.text(0), "finished");
}

TEST_F(SearchE2E, ADistributionOnAParameterTheModelLacksIsRefusedWithItsPosition) {
  const fs::path file = experiment("bad", R"(
[[group]]
model = "objective"
[group.search]
method = "random"
trials = 3
[group.grid]
y = { uniform = [0.0, 1.0] }
)");
  const Outcome out = run(sweep(file));
  EXPECT_EQ(out.code, 1) << out.output;
  EXPECT_NE(out.output.find(file.string() + ":19:1"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("cannot search 'y'"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(db()));
}

TEST_F(SearchE2E, SlurmTakesARandomSearchAndRefusesTpeAndPruners) {
  const fs::path random = experiment("onslurm", R"(
[[group]]
name = "r"
model = "objective"
[group.params]
epochs = 2
[group.search]
method = "random"
trials = 5
seed = 2
[group.grid]
x = { uniform = [-5.0, 5.0] }
)");
  const Outcome dry = run(sweep(random, {"--executor", "slurm", "--dry-run"}));
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("the sbatch script for the 5 unfinished trial(s)"), std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("#SBATCH --array=0-4"), std::string::npos) << dry.output;
  const fs::path tpe = experiment("tpeslurm", kTpeAsha);
  const Outcome refused = run(sweep(tpe, {"--executor", "slurm", "--dry-run"}));
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_NE(refused.output.find("which Slurm array tasks never open"), std::string::npos)
      << refused.output;
}
