// Result shards (results/shards.hpp): a one-trial database written by a cluster array task and
// merged into results.db exactly once, however often and by however many collectors at once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "results/results_store.hpp"
#include "results/shards.hpp"
#include "results/sqlite_db.hpp"
#include "support/plugins.hpp"

namespace fs = std::filesystem;
using namespace recrun::results;

namespace {

TrialSpec spec_of(const std::string& key) {
  TrialSpec spec;
  spec.trial_key = key;
  spec.group_name = "ease";
  spec.model = "ease";
  spec.data_path = "data/synth";
  spec.data_fingerprint = "fp";
  spec.protocol_json = R"({"split":"leave_one_out"})";
  spec.seed = 7;
  spec.params = {Param::of_float("lambda", 500), Param::of_int("epochs", 1)};
  return spec;
}

std::vector<std::pair<std::string, double>> pairs(const std::vector<Metric>& metrics) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& m : metrics) out.emplace_back(m.name, m.value);
  return out;
}

const ExperimentRow kExperiment{0, "exp", "hash1", "[experiment]\nname = \"exp\"\n", {}};

StoreOptions durable() {
  StoreOptions o;
  o.durable_commits = true;
  return o;
}

class ShardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("shards");
    main_path_ = dir_ / "results.db";
    ResultsStore main(main_path_, durable());
    const auto id = main.upsert_experiment(kExperiment.name, kExperiment.toml_text, kExperiment.hash);
    std::vector<TrialSpec> specs;
    for (const char* k : {"k1", "k2", "k3"}) {
      specs.push_back(spec_of(k));
      specs.back().experiment_id = id;
    }
    main.register_trials(specs);
  }

  // Creates the shard of `key` and runs its trial there as an array task would: claim, two
  // epochs, then finish (with per-user metrics) or fail.
  fs::path run_in_shard(const std::string& key, bool succeed, double ndcg = 0.25) {
    const fs::path path = dir_ / "shards" / (key + ".sub.db");
    create_shard(path, kExperiment, spec_of(key));
    ResultsStore shard(path, shard_store_options(false, std::chrono::seconds(5)));
    EXPECT_EQ(shard.claim(key), ClaimResult::claimed);
    shard.log_epoch(key, 1, SplitName::train, {{"loss", 0.5}});
    shard.log_epoch(key, 1, SplitName::valid, {{"NDCG@10", ndcg / 2}});
    shard.log_epoch(key, 2, SplitName::train, {{"loss", 0.25}});
    if (!succeed) {
      shard.fail(key, "set-up failed: boom");
      return path;
    }
    FinishInfo f;
    f.best_epoch = 2;
    f.epochs_run = 2;
    f.fit_seconds = 1.5;
    f.eval_seconds = 0.5;
    f.total_seconds = 3;
    f.checkpoint_path = "results/checkpoints/exp/" + key + "/best.ckpt";
    f.tensorboard_path = "results/tensorboard/exp/" + key;
    f.valid_metrics = {{"NDCG@10", ndcg}};
    f.test_metrics = {{"NDCG@10", ndcg - 0.01}, {"Hit@10", 0.5}};
    f.users = {0, 3, 9};
    f.valid_user_metrics = {{"NDCG@10", {0.25f, 0.5f, 0.0f}}};
    f.test_user_metrics = {{"NDCG@10", {0.125f, 0.5f, 0.0f}}, {"Hit@10", {1, 1, 0}}};
    shard.finish(key, f);
    return path;
  }

  fs::path dir_;
  fs::path main_path_;
};

TEST_F(ShardsTest, FinishedShardMergesWithEverything) {
  const fs::path path = run_in_shard("k1", true);
  ResultsStore main(main_path_, durable());
  const ShardContent content = read_shard(path);
  EXPECT_EQ(content.row.status, RunStatus::finished);
  EXPECT_EQ(content.experiment.name, "exp");
  const MergeOutcome out = merge_shard(main, content);
  EXPECT_EQ(out.result, MergeResult::merged_finished);

  const auto row = main.find("k1");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->status, RunStatus::finished);
  EXPECT_EQ(row->experiment, "exp");
  EXPECT_EQ(row->best_epoch, 2);
  EXPECT_EQ(row->epochs_run, 2);
  EXPECT_DOUBLE_EQ(*row->total_seconds, 3);
  EXPECT_EQ(row->checkpoint_path, "results/checkpoints/exp/k1/best.ckpt");
  EXPECT_EQ(row->tensorboard_path, "results/tensorboard/exp/k1");
  EXPECT_EQ(row->owner_host, content.row.owner_host);
  EXPECT_EQ(row->test_metrics.size(), 2u);
  EXPECT_EQ(pairs(row->valid_metrics), pairs(content.row.valid_metrics));
  EXPECT_EQ(pairs(row->test_metrics), pairs(content.row.test_metrics));
  // Curves, with their wall times, and per-user metrics are copied as they are.
  const auto epochs = main.epoch_metrics("k1");
  ASSERT_EQ(epochs.size(), content.epochs.size());
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    EXPECT_EQ(epochs[i].epoch, content.epochs[i].epoch);
    EXPECT_EQ(epochs[i].name, content.epochs[i].name);
    EXPECT_EQ(epochs[i].value, content.epochs[i].value);
    EXPECT_EQ(epochs[i].wall_time, content.epochs[i].wall_time);
  }
  const auto users = main.user_metrics("k1");
  ASSERT_TRUE(users);
  EXPECT_EQ(users->users, (std::vector<std::int64_t>{0, 3, 9}));
  EXPECT_EQ(users->test, content.users->test);
  EXPECT_EQ(users->valid, content.users->valid);
}

TEST_F(ShardsTest, MergingTwiceChangesNothing) {
  const fs::path path = run_in_shard("k1", true);
  ResultsStore main(main_path_, durable());
  EXPECT_EQ(merge_shard(main, read_shard(path)).result, MergeResult::merged_finished);
  const auto before = main.find("k1");
  const auto epochs_before = main.epoch_metrics("k1").size();
  EXPECT_EQ(merge_shard(main, read_shard(path)).result, MergeResult::already_finished);
  const auto after = main.find("k1");
  EXPECT_EQ(after->finished_at, before->finished_at);
  EXPECT_EQ(after->attempts, before->attempts);
  EXPECT_EQ(main.epoch_metrics("k1").size(), epochs_before);
  Database db(main_path_, std::chrono::seconds(5));
  auto count = db.prepare("SELECT COUNT(*) FROM runs WHERE trial_key = 'k1'");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 1);
}

TEST_F(ShardsTest, NeverOverwritesAFinishedResult) {
  ResultsStore main(main_path_, durable());
  ASSERT_EQ(main.claim("k2"), ClaimResult::claimed);
  FinishInfo local;
  local.valid_metrics = {{"NDCG@10", 0.9}};
  local.test_metrics = {{"NDCG@10", 0.8}};
  main.finish("k2", local);
  // A shard of the same trial, finished with other numbers, and a failed one.
  const fs::path finished = run_in_shard("k2", true, 0.1);
  EXPECT_EQ(merge_shard(main, read_shard(finished)).result, MergeResult::already_finished);
  const fs::path failed = run_in_shard("k2", false);
  EXPECT_EQ(merge_shard(main, read_shard(failed), "Slurm array task 1_0").result,
            MergeResult::already_finished);
  const auto row = main.find("k2");
  EXPECT_EQ(row->status, RunStatus::finished);
  EXPECT_DOUBLE_EQ(row->test_metrics.at(0).value, 0.8);
  EXPECT_TRUE(row->error.empty());
}

TEST_F(ShardsTest, FailedShardRecordsItsErrorAndAFinishedOneReplacesAFailure) {
  ResultsStore main(main_path_, durable());
  const fs::path failed = run_in_shard("k3", false);
  const auto out = merge_shard(main, read_shard(failed), "Slurm array task 12_2");
  EXPECT_EQ(out.result, MergeResult::merged_failed);
  EXPECT_EQ(main.find("k3")->status, RunStatus::failed);
  EXPECT_EQ(main.find("k3")->error, "Slurm array task 12_2: set-up failed: boom");
  // Resubmitted (--retry-failed), it finished: the failure gives way.
  const fs::path finished = run_in_shard("k3", true);
  EXPECT_EQ(merge_shard(main, read_shard(finished)).result, MergeResult::merged_finished);
  EXPECT_EQ(main.find("k3")->status, RunStatus::finished);
}

TEST_F(ShardsTest, UnfinishedShardIsNotDone) {
  const fs::path path = dir_ / "shards" / "k1.sub.db";
  create_shard(path, kExperiment, spec_of("k1"));
  ResultsStore main(main_path_, durable());
  EXPECT_EQ(merge_shard(main, read_shard(path)).result, MergeResult::not_done);
  EXPECT_EQ(main.find("k1")->status, RunStatus::pending);
}

TEST_F(ShardsTest, ReadingNeverCreatesAShardAndABusyOneFailsFast) {
  EXPECT_THROW(read_shard(dir_ / "shards" / "missing.db"), StoreError);
  EXPECT_FALSE(fs::exists(dir_ / "shards" / "missing.db"));
  const fs::path path = dir_ / "shards" / "k1.sub.db";
  create_shard(path, kExperiment, spec_of("k1"));
  // The array task has it open (exclusive locking): a collector gets SQLITE_BUSY, quickly.
  ResultsStore task(path, shard_store_options(false, std::chrono::seconds(5)));
  ASSERT_EQ(task.claim("k1"), ClaimResult::claimed);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    read_shard(path, std::chrono::milliseconds(200));
    ADD_FAILURE() << "a shard its task holds was read";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.sqlite_code() & 0xff, 5) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  // Exclusive mode: no shared-memory file, which a network file system could not share.
  EXPECT_FALSE(fs::exists(path.string() + "-shm"));
}

TEST_F(ShardsTest, MoveAsideNeverReplacesAnEarlierShard) {
  const fs::path a = run_in_shard("k1", false);
  const fs::path merged = dir_ / "shards" / "merged";
  EXPECT_TRUE(move_shard_aside(a, merged));
  EXPECT_FALSE(fs::exists(a));
  EXPECT_TRUE(fs::exists(merged / "k1.sub.db"));
  EXPECT_FALSE(move_shard_aside(a, merged));  // another collector moved it already
  const fs::path b = run_in_shard("k1", true);
  EXPECT_TRUE(move_shard_aside(b, merged));
  EXPECT_TRUE(fs::exists(merged / "k1.sub.db.1"));
  EXPECT_EQ(read_shard(merged / "k1.sub.db").row.status, RunStatus::failed);
  EXPECT_EQ(read_shard(merged / "k1.sub.db.1").row.status, RunStatus::finished);
}

// Several collectors merge the same shards at the same time: every trial ends up finished
// once, with one row, and each collector either merged it or found it merged.
TEST_F(ShardsTest, ConcurrentCollectorsMergeOnce) {
  std::vector<fs::path> shards;
  for (const char* k : {"k1", "k2", "k3"}) shards.push_back(run_in_shard(k, true));
  constexpr int kCollectors = 6;
  int start[2];
  ASSERT_EQ(::pipe(start), 0);
  std::vector<pid_t> children;
  for (int c = 0; c < kCollectors; ++c) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(start[1]);
      char byte;
      while (::read(start[0], &byte, 1) > 0) {
      }
      int merged = 0;
      try {
        ResultsStore main(main_path_, durable());
        for (const auto& s : shards) {
          ShardContent content;
          try {
            content = read_shard(s, std::chrono::seconds(30));
          } catch (const StoreError&) {
            if (!fs::exists(s)) continue;  // moved aside by another collector
            throw;
          }
          const auto out = merge_shard(main, content);
          if (out.result == MergeResult::merged_finished) ++merged;
          else if (out.result != MergeResult::already_finished) ::_exit(90);
          move_shard_aside(s, dir_ / "shards" / "merged");
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "collector %d: %s\n", c, e.what());
        ::_exit(91);
      }
      ::_exit(merged);
    }
    children.push_back(pid);
  }
  ::close(start[0]);
  ::close(start[1]);
  int merged_total = 0;
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_LT(WEXITSTATUS(status), 90) << "collector exit " << WEXITSTATUS(status);
    merged_total += WEXITSTATUS(status);
  }
  EXPECT_EQ(merged_total, 3);
  ResultsStore main(main_path_);
  EXPECT_EQ(main.status_counts("exp").finished, 3);
  EXPECT_EQ(main.status_counts("exp").total(), 3);
  for (const auto& s : shards) EXPECT_FALSE(fs::exists(s));
  std::size_t moved = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "shards" / "merged"))
    moved += e.path().extension() == ".db";
  EXPECT_EQ(moved, 3u);
}

}  // namespace
