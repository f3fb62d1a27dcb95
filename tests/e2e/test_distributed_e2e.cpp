// Data-parallel training with the real binary, real plugins, a real results.db and real
// checkpoints: `recrun run --nproc 2` (Gloo over loopback) ends with the parameters one process
// reaches on the same global batches (SASRec, BERT4Rec), evaluates sharded to exactly the
// metrics of one process (EASE, every metric family), records one row, one event file and the
// checkpoints once (rank 0); srun's variables and a TCPStore work; a killed rank fails the run
// instead of hanging it; bad settings are refused naming the flag or variable.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "recrun/archive.hpp"
#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

class DataParallelE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(recrun::test::temp_dir("dp-e2e"));
    // 90 users: batches of 25 split 13/12 between two ranks, and the last one is shorter.
    const auto r = run_command(fmt::format(
        "{} data synth --out {} --users 90 --items 70 --interactions-per-user 12 --min-length 5 "
        "--seed 7",
        recrun::test::recrun_bin(), shell_quote(data().string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  static fs::path data() { return *dir_ / "data"; }

  static recrun::test::CommandResult run(const fs::path& results, const std::string& extra,
                                         const std::string& env = "") {
    return run_command(fmt::format("{} {} run --data {} --results {} {}", env,
                                   recrun::test::recrun_bin(), shell_quote(data().string()),
                                   shell_quote(results.string()), extra));
  }

  static std::vector<recrun::results::RunRow> rows(const fs::path& results) {
    recrun::results::ResultsStore store(results / "results.db");
    return store.runs();
  }

  static std::map<std::string, double> metrics(const std::vector<recrun::results::Metric>& m) {
    std::map<std::string, double> out;
    for (const auto& x : m) out[x.name] = x.value;
    return out;
  }

  // The largest |a - b| over the tensors under `prefix` of two checkpoints, which must hold the
  // same keys and shapes; `compared` counts the tensors.
  static double max_difference(const fs::path& a, const fs::path& b, const std::string& prefix,
                               int& compared) {
    const auto x = recrun::Archive::load_file(a), y = recrun::Archive::load_file(b);
    double worst = 0;
    compared = 0;
    for (const auto& k : x.keys()) {
      if (!k.starts_with(prefix)) continue;
      EXPECT_TRUE(y.contains(k)) << k;
      if (!y.contains(k)) continue;
      const auto tx = x.read(k).to(torch::kFloat64), ty = y.read(k).to(torch::kFloat64);
      EXPECT_EQ(tx.sizes(), ty.sizes()) << k;
      if (tx.sizes() != ty.sizes()) continue;
      if (tx.numel() > 0) worst = std::max(worst, (tx - ty).abs().max().item<double>());
      ++compared;
    }
    return worst;
  }

  // Trains `model` for two epochs in one process and in two, with dropout off, and checks that
  // the final parameters (last.ckpt, written after the last epoch) agree.
  static void expect_same_parameters(const std::string& model, const std::string& sets,
                                     const std::string& prefix) {
    const std::string common = fmt::format(
        "--model {} --threads 1 --set epochs=2 --set patience=0 --set batch_size=25 "
        "--set dropout=0 {} --checkpoints last --checkpoint-every 0",
        model, sets);
    const fs::path one = *dir_ / (model + "-1"), two = *dir_ / (model + "-2");
    const auto r1 = run(one, common);
    ASSERT_EQ(r1.exit_code, 0) << r1.output;
    const auto r2 = run(two, "--nproc 2 " + common);
    ASSERT_EQ(r2.exit_code, 0) << r2.output;
    EXPECT_NE(r2.output.find("data-parallel: 2 ranks"), std::string::npos) << r2.output;

    const auto a = rows(one), b = rows(two);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);  // rank 1 recorded nothing
    EXPECT_EQ(a[0].trial_key, b[0].trial_key);
    EXPECT_EQ(b[0].status, recrun::results::RunStatus::finished);
    EXPECT_EQ(b[0].epochs_run, 2);
    const fs::path last1 = fs::path(a[0].checkpoint_path).parent_path() / "last.ckpt";
    const fs::path last2 = fs::path(b[0].checkpoint_path).parent_path() / "last.ckpt";
    ASSERT_TRUE(fs::exists(last1)) << last1;
    ASSERT_TRUE(fs::exists(last2)) << last2;
    int compared = 0;
    const double diff = max_difference(last1, last2, prefix, compared);
    EXPECT_GT(compared, 4);
    // Two ranks sum the same per-example gradients in another order: float rounding only.
    EXPECT_LT(diff, 2e-5) << model << ": parameters of 1 and 2 ranks differ by " << diff;

    // The same validation metrics (identical parameters rank the same items).
    const auto va = metrics(a[0].valid_metrics), vb = metrics(b[0].valid_metrics);
    for (const auto& [name, value] : va)
      if (!name.starts_with("val_")) {
        EXPECT_NEAR(vb.at(name), value, 1e-3) << name;
      }
    // One event file, written by rank 0.
    int events = 0;
    for (const auto& e : fs::recursive_directory_iterator(two / "tensorboard"))
      events += e.path().filename().string().starts_with("events.out.tfevents");
    EXPECT_EQ(events, 1);
    EXPECT_FALSE(fs::exists(two / ".rendezvous") && !fs::is_empty(two / ".rendezvous"))
        << "the rendezvous file was left behind";
  }

  static fs::path* dir_;
};

fs::path* DataParallelE2E::dir_ = nullptr;

// SGD (momentum 0.9) here: Adam divides each gradient by its own magnitude, so a parameter whose
// true gradient is zero (the key part of SASRec's attention qkv bias: softmax ignores it) moves
// by ±lr on the sign of rounding noise, in any two runs that sum in another order. bert4rec's
// attention has no such parameter, and it runs with its default Adam below.
TEST_F(DataParallelE2E, TwoRanksEndWithTheParametersOfOneRankSasrec) {
  expect_same_parameters("sasrec",
                         "--set hidden_units=16 --set num_heads=2 --set num_layers=1 "
                         "--set max_len=8 --set optimizer=sgd --set lr=0.05",
                         "sasrec.");
}

TEST_F(DataParallelE2E, TwoRanksEndWithTheParametersOfOneRankBert4rec) {
  expect_same_parameters(
      "bert4rec",
      "--set hidden_units=16 --set num_heads=2 --set num_layers=1 --set max_len=8 "
      "--set mask_prob=0.3",
      "bert4rec.");
}

TEST_F(DataParallelE2E, ShardedEvaluationGivesExactlyTheMetricsOfOneProcess) {
  const std::string common =
      "--model ease --threads 1 --set lambda=50 --ks 5,10 "
      "--metrics Hit,NDCG,MRR,Recall,Precision,MAP,Coverage,ARP";
  const fs::path one = *dir_ / "ease-1", two = *dir_ / "ease-2";
  const auto r1 = run(one, common);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  const auto r2 = run(two, "--nproc 2 " + common);
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  const auto a = rows(one), b = rows(two);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  const auto va = metrics(a[0].valid_metrics), vb = metrics(b[0].valid_metrics);
  const auto ta = metrics(a[0].test_metrics), tb = metrics(b[0].test_metrics);
  EXPECT_EQ(va, vb);
  EXPECT_EQ(ta, tb);
  EXPECT_GT(va.at("Coverage@10"), 0);
  EXPECT_GT(ta.at("ARP@5"), 0);
  // Every user's value, not only the means.
  recrun::results::ResultsStore s1(one / "results.db"), s2(two / "results.db");
  const auto u1 = s1.user_metrics(a[0].trial_key), u2 = s2.user_metrics(b[0].trial_key);
  ASSERT_TRUE(u1 && u2);
  EXPECT_EQ(u1->users, u2->users);
  EXPECT_EQ(u1->valid, u2->valid);
  EXPECT_EQ(u1->test, u2->test);
  EXPECT_EQ(u1->users.size(), 90u);
}

TEST_F(DataParallelE2E, SrunVariablesAndATcpStoreStartARun) {
  // Two processes as srun starts them: SLURM_PROCID / SLURM_NTASKS / SLURM_STEP_ID, with the
  // rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 serves the TCPStore).
  const fs::path res = *dir_ / "srun";
  const int port = recrun::test::free_tcp_port();
  ASSERT_GT(port, 0);
  const std::string common = "--model multivae --threads 1 --set epochs=2 --set batch_size=25";
  const auto env = [&](int rank) {
    return fmt::format("SLURM_PROCID={} SLURM_NTASKS=2 SLURM_STEP_ID=0 SLURM_JOB_ID=77 "
                       "MASTER_ADDR=127.0.0.1 MASTER_PORT={}",
                       rank, port);
  };
  const fs::path log1 = *dir_ / "srun-rank1.log";
  const std::string cmd1 = fmt::format(
      "{} {} run --data {} --results {} {} > {} 2>&1 &", env(1), recrun::test::recrun_bin(),
      shell_quote(data().string()), shell_quote(res.string()), common,
      shell_quote(log1.string()));
  ASSERT_EQ(std::system(cmd1.c_str()), 0);
  const auto r0 = run(res, common, env(0));
  ASSERT_EQ(r0.exit_code, 0) << r0.output;
  EXPECT_NE(r0.output.find("data-parallel: 2 ranks"), std::string::npos) << r0.output;
  const auto b = rows(res);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].status, recrun::results::RunStatus::finished);
  // Rank 1 ends right after rank 0 and prints nothing but errors: its log is read once it has
  // ended (a loaded machine may take a while to tear LibTorch down).
  EXPECT_TRUE(recrun::test::wait_until(
      [&] { return recrun::test::processes_mentioning(res.string()).empty(); },
      std::chrono::seconds(120)))
      << "rank 1 still running";
  std::ifstream in(log1);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().find("error"), std::string::npos) << text.str();
}

TEST_F(DataParallelE2E, AKilledRankFailsTheRunInsteadOfHangingIt) {
  const fs::path res = *dir_ / "killed";
  const fs::path log = *dir_ / "killed.log";
  // Long enough to be running when rank 1 is killed.
  const std::string cmd = fmt::format(
      "{} run --data {} --results {} --model sasrec --threads 1 --set epochs=100000 "
      "--set patience=0 --set hidden_units=16 --set num_heads=1 --set max_len=8 --nproc 2 "
      "> {} 2>&1; echo $? >> {}",
      recrun::test::recrun_bin(), shell_quote(data().string()), shell_quote(res.string()),
      shell_quote(log.string()), shell_quote(log.string()));
  std::thread launcher([&] { std::system(cmd.c_str()); });
  // Find rank 1 by its environment once it is training (generous limits: two processes load
  // LibTorch and meet on a machine that ctest keeps busy with other tests).
  pid_t rank1 = -1;
  recrun::test::wait_until([&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream env(e.path() / "environ", std::ios::binary);
      std::string all((std::istreambuf_iterator<char>(env)), {});
      std::ifstream cl(e.path() / "cmdline", std::ios::binary);
      std::string cmdline((std::istreambuf_iterator<char>(cl)), {});
      if (all.find(std::string("RECRUN_RANK=1") + '\0') != std::string::npos &&
          cmdline.find(res.string()) != std::string::npos)
        rank1 = std::stoi(name);
    }
    return rank1 > 0;
  }, std::chrono::seconds(120));
  if (rank1 <= 0) {
    ADD_FAILURE() << "rank 1 never started";
    for (const pid_t p : recrun::test::processes_mentioning(res.string())) kill(p, SIGKILL);
    launcher.join();
    return;
  }
  // Let it reach training (epoch lines on rank 0's output): two epochs trained.
  const bool training = recrun::test::wait_until(
      [&] { return recrun::test::read_file(log).find("valid    1") != std::string::npos; },
      std::chrono::seconds(120));
  EXPECT_TRUE(training) << "no epoch trained: " << recrun::test::read_file(log);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(kill(rank1, SIGKILL), 0);  // no ASSERT: the launcher thread must be joined
  launcher.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Not a speed check: a hang would last until the 30-minute collective timeout.
  EXPECT_LT(secs, 300) << "the run did not end after a rank died";
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  const std::string out = s.str();
  // Rank 0 notices the lost peer at once, so either may be reaped first; rank 1's line names
  // the signal either way.
  EXPECT_TRUE(out.find("rank 1 of 2 failed first (killed by signal 9") != std::string::npos ||
              out.find("rank 1 of 2 ended after rank 0 failed (killed by signal 9") !=
                  std::string::npos)
      << out;
  EXPECT_NE(out.rfind("\n1\n"), std::string::npos) << "expected exit code 1: " << out;
  const auto b = rows(res);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NE(b[0].status, recrun::results::RunStatus::running);
  EXPECT_NE(b[0].status, recrun::results::RunStatus::finished);
}

TEST_F(DataParallelE2E, BadSettingsAreRefusedNamingTheFlagOrVariable) {
  const fs::path res = *dir_ / "bad";
  auto r = run(res, "--model ease --nproc 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--nproc 0"), std::string::npos) << r.output;
  // Rendezvous files of this test's own (a fixed /tmp name could be another test's).
  const std::string x = (*dir_ / "rendezvous-x").string(), y = (*dir_ / "rendezvous-y").string();
  r = run(res, "--model ease",
          "RECRUN_WORLD_SIZE=2 RECRUN_RANK=5 RECRUN_RENDEZVOUS=file:" + shell_quote(x));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("RECRUN_RANK=5"), std::string::npos) << r.output;
  r = run(res, "--model ease", "RECRUN_WORLD_SIZE=two RECRUN_RANK=0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("RECRUN_WORLD_SIZE='two'"), std::string::npos) << r.output;
  r = run(res, "--model ease --nproc 2",
          "RECRUN_WORLD_SIZE=2 RECRUN_RANK=0 RECRUN_RENDEZVOUS=file:" + shell_quote(y));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("already rank 0 of 2"), std::string::npos) << r.output;
  // A rank whose peers never come gives up after the timeout, saying so, and records nothing.
  const fs::path store = *dir_ / "lonely-store";
  r = run(res, "--model ease",
          fmt::format("RECRUN_WORLD_SIZE=2 RECRUN_RANK=0 RECRUN_RENDEZVOUS=file:{} "
                      "RECRUN_DIST_TIMEOUT=2",
                      store.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("rendezvous failed for rank 0 of 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("RECRUN_DIST_TIMEOUT"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(res / "results.db") && !rows(res).empty());
}

}  // namespace
