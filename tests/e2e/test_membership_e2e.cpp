// Experiments that share trials, against the real binary: a trial key that two experiments'
// grids contain is run once and belongs to both. `results list/best/compare`, the report, the
// views and `best:` member references all see it in the second experiment too.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "results/results_store.hpp"
#include "results/sqlite_db.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;
namespace results = recrun::results;

namespace {

// Experiment `name` over the synthetic data, one EASE group with `lambdas`, plus `extra` TOML.
std::string ease_experiment(const std::string& name, const std::string& group,
                            const std::string& lambdas, const std::string& extra = "") {
  return fmt::format(R"([experiment]
name = "{}"
seeds = [42]

[data]
path = "data"

[protocol]
min_interactions = 3
ks = [10]

[[group]]
name = "{}"
model = "ease"
[group.grid]
lambda = [{}]
{})",
                     name, group, lambdas, extra);
}

class MembershipE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(recrun::test::temp_dir("membership-e2e"));
    auto r = run_command(fmt::format("{} data synth --out {} --users 200 --items 100 --seed 1",
                                     recrun::test::recrun_bin(),
                                     shell_quote((*dir_ / "data").string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // "first" runs lambda 100 and 1000 (ease group); "second" asks for 100, 500 and 1000 in a
    // group of another name, so it runs only 500. On this data lambda 100 is the best of the three.
    write("first.toml", ease_experiment("first", "ease", "100, 1000"));
    write("second.toml", ease_experiment("second", "ease_grid", "100, 500, 1000",
                                         "\n[[group]]\nname = \"popularity\"\nmodel = \"popularity\"\n"));
    for (const char* x : {"first", "second"}) {
      r = cli(fmt::format("sweep {}.toml --threads 1", x));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    ASSERT_NE(r.output.find("2 already finished"), std::string::npos) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  static void write(const std::string& name, const std::string& text) {
    std::ofstream(*dir_ / name) << text;
  }
  static recrun::test::CommandResult cli(const std::string& args) {
    return run_command(fmt::format("cd {} && {} {}", shell_quote(dir_->string()),
                                   recrun::test::recrun_bin(), args));
  }
  static std::string key_of(const std::string& lambda) {
    results::ResultsStore store(*dir_ / "results" / "results.db");
    for (const auto& r : store.runs("second"))
      for (const auto& p : r.params)
        if (p.name == "lambda" && p.value == lambda) return r.trial_key;
    return {};
  }
  static fs::path* dir_;
};
fs::path* MembershipE2E::dir_ = nullptr;

TEST_F(MembershipE2E, EachTrialRanOnceAndBelongsToEveryExperimentThatAskedForIt) {
  results::ResultsStore store(*dir_ / "results" / "results.db");
  EXPECT_EQ(store.runs().size(), 4u);  // lambda 100, 1000, 500 and popularity, each run once
  const auto second = store.runs("second");
  ASSERT_EQ(second.size(), 4u);
  for (const auto& r : second) {
    EXPECT_EQ(r.status, results::RunStatus::finished) << r.trial_key;
    EXPECT_EQ(r.attempts, 1) << r.trial_key;
    EXPECT_EQ(r.group_name, r.model == "ease" ? "ease_grid" : "popularity") << r.trial_key;
  }
  EXPECT_EQ(store.runs("first").size(), 2u);
  EXPECT_EQ(store.status_counts("second").finished, 4);
  results::Database db(*dir_ / "results" / "results.db", std::chrono::milliseconds(10'000));
  auto q = db.prepare("SELECT COUNT(*) FROM v_runs WHERE experiment = 'second' AND model = 'ease'");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 3);
  auto best = db.prepare(
      "SELECT trial_key, runs_compared FROM v_best_per_model WHERE experiment = 'second' AND "
      "model = 'ease'");
  ASSERT_TRUE(best.step());
  EXPECT_EQ(best.text(0), key_of("100"));
  EXPECT_EQ(best.int64(1), 3);
}

TEST_F(MembershipE2E, ResultsListBestAndCompareSeeSharedTrialsInTheSecondExperiment) {
  auto r = cli("results list --experiment second --model ease --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* lambda : {"lambda=100", "lambda=500", "lambda=1000"})
    EXPECT_NE(r.output.find(lambda), std::string::npos) << lambda << "\n" << r.output;
  EXPECT_EQ(r.output.find(",first,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(",second,ease_grid,"), std::string::npos) << r.output;

  r = cli("results best second --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ease_grid,ease,lambda=100,"), std::string::npos) << r.output;

  r = cli("results compare second/ease_grid second/popularity");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(key_of("100")), std::string::npos) << r.output;
}

TEST_F(MembershipE2E, TheReportListsEveryConfigurationOfTheSecondExperiment) {
  auto r = cli("report second --out second.html");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(*dir_ / "second.html");
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* lambda : {"100", "500", "1000"})
    EXPECT_NE(html.find(key_of(lambda)), std::string::npos) << "lambda " << lambda;
}

TEST_F(MembershipE2E, BestReferencesPickSharedTrials) {
  write("combo.toml", R"([experiment]
name = "combo"
seeds = [42]

[data]
path = "data"

[protocol]
min_interactions = 3
ks = [10]

[[group]]
name = "mix"
model = "ensemble"
[group.params]
members = ["best:ease@second", "best:popularity@second"]
weights = [1.0, 0.5]
)");
  auto r = cli("sweep combo.toml --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(key_of("100")), std::string::npos) << r.output;
  r = cli("sweep combo.toml --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  results::ResultsStore store(*dir_ / "results" / "results.db");
  const auto combo = store.runs("combo");
  ASSERT_EQ(combo.size(), 1u);
  EXPECT_EQ(combo[0].status, results::RunStatus::finished) << combo[0].error;
}

// Groups of one experiment whose members come from its own groups run after those, whatever
// their order in the file; the `best:` query then sees every trial of the member group.
TEST_F(MembershipE2E, AnEnsembleGroupRunsAfterTheGroupsThatMakeItsMembers) {
  write("self.toml", R"([experiment]
name = "self"
seeds = [42]
[data]
path = "data"
[protocol]
min_interactions = 3
ks = [10]
[execution]
jobs = 2
[[group]]
name = "mix"
model = "ensemble"
[group.params]
members = ["best:ease@self", "best:popularity@self"]
[group.grid]
weights = [[1.0, 0.5], [1.0, 1.0]]
[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10, 100, 1000, 5000]
[[group]]
name = "popularity"
model = "popularity"
)");
  const auto r = cli("sweep self.toml --results res_self --threads 2 --no-live");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("7 trials: 7 finished"), std::string::npos) << r.output;
  results::ResultsStore store(*dir_ / "res_self" / "results.db");
  std::string last_member_end, first_mix_start = "~";
  for (const auto& row : store.runs("self")) {
    if (row.model == "ensemble")
      first_mix_start = std::min(first_mix_start, row.started_at);
    else
      last_member_end = std::max(last_member_end, row.finished_at);
  }
  EXPECT_LT(last_member_end, first_mix_start);
}

// Members that another experiment makes: without `depends` the trials wait (recorded, exit 4)
// and the next sweep runs them once the members exist; with `depends` the sweep first runs what
// they need of that experiment, and only that.
TEST_F(MembershipE2E, MissingMembersWaitAndDependsRunsWhatTheyNeed) {
  write("maker.toml", ease_experiment("maker", "ease", "10, 100",
                                      "\n[[group]]\nname = \"pop\"\nmodel = \"popularity\"\n"));
  write("user.toml", R"([experiment]
name = "user"
seeds = [42]
[data]
path = "data"
[protocol]
min_interactions = 3
ks = [10]
[[group]]
name = "mix"
model = "ensemble"
[group.params]
members = ["best:ease@maker", "best:popularity@user"]
[[group]]
name = "pop"
model = "popularity"
)");
  auto r = cli("sweep user.toml --results res_dep --threads 1 --no-live");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("2 trials: 1 finished, 1 waiting"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("made by experiment 'maker' in maker.toml"), std::string::npos)
      << r.output;
  {
    results::ResultsStore store(*dir_ / "res_dep" / "results.db");
    EXPECT_EQ(store.status_counts("user").waiting, 1);
    EXPECT_EQ(store.status_counts("user").failed, 0);
  }
  r = cli("sweep user.toml --results res_dep --threads 1 --no-live --dry-run --set "
          "'experiment.depends=[\"maker\"]'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("depends: a sweep would first run `recrun sweep ./maker.toml --results "
                          "res_dep --only model=ease --threads 1 --no-live`"),
            std::string::npos)
      << r.output;
  r = cli("sweep user.toml --results res_dep --threads 1 --no-live --set "
          "'experiment.depends=[\"maker\"]'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("depends: running `recrun sweep ./maker.toml"), std::string::npos)
      << r.output;
  results::ResultsStore store(*dir_ / "res_dep" / "results.db");
  EXPECT_EQ(store.status_counts("user").finished, 2);
  const auto maker = store.runs("maker");
  ASSERT_EQ(maker.size(), 2u);  // its ease group only: the popularity group was not needed
  for (const auto& row : maker) EXPECT_EQ(row.model, "ease");
  for (const auto& row : store.runs("user")) EXPECT_EQ(row.attempts, 1) << row.trial_key;
}

TEST_F(MembershipE2E, DependsNamingNoFileItselfOrACycleIsRefusedWithItsPlace) {
  const auto refs = [](const std::string& name, const std::string& dep, const std::string& model) {
    return fmt::format(R"([experiment]
name = "{}"
depends = ["{}"]
[data]
path = "data"
[protocol]
min_interactions = 3
[[group]]
name = "mix"
model = "ensemble"
[group.params]
members = ["best:{}@{}"]
[[group]]
name = "{}"
model = "{}"
)",
                       name, dep, model == "ease" ? "popularity" : "ease", dep, model, model);
  };
  write("lonely.toml", refs("lonely", "nowhere", "ease"));
  auto r = cli("sweep lonely.toml --results res_cycle --dry-run");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("lonely.toml:3:1: experiment.depends: no .toml file in . has "
                          "[experiment] name = \"nowhere\""),
            std::string::npos)
      << r.output;
  write("narcissus.toml", refs("narcissus", "narcissus", "ease"));
  r = cli("sweep narcissus.toml --results res_cycle --dry-run");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'narcissus' is this experiment itself"), std::string::npos) << r.output;
  write("ping.toml", refs("ping", "pong", "ease"));
  write("pong.toml", refs("pong", "ping", "popularity"));
  r = cli("sweep ping.toml --results res_cycle --no-live --threads 1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("experiments that depend on each other never finish"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ended with exit code 1"), std::string::npos) << r.output;
}

// A results.db of schema 4 (one experiment per run) opened by this recrun: its runs belong to
// the experiment that ran them, and the next sweep adds its own memberships.
TEST_F(MembershipE2E, AFileOfTheOldSchemaIsMigratedAndThenShared) {
  const fs::path old = *dir_ / "old";
  fs::create_directories(old);
  {
    results::Database db(old / "results.db", std::chrono::milliseconds(10'000));
    std::ifstream in(std::string(RECRUN_TEST_FIXTURES) + "/results_schema_v4.sql");
    std::stringstream sql;
    sql << in.rdbuf();
    db.exec(sql.str());
    db.exec("PRAGMA user_version = 4");
  }
  // Rebuild the first experiment's rows in the old file the way schema 4 stored them.
  {
    results::ResultsStore src(*dir_ / "results" / "results.db",
                              [] {
                                results::StoreOptions o;
                                o.read_only = true;
                                return o;
                              }());
    results::Database db(old / "results.db", std::chrono::milliseconds(10'000));
    db.exec("INSERT INTO experiments (id, name, hash, toml_text) VALUES (1, 'first', 'h', '')");
    for (const auto& r : src.runs("first")) {
      db.prepare("INSERT INTO runs (trial_key, experiment_id, group_name, model, seed, status, "
                 "attempts, data_fingerprint, protocol) VALUES (?1, 1, ?2, ?3, ?4, 'finished', 1, "
                 "?5, ?6)")
          .bind_all(r.trial_key, r.group_name, r.model, r.seed, r.data_fingerprint,
                    r.protocol_json)
          .execute();
    }
  }
  auto r = cli(fmt::format("results list --experiment first --results {}", shell_quote(old.string())));
  EXPECT_NE(r.exit_code, 0);  // read-only commands do not migrate; they say how
  EXPECT_NE(r.output.find("schema version 4"), std::string::npos) << r.output;
  r = cli(fmt::format("sweep second.toml --threads 1 --results {} --only ease_grid",
                      shell_quote(old.string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  results::ResultsStore store(old / "results.db");
  const auto second = store.runs("second");
  ASSERT_EQ(second.size(), 3u);  // the two old runs and the new lambda 500
  std::size_t shared = 0;
  for (const auto& row : second) shared += row.membership("first") != nullptr;
  EXPECT_EQ(shared, 2u);
}

}  // namespace
