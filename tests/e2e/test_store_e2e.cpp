// The real binary against a real results.db: a finished result is never destroyed by a later
// command (`recrun run` again reports it; `--force` replaces it only once the new attempt has
// finished, and a failing or killed re-run leaves it whole), dead owners are reaped by the next
// command, the checkpoint policy, and errors that name the path and the fix.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <csignal>
#include <fstream>
#include <optional>
#include <thread>

#include "results/results_store.hpp"
#include "results/sqlite_db.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;
namespace results = recrun::results;

namespace {

class StoreE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("store-e2e");
    data_ = dir_ / "data";
    res_ = dir_ / "res";
    const auto r = run_command(fmt::format(
        "{} data synth --out {} --users 60 --items 40 --interactions-per-user 8 --min-length 5 "
        "--seed 3",
        recrun::test::recrun_bin(), shell_quote(data_.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // `recrun run --model crashy` on the test data, with extra flags; `env` is prefixed.
  std::string run_line(const std::string& extra, const std::string& env = "") const {
    return fmt::format("{}{} run --model crashy --data {} --results {} --plugin-dir {} "
                       "--set epochs=3 --checkpoint-every 0 {}",
                       env.empty() ? "" : "env " + env + " ", recrun::test::recrun_bin(),
                       shell_quote(data_.string()), shell_quote(res_.string()),
                       shell_quote(recrun::test::fixture_plugin_dir().string()), extra);
  }
  recrun::test::CommandResult run(const std::string& extra, const std::string& env = "") const {
    return run_command(run_line(extra, env));
  }

  // The only visible run (the store is opened afresh: another process wrote it).
  results::RunRow only_run() const {
    results::ResultsStore store(res_ / "results.db");
    auto rows = store.runs();
    EXPECT_EQ(rows.size(), 1u);
    return rows.empty() ? results::RunRow{} : rows.front();
  }
  std::size_t epoch_rows(const std::string& key) const {
    results::ResultsStore store(res_ / "results.db");
    return store.epoch_metrics(key).size();
  }

  fs::path dir_, data_, res_;
};

void expect_same_result(const results::RunRow& before, const results::RunRow& after) {
  EXPECT_EQ(after.status, results::RunStatus::finished);
  EXPECT_EQ(after.attempts, before.attempts);
  EXPECT_EQ(after.finished_at, before.finished_at);
  EXPECT_EQ(after.checkpoint_path, before.checkpoint_path);
  ASSERT_EQ(after.test_metrics.size(), before.test_metrics.size());
  ASSERT_EQ(after.valid_metrics.size(), before.valid_metrics.size());
  for (std::size_t i = 0; i < before.test_metrics.size(); ++i)
    EXPECT_EQ(after.test_metrics[i].value, before.test_metrics[i].value);
  EXPECT_TRUE(fs::is_regular_file(after.checkpoint_path)) << after.checkpoint_path;
}

TEST_F(StoreE2E, RunningAFinishedRunAgainReportsItAndTrainsNothing) {
  auto r = run("");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto before = only_run();
  ASSERT_EQ(before.status, results::RunStatus::finished);
  ASSERT_FALSE(before.test_metrics.empty());
  const auto epochs = epoch_rows(before.trial_key);

  r = run("");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("already finished"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(before.checkpoint_path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("epoch 0"), std::string::npos) << "it trained again:\n" << r.output;
  const auto after = only_run();
  expect_same_result(before, after);
  EXPECT_EQ(epoch_rows(after.trial_key), epochs);
}

TEST_F(StoreE2E, AFailingForcedRerunLeavesTheFinishedResultWhole) {
  auto r = run("");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto before = only_run();
  const auto epochs = epoch_rows(before.trial_key);

  r = run("--force", "RECRUN_CRASHY_MODE=throw");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("thrown on purpose"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kept"), std::string::npos) << r.output;
  const auto after = only_run();
  expect_same_result(before, after);
  EXPECT_EQ(epoch_rows(after.trial_key), epochs);
}

TEST_F(StoreE2E, AKilledForcedRerunLeavesTheFinishedResultWhole) {
  auto r = run("");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto before = only_run();
  const auto epochs = epoch_rows(before.trial_key);

  for (const char* sig : {"TERM", "KILL"}) {
    SCOPED_TRACE(sig);
    const fs::path pid_file = dir_ / "pid";
    const fs::path log = dir_ / fmt::format("hang-{}.log", sig);
    // The environment makes the same trial (same key) hang at its first epoch.
    r = run_command(fmt::format("( exec {} --force ) > {} 2>&1 & echo $! > {}",
                                run_line("", "RECRUN_CRASHY_MODE=hang"),
                                shell_quote(log.string()), shell_quote(pid_file.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(pid_file);
    pid_t pid = 0;
    in >> pid;
    ASSERT_GT(pid, 0);
    // Wait until the new attempt is underway (its staging row exists), then kill it.
    const bool started = recrun::test::wait_until(
        [&] {
          results::ResultsStore store(res_ / "results.db");
          return store.find(before.trial_key + fmt::format("~attempt-{}", before.attempts + 1))
              .has_value();
        },
        std::chrono::seconds(120));
    ASSERT_TRUE(started) << recrun::test::read_file(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_EQ(::kill(pid, std::string(sig) == "TERM" ? SIGTERM : SIGKILL), 0);
    // The result is read once the killed attempt is gone, its supervisor and the process doing
    // the work both (SIGTERM's clean-up may take a while on a loaded machine). A zombie has an
    // empty command line, so one that nobody reaps does not count.
    EXPECT_TRUE(recrun::test::wait_until(
        [&] { return recrun::test::processes_mentioning(res_.string()).empty(); },
        std::chrono::seconds(120)))
        << "the killed attempt is still running";
    const auto after = only_run();
    expect_same_result(before, after);
    EXPECT_EQ(epoch_rows(after.trial_key), epochs);
  }

  // The next plain run still reports the old result; a forced one that finishes replaces it,
  // with a new attempt number, its checkpoint in its own place and the old files gone.
  r = run("");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("already finished"), std::string::npos) << r.output;
  r = run("--force");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto replaced = only_run();
  EXPECT_EQ(replaced.status, results::RunStatus::finished);
  EXPECT_GT(replaced.attempts, before.attempts);
  EXPECT_NE(replaced.checkpoint_path, before.checkpoint_path);
  EXPECT_NE(replaced.checkpoint_path.find(fmt::format("attempt-{}", replaced.attempts)),
            std::string::npos)
      << replaced.checkpoint_path;
  EXPECT_TRUE(fs::is_regular_file(replaced.checkpoint_path));
  EXPECT_FALSE(fs::exists(before.checkpoint_path));
  EXPECT_FALSE(replaced.test_metrics.empty());
  EXPECT_EQ(epoch_rows(replaced.trial_key), epochs);
  EXPECT_FALSE(replaced.params.empty());
  results::ResultsStore store(res_ / "results.db");
  EXPECT_EQ(store.status_counts().total(), 1);
}

TEST_F(StoreE2E, ARunWhoseProcessDiedIsMarkedInterruptedByTheNextCommand) {
  auto r = run("--set mode=segfault --set fail_epoch=1");
  ASSERT_NE(r.exit_code, 0) << r.output;
  auto row = only_run();
  ASSERT_EQ(row.status, results::RunStatus::running);  // nobody was left to say otherwise
  // Any later command that opens the store reaps it, here a run of another trial.
  r = run("--seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  results::ResultsStore store(res_ / "results.db");
  const auto reaped = store.find(row.trial_key);
  ASSERT_TRUE(reaped);
  EXPECT_EQ(reaped->status, results::RunStatus::interrupted);
  EXPECT_NE(reaped->error.find("exited without finishing"), std::string::npos) << reaped->error;
}

TEST_F(StoreE2E, CheckpointPolicyKeepsWhatItSays) {
  for (const std::string policy : {"best", "last", "none"}) {
    SCOPED_TRACE(policy);
    const fs::path ckpt = dir_ / ("ckpt-" + policy);
    const auto r = run(fmt::format("--checkpoints {} --checkpoint-dir {} --seed {}", policy,
                                   shell_quote(ckpt.string()), policy.size() + policy[0]));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    results::ResultsStore store(res_ / "results.db");
    std::optional<results::RunRow> row;
    for (auto& x : store.runs())
      if (x.seed == static_cast<std::int64_t>(policy.size() + policy[0])) row = x;
    ASSERT_TRUE(row);
    EXPECT_EQ(fs::exists(ckpt / "best.ckpt"), policy != "none");
    EXPECT_EQ(fs::exists(ckpt / "last.ckpt"), policy == "last");
    if (policy == "none")
      EXPECT_EQ(row->checkpoint_path, "");
    else
      EXPECT_EQ(row->checkpoint_path, (ckpt / "best.ckpt").string());
  }
  const auto r = run("--checkpoints all");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--checkpoints 'all'"), std::string::npos) << r.output;
}

TEST_F(StoreE2E, UnusableResultsPathsAreNamedWithTheFix) {
  // results.db is a directory
  fs::create_directories(res_ / "results.db");
  auto r = run("");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find((res_ / "results.db").string() + " is a directory"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--results"), std::string::npos) << r.output;
  fs::remove_all(res_);

  // last.ckpt is a directory
  const fs::path ckpt = dir_ / "ck";
  fs::create_directories(ckpt / "last.ckpt");
  r = run(fmt::format("--checkpoint-dir {}", shell_quote(ckpt.string())));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find((ckpt / "last.ckpt").string() + " is a directory"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("rm -r"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("truncated"), std::string::npos) << r.output;

  // a read-only results directory (root may write anywhere, so only as another user)
  if (::geteuid() != 0) {
    const fs::path ro = dir_ / "ro";
    fs::create_directories(ro);
    ::chmod(ro.c_str(), 0555);
    r = run_command(fmt::format("{} run --model crashy --data {} --results {} --plugin-dir {}",
                                recrun::test::recrun_bin(), shell_quote(data_.string()),
                                shell_quote(ro.string()),
                                shell_quote(recrun::test::fixture_plugin_dir().string())));
    ::chmod(ro.c_str(), 0755);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(ro.string() + " is not writable"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("chmod u+w"), std::string::npos) << r.output;
  }
}

TEST_F(StoreE2E, HelpHidesInternalFlagsAndShowsDefaultsAsWritten) {
  auto r = run_command(recrun::test::recrun_bin() + " trial --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("owner-pid"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("progress-fd"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--checkpoint-every"), std::string::npos) << r.output;
  r = run_command(recrun::test::recrun_bin() + " data synth --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--affinity arg (=0.8)"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("0000000"), std::string::npos) << r.output;
  r = run_command(recrun::test::recrun_bin() + " run --help");
  EXPECT_EQ(r.output.find("0000000"), std::string::npos) << r.output;
  // Hidden is not refused: a worker's flags still parse (the key is unknown, so it says so).
  r = run_command(fmt::format("{} trial nosuchkey --results {} --owner-pid 1 --progress-fd -1",
                              recrun::test::recrun_bin(), shell_quote(res_.string())));
  EXPECT_NE(r.output.find("no trial with key 'nosuchkey'"), std::string::npos) << r.output;
}

}  // namespace
