// bench_time_to_accuracy — how good BERT4Rec and SASRec get in a fixed wall-clock budget:
// validation NDCG@10 against wall time, fp32 and bf16 side by side, on ML-1M-shaped synthetic
// data with a planted signal (recrun's generator: 6,040 users, 3,416 items, ~165 interactions
// per user, item-chain signal).
//
//   build/bin/bench_time_to_accuracy [--budget 600] [--threads 2] [--hidden 64] [--seed 1]
//                                    [--models bert4rec,sasrec] [--bf16 auto|1|0]
//                                    [--users 6040] [--items 3416] [--per-user 165]
//
// Each (model, precision) trains through the real trainer for --budget seconds (validation
// after every epoch, no early stopping, the plugins' defaults but hidden_units and
// batch_size 128). bf16 runs where the CPU has native bf16 (--bf16 1 forces it, 0 skips it).
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "accuracy_run.hpp"
#include "core/plugin_loader.hpp"
#include "recrun/seq.hpp"

namespace {

struct Args {
  double budget = 600;
  int threads = 2;
  std::int64_t hidden = 64, users = 6040, items = 3416;
  double per_user = 165;
  std::uint64_t seed = 1;
  std::vector<std::string> models{"bert4rec", "sasrec"};
  std::string bf16 = "auto";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("option " + k + " needs a value");
    const std::string v = argv[i + 1];
    if (k == "--budget") a.budget = std::stod(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--models") a.models = recrun::bench::split_list(v);
    else if (k == "--bf16") a.bf16 = v;
    else if (k == "--users") a.users = std::stoll(v);
    else if (k == "--items") a.items = std::stoll(v);
    else if (k == "--per-user") a.per_user = std::stod(v);
    else throw std::runtime_error("unknown option " + k);
  }
  if (!(a.budget > 0)) throw std::runtime_error("--budget must be a positive number of seconds");
  return a;
}

// Best NDCG@10 validated by wall time t (0 when nothing was validated yet).
double best_by(const std::vector<recrun::bench::CurvePoint>& curve, double t) {
  double best = 0;
  for (const auto& p : curve)
    if (p.seconds <= t) best = std::max(best, p.ndcg);
  return best;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  mallopt(M_MMAP_MAX, 0);  // as the recrun binary does: keep freed attention buffers in the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const recrun::CpuFeatures cpu = recrun::cpu_features();
  std::vector<std::string> precisions{"fp32"};
  if (args.bf16 == "1" || (args.bf16 == "auto" && cpu.native_bf16())) precisions.push_back("bf16");
  fmt::print("bench_time_to_accuracy: budget {:.0f} s per run, {} threads, hidden {}; CPU {}; "
             "precisions {}\n",
             args.budget, args.threads, args.hidden, cpu.describe(), fmt::join(precisions, ", "));

  recrun::data::SynthOptions so;
  so.users = args.users;
  so.items = args.items;
  so.interactions_per_user = args.per_user;
  so.min_length = 20;
  so.signal = "item";
  so.seed = args.seed;
  const recrun::Dataset data = recrun::data::synthesize(so).dataset;
  const recrun::core::Split split = recrun::core::make_split(data, {});
  fmt::print("data: {} users, {} items, {} interactions (recrun data synth, signal item)\n\n",
             data.num_users(), data.num_items(), data.num_interactions());

  recrun::Registry registry;
  const auto report = recrun::core::load_plugins({RECRUN_BUILD_PLUGIN_DIR}, registry);
  for (const auto& w : report.warnings) fmt::print("warning: {}\n", w);

  struct Row {
    std::string label;
    recrun::bench::AccuracyRun run;
  };
  std::vector<Row> rows;
  for (const auto& model : args.models) {
    for (const auto& prec : precisions) {
      const std::string label = fmt::format("{} {}", model, prec);
      const auto run = recrun::bench::train_for_accuracy(
          registry, model, data, split,
          {{"hidden_units", args.hidden}, {"batch_size", std::int64_t{128}}, {"precision", prec}},
          1'000'000, args.budget, args.seed, args.threads);
      fmt::print("{}: {} epochs in {:.1f} s; validation NDCG@10 by epoch:", label, run.epochs,
                 run.seconds);
      for (const auto& p : run.curve) fmt::print(" [{:.0f} s] {:.4f}", p.seconds, p.ndcg);
      fmt::print("\n");
      rows.push_back({label, run});
    }
  }

  // Side by side: the best validation NDCG@10 reached by each wall time.
  fmt::print("\nbest validation NDCG@10 reached by wall time\n{:>8}", "time s");
  for (const auto& r : rows) fmt::print(" {:>16}", r.label);
  fmt::print("\n");
  double end = 0;
  for (const auto& r : rows)
    if (!r.run.curve.empty()) end = std::max(end, r.run.curve.back().seconds);
  for (int k = 1; k <= 10; ++k) {
    const double t = end * k / 10.0;
    fmt::print("{:8.0f}", t);
    for (const auto& r : rows) fmt::print(" {:16.4f}", best_by(r.run.curve, t));
    fmt::print("\n");
  }
  for (std::size_t i = 0; i + 1 < rows.size(); i += precisions.size()) {
    if (precisions.size() < 2) break;
    const auto& a = rows[i].run;
    const auto& b = rows[i + 1].run;
    fmt::print("{}: bf16 epochs / fp32 epochs in the budget = {:.2f}x; best NDCG@10 fp32 {:.4f}, "
               "bf16 {:.4f}\n",
               args.models[i / precisions.size()],
               static_cast<double>(b.epochs) / std::max<double>(1, static_cast<double>(a.epochs)),
               best_by(a.curve, 1e30), best_by(b.curve, 1e30));
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_time_to_accuracy: {}\n", e.what());
  return 2;
}
