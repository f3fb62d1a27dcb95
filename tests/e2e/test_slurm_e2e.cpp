// `recrun sweep --executor slurm` against a real Slurm: a private single-node cluster from
// Debian's packages (munged, slurmctld, slurmd), started by tests/support/slurm_cluster.sh with
// a generated slurm.conf and munge key in a temp dir, stopped at the end whatever happens.
//
// SlurmE2E.SweepCancelCollectResubmit is one ctest test (the daemons are started once); it ends
// with a data-parallel `srun -n 2 recrun run`. It
// needs root (SlurmUser and SlurmdUser are root): it skips, saying so, when not root, and FAILS
// with the daemons' logs when they cannot start. SlurmCli checks the bad-input errors, which
// need no cluster.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::results::ResultsStore;
using recrun::results::RunRow;
using recrun::results::RunStatus;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

const fs::path kClusterScript = fs::path(RECRUN_SOURCE_DIR) / "tests/support/slurm_cluster.sh";

// 3 EASE lambdas + popularity with 2 seeds + one crashy (the test fixture model: a popularity
// model that can be told to hang, through RECRUN_CRASHY_MODE, without changing its trial key)
// = 6 trials, each a second or two. The crashy one, last, is the task the test cancels while it
// runs.
constexpr const char* kExperiment = R"(
[experiment]
name = "slurm-e2e"
seeds = [1]

[data]
path = "data"
source = "auto"

[protocol]
metrics = ["Hit", "NDCG", "MRR"]
ks = [10]
monitor = "NDCG@10"

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10.0, 50.0, 100.0]

[[group]]
name = "popularity"
model = "popularity"
seeds = [1, 2]

[[group]]
name = "slow"
model = "crashy"
[group.params]
epochs = 2
fail_epoch = 1
)";

struct Cluster {
  fs::path dir;
  bool started = false;
  ~Cluster() {
    if (started) run_command(shell_quote(kClusterScript.string()) + " stop " + shell_quote(dir.string()));
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  std::string logs() const {
    return run_command(shell_quote(kClusterScript.string()) + " logs " + shell_quote(dir.string()))
        .output;
  }
};

// recrun in `cwd`; a sweep also gets the fixture plugins (crashy).
std::string recrun(const fs::path& cwd, const std::string& args, const std::string& env = "") {
  std::string cmd = "cd " + shell_quote(cwd.string()) + " && " + env + (env.empty() ? "" : " ") +
                    recrun::test::recrun_bin() + " " + args;
  if (args.rfind("sweep ", 0) == 0)
    cmd += " --plugin-dir " + shell_quote(recrun::test::fixture_plugin_dir().string());
  return cmd;
}

bool wait_until_running(const std::string& job, std::size_t index, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    const auto r = run_command("squeue -h -r -j " + job + " -o '%K %T'");
    if (r.output.find(std::to_string(index) + " RUNNING") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// What a finished run measured, to compare a Slurm run with a local one.
std::map<std::string, std::map<std::string, double>> metrics_of(const std::vector<RunRow>& rows) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& r : rows) {
    if (r.status != RunStatus::finished) continue;
    for (const auto& m : r.valid_metrics) out[r.trial_key]["valid " + m.name] = m.value;
    for (const auto& m : r.test_metrics) out[r.trial_key]["test " + m.name] = m.value;
  }
  return out;
}

// Every row as text (status, outcome, times, error), to see that a repeated collect changed none.
std::string dump(const std::vector<RunRow>& rows) {
  std::string out;
  for (const auto& r : rows)
    out += fmt::format("{} {} {} {} {} {} {}\n", r.trial_key, recrun::results::to_string(r.status),
                       r.attempts, r.finished_at, r.owner_host, r.owner_pid.value_or(0), r.error);
  return out;
}

bool wait_until_idle(const std::string& job, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    const auto r = run_command("squeue -h -r -j " + job + " -o %T");
    if (r.exit_code == 0 && r.output.find_first_not_of(" \n") == std::string::npos) return true;
    if (r.exit_code != 0 && r.output.find("Invalid job id") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return false;
}

std::string job_id_in(const std::string& output) {
  std::smatch m;
  if (std::regex_search(output, m, std::regex("submitted Slurm job ([0-9]+)"))) return m[1];
  return "";
}

TEST(SlurmE2E, SweepCancelCollectResubmit) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: the test cluster's SlurmUser and SlurmdUser are root";
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path work = recrun::test::temp_dir("slurm_e2e");
  Cluster cluster;
  // Short: slurmd's Unix sockets live under it, and a socket path holds at most 108 bytes.
  std::string short_dir = "/tmp/rslurm-XXXXXX";
  ASSERT_NE(::mkdtemp(short_dir.data()), nullptr);
  cluster.dir = short_dir;
  cluster.started = true;  // stop even after a half start
  const auto up = run_command(shell_quote(kClusterScript.string()) + " start " +
                              shell_quote(cluster.dir.string()));
  ASSERT_EQ(up.exit_code, 0) << "the Slurm daemons did not start:\n" << up.output << cluster.logs();
  ::setenv("SLURM_CONF", (cluster.dir / "slurm.conf").c_str(), 1);
  const double t_cluster = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const fs::path exp_dir = work / "exp";
  fs::create_directories(exp_dir);
  std::ofstream(exp_dir / "sweep.toml") << kExperiment;
  const auto synth = run_command(recrun(exp_dir, "data synth --out data --users 400 --items 150"));
  ASSERT_EQ(synth.exit_code, 0) << synth.output;

  // 0. A job sbatch refuses (no such partition) leaves no submission and no shard behind.
  const auto refused = run_command(recrun(exp_dir, "sweep sweep.toml --executor slurm --partition nosuch"));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("sbatch refused the job"), std::string::npos) << refused.output;
  EXPECT_TRUE(fs::is_empty(exp_dir / "results/slurm/slurm-e2e")) << refused.output;
  EXPECT_TRUE(fs::is_empty(exp_dir / "results/shards")) << refused.output;

  // 1. Submit all six, two at a time; the crashy trial (task 5) hangs until it is cancelled.
  const auto submit = run_command(recrun(
      exp_dir, "sweep sweep.toml --executor slurm --array-limit 2 --cpus-per-task 1 --time 10",
      "RECRUN_CRASHY_MODE=hang"));
  ASSERT_EQ(submit.exit_code, 0) << submit.output << cluster.logs();
  const std::string job = job_id_in(submit.output);
  ASSERT_FALSE(job.empty()) << submit.output;
  EXPECT_NE(submit.output.find("6 array task(s) (2 at once)"), std::string::npos) << submit.output;
  ASSERT_TRUE(wait_until_running(job, 5, std::chrono::seconds(240)))
      << run_command("squeue -r -j " + job).output << cluster.logs();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto cancel = run_command("scancel " + job + "_5");
  ASSERT_EQ(cancel.exit_code, 0) << cancel.output;
  ASSERT_TRUE(wait_until_idle(job, std::chrono::seconds(240)))
      << run_command("squeue -r -j " + job).output << cluster.logs();
  const double t_job = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The index -> trial mapping the tasks used.
  fs::path submission;
  for (const auto& e : fs::directory_iterator(exp_dir / "results/slurm/slurm-e2e")) submission = e.path();
  std::vector<std::string> keys;
  {
    std::ifstream in(submission / "trials.txt");
    for (std::string k; std::getline(in, k);) keys.push_back(k);
  }
  ASSERT_EQ(keys.size(), 6u);

  // 2. Collect: five finished, the cancelled one failed with Slurm's reason.
  const auto collect = run_command(recrun(exp_dir, "sweep sweep.toml --collect"));
  EXPECT_EQ(collect.exit_code, 3) << collect.output;
  std::vector<RunRow> rows;
  {
    ResultsStore store(exp_dir / "results/results.db");
    rows = store.runs("slurm-e2e");
  }
  ASSERT_EQ(rows.size(), 6u);
  std::size_t finished = 0;
  for (const auto& r : rows) {
    if (r.trial_key == keys[5]) {
      EXPECT_EQ(r.status, RunStatus::failed) << r.error;
      EXPECT_NE(r.error.find("CANCELLED"), std::string::npos) << r.error;
      EXPECT_NE(r.error.find(job + "_5"), std::string::npos) << r.error;
    } else {
      EXPECT_EQ(r.status, RunStatus::finished) << r.trial_key << ": " << r.error << "\n"
                                               << collect.output;
      finished += r.status == RunStatus::finished;
      EXPECT_TRUE(fs::exists(exp_dir / "results/logs/slurm-e2e" / (r.trial_key + ".log")));
      EXPECT_TRUE(fs::exists(exp_dir / r.tensorboard_path)) << r.tensorboard_path;
    }
  }
  EXPECT_EQ(finished, 5u);
  // Every shard was moved aside, none deleted.
  for (const auto& k : keys) {
    const std::string name = k + "." + submission.filename().string() + ".db";
    EXPECT_FALSE(fs::exists(exp_dir / "results/shards" / name)) << name;
    EXPECT_TRUE(fs::exists(exp_dir / "results/shards/merged" / name)) << name;
  }

  // Collecting again changes nothing.
  const auto again = run_command(recrun(exp_dir, "sweep sweep.toml --collect"));
  EXPECT_EQ(again.exit_code, 3) << again.output;
  {
    ResultsStore store(exp_dir / "results/results.db");
    EXPECT_EQ(dump(store.runs("slurm-e2e")), dump(rows));
  }

  // 3. The same trials run locally (one thread, as each array task had) measure the same.
  const auto local = run_command(recrun(exp_dir, "sweep sweep.toml --results local --threads 1 --no-live"));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  {
    ResultsStore store(exp_dir / "local/results.db");
    auto slurm_metrics = metrics_of(rows);
    auto local_metrics = metrics_of(store.runs("slurm-e2e"));
    local_metrics.erase(keys[5]);
    EXPECT_EQ(slurm_metrics.size(), 5u);
    EXPECT_EQ(slurm_metrics, local_metrics);
  }

  // 4. Resubmitting: the failed trial waits for --retry-failed, as locally; then it alone goes.
  const auto none = run_command(recrun(exp_dir, "sweep sweep.toml --executor slurm"));
  EXPECT_EQ(none.exit_code, 3) << none.output;
  EXPECT_NE(none.output.find("nothing to submit"), std::string::npos) << none.output;
  const auto retry = run_command(recrun(
      exp_dir, "sweep sweep.toml --executor slurm --retry-failed --wait --poll-interval 0.5"));
  EXPECT_EQ(retry.exit_code, 0) << retry.output << cluster.logs();
  EXPECT_NE(retry.output.find("1 array task(s)"), std::string::npos) << retry.output;
  const std::string job2 = job_id_in(retry.output);
  EXPECT_NE(job2, job);
  {
    ResultsStore store(exp_dir / "results/results.db");
    const auto now = store.runs("slurm-e2e");
    EXPECT_EQ(store.status_counts("slurm-e2e").finished, 6) << dump(now);
    // The five merged before are untouched.
    for (const auto& r : rows) {
      if (r.trial_key == keys[5]) continue;
      const auto n = store.find(r.trial_key);
      EXPECT_EQ(n->finished_at, r.finished_at);
    }
    EXPECT_EQ(metrics_of(now).at(keys[5]),
              metrics_of(ResultsStore(exp_dir / "local/results.db").runs("slurm-e2e")).at(keys[5]));
  }
  // The second submission's trials.txt holds only the cancelled trial.
  std::size_t submissions = 0;
  for (const auto& e : fs::directory_iterator(exp_dir / "results/slurm/slurm-e2e")) {
    ++submissions;
    if (e.path() == submission) continue;
    std::ifstream in(e.path() / "trials.txt");
    std::string line, all;
    while (std::getline(in, line)) all += line + "\n";
    EXPECT_EQ(all, keys[5] + "\n");
  }
  EXPECT_EQ(submissions, 2u);
  const auto last = run_command(recrun(exp_dir, "sweep sweep.toml --collect"));
  EXPECT_EQ(last.exit_code, 0) << last.output;
  EXPECT_NE(last.output.find("collected 0 shard(s)"), std::string::npos) << last.output;

  // 5. Data-parallel training under srun: two tasks are the two ranks of one run (FileStore in
  // the results directory), rank 0 records it, and it measures what one process measures.
  {
    const std::string model_args =
        "run --model sasrec --data data --set epochs=2 --set dropout=0 --set hidden_units=16 "
        "--set num_heads=2 --set max_len=8 --threads 1";
    const auto dp = run_command("cd " + shell_quote(exp_dir.string()) +
                                " && srun -n 2 --kill-on-bad-exit=1 --time 10 " +
                                recrun::test::recrun_bin() + " " + model_args + " --results dp");
    ASSERT_EQ(dp.exit_code, 0) << dp.output << cluster.logs();
    EXPECT_NE(dp.output.find("data-parallel: 2 ranks"), std::string::npos) << dp.output;
    const auto alone = run_command(recrun(exp_dir, model_args + " --results dp-alone"));
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    ResultsStore a(exp_dir / "dp/results.db"), b(exp_dir / "dp-alone/results.db");
    const auto ra = a.runs(), rb = b.runs();
    ASSERT_EQ(ra.size(), 1u);
    ASSERT_EQ(rb.size(), 1u);
    EXPECT_EQ(ra[0].status, RunStatus::finished) << ra[0].error;
    EXPECT_EQ(ra[0].trial_key, rb[0].trial_key);
    for (const auto& m : rb[0].valid_metrics)
      for (const auto& n : ra[0].valid_metrics)
        if (m.name == n.name) {
          EXPECT_NEAR(n.value, m.value, 1e-3) << m.name;
        }
    // The rendezvous file went with the run.
    EXPECT_TRUE(!fs::exists(exp_dir / "dp/.rendezvous") || fs::is_empty(exp_dir / "dp/.rendezvous"));
  }

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("cluster_start_s", fmt::format("{:.1f}", t_cluster));
  RecordProperty("first_job_s", fmt::format("{:.1f}", t_job - t_cluster));
  RecordProperty("total_s", fmt::format("{:.1f}", total));
  std::printf("slurm e2e: cluster up in %.1fs, 6-task job (1 cancelled) done at %.1fs, total %.1fs\n",
              t_cluster, t_job, total);
}

// Mistakes are refused before anything is registered, naming the flag.
TEST(SlurmCli, BadInputNamesTheFlag) {
  const fs::path dir = recrun::test::temp_dir("slurm_cli");
  std::ofstream(dir / "sweep.toml") << kExperiment;
  ASSERT_EQ(run_command(recrun(dir, "data synth --out data --users 60 --items 30")).exit_code, 0);
  const auto expect_error = [&](const std::string& args, const std::string& needle) {
    const auto r = run_command(recrun(dir, "sweep sweep.toml " + args));
    EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(dir / "results/results.db")) << args;
  };
  expect_error("--executor slurm --time 2h", "--time '2h'");
  expect_error("--executor slurm --array-limit 0", "--array-limit 0");
  expect_error("--executor slurm --cpus-per-task 0", "--cpus-per-task 0");
  expect_error("--executor pbs", "--executor 'pbs'");
  expect_error("--partition short", "--partition is an option of the Slurm executor");
  expect_error("--wait", "--wait is an option of the Slurm executor");
  expect_error("--executor slurm --jobs 2", "--jobs is an option of the local executor");
  expect_error("--collect", "--collect: nothing to collect for experiment 'slurm-e2e'");
  // No sbatch on PATH (the binary is called by its full path; nothing else is on PATH).
  {
    const auto r = run_command(recrun(dir, "sweep sweep.toml --executor slurm",
                                      "env PATH=" + shell_quote((dir / "empty").string())));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("'sbatch' is not on PATH"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "results/results.db"));
  }
  // A dry run needs no Slurm: it shows the script it would submit.
  const auto dry = run_command(recrun(dir, "sweep sweep.toml --executor slurm --dry-run --array-limit 2",
                                      "env PATH=/nonexistent"));
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("#SBATCH --array=0-5%2"), std::string::npos) << dry.output;
  EXPECT_FALSE(fs::exists(dir / "results/results.db"));
}

}  // namespace
