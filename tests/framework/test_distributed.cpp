// The data-parallel pieces below the trainer: how a global batch is split between ranks, where
// a rank's settings come from (the --nproc launcher's variables, srun's), and a real Gloo group
// of two ranks (two threads, a FileStore and a TCPStore) summing tensors, plus a rank whose
// peer never comes failing after its timeout with a message that says so.
#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>
#include <thread>

#include "distributed/distributed.hpp"
#include "recrun/distributed.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace {

using recrun::distributed::DistributedConfig;
using recrun::distributed::GlooGroup;

TEST(ShardRange, SplitsABatchIntoContiguousPartsThatDifferByAtMostOne) {
  for (const int world : {1, 2, 3, 7})
    for (const std::int64_t n : {0, 1, 2, 5, 25, 26, 100}) {
      std::int64_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < world; ++r) {
        const auto [begin, end] = recrun::shard_range(n, r, world);
        EXPECT_EQ(begin, next) << "n " << n << " world " << world << " rank " << r;
        EXPECT_LE(begin, end);
        next = end;
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
      }
      EXPECT_EQ(next, n) << "the parts cover the batch";
      EXPECT_LE(largest - smallest, 1);
    }
  // 25 rows over two ranks: 13 and 12.
  EXPECT_EQ(recrun::shard_range(25, 0, 2), (std::pair<std::int64_t, std::int64_t>{0, 13}));
  EXPECT_EQ(recrun::shard_range(25, 1, 2), (std::pair<std::int64_t, std::int64_t>{13, 25}));
}

// Sets environment variables for one test and restores them after.
class Env {
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    setenv(name, value, 1);
  }
  ~Env() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

void clear_all(Env& env) {
  for (const char* v : {"RECRUN_RANK", "RECRUN_WORLD_SIZE", "RECRUN_RENDEZVOUS",
                        "RECRUN_DIST_TIMEOUT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_ID",
                        "SLURM_JOB_ID", "MASTER_ADDR", "MASTER_PORT"}) {
    env.set(v, "");
    unsetenv(v);
  }
}

TEST(DistributedEnvironment, ComesFromTheLauncherOrFromSrunAndNamesABadVariable) {
  Env env;
  clear_all(env);
  const auto results = recrun::test::temp_dir("dist-env");
  EXPECT_FALSE(recrun::distributed::distributed_from_environment(results)) << "alone";

  env.set("RECRUN_WORLD_SIZE", "3");
  env.set("RECRUN_RANK", "2");
  env.set("RECRUN_RENDEZVOUS", "file:/tmp/somewhere");
  auto c = recrun::distributed::distributed_from_environment(results);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rank, 2);
  EXPECT_EQ(c->world_size, 3);
  EXPECT_EQ(c->rendezvous, "file:/tmp/somewhere");
  EXPECT_EQ(c->origin, "--nproc");

  env.set("RECRUN_RANK", "3");
  try {
    recrun::distributed::distributed_from_environment(results);
    ADD_FAILURE() << "rank 3 of 3 accepted";
  } catch (const recrun::ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("RECRUN_RANK=3"), std::string::npos) << e.what();
  }
  env.set("RECRUN_RANK", "1");
  env.set("RECRUN_RENDEZVOUS", "udp:x");
  EXPECT_THROW(recrun::distributed::distributed_from_environment(results), recrun::ParamError);
  env.set("RECRUN_RENDEZVOUS", "file:/tmp/x");
  env.set("RECRUN_DIST_TIMEOUT", "soon");
  try {
    recrun::distributed::distributed_from_environment(results);
    ADD_FAILURE() << "a timeout of 'soon' accepted";
  } catch (const recrun::ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("RECRUN_DIST_TIMEOUT"), std::string::npos);
  }
  unsetenv("RECRUN_DIST_TIMEOUT");
  unsetenv("RECRUN_WORLD_SIZE");
  unsetenv("RECRUN_RANK");
  unsetenv("RECRUN_RENDEZVOUS");

  // An sbatch script has SLURM_NTASKS but is one process: no SLURM_STEP_ID, no group.
  env.set("SLURM_PROCID", "0");
  env.set("SLURM_NTASKS", "4");
  env.set("SLURM_JOB_ID", "99");
  EXPECT_FALSE(recrun::distributed::distributed_from_environment(results));
  env.set("SLURM_STEP_ID", "3");
  c = recrun::distributed::distributed_from_environment(results);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->world_size, 4);
  EXPECT_EQ(c->origin, "srun");
  EXPECT_EQ(c->rendezvous, "file:" + (results / ".rendezvous" / "slurm-99.3").string());
  env.set("MASTER_ADDR", "node01");
  env.set("MASTER_PORT", "29500");
  c = recrun::distributed::distributed_from_environment(results);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rendezvous, "tcp:node01:29500");
  env.set("SLURM_NTASKS", "1");
  EXPECT_FALSE(recrun::distributed::distributed_from_environment(results)) << "srun -n 1 is alone";
}

// Two ranks in two threads of this process.
void with_two_ranks(const std::string& rendezvous,
                    const std::function<void(GlooGroup&)>& body) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        DistributedConfig c;
        c.rank = r;
        c.world_size = 2;
        c.rendezvous = rendezvous;
        c.origin = "--nproc";
        c.timeout_s = 60;
        auto group = GlooGroup::connect(c);
        body(*group);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(GlooGroup, TwoRanksSumFloatDoubleAndIntegerTensors) {
  const auto dir = recrun::test::temp_dir("gloo");
  for (const std::string& rendezvous :
       {"file:" + (dir / "store").string(),
        "tcp:127.0.0.1:" + std::to_string(recrun::test::free_tcp_port())}) {
    with_two_ranks(rendezvous, [](GlooGroup& g) {
      const double r = g.rank();
      torch::Tensor f = torch::full({1000}, static_cast<float>(r + 1));
      g.all_reduce_sum(f);
      EXPECT_TRUE(f.eq(3.0f).all().item<bool>());
      torch::Tensor d = torch::tensor({0.1 * (r + 1), 1e300 * r}, torch::kFloat64);
      g.all_reduce_sum(d);
      EXPECT_DOUBLE_EQ(d[0].item<double>(), 0.1 + 0.2);
      EXPECT_EQ(d[1].item<double>(), 1e300);
      torch::Tensor i = torch::tensor({std::int64_t{1} << 40, static_cast<std::int64_t>(r)});
      g.all_reduce_sum(i);
      EXPECT_EQ(i[0].item<std::int64_t>(), std::int64_t{1} << 41);
      EXPECT_EQ(i[1].item<std::int64_t>(), 1);
      EXPECT_GE(g.seconds_in_collectives(), 0.0);
      EXPECT_EQ(g.world_size(), 2);
    });
  }
}

TEST(GlooGroup, ARankWhosePeerNeverComesFailsAfterItsTimeoutSayingSo) {
  const auto dir = recrun::test::temp_dir("gloo-lonely");
  DistributedConfig c;
  c.rank = 0;
  c.world_size = 2;
  c.rendezvous = "file:" + (dir / "store").string();
  c.origin = "--nproc";
  c.timeout_s = 1;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    GlooGroup::connect(c);
    ADD_FAILURE() << "joined a group of two alone";
  } catch (const recrun::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rendezvous failed for rank 0 of 2"), std::string::npos) << what;
    EXPECT_NE(what.find("RECRUN_DIST_TIMEOUT"), std::string::npos) << what;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30);
}

}  // namespace
