// Memory predicted before a run starts (recrun/memory.hpp, core/memory_check): the real binary
// refuses a run, and a sweep's trial, whose estimated peak exceeds the limit, before training,
// naming the estimate and the parameters that lower it; and the estimate printed by a run that
// does start is within a factor of 1.5 of the peak resident memory the kernel measured for it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::results::ResultsStore;
using recrun::results::RunStatus;

using recrun::test::read_file;

namespace {

struct Finished {
  int code = -1;
  std::string output;
  double peak_mib = 0;  // ru_maxrss of the process and its descendants
};

Finished run_measured(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> all = {RECRUN_BIN};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  Finished f;
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  f.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  f.output = read_file(log);
  f.peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  return f;
}

class MemoryE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("memory-e2e");
    data_ = dir_ / "data";
    res_ = dir_ / "res";
    // 20,000 items: the full cross-entropy's logits would be a few GB at once.
    const auto r = recrun::test::run_command(fmt::format(
        "{} data synth --out {} --users 400 --items 20000 --interactions-per-user 100 --seed 4",
        recrun::test::recrun_bin(), recrun::test::shell_quote(data_.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::vector<std::string> run_args(const std::string& model,
                                    const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {"run",       "--model",   model,        "--data",
                                  data_.string(), "--results", res_.string(), "--set",
                                  "epochs=1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  fs::path dir_, data_, res_;
};

TEST_F(MemoryE2E, ARunOverTheLimitIsRefusedBeforeTrainingWithTheEstimateAndTheFix) {
  const Finished f =
      run_measured(run_args("sasrec", {"--memory-limit-mb", "300"}), dir_ / "refused.log");
  EXPECT_NE(f.code, 0) << f.output;
  EXPECT_NE(f.output.find("model 'sasrec': estimated peak memory"), std::string::npos) << f.output;
  EXPECT_NE(f.output.find("exceeds the memory limit of 300 MiB"), std::string::npos) << f.output;
  EXPECT_NE(f.output.find("Lower it with batch_size, ce_chunk"), std::string::npos) << f.output;
  EXPECT_EQ(f.output.find("epoch    0"), std::string::npos) << "it trained:\n" << f.output;
  const auto rows = ResultsStore(res_ / "results.db").runs();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::failed);
  EXPECT_NE(rows[0].error.find("estimated peak memory"), std::string::npos) << rows[0].error;

  // A bad limit is refused as a flag error.
  const Finished bad = run_measured(run_args("sasrec", {"--memory-limit-mb", "-5"}),
                                    dir_ / "bad.log");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("--memory-limit-mb -5"), std::string::npos) << bad.output;
}

TEST_F(MemoryE2E, ASweepTrialOverExecutionMemoryLimitIsRefusedBeforeTraining) {
  const fs::path file = dir_ / "limited.toml";
  std::ofstream(file) << fmt::format(R"([experiment]
name = "limited"

[data]
path = "{}"

[execution]
memory_limit_mb = 300

[[group]]
name = "big"
model = "bert4rec"
[group.params]
epochs = 1
)",
                                     data_.generic_string());
  const Finished f = run_measured({"sweep", file.string(), "--results", res_.string(),
                                   "--no-live"},
                                  dir_ / "sweep.log");
  EXPECT_NE(f.code, 0) << f.output;
  const auto rows = ResultsStore(res_ / "results.db").runs("limited");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::failed);
  EXPECT_NE(rows[0].error.find("exceeds the memory limit of 300 MiB"), std::string::npos)
      << rows[0].error;
  EXPECT_NE(rows[0].error.find("ce_chunk"), std::string::npos) << rows[0].error;
  EXPECT_TRUE(ResultsStore(res_ / "results.db").epoch_metrics(rows[0].trial_key).empty())
      << "it trained";
}

TEST_F(MemoryE2E, TheEstimateIsWithinAFactorOf1Point5OfTheMeasuredPeak) {
  for (const std::string model : {"sasrec", "bert4rec"}) {
    SCOPED_TRACE(model);
    std::vector<std::string> extra;
    if (model == "bert4rec") extra = {"--set", "hidden_units=64", "--set", "num_heads=2"};
    const Finished f = run_measured(run_args(model, extra), dir_ / (model + ".log"));
    ASSERT_EQ(f.code, 0) << f.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(f.output, m, std::regex(R"(memory: estimated peak (\d+) MiB)")))
        << f.output;
    const double estimate = std::stod(m[1].str());
    const double ratio = f.peak_mib / estimate;
    std::cout << model << ": estimated peak " << estimate << " MiB, measured " << f.peak_mib
              << " MiB (ratio " << ratio << ")\n";
    EXPECT_GT(ratio, 1 / 1.5) << "the estimate is far too high";
    EXPECT_LT(ratio, 1.5) << "the estimate is far too low";
  }
}

}  // namespace
