// A run or a sweep worker that the kernel kills with SIGKILL (as its out-of-memory killer does)
// ends with a recorded reason, never silently: the real binary, the crashy fixture hanging in
// its first epoch, and a SIGKILL sent from here to the process doing the work.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using recrun::results::ResultsStore;
using recrun::results::RunStatus;

using recrun::test::read_file;
using recrun::test::wait_exit;
using recrun::test::wait_until;

namespace {

constexpr std::string_view kReason = "killed by the kernel (SIGKILL: out of memory?)";

// Starts the real binary with `env` added, output to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& env, const fs::path& log) {
  return recrun::test::spawn_recrun(args, log, {},
                                    env.empty() ? std::vector<std::string>{} : std::vector{env});
}

// A field of /proc/PID/status ("PPid", ...), or -1.
long status_field(pid_t pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

std::string comm(pid_t pid) {
  std::string c = read_file(fmt::format("/proc/{}/comm", pid));
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// Live processes whose parent is `parent`.
std::vector<pid_t> children(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (status_field(pid, "PPid") == parent) out.push_back(pid);
  }
  return out;
}

std::size_t running(const fs::path& db) {
  if (!fs::exists(db)) return 0;
  return static_cast<std::size_t>(ResultsStore(db).status_counts().running);
}

class SigkillE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("sigkill-e2e");
    data_ = dir_ / "data";
    res_ = dir_ / "res";
    const auto r = recrun::test::run_command(fmt::format(
        "{} data synth --out {} --users 40 --items 30 --interactions-per-user 8 --min-length 5",
        recrun::test::recrun_bin(), recrun::test::shell_quote(data_.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  fs::path dir_, data_, res_;
};

TEST_F(SigkillE2E, ARunKilledByTheKernelIsRecordedFailedAndSaysSo) {
  const fs::path log = dir_ / "run.log";
  const pid_t run = spawn({"run", "--model", "crashy", "--data", data_.string(), "--results",
                           res_.string(), "--plugin-dir",
                           recrun::test::fixture_plugin_dir().string(), "--set", "epochs=3"},
                          "RECRUN_CRASHY_MODE=hang", log);
  ASSERT_GT(run, 0);
  // The run hangs in its first epoch, its row running; the work happens in a child process.
  ASSERT_TRUE(wait_until([&] { return running(res_ / "results.db") == 1; }, 120s))
      << read_file(log);
  const auto kids = children(run);
  ASSERT_EQ(kids.size(), 1u) << "expected the run's process under the supervising one";
  ASSERT_EQ(::kill(kids[0], SIGKILL), 0);
  EXPECT_EQ(wait_exit(run), 128 + SIGKILL);

  const std::string out = read_file(log);
  EXPECT_NE(out.find(fmt::format("failed: {} at ", kReason)), std::string::npos) << out;
  EXPECT_NE(out.find("MiB peak resident"), std::string::npos) << out;
  const auto rows = ResultsStore(res_ / "results.db").runs();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::failed);
  EXPECT_NE(rows[0].error.find(kReason), std::string::npos) << rows[0].error;
  EXPECT_NE(out.find(rows[0].trial_key), std::string::npos) << "the message names the run";
}

TEST_F(SigkillE2E, TheSupervisingProcessPassesSignalsAndExitCodesThrough) {
  // A normal run exits 0 through the parent; SIGTERM to the parent ends the run's process too,
  // and the parent ends by the same signal (nothing recorded as failed: the row is left for the
  // next command to mark interrupted, as before).
  auto r = recrun::test::run_command(fmt::format(
      "{} run --model popularity --data {} --results {}", recrun::test::recrun_bin(),
      recrun::test::shell_quote(data_.string()), recrun::test::shell_quote(res_.string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path log = dir_ / "term.log";
  const pid_t run = spawn({"run", "--model", "crashy", "--data", data_.string(), "--results",
                           res_.string(), "--plugin-dir",
                           recrun::test::fixture_plugin_dir().string(), "--set", "epochs=3"},
                          "RECRUN_CRASHY_MODE=hang", log);
  ASSERT_TRUE(wait_until([&] { return running(res_ / "results.db") == 1; }, 120s))
      << read_file(log);
  const auto kids = children(run);
  ASSERT_EQ(kids.size(), 1u);
  ASSERT_EQ(::kill(run, SIGTERM), 0);
  EXPECT_EQ(wait_exit(run), 128 + SIGTERM);
  // Generous: the child may take a while to be scheduled and torn down on a loaded machine.
  EXPECT_TRUE(wait_until([&] { return ::kill(kids[0], 0) != 0; }, 120s)) << "child outlived it";
  EXPECT_EQ(read_file(log).find(kReason), std::string::npos);
}

TEST_F(SigkillE2E, ASweepWorkerKilledByTheKernelIsRecordedFailedWithTheReason) {
  const fs::path file = dir_ / "kill.toml";
  std::ofstream(file) << fmt::format(R"([experiment]
name = "killed"

[data]
path = "{}"

[[group]]
name = "hang"
model = "crashy"
[group.params]
epochs = 3
mode = "hang"
)",
                                     data_.generic_string());
  const fs::path log = dir_ / "sweep.log";
  const pid_t sweep =
      spawn({"sweep", file.string(), "--results", res_.string(), "--no-live", "--plugin-dir",
             recrun::test::fixture_plugin_dir().string()},
            "", log);
  ASSERT_TRUE(wait_until([&] { return running(res_ / "results.db") == 1; }, 120s))
      << read_file(log);
  // The worker is forked from the zygote and re-parented to the sweep.
  pid_t worker = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const pid_t pid : children(sweep))
          if (comm(pid) == "recrun-trial") worker = pid;
        return worker > 0;
      },
      120s))
      << read_file(log);
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  const int code = wait_exit(sweep);
  EXPECT_NE(code, 0) << "a failed trial makes the sweep fail";
  const auto rows = ResultsStore(res_ / "results.db").runs("killed");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::failed);
  EXPECT_NE(rows[0].error.find(fmt::format("worker {} at ", kReason)), std::string::npos)
      << rows[0].error;
  EXPECT_NE(rows[0].error.find("MiB peak resident"), std::string::npos) << rows[0].error;
  EXPECT_NE(read_file(log).find(kReason), std::string::npos) << read_file(log);
}

}  // namespace
