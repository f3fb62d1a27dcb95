// End-to-end sweeps: the real `recrun` binary, real plugins (ease, popularity) plus the test
// fixtures (crashy: a model that misbehaves on demand; tiny_csv: a data source for data made
// here), a real results.db and real event files. Includes killing a sweep with SIGKILL in the
// middle of a trial and checking that a restart records every trial exactly once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "support/plugins.hpp"
#include "support/process.hpp"
#include "tensorboard/event_reader.hpp"
#include "tensorboard/hparams.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using recrun::results::ResultsStore;
using recrun::results::RunRow;
using recrun::results::RunStatus;

using recrun::test::Outcome;
using recrun::test::processes_mentioning;
using recrun::test::read_file;
using recrun::test::run_recrun;
using recrun::test::spawn_recrun;
using recrun::test::wait_exit;
using recrun::test::wait_until;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Small interactions with structure: users in four taste clusters, each preferring a block of
// items, so that models have something to learn and metrics differ between them.
void write_data(const fs::path& dir, int users = 80, int items = 40) {
  std::mt19937 rng(7);
  std::ostringstream csv;
  csv << "user,item,time\n";
  for (int u = 0; u < users; ++u) {
    const int cluster = u % 4;
    const int n = 8 + static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) {
      const bool in_block = rng() % 10 < 7;
      const int item = in_block ? cluster * (items / 4) + static_cast<int>(rng() % (items / 4))
                                : static_cast<int>(rng() % items);
      csv << "u" << u << ",i" << item << "," << 1000 + u * 100 + k << "\n";
    }
  }
  write_file(dir / "train_ratings.csv", csv.str());
}

std::vector<std::string> with_plugins(std::vector<std::string> args) {
  args.push_back("--plugin-dir");
  args.push_back(recrun::test::fixture_plugin_dir().string());
  return args;
}

recrun::results::StatusCounts counts(const fs::path& db) {
  if (!fs::exists(db)) return {};
  return ResultsStore(db).status_counts();
}

// Every event in every file of a run directory (a killed attempt may have a cut-off tail).
std::vector<recrun::tensorboard::Event> run_events(const fs::path& dir) {
  std::vector<recrun::tensorboard::Event> events;
  for (const auto& f : fs::directory_iterator(dir)) {
    auto part = recrun::tensorboard::read_event_file(f.path(), {.allow_truncated_tail = true});
    events.insert(events.end(), part.begin(), part.end());
  }
  return events;
}

bool has_tag(const std::vector<recrun::tensorboard::Event>& events, const std::string& tag) {
  for (const auto& e : events)
    for (const auto& v : e.values)
      if (v.tag == tag) return true;
  return false;
}

class SweepE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("sweep");
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
ks = [5, 10]
monitor = "NDCG@10"
)",
                                 name) +
                         body);
    return file;
  }
  std::vector<std::string> sweep_args(const fs::path& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"sweep", file.string(), "--results", results_.string(),
                                     "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return with_plugins(args);
  }
  fs::path dir_;
  fs::path results_;
};

const char* kTwelveTrials = R"(
[execution]
checkpoint_every = 0   # last.ckpt after every epoch, so the kill lands between checkpoints

[[group]]
name = "slow"
model = "crashy"
[group.params]
epochs = 6
epoch_sleep = 0.3
patience = 0
[group.grid]
alpha = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10, 50, 100, 500]
)";

}  // namespace

TEST_F(SweepE2E, KillDash9MidwayThenRestartRecordsEveryTrialExactlyOnce) {
  const fs::path file = experiment("killtest", kTwelveTrials);
  const fs::path db = results_ / "results.db";
  const pid_t sweep = spawn_recrun(sweep_args(file, {"--jobs", "2"}), dir_ / "first.log", dir_);
  // Kill once some trials are done and another is mid-training: its checkpoint after an epoch
  // is on disk (last.ckpt) and at most half of its 6 epochs are recorded, so that it is still
  // running when the kill lands even if this process is scheduled late on a loaded machine.
  const auto epochs_recorded = [&](ResultsStore& store, const std::string& key) {
    std::size_t n = 0;
    for (const auto& m : store.epoch_metrics(key))
      n += m.split == recrun::results::SplitName::train && m.name == "loss";
    return n;
  };
  const bool midway = wait_until(
      [&] {
        const auto c = counts(db);
        if (c.finished < 2 || c.running < 1) return false;
        ResultsStore store(db);
        for (const auto& row : store.runs("killtest"))
          if (row.status == RunStatus::running &&
              fs::exists(results_ / "checkpoints" / "killtest" / row.trial_key / "last.ckpt") &&
              epochs_recorded(store, row.trial_key) <= 3)
            return true;
        return false;
      },
      120s);
  ASSERT_TRUE(midway) << read_file(dir_ / "first.log");
  std::this_thread::sleep_for(200ms);  // into the next epoch of the running trials
  ASSERT_EQ(::kill(sweep, SIGKILL), 0);
  EXPECT_EQ(wait_exit(sweep), 128 + SIGKILL);

  // Its workers die with it (PR_SET_PDEATHSIG) instead of running on as orphans.
  // (Generous: dying workers are scheduled late on a loaded machine; orphans would run for good.)
  EXPECT_TRUE(wait_until([&] { return processes_mentioning(results_.string()).empty(); }, 120s))
      << "orphaned workers still running";
  const auto after_kill = counts(db);
  EXPECT_GE(after_kill.running, 1);  // rows of the dead sweep, reaped on the next start
  EXPECT_LT(after_kill.finished, 12);

  const Outcome second = run_recrun(sweep_args(file, {"--jobs", "2"}), dir_);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("now 'interrupted'"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("resuming from its last checkpoint"), std::string::npos) << second.output;

  ResultsStore store(db);
  const auto rows = store.runs("killtest");
  ASSERT_EQ(rows.size(), 12u);
  std::set<std::string> keys;
  int resumed = 0;
  for (const RunRow& row : rows) {
    keys.insert(row.trial_key);
    EXPECT_EQ(row.status, RunStatus::finished) << row.trial_key << " " << row.error;
    EXPECT_FALSE(row.test_metrics.empty());
    if (row.attempts > 1) ++resumed;
    if (row.group_name == "slow") {
      // One curve, no gaps or repeats, even across the kill.
      std::vector<std::int64_t> epochs;
      for (const auto& m : store.epoch_metrics(row.trial_key))
        if (m.split == recrun::results::SplitName::train && m.name == "loss") epochs.push_back(m.epoch);
      EXPECT_EQ(epochs, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5})) << row.trial_key;
      EXPECT_EQ(row.epochs_run, 6);
    }
    // Event files exist and decode, with the final test metrics and the HParams session.
    ASSERT_FALSE(row.tensorboard_path.empty());
    const auto events = run_events(row.tensorboard_path);
    EXPECT_TRUE(has_tag(events, "test/NDCG@10")) << row.tensorboard_path;
    EXPECT_TRUE(has_tag(events, "valid/NDCG@10")) << row.tensorboard_path;
    EXPECT_TRUE(has_tag(events, std::string(recrun::tensorboard::hparams_session_start_tag)));
    EXPECT_TRUE(has_tag(events, std::string(recrun::tensorboard::hparams_session_end_tag)));
    if (row.group_name == "slow") {
      EXPECT_TRUE(has_tag(events, "train/loss"));
    }
  }
  EXPECT_EQ(keys.size(), 12u);
  EXPECT_GE(resumed, 1) << "no trial was interrupted and resumed";
  EXPECT_EQ(store.status_counts().total(), 12);

  // The experiment's HParams config sits above the runs.
  bool config = false;
  for (const auto& f : fs::directory_iterator(results_ / "tensorboard" / "killtest"))
    if (f.is_regular_file())
      config |= has_tag(recrun::tensorboard::read_event_file(f.path()),
                        std::string(recrun::tensorboard::hparams_experiment_tag));
  EXPECT_TRUE(config);

  // A third run finds nothing to do.
  const Outcome third = run_recrun(sweep_args(file), dir_);
  EXPECT_EQ(third.code, 0) << third.output;
  EXPECT_NE(third.output.find("0 to run"), std::string::npos) << third.output;
  EXPECT_EQ(ResultsStore(db).status_counts().total(), 12);
}

TEST_F(SweepE2E, CrashesNanAndThrowsAreRecordedAsFailedWhileTheRestFinish) {
  const fs::path file = experiment("crashes", R"(
[[group]]
name = "bad"
model = "crashy"
[group.params]
epochs = 3
fail_epoch = 1
[group.grid]
mode = ["segfault", "nan", "throw", "abort"]

[[group]]
name = "ok"
model = "crashy"
[group.params]
epochs = 2

[[group]]
name = "pop"
model = "popularity"

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10, 100]
)");
  const Outcome run = run_recrun(sweep_args(file, {"--jobs", "2", "--no-live"}), dir_);
  EXPECT_EQ(run.code, 3) << run.output;  // some trials failed
  ResultsStore store(results_ / "results.db");
  const auto rows = store.runs("crashes");
  ASSERT_EQ(rows.size(), 8u);
  std::map<std::string, std::string> errors;
  int finished = 0;
  for (const auto& row : rows) {
    if (row.group_name == "bad") {
      EXPECT_EQ(row.status, RunStatus::failed) << row.trial_key;
      for (const auto& p : row.params)
        if (p.name == "mode") errors[p.value] = row.error;
    } else {
      EXPECT_EQ(row.status, RunStatus::finished) << row.group_name << " " << row.error;
      ++finished;
    }
  }
  EXPECT_EQ(finished, 4);
  EXPECT_NE(errors["segfault"].find("signal 11"), std::string::npos) << errors["segfault"];
  EXPECT_NE(errors["abort"].find("signal 6"), std::string::npos) << errors["abort"];
  EXPECT_NE(errors["nan"].find("non-finite training loss"), std::string::npos) << errors["nan"];
  EXPECT_NE(errors["throw"].find("thrown on purpose"), std::string::npos) << errors["throw"];
  EXPECT_NE(run.output.find("failed (rerun with --retry-failed)"), std::string::npos);

  // Failed trials stay failed without --retry-failed, and run again with it.
  const Outcome again = run_recrun(sweep_args(file), dir_);
  EXPECT_NE(again.output.find("0 to run"), std::string::npos) << again.output;
  const Outcome retry = run_recrun(sweep_args(file, {"--retry-failed", "--only", "mode=throw"}), dir_);
  EXPECT_EQ(retry.code, 3) << retry.output;
  EXPECT_NE(retry.output.find("1 to run"), std::string::npos) << retry.output;
  for (const auto& row : ResultsStore(results_ / "results.db").runs("crashes"))
    for (const auto& p : row.params)
      if (p.name == "mode" && p.value == "throw") {
        EXPECT_EQ(row.attempts, 2);
      }
}

TEST_F(SweepE2E, RunawayTrialsAreKilledAtTheirTimeAndMemoryLimits) {
  const fs::path file = experiment("limits", R"(
[execution]
trial_timeout = 20
memory_limit_mb = 1200

[[group]]
name = "runaway"
model = "crashy"
[group.grid]
mode = ["hang", "oom"]
)");
  const Outcome run = run_recrun(sweep_args(file, {"--jobs", "2"}), dir_);
  EXPECT_EQ(run.code, 3) << run.output;
  for (const auto& row : ResultsStore(results_ / "results.db").runs("limits")) {
    EXPECT_EQ(row.status, RunStatus::failed);
    std::string mode;
    for (const auto& p : row.params)
      if (p.name == "mode") mode = p.value;
    if (mode == "hang") {
      EXPECT_NE(row.error.find("time limit"), std::string::npos) << row.error;
    }
    if (mode == "oom") {
      EXPECT_NE(row.error.find("memory limit"), std::string::npos) << row.error;
    }
  }
}

TEST_F(SweepE2E, BadExperimentFailsBeforeAnyTrialStarts) {
  const fs::path file = experiment("bad", R"(
[[group]]
name = "fine"
model = "popularity"

[[group]]
name = "typo"
model = "ease"
[group.grid]
lamda = [10, 100]
)");
  const Outcome run = run_recrun(sweep_args(file), dir_);
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_NE(run.output.find("bad.toml:20:"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("'lamda'"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("did you mean 'lambda'"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db")) << "something ran or was registered";

  const fs::path missing = experiment("nodata", "[[group]]\nmodel = \"ease\"\n");
  const Outcome no_data = run_recrun(
      with_plugins({"sweep", missing.string(), "--results", results_.string(), "--set",
                    "data.path=nowhere"}),
      dir_);
  EXPECT_EQ(no_data.code, 1);
  EXPECT_NE(no_data.output.find("--set data.path=nowhere"), std::string::npos) << no_data.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db"));
}

TEST_F(SweepE2E, DryRunListsTrialsAndRunsNothing) {
  const fs::path file = experiment("dry", kTwelveTrials);
  const Outcome run = run_recrun(sweep_args(file, {"--dry-run", "--only", "ease"}), dir_);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("lambda=500 seed=42"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("4 trials (of 12"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(results_ / "results.db"));
}

TEST_F(SweepE2E, TwoSweepsWritingOneDatabaseAtOnceBothSucceed) {
  const std::string body = R"(
[[group]]
name = "slow"
model = "crashy"
[group.params]
epochs = 3
epoch_sleep = 0.1
[group.grid]
alpha = [0.0, 1.0, 2.0, 3.0]
)";
  const fs::path a = experiment("alpha", body);
  // Another seed, so that beta's trials are not alpha's (equal trials share their key).
  std::string beta_body = body;
  beta_body.replace(beta_body.find("model = \"crashy\""), 16, "model = \"crashy\"\nseeds = [7]");
  const fs::path b = experiment("beta", beta_body);
  const pid_t pa = spawn_recrun(sweep_args(a, {"--jobs", "2"}), dir_ / "a.log", dir_);
  const pid_t pb = spawn_recrun(sweep_args(b, {"--jobs", "2"}), dir_ / "b.log", dir_);
  EXPECT_EQ(wait_exit(pa), 0) << read_file(dir_ / "a.log");
  EXPECT_EQ(wait_exit(pb), 0) << read_file(dir_ / "b.log");
  ResultsStore store(results_ / "results.db");
  EXPECT_EQ(store.runs("alpha").size(), 4u);
  EXPECT_EQ(store.runs("beta").size(), 4u);
  EXPECT_EQ(store.status_counts().finished, 8);
}

TEST_F(SweepE2E, SigtermStopsWorkersAndARestartResumes) {
  const fs::path file = experiment("term", R"(
[[group]]
name = "slow"
model = "crashy"
[group.params]
epochs = 8
epoch_sleep = 0.3
[group.grid]
alpha = [0.0, 1.0, 2.0]
)");
  const fs::path db = results_ / "results.db";
  const pid_t sweep = spawn_recrun(sweep_args(file, {"--jobs", "2"}), dir_ / "term.log", dir_);
  // The signal goes once a trial is mid-training (an epoch of it recorded, seven to go), a
  // moment read from results.db rather than a clock, so that neither a fast machine (all done)
  // nor a slow one (nothing started) changes what is stopped.
  ASSERT_TRUE(wait_until(
      [&] {
        if (counts(db).running < 1) return false;
        ResultsStore store(db);
        for (const auto& row : store.runs("term"))
          if (row.status == RunStatus::running && !store.epoch_metrics(row.trial_key).empty())
            return true;
        return false;
      },
      120s))
      << read_file(dir_ / "term.log");
  ::kill(sweep, SIGTERM);
  EXPECT_EQ(wait_exit(sweep), 128 + SIGTERM) << read_file(dir_ / "term.log");
  const auto c = counts(db);
  EXPECT_EQ(c.running, 0);  // a stopped sweep leaves nothing 'running'
  EXPECT_GE(c.interrupted, 1);
  EXPECT_TRUE(processes_mentioning(results_.string()).empty());
  const Outcome again = run_recrun(sweep_args(file, {"--jobs", "2"}), dir_);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(counts(db).finished, 3);
}

// The HParams table reads a run's last value of each metric tag: best/valid/<metric> holds the
// best epoch's value, at the best epoch's step, equal to what results.db records (valid/<metric>
// goes on to the last evaluated epoch).
TEST_F(SweepE2E, TheHParamsValidationColumnsAreTheBestEpochsValues) {
  const Outcome run = run_recrun(
      with_plugins({"run", "--model", "multidae", "--data", (dir_ / "data").string(), "--source",
                    "tiny_csv", "--set", "epochs=12", "--set", "patience=3", "--results",
                    results_.string(), "--threads", "1"}),
      dir_);
  ASSERT_EQ(run.code, 0) << run.output;
  const auto rows = ResultsStore(results_ / "results.db").runs();
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].best_epoch);
  double recorded = -1;
  for (const auto& m : rows[0].valid_metrics)
    if (m.name == "NDCG@10") recorded = m.value;
  ASSERT_GE(recorded, 0);
  std::vector<std::pair<std::int64_t, float>> best, curve;
  for (const auto& e : run_events(rows[0].tensorboard_path))
    for (const auto& v : e.values) {
      if (v.tag == "best/valid/NDCG@10" && v.simple_value) best.push_back({e.step, *v.simple_value});
      if (v.tag == "valid/NDCG@10" && v.simple_value) curve.push_back({e.step, *v.simple_value});
    }
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].first, *rows[0].best_epoch);
  EXPECT_FLOAT_EQ(best[0].second, static_cast<float>(recorded));
  ASSERT_FALSE(curve.empty());
  // The curve's point at the best epoch is the same value; its last point is a later epoch's
  // whenever early stopping trained past the best.
  for (const auto& [step, value] : curve)
    if (step == *rows[0].best_epoch) EXPECT_FLOAT_EQ(value, best[0].second);
  EXPECT_GE(curve.back().first, best[0].first);
}

TEST_F(SweepE2E, RecrunRunRecordsItsRunAndEvents) {
  const Outcome run = run_recrun(with_plugins({"run", "--model", "ease", "--data", (dir_ / "data").string(),
                                           "--source", "tiny_csv", "--set", "lambda=20",
                                           "--results", results_.string()}),
                             dir_);
  ASSERT_EQ(run.code, 0) << run.output;
  ResultsStore store(results_ / "results.db");
  const auto rows = store.runs();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, RunStatus::finished);
  EXPECT_EQ(rows[0].model, "ease");
  EXPECT_FALSE(rows[0].test_metrics.empty());
  const auto events = run_events(rows[0].tensorboard_path);
  EXPECT_TRUE(has_tag(events, "test/NDCG@10"));
  // The same run again replaces its row instead of adding one.
  const Outcome again = run_recrun(with_plugins({"run", "--model", "ease", "--data", (dir_ / "data").string(),
                                             "--source", "tiny_csv", "--set", "lambda=20",
                                             "--results", results_.string()}),
                               dir_);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(ResultsStore(results_ / "results.db").runs().size(), 1u);
}

TEST_F(SweepE2E, AnOldResultsDbKeepsItsRowsAndSaysWhyTheirKeysDoNotRun) {
  // A row as recrun wrote it before XXH3 keys: a 16-digit (format-1, FNV-1a) trial key.
  const std::string old_key = "cbf29ce484222325";
  const fs::path db = results_ / "results.db";
  {
    ResultsStore store(db);
    recrun::results::TrialSpec spec;
    spec.trial_key = old_key;
    spec.model = "ease";
    spec.data_path = (dir_ / "data").string();
    spec.seed = 42;
    spec.params = {recrun::results::Param::of_float("lambda", 10)};
    spec.experiment_id = store.upsert_experiment("legacy", "# an older file", "0123456789abcdef");
    store.register_trials({spec});
  }
  const Outcome trial = run_recrun(with_plugins({"trial", old_key, "--results", results_.string()}), dir_);
  EXPECT_EQ(trial.code, 4) << trial.output;
  EXPECT_NE(trial.output.find("version-1 key"), std::string::npos) << trial.output;
  EXPECT_NE(trial.output.find("stays readable"), std::string::npos) << trial.output;

  // A sweep of that experiment says how many old rows it found, runs its own trial under a
  // current key, and leaves the old row as it was.
  const fs::path file = experiment("legacy", R"(
[[group]]
name = "ease"
model = "ease"
[group.params]
lambda = 10
)");
  const Outcome sweep = run_recrun(sweep_args(file), dir_);
  ASSERT_EQ(sweep.code, 0) << sweep.output;
  EXPECT_NE(sweep.output.find("1 run(s) of experiment 'legacy'"), std::string::npos) << sweep.output;
  const auto rows = ResultsStore(db).runs("legacy");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].trial_key, old_key);
  EXPECT_EQ(rows[0].status, RunStatus::pending);
  EXPECT_EQ(rows[0].params.size(), 1u);
  EXPECT_EQ(rows[1].trial_key.size(), 32u);
  EXPECT_EQ(rows[1].status, RunStatus::finished);
}

namespace {

// The zygote of the sweep writing to `results`: /proc/PID/comm is "recrun-zygote" and its
// command line names the results directory.
pid_t find_zygote(const fs::path& results) {
  for (const pid_t pid : processes_mentioning(results.string())) {
    std::string comm = read_file(fmt::format("/proc/{}/comm", pid));
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == "recrun-zygote") return pid;
  }
  return -1;
}

std::map<std::string, double> test_metrics(const RunRow& row) {
  std::map<std::string, double> out;
  for (const auto& m : row.test_metrics) out[m.name] = m.value;
  return out;
}

}  // namespace

// Workers fork from the zygote unless told not to. A forked worker says so in its log, and
// records exactly what an exec'd worker of the same trial records.
TEST_F(SweepE2E, ZygoteForkedWorkersRecordWhatExecdWorkersRecord) {
  const fs::path file = experiment("zyg", R"(
[[group]]
name = "pop"
model = "popularity"

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10, 100]

[[group]]
name = "iter"
model = "crashy"
[group.params]
epochs = 3
)");
  const Outcome forked = run_recrun(sweep_args(file, {"--jobs", "2", "--no-live"}), dir_);
  ASSERT_EQ(forked.code, 0) << forked.output;
  EXPECT_EQ(forked.output.find("starting workers with exec"), std::string::npos) << forked.output;
  const fs::path exec_results = dir_ / "results-exec";
  const Outcome execd =
      run_recrun(with_plugins({"sweep", file.string(), "--results", exec_results.string(),
                               "--threads", "2", "--jobs", "2", "--no-live", "--no-zygote"}),
                 dir_);
  ASSERT_EQ(execd.code, 0) << execd.output;

  const auto forked_rows = ResultsStore(results_ / "results.db").runs("zyg");
  const auto exec_rows = ResultsStore(exec_results / "results.db").runs("zyg");
  ASSERT_EQ(forked_rows.size(), 4u);
  ASSERT_EQ(exec_rows.size(), 4u);
  for (std::size_t i = 0; i < forked_rows.size(); ++i) {
    const RunRow& f = forked_rows[i];
    const RunRow& e = exec_rows[i];
    ASSERT_EQ(f.trial_key, e.trial_key);
    EXPECT_EQ(f.status, RunStatus::finished) << f.error;
    EXPECT_EQ(e.status, RunStatus::finished) << e.error;
    EXPECT_FALSE(f.test_metrics.empty());
    EXPECT_EQ(test_metrics(f), test_metrics(e)) << f.group_name;
    EXPECT_EQ(f.epochs_run, e.epochs_run);
    const std::string flog = read_file(results_ / "logs" / "zyg" / (f.trial_key + ".log"));
    const std::string elog = read_file(exec_results / "logs" / "zyg" / (e.trial_key + ".log"));
    EXPECT_NE(flog.find("start-up (forked from the zygote)"), std::string::npos) << flog;
    EXPECT_NE(flog.find("finished"), std::string::npos) << flog;
    EXPECT_EQ(elog.find("forked from the zygote"), std::string::npos) << elog;
    EXPECT_NE(elog.find("start-up: process"), std::string::npos) << elog;
    // Events were written by the forked worker as by the exec'd one.
    EXPECT_TRUE(has_tag(run_events(f.tensorboard_path), "test/NDCG@10"));
  }
  EXPECT_TRUE(fs::exists(results_ / "logs" / "zyg" / "zygote.log"));
  EXPECT_FALSE(fs::exists(exec_results / "logs" / "zyg" / "zygote.log"));
  // Neither the zygote nor a worker outlives the sweep.
  EXPECT_TRUE(processes_mentioning(results_.string()).empty());

  // execution.zygote = false does what --no-zygote does.
  const fs::path off = experiment("zygoff", "[execution]\nzygote = false\n\n[[group]]\nmodel = \"popularity\"\n");
  const Outcome plain = run_recrun(sweep_args(off, {"--no-live"}), dir_);
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_FALSE(fs::exists(results_ / "logs" / "zygoff" / "zygote.log"));
  const fs::path typo = experiment("zygtypo", "[execution]\nzygote = \"yes\"\n\n[[group]]\nmodel = \"popularity\"\n");
  const Outcome bad = run_recrun(sweep_args(typo), dir_);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("zygtypo.toml:12"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("'execution.zygote' must be true or false"), std::string::npos) << bad.output;
}

// A zygote that dies in the middle of a sweep costs nothing but speed: the running trial goes
// on (it is the sweep's child, not the zygote's), and later workers are exec'd.
TEST_F(SweepE2E, AZygoteKilledMidSweepIsReplacedByExec) {
  const fs::path file = experiment("zygkill", R"(
[[group]]
name = "slow"
model = "crashy"
[group.params]
epochs = 3
epoch_sleep = 0.2
patience = 0
[group.grid]
alpha = [0.0, 0.1, 0.2, 0.3, 0.4]
)");
  const fs::path db = results_ / "results.db";
  const pid_t sweep = spawn_recrun(sweep_args(file, {"--jobs", "1", "--no-live"}), dir_ / "zk.log", dir_);
  ASSERT_TRUE(wait_until([&] { return counts(db).finished >= 1 && counts(db).running == 1; }, 120s))
      << read_file(dir_ / "zk.log");
  const pid_t zygote = find_zygote(results_);
  ASSERT_GT(zygote, 0) << "no zygote found";
  ASSERT_EQ(::kill(zygote, SIGKILL), 0);
  EXPECT_EQ(wait_exit(sweep), 0) << read_file(dir_ / "zk.log");
  const std::string out = read_file(dir_ / "zk.log");
  EXPECT_NE(out.find("starting workers with exec from now on"), std::string::npos) << out;
  int forked = 0, execd = 0;
  for (const auto& row : ResultsStore(db).runs("zygkill")) {
    EXPECT_EQ(row.status, RunStatus::finished) << row.trial_key << " " << row.error;
    EXPECT_EQ(row.epochs_run, 3);
    const std::string log = read_file(results_ / "logs" / "zygkill" / (row.trial_key + ".log"));
    (log.find("forked from the zygote") != std::string::npos ? forked : execd)++;
  }
  EXPECT_GE(forked, 2);  // the one that finished before the kill, and the one running then
  EXPECT_GE(execd, 1);
  EXPECT_EQ(forked + execd, 5);
  EXPECT_TRUE(processes_mentioning(results_.string()).empty());
}
