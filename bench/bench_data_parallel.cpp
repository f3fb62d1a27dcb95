// bench_data_parallel — the speed-up of data-parallel training (`recrun run --nproc N`) over one
// process with the same cores, and the share of time the ranks spend in all-reduce.
//
//   build/bin/bench_data_parallel [--models sasrec,bert4rec] [--epochs 3] [--nproc 2]
//                                 [--cores 2] [--data experiments/data/ml-latest-small]
//                                 [--sets "hidden_units=64"]
//
// For each model it runs the real recrun binary (next to this one) twice on the same data and
// settings, into fresh results directories: one process with --threads CORES (the baseline),
// then --nproc N with CORES / N threads each. It reports the training (fit) and evaluation
// seconds of each, their ratios, and rank 0's seconds inside all-reduce (communication plus
// waiting for the slower rank) as a share of its training and evaluation time.
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_args.hpp"

namespace {

namespace fs = std::filesystem;

struct Args {
  std::vector<std::string> models{"sasrec", "bert4rec"};
  int epochs = 3, nproc = 2, cores = 2;
  std::string data = std::string(RECRUN_SOURCE_DIR) + "/experiments/data/ml-latest-small";
  std::vector<std::string> sets;
};

constexpr const char* kUsage = "bench_data_parallel [--models sasrec,bert4rec] [--epochs 3] [--nproc 2] [--cores 2] [--data experiments/data/ml-latest-small] [--sets \"hidden_units=64\"]";

Args parse(int argc, char** argv) {
  Args a;
  recrun::bench::for_each_flag(argc, argv, kUsage, [&](const std::string& k, const std::string& v) {
    if (k == "--models") a.models = recrun::bench::split_list(v, ',');
    else if (k == "--epochs") a.epochs = std::stoi(v);
    else if (k == "--nproc") a.nproc = std::stoi(v);
    else if (k == "--cores") a.cores = std::stoi(v);
    else if (k == "--data") a.data = v;
    else if (k == "--sets") a.sets = recrun::bench::split_list(v, ' ');
    else return false;
    return true;
  });
  if (a.epochs < 1 || a.nproc < 2 || a.cores < 1)
    throw std::runtime_error("--epochs >= 1, --nproc >= 2 and --cores >= 1");
  return a;
}

std::string run(const std::string& command) {
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + command);
  while (const auto n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  if (pclose(p) != 0) throw std::runtime_error("failed: " + command + "\n" + out);
  return out;
}

struct Timing {
  double fit = 0, eval = 0, collective = 0;
  double ndcg = 0;
};

Timing timing_of(const std::string& out) {
  Timing t;
  std::smatch m;
  static const std::regex fit(R"(fit ([0-9.]+)s, eval ([0-9.]+)s\))");
  if (!std::regex_search(out, m, fit)) throw std::runtime_error("no timing line in:\n" + out);
  t.fit = std::stod(m[1]);
  t.eval = std::stod(m[2]);
  static const std::regex comm(R"(rank 0 spent ([0-9.]+)s of)");
  if (std::regex_search(out, m, comm)) t.collective = std::stod(m[1]);
  static const std::regex ndcg(R"(NDCG@10\s+([0-9.]+))");
  if (std::regex_search(out, m, ndcg)) t.ndcg = std::stod(m[1]);
  return t;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  const fs::path recrun = fs::read_symlink("/proc/self/exe").parent_path() / "recrun";
  const fs::path tmp = fs::temp_directory_path() / fmt::format("bench-dp-{}", getpid());
  std::string sets;
  for (const auto& s : args.sets) sets += " --set " + s;
  fmt::print("data {}; {} epochs; 1 process x {} threads against {} processes x {} threads\n",
             args.data, args.epochs, args.cores, args.nproc,
             std::max(1, args.cores / args.nproc));
  for (const auto& model : args.models) {
    const std::string common = fmt::format(
        "{} run --model {} --data {} --set epochs={} --set patience=0 --checkpoints none{}",
        recrun.string(), model, args.data, args.epochs, sets);
    const Timing one = timing_of(run(fmt::format("{} --results {} --threads {}", common,
                                                 (tmp / (model + "-1")).string(), args.cores)));
    const Timing many = timing_of(run(fmt::format(
        "{} --results {} --nproc {} --threads {}", common, (tmp / (model + "-n")).string(),
        args.nproc, std::max(1, args.cores / args.nproc))));
    fmt::print(
        "{}: fit {:.2f}s -> {:.2f}s (speed-up {:.2f}x), eval {:.2f}s -> {:.2f}s ({:.2f}x); "
        "rank 0 in all-reduce {:.2f}s = {:.0f}% of its {:.2f}s; valid NDCG@10 {:.4f} / {:.4f}\n",
        model, one.fit, many.fit, one.fit / many.fit, one.eval, many.eval, one.eval / many.eval,
        many.collective, 100 * many.collective / (many.fit + many.eval), many.fit + many.eval,
        one.ndcg, many.ndcg);
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_data_parallel: {}\n", e.what());
  return 1;
}
