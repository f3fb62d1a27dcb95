// bench_time_to_accuracy — how good BERT4Rec and SASRec get in a fixed wall-clock budget:
// validation NDCG@10 against wall time, fp32 and bf16 side by side, on ML-1M-shaped synthetic
// data with a planted signal (recrun's generator: 6,040 users, 3,416 items, ~165 interactions
// per user, item-chain signal).
//
//   build/bin/bench_time_to_accuracy [--budget 600] [--threads 2] [--seed 1]
//                                    [--models sasrec,bert4rec] [--bf16 auto|1|0|only]
//                                    [--variants defaults,recipe] [--try "k=v;k=v" ...]
//                                    [--users 6040] [--items 3416] [--per-user 165]
//
// Each (model, variant, precision) trains through the real trainer for --budget seconds
// (validation after every epoch, no early stopping). Variants: `defaults` is the plugin's
// defaults; `recipe` is the ML-1M recipe that docs/models.md recommends (kRecipes below, kept
// equal to the doc); every --try adds a variant of the defaults with those overrides. bf16 runs
// where the CPU has native bf16 (--bf16 1 forces it, 0 skips it).
//
// The headline: the time each run takes to reach 98% of the best validation NDCG@10 that the
// defaults in fp32 (today's `recrun run --model sasrec`) reach in the whole budget, and the
// defaults' time over each run's (how many times sooner it gets there).
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "accuracy_run.hpp"
#include "core/plugin_loader.hpp"
#include "recrun/seq.hpp"
#include "trial/param_input.hpp"

namespace {

using Overrides = std::vector<std::pair<std::string, std::string>>;

// The recommended ML-1M recipe per model, as docs/models.md ("A recipe for ML-1M") gives it with
// its reasons, less precision = "auto" (the bench runs every variant in fp32 and bf16): SASRec's
// larger step; BERT4Rec at the paper's ML-1M width (a larger lr did not learn sooner).
const std::map<std::string, Overrides> kRecipes = {
    {"sasrec", {{"lr", "0.003"}}},
    {"bert4rec", {{"hidden_units", "64"}, {"num_heads", "2"}}},
};

struct Variant {
  std::string name;
  Overrides overrides;
};

struct Args {
  double budget = 600;
  int threads = 2;
  std::int64_t users = 6040, items = 3416;
  double per_user = 165;
  std::uint64_t seed = 1;
  std::vector<std::string> models{"sasrec", "bert4rec"};
  std::vector<std::string> variants{"defaults", "recipe"};
  std::vector<std::string> tries;
  std::string bf16 = "auto";
};

constexpr const char* kUsage =
    "bench_time_to_accuracy [--budget 600] [--threads 2] [--seed 1] [--models sasrec,bert4rec] "
    "[--bf16 auto|1|0|only] [--variants defaults,recipe] [--try \"k=v;k=v\" ...] [--users 6040] "
    "[--items 3416] [--per-user 165]";

Args parse(int argc, char** argv) {
  Args a;
  recrun::bench::for_each_flag(argc, argv, kUsage, [&](const std::string& k, const std::string& v) {
    if (k == "--budget") a.budget = std::stod(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--models") a.models = recrun::bench::split_list(v);
    else if (k == "--variants") a.variants = recrun::bench::split_list(v);
    else if (k == "--try") a.tries.push_back(v);
    else if (k == "--bf16") a.bf16 = v;
    else if (k == "--users") a.users = std::stoll(v);
    else if (k == "--items") a.items = std::stoll(v);
    else if (k == "--per-user") a.per_user = std::stod(v);
    else return false;
    return true;
  });
  if (!(a.budget > 0)) throw std::runtime_error("--budget must be a positive number of seconds");
  if (a.bf16 != "auto" && a.bf16 != "1" && a.bf16 != "0" && a.bf16 != "only")
    throw std::runtime_error("--bf16 takes auto, 1, 0 or only (bf16 alone)");
  for (const auto& v : a.variants)
    if (v != "defaults" && v != "recipe")
      throw std::runtime_error("--variants: '" + v + "' is neither defaults nor recipe");
  return a;
}

// "k=v;k=v" -> overrides.
Overrides parse_overrides(const std::string& text) {
  Overrides out;
  for (const auto& term : recrun::bench::split_list(text, ';')) {
    const auto eq = term.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::runtime_error("--try: '" + term + "' is not KEY=VALUE");
    out.emplace_back(term.substr(0, eq), term.substr(eq + 1));
  }
  return out;
}

std::string describe(const Overrides& o) {
  std::vector<std::string> terms;
  for (const auto& [k, v] : o) terms.push_back(k + "=" + v);
  return terms.empty() ? "(plugin defaults)" : fmt::format("{}", fmt::join(terms, " "));
}

// Best NDCG@10 validated by wall time t (0 when nothing was validated yet).
double best_by(const std::vector<recrun::bench::CurvePoint>& curve, double t) {
  double best = 0;
  for (const auto& p : curve)
    if (p.seconds <= t) best = std::max(best, p.ndcg);
  return best;
}

// The first validation time at which the curve reaches `target` (negative: never).
double time_to(const std::vector<recrun::bench::CurvePoint>& curve, double target) {
  for (const auto& p : curve)
    if (p.ndcg >= target) return p.seconds;
  return -1;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  mallopt(M_MMAP_MAX, 0);  // as the recrun binary does: keep freed attention buffers in the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const recrun::CpuFeatures cpu = recrun::cpu_features();
  std::vector<std::string> precisions;
  if (args.bf16 != "only") precisions.push_back("fp32");
  if (args.bf16 == "1" || args.bf16 == "only" || (args.bf16 == "auto" && cpu.native_bf16()))
    precisions.push_back("bf16");
  fmt::print("bench_time_to_accuracy: budget {:.0f} s per run, {} threads; CPU {}; precisions {}\n",
             args.budget, args.threads, cpu.describe(), fmt::join(precisions, ", "));

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
    std::string model, label;
    recrun::bench::AccuracyRun run;
  };
  std::vector<Row> rows;
  for (const auto& model : args.models) {
    const recrun::ModelInfo& info = registry.model(model);
    std::vector<Variant> variants;
    for (const auto& v : args.variants) {
      if (v == "defaults") variants.push_back({"defaults", {}});
      else if (const auto r = kRecipes.find(model); r != kRecipes.end())
        variants.push_back({"recipe", r->second});
    }
    for (std::size_t i = 0; i < args.tries.size(); ++i)
      variants.push_back({fmt::format("try{}", i + 1), parse_overrides(args.tries[i])});
    for (const auto& variant : variants) {
      fmt::print("{} {}: {}\n", model, variant.name, describe(variant.overrides));
      // Typed by the model's schema as `recrun run --set` types them (did-you-mean and all).
      auto params = recrun::trial::parse_settings(info.params, variant.overrides,
                                                  fmt::format("model '{}'", model),
                                                  "in " + variant.name);
      for (const auto& prec : precisions) {
        params["precision"] = prec;
        const std::string label = fmt::format("{} {}", variant.name, prec);
        const auto run = recrun::bench::train_for_accuracy(registry, model, data, split, params,
                                                           1'000'000, args.budget, args.seed,
                                                           args.threads);
        fmt::print("{} {}: {} epochs in {:.1f} s; validation NDCG@10 by epoch:", model, label,
                   run.epochs, run.seconds);
        for (const auto& p : run.curve) fmt::print(" [{:.0f} s] {:.4f}", p.seconds, p.ndcg);
        fmt::print("\n");
        std::fflush(stdout);
        rows.push_back({model, label, run});
      }
    }
  }

  for (const auto& model : args.models) {
    std::vector<const Row*> mine;
    for (const auto& r : rows)
      if (r.model == model) mine.push_back(&r);
    if (mine.empty()) continue;
    // Side by side: the best validation NDCG@10 reached by each wall time.
    fmt::print("\n{}: best validation NDCG@10 reached by wall time\n{:>8}", model, "time s");
    for (const auto* r : mine) fmt::print(" {:>16}", r->label);
    fmt::print("\n");
    double end = 0;
    for (const auto* r : mine)
      if (!r->run.curve.empty()) end = std::max(end, r->run.curve.back().seconds);
    for (int k = 1; k <= 10; ++k) {
      const double t = end * k / 10.0;
      fmt::print("{:8.0f}", t);
      for (const auto* r : mine) fmt::print(" {:16.4f}", best_by(r->run.curve, t));
      fmt::print("\n");
    }
    // The headline: time to 98% of what today's defaults (fp32) reach in the budget.
    const Row* base = mine.front();
    for (const auto* r : mine)
      if (r->label == "defaults fp32") base = r;
    const double plateau = best_by(base->run.curve, 1e30);
    const double target = 0.98 * plateau;
    const double base_t = time_to(base->run.curve, target);
    fmt::print("{}: target = 98% of {}'s best in the budget ({:.4f}) = {:.4f}\n", model,
               base->label, plateau, target);
    for (const auto* r : mine) {
      const double t = time_to(r->run.curve, target);
      if (t < 0) {
        fmt::print("  {:>16}: not reached in {:.0f} s (best {:.4f})\n", r->label, r->run.seconds,
                   best_by(r->run.curve, 1e30));
      } else {
        fmt::print("  {:>16}: reached at {:6.0f} s, {:.2f}x sooner than {}; best in the budget "
                   "{:.4f}, {} epochs\n",
                   r->label, t, base_t > 0 ? base_t / t : 0.0, base->label,
                   best_by(r->run.curve, 1e30), r->run.epochs);
      }
    }
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_time_to_accuracy: {}\n", e.what());
  return 2;
}
