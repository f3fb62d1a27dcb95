// Hostile input to the real `recrun sweep` (and `recrun run`): each is refused with a message
// naming what and where, exit status 1, and nothing registered; a dry run works where nothing
// can be written.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class SweepHostileE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("sweep_hostile");
    fs::create_directories(dir_ / "data");
    std::ofstream out(dir_ / "data" / "train_ratings.csv");
    out << "user,item,time\n";
    for (int u = 0; u < 30; ++u)
      for (int k = 0; k < 6; ++k) out << "u" << u << ",i" << (u * 7 + k * 3) % 25 << "," << k << "\n";
    results_ = dir_ / "results";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(results_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  fs::path experiment(const std::string& body) {
    const fs::path file = dir_ / "x.toml";
    std::ofstream(file) << "[experiment]\nname = \"x\"\n[data]\npath = \"data\"\nsource = "
                           "\"tiny_csv\"\n"  // 5 lines
                        << body;
    return file;
  }
  recrun::test::CommandResult sweep(const fs::path& file, const std::string& extra) {
    return run_command(fmt::format(
        "cd {} && timeout 120 {} sweep {} --results {} --plugin-dir {} {} {}",
        shell_quote(dir_.string()), recrun::test::recrun_bin(), shell_quote(file.string()),
        shell_quote(results_.string()),
        shell_quote(recrun::test::fixture_plugin_dir().string()),
        has(extra, "--threads") ? "" : "--threads 1", extra));
  }
  fs::path dir_, results_;
};

}  // namespace

TEST_F(SweepHostileE2E, DeepTomlIsRefusedInsteadOfCrashing) {
  std::string deep;
  for (int i = 0; i < 40000; ++i) deep += "a.";
  const auto r = sweep(experiment("[" + deep + "b]\n"), "--dry-run");
  EXPECT_EQ(r.exit_code, 1) << r.output.substr(0, 400);
  EXPECT_TRUE(has(r.output, "x.toml:6:")) << r.output.substr(0, 400);
  EXPECT_TRUE(has(r.output, "more than 64 levels deep")) << r.output.substr(0, 400);

  fs::create_directories(dir_ / "dir.toml");
  const auto d = sweep(dir_ / "dir.toml", "--dry-run");
  EXPECT_EQ(d.exit_code, 1) << d.output;
  EXPECT_TRUE(has(d.output, "dir.toml")) << d.output;
  EXPECT_TRUE(has(d.output, "not a regular file")) << d.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db"));
}

TEST_F(SweepHostileE2E, AHugeGridIsRefusedQuicklyInADryRun) {
  std::string values;
  for (int i = 0; i < 1000; ++i) values += fmt::format("{}{}", i ? ", " : "", i);
  const auto file = experiment("[[group]]\nname = \"big\"\nmodel = \"crashy\"\n[group.grid]\n"
                               "alpha = [" + values + "]\nepoch_sleep = [" + values +
                               "]\nepochs = [" + values + "]\n");
  const auto start = std::chrono::steady_clock::now();
  const auto r = sweep(file, "--dry-run");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "group 'big' has 1000000000 trials")) << r.output;
  EXPECT_TRUE(has(r.output, "alpha (1000) x epoch_sleep (1000) x epochs (1000) x 1 seed"))
      << r.output;
  EXPECT_TRUE(has(r.output, "--max-trials 100000")) << r.output;
  const auto small = sweep(file, "--dry-run --max-trials 0");
  EXPECT_EQ(small.exit_code, 1) << small.output;
  EXPECT_TRUE(has(small.output, "--max-trials 0: must be >= 1")) << small.output;
}

TEST_F(SweepHostileE2E, JobsThreadsAndLimitsOutOfRangeAreNamed) {
  const auto file = experiment("[[group]]\nmodel = \"popularity\"\n");
  for (const std::string jobs : {"-1", "0", "100000"}) {
    const auto r = sweep(file, "--dry-run --jobs " + jobs);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(has(r.output, "--jobs " + jobs + ": must be 1..")) << r.output;
    EXPECT_TRUE(has(r.output, "cores")) << r.output;
  }
  auto r = sweep(file, "--dry-run --jobs nan");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "jobs")) << r.output;
  r = sweep(file, "--dry-run --threads -1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "--threads -1")) << r.output;
  const auto nan = sweep(experiment("[execution]\nmemory_limit_mb = nan\n[[group]]\nmodel = "
                                    "\"popularity\"\n"),
                         "--dry-run");
  EXPECT_EQ(nan.exit_code, 1) << nan.output;
  EXPECT_TRUE(has(nan.output, "x.toml:7:")) << nan.output;
  EXPECT_TRUE(has(nan.output, "got nan")) << nan.output;
  const auto jobs = sweep(experiment("[execution]\njobs = 1000\n[[group]]\nmodel = "
                                     "\"popularity\"\n"),
                          "--dry-run");
  EXPECT_EQ(jobs.exit_code, 1) << jobs.output;
  EXPECT_TRUE(has(jobs.output, "x.toml:7:")) << jobs.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db"));
}

TEST_F(SweepHostileE2E, BrokenSetValuesAndUnknownPluginNamesAreRefusedBeforeAnyTrial) {
  const auto file = experiment("[[group]]\nmodel = \"popularity\"\n");
  auto r = sweep(file, "--dry-run --set 'protocol.ks=[5,'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "--set protocol.ks=[5,")) << r.output;
  EXPECT_TRUE(has(r.output, "not valid TOML")) << r.output;

  // recrun run checks plugin names before it registers or trains anything.
  const auto run = run_command(fmt::format(
      "cd {} && timeout 120 {} run --model bert4rec --data data --source tiny_csv --results {} "
      "--plugin-dir {} --threads 1 --set fusion=gat --set features=[genre] --set epochs=1",
      shell_quote(dir_.string()), recrun::test::recrun_bin(), shell_quote(results_.string()),
      shell_quote(recrun::test::fixture_plugin_dir().string())));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_TRUE(has(run.output, "no fusion plugin named 'gat' (did you mean 'gate'?)")) << run.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db")) << run.output;
}

TEST_F(SweepHostileE2E, FusionWithoutFeaturesCollapsesInTheDryRun) {
  const auto file = experiment(
      "[[group]]\nmodel = \"bert4rec\"\n[group.params]\nfeatures = []\n[group.grid]\n"
      "fusion = [\"concat\", \"add\", \"gate\"]\n");
  const auto r = sweep(file, "--dry-run");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "3 trials collapse into 1: fusion has no effect without features"))
      << r.output;
  EXPECT_TRUE(has(r.output, "1 trials; dry run")) << r.output;
}

// --only reads list values whole (the old comma split selected 7 of gate_fusion's 13 trials for
// this pattern) and says how many trials each alternative selected.
TEST_F(SweepHostileE2E, OnlyReadsListValuesWholeAndCountsEachAlternative) {
  const auto only = [&](const std::string& pattern) {
    return run_command(fmt::format(
        "cd {} && timeout 120 {} sweep experiments/gate_fusion.toml --dry-run --results {} "
        "--only {}",
        shell_quote(RECRUN_SOURCE_DIR), recrun::test::recrun_bin(),
        shell_quote(results_.string()), shell_quote(pattern)));
  };
  auto r = only("features=[genre,year,title] fusion=gate");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "--only: 1 of 13 trials selected ('features=[genre,year,title] "
                            "fusion=gate' 1)"))
      << r.output;
  EXPECT_TRUE(has(r.output, "1 trials (of 13,")) << r.output;
  r = only("features=[\"genre\", \"year\", \"title\"] fusion=gate, no_metadata");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "2 of 13 trials selected")) << r.output;
  EXPECT_TRUE(has(r.output, "fusion=gate' 1, 'no_metadata' 1)")) << r.output;
  r = only("featurs=[genre]");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output, "no trial has a parameter 'featurs' (did you mean 'features'?)"))
      << r.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db"));
}

// An ensemble's members are other experiments' runs: the dry run says which each reference
// names now, which file makes the missing ones and what `depends` would run first; a sweep whose
// members are missing records its trials 'waiting' (the first-hour report saw all 8 trials fail
// one by one), and runs them once the members exist. (`depends` is switched off here: it would
// train SASRec; MembershipE2E runs it on small data.)
TEST_F(SweepHostileE2E, EnsembleMembersAreResolvedBeforeAnyTrialRuns) {
  const auto in_tree = [&](const std::string& args) {
    return run_command(fmt::format("cd {} && timeout 300 {} sweep {} --results {} --threads 2",
                                   shell_quote(RECRUN_SOURCE_DIR), recrun::test::recrun_bin(),
                                   args, shell_quote(results_.string())));
  };
  auto r = in_tree("experiments/ensemble.toml --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "member 'best:ease@baselines' (groups rrf, zscore): missing: "
                            "there is no results.db yet; made by experiment 'baselines' in "
                            "experiments/baselines.toml: `recrun sweep experiments/baselines.toml "
                            "--only ease`"))
      << r.output;
  EXPECT_TRUE(has(r.output, "depends: a sweep would first run `recrun sweep "
                            "experiments/baselines.toml --results"))
      << r.output;
  EXPECT_TRUE(has(r.output, "--only model=ease, model=sasrec")) << r.output;
  const std::string no_depends = " --set 'experiment.depends=[]' --no-live";
  r = in_tree("experiments/ensemble.toml" + no_depends);
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_TRUE(has(r.output, "8 trials: 8 waiting")) << r.output;
  EXPECT_TRUE(has(r.output, "waiting for their members (make them, then sweep again):"))
      << r.output;
  {
    recrun::results::ResultsStore store(results_ / "results.db");
    const auto counts = store.status_counts("ensemble");
    EXPECT_EQ(counts.waiting, 8);
    EXPECT_EQ(counts.failed, 0);
    for (const auto& row : store.runs("ensemble"))
      EXPECT_TRUE(has(row.error, "made by experiment 'baselines'")) << row.error;
  }
  // EASE's trials of the baselines experiment (three closed-form fits on the bundled data).
  r = in_tree("experiments/baselines.toml --only 'model=ease' --no-live");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = in_tree("experiments/ensemble.toml --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("member 'best:ease@baselines' \\(groups "
                                                     "rrf, zscore\\): run [0-9a-f]{32} \\(ease, "
                                                     "valid NDCG@10 0\\.[0-9]{4}\\)")))
      << r.output;
  EXPECT_TRUE(has(r.output, "member 'best:sasrec@baselines' (groups rrf, zscore): missing: "
                            "'best:sasrec@baselines': no finished sasrec run in experiment "
                            "baselines"))
      << r.output;
  r = in_tree("experiments/ensemble.toml" + no_depends);
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_TRUE(has(r.output, "8 trials: 8 waiting")) << r.output;
  EXPECT_TRUE(has(r.output, "no finished sasrec run in experiment baselines")) << r.output;
  EXPECT_FALSE(has(r.output, "no finished ease run")) << r.output;
}

TEST_F(SweepHostileE2E, DryRunWorksWhereNothingCanBeWrittenAndARealRunSaysWhy) {
  const auto file = experiment("[[group]]\nmodel = \"popularity\"\n");
  // A results.db that SQLite cannot open (here: a directory, which stops root too).
  fs::create_directories(results_ / "results.db");
  auto dry = sweep(file, "--dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_TRUE(has(dry.output, "statuses are not shown")) << dry.output;
  auto real = sweep(file, "");
  EXPECT_EQ(real.exit_code, 1) << real.output;
  EXPECT_TRUE(has(real.output, (results_ / "results.db").string() + "' is not a regular file"))
      << real.output;
  fs::remove_all(results_);

  // A read-only results directory with a real results.db in it.
  ASSERT_EQ(sweep(file, "").exit_code, 0);
  fs::permissions(results_, fs::perms::owner_write | fs::perms::group_write |
                                fs::perms::others_write,
                  fs::perm_options::remove);
  if (::geteuid() == 0) GTEST_SKIP() << "root writes to read-only directories";
  dry = sweep(file, "--dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  real = sweep(file, "");
  EXPECT_EQ(real.exit_code, 1) << real.output;
  EXPECT_TRUE(has(real.output, "is not writable")) << real.output;
  EXPECT_TRUE(has(real.output, "chmod u+w")) << real.output;
}
