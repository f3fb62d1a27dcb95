// bench_search — a grid against random search, TPE and TPE + ASHA on one SASRec search space
// over the bundled MovieLens latest-small, each run as a real `recrun sweep` (the binary beside
// this one). For every method and sampler seed it reports the sweep's CPU-seconds (its own and
// its workers', from wait4), the best validation NDCG@10, and the CPU-seconds until a trial
// first came within one standard error of the grid's best validation NDCG@10 (the standard
// error of that run's per-user validation NDCG@10).
//
//   build/bin/bench_search [--seeds 3] [--jobs 2] [--trials 12] [--epochs 16]
//                          [--methods grid,random,tpe,tpe_asha] [--keep DIR]
//
// CPU-seconds to the target: the time each worker spent (started_at .. finished_at, from
// results.db) before the moment the first trial within the target finished, times its threads.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "results/results_store.hpp"

namespace fs = std::filesystem;

namespace {

struct Args {
  int seeds = 3;
  int jobs = 2;
  int trials = 12;
  int epochs = 16;
  std::vector<std::string> methods{"grid", "random", "tpe", "tpe_asha"};
  std::string keep;
};

Args parse(int argc, char** argv) {
  Args a;
  recrun::bench::for_each_flag(
      argc, argv,
      "bench_search [--seeds 3] [--jobs 2] [--trials 12] [--epochs 16] "
      "[--methods grid,random,tpe,tpe_asha] [--keep DIR]",
      [&](const std::string& k, const std::string& v) {
        if (k == "--seeds") a.seeds = std::stoi(v);
        else if (k == "--jobs") a.jobs = std::stoi(v);
        else if (k == "--trials") a.trials = std::stoi(v);
        else if (k == "--epochs") a.epochs = std::stoi(v);
        else if (k == "--methods") a.methods = recrun::bench::split_list(v);
        else if (k == "--keep") a.keep = v;
        else return false;
        return true;
      });
  return a;
}

// The search space: SASRec's learning rate, dropout and width. The grid takes 3 x 2 x 2 points
// of it; the other methods draw `trials` configurations from the same ranges.
std::string experiment_text(const std::string& name, const std::string& method, int seed,
                            const Args& a) {
  std::string text = fmt::format(R"([experiment]
name = "{}"
seeds = [42]

[data]
path = "{}"
source = "movielens"

[protocol]
metrics = ["NDCG"]
ks = [10]
monitor = "NDCG@10"

[execution]
checkpoints = "none"

[[group]]
name = "sasrec"
model = "sasrec"
[group.params]
num_heads = 1
num_layers = 1
max_len = 50
batch_size = 64
epochs = {}
patience = {}
)",
                                 name, (fs::path(RECRUN_SOURCE_DIR) / "experiments/data/ml-latest-small").string(),
                                 a.epochs, method == "tpe_asha" ? 0 : 3);
  if (method == "grid") {
    text += R"([group.grid]
lr = [0.0005, 0.0015, 0.004]
dropout = [0.1, 0.4]
hidden_units = [32, 64]
)";
    return text;
  }
  text += fmt::format("[group.search]\nmethod = \"{}\"\ntrials = {}\nseed = {}\n",
                      method == "random" ? "random" : "tpe", a.trials, seed);
  if (method != "random") text += "startup_trials = 4\n";
  if (method == "tpe_asha")
    text += "pruner = \"asha\"\nmin_epochs = 2\nreduction_factor = 2\n";
  text += R"([group.grid]
lr = { log_uniform = [0.0004, 0.005] }
dropout = { uniform = [0.0, 0.5] }
hidden_units = { choice = [32, 64] }
)";
  return text;
}

struct SweepRun {
  double cpu_seconds = 0;
  double wall_seconds = 0;
  int exit_code = 0;
};

SweepRun run_sweep(const fs::path& recrun, const fs::path& file, const fs::path& results,
                   int jobs, const fs::path& log) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const std::string j = std::to_string(jobs);
    ::execl(recrun.c_str(), recrun.c_str(), "sweep", file.c_str(), "--results", results.c_str(),
            "--jobs", j.c_str(), "--no-live", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  const auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  SweepRun r;
  r.cpu_seconds = secs(usage.ru_utime) + secs(usage.ru_stime);
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// ISO-8601 UTC with milliseconds -> Unix seconds.
double unix_of(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + ms / 1000.0;
}

std::optional<double> valid_ndcg(const recrun::results::RunRow& r) {
  for (const auto& m : r.valid_metrics)
    if (m.name == "NDCG@10") return m.value;
  return std::nullopt;
}

struct Result {
  std::string method;
  int seed = 0;
  SweepRun sweep;
  int finished = 0, pruned = 0;
  double best = 0;
  double best_se = 0;  // the best run's standard error (per-user validation NDCG@10)
  std::optional<double> cpu_to_target;
};

Result analyse(const std::string& method, int seed, const SweepRun& sweep, const fs::path& db,
               std::optional<double> target, int threads_per_worker) {
  Result r;
  r.method = method;
  r.seed = seed;
  r.sweep = sweep;
  recrun::results::ResultsStore store(db);
  const auto rows = store.runs();
  std::string best_key;
  double hit_at = std::numeric_limits<double>::infinity();
  for (const auto& row : rows) {
    if (row.status == recrun::results::RunStatus::pruned) ++r.pruned;
    if (row.status != recrun::results::RunStatus::finished) continue;
    ++r.finished;
    const auto v = valid_ndcg(row);
    if (!v) continue;
    if (best_key.empty() || *v > r.best) r.best = *v, best_key = row.trial_key;
    if (target && *v >= *target) hit_at = std::min(hit_at, unix_of(row.finished_at));
  }
  if (!best_key.empty()) {
    if (const auto users = store.user_metrics(best_key)) {
      for (const auto& m : users->valid) {
        if (m.name != "NDCG@10" || m.values.size() < 2) continue;
        double mean = 0, sq = 0;
        for (const float x : m.values) mean += x;
        mean /= static_cast<double>(m.values.size());
        for (const float x : m.values) sq += (x - mean) * (x - mean);
        const double sd = std::sqrt(sq / static_cast<double>(m.values.size() - 1));
        r.best_se = sd / std::sqrt(static_cast<double>(m.values.size()));
      }
    }
  }
  if (std::isfinite(hit_at)) {
    double cpu = 0;
    for (const auto& row : rows) {
      const double s = unix_of(row.started_at), e = unix_of(row.finished_at);
      if (s <= 0 || e <= 0) continue;
      cpu += std::max(0.0, std::min(e, hit_at) - s) * threads_per_worker;
    }
    r.cpu_to_target = cpu;
  }
  return r;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const fs::path recrun = fs::read_symlink("/proc/self/exe").parent_path() / "recrun";
  const fs::path root = a.keep.empty() ? fs::temp_directory_path() / fmt::format("bench_search-{}", ::getpid())
                                       : fs::path(a.keep);
  fs::create_directories(root);
  const int cores = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  const int threads_per_worker = std::max(1, cores / a.jobs);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  fmt::print("bench_search: SASRec (1 layer, max_len 50, {} epochs) on ml-latest-small; {} "
             "trials per search, {} sampler seed(s), --jobs {} x {} thread(s); load average "
             "before: {:.2f} {:.2f} {:.2f}\n",
             a.epochs, a.trials, a.seeds, a.jobs, threads_per_worker, load[0], load[1], load[2]);
  std::fflush(stdout);

  std::vector<Result> results;
  std::optional<double> target;
  double grid_cpu = 0;
  for (const auto& method : a.methods) {
    const int seeds = method == "grid" ? 1 : a.seeds;
    for (int seed = 1; seed <= seeds; ++seed) {
      const std::string name = fmt::format("bench_{}_{}", method, seed);
      const fs::path dir = root / name;
      fs::remove_all(dir);
      fs::create_directories(dir);
      const fs::path file = dir / "search.toml";
      std::ofstream(file) << experiment_text(name, method, seed, a);
      const SweepRun sweep = run_sweep(recrun, file, dir / "results", a.jobs, dir / "sweep.log");
      if (sweep.exit_code != 0)
        fmt::print("  {} seed {}: the sweep exited with {} (see {})\n", method, seed,
                   sweep.exit_code, (dir / "sweep.log").string());
      Result r = analyse(method, seed, sweep, dir / "results" / "results.db", target,
                         threads_per_worker);
      if (method == "grid") {
        target = r.best - r.best_se;
        grid_cpu = sweep.cpu_seconds;
        r = analyse(method, seed, sweep, dir / "results" / "results.db", target, threads_per_worker);
      }
      fmt::print("  {:<9} seed {}: {:7.1f} CPU-s ({:6.1f} s wall), {:2} finished + {:2} pruned, "
                 "best valid NDCG@10 {:.4f} (SE {:.4f}), CPU-s to the grid's best - 1 SE: {}\n",
                 method, seed, sweep.cpu_seconds, sweep.wall_seconds, r.finished, r.pruned, r.best,
                 r.best_se,
                 r.cpu_to_target ? fmt::format("{:.1f}", *r.cpu_to_target) : std::string("not reached"));
      std::fflush(stdout);
      results.push_back(r);
    }
  }
  ::getloadavg(load, 3);
  fmt::print("\n| method | runs | CPU-s per search (mean) | x grid | best valid NDCG@10 (mean) | "
             "reached the target | CPU-s to target (mean of those that did) | x grid's CPU-s |\n"
             "|---|---|---|---|---|---|---|---|\n");
  for (const auto& method : a.methods) {
    std::vector<double> cpu, best, to_target;
    int n = 0;
    for (const auto& r : results) {
      if (r.method != method) continue;
      ++n;
      cpu.push_back(r.sweep.cpu_seconds);
      best.push_back(r.best);
      if (r.cpu_to_target) to_target.push_back(*r.cpu_to_target);
    }
    fmt::print("| {} | {} | {:.0f} | {:.2f} | {:.4f} | {}/{} | {} | {} |\n", method, n,
               mean_of(cpu), grid_cpu > 0 ? mean_of(cpu) / grid_cpu : 0.0, mean_of(best),
               to_target.size(), n, to_target.empty() ? "-" : fmt::format("{:.0f}", mean_of(to_target)),
               to_target.empty() || grid_cpu <= 0 ? "-"
                                                 : fmt::format("{:.2f}", mean_of(to_target) / grid_cpu));
  }
  fmt::print("target: grid's best valid NDCG@10 - 1 SE = {}; load average after: {:.2f} {:.2f} "
             "{:.2f}\n",
             target ? fmt::format("{:.4f}", *target) : std::string("none"), load[0], load[1],
             load[2]);
  if (a.keep.empty()) fs::remove_all(root);
  return 0;
}
