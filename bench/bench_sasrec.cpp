// bench_sasrec — SASRec training throughput per loss beside BERT4Rec's, and Mult-DAE beside
// Mult-VAE, on ML-1M-shaped synthetic data.
//
//   build/bin/bench_sasrec [--threads 2] [--hidden 64] [--heads 2] [--steps 4] [--negatives 256]
//                          [--seed 1] [--retain-memory 1|0] [--bf16 auto|1|0]
//                          [--accuracy-seeds 0] [--accuracy-epochs 8] [--profile 1|0]
//
// Reports, all measured in the same run:
//  * for SASRec with each loss (ce, bce with 1 negative, sampled_softmax and gbce with
//    --negatives) and for BERT4Rec (Cloze, mask_prob 0.15): ms per training step, sequences/s
//    and useful FLOP/s as a share of a 2048^3 sgemm measured here, on the very same batches (one
//    warm-up step, then --steps timed steps, each a full forward, backward and Adam update);
//  * each of those steps again with precision bf16 (LibTorch CPU autocast, fp32 master weights;
//    by default only where the CPU has native bf16, --bf16 1 forces it) and the bf16/fp32
//    throughput ratio, and the step's useful FLOP/s as a share of a 2048^3 bf16 matrix product
//    measured here (its roofline share);
//  * with --profile 1 (the default), one more step of SASRec ce and of BERT4Rec, in bf16 where
//    it is measured, under LibTorch's profiler: each operator's self time and share of the step;
//  * final validation NDCG@10 of the BERT4Rec and SASRec plugins trained in fp32 and in bf16 on
//    planted synthetic data (recrun's generator, item-chain signal) for --accuracy-seeds seeds
//    (0, the default, skips it);
//  * one training epoch of Mult-DAE and Mult-VAE (the plugins at their defaults) and their
//    scoring of every user.
// The synthetic data set has ML-1M's shape: 6,040 users, 3,416 items, ~1M interactions with a
// long-tailed history length (median ~96) and Zipf-like item popularity. max_len 200, batch 128.
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "bench_args.hpp"
#include "../plugins/models/bert4rec/bert4rec_net.hpp"
#include "../plugins/models/sasrec/sasrec_net.hpp"
#include "accuracy_run.hpp"
#include "op_profile.hpp"
#include "core/plugin_loader.hpp"
#include "core/split.hpp"
#include "recrun/conformance.hpp"
#include "recrun/optim.hpp"
#include "recrun/registry.hpp"
#include "recrun/seq.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Args {
  int threads = 2;
  std::int64_t hidden = 64;
  std::int64_t heads = 2;
  std::int64_t steps = 4;
  std::int64_t negatives = 256;
  std::uint64_t seed = 1;
  bool retain_memory = true;
  bool profile = true;
  std::string bf16 = "auto";
  std::int64_t accuracy_seeds = 0, accuracy_epochs = 8;
};

constexpr const char* kUsage = "bench_sasrec [--threads 2] [--hidden 64] [--heads 2] [--steps 4] [--negatives 256] [--seed 1] [--retain-memory 1|0] [--bf16 auto|1|0] [--accuracy-seeds 0] [--accuracy-epochs 8] [--profile 1|0]";

Args parse(int argc, char** argv) {
  Args a;
  recrun::bench::for_each_flag(argc, argv, kUsage, [&](const std::string& k, const std::string& v) {
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--heads") a.heads = std::stoll(v);
    else if (k == "--steps") a.steps = std::stoll(v);
    else if (k == "--negatives") a.negatives = std::stoll(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--retain-memory") a.retain_memory = std::string(v) != "0";
    else if (k == "--bf16") a.bf16 = v;
    else if (k == "--accuracy-seeds") a.accuracy_seeds = std::stoll(v);
    else if (k == "--accuracy-epochs") a.accuracy_epochs = std::stoll(v);
    else if (k == "--profile") a.profile = std::string(v) != "0";
    else return false;
    return true;
  });
  return a;
}

// 6,040 users with 20..2,314 items each, log-normal lengths (median ~96), 3,416 items with
// popularity ~ 1 / (rank + 10).
recrun::Dataset ml1m_shaped(std::uint64_t seed) {
  constexpr int kUsers = 6040, kItems = 3416;
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> length(std::log(96.0), 1.04);
  std::vector<double> weight(kItems);
  for (int i = 0; i < kItems; ++i) weight[i] = 1.0 / (i + 10.0);
  std::discrete_distribution<int> pick(weight.begin(), weight.end());
  recrun::DatasetBuilder b;
  b.reserve(1'050'000);
  for (int i = 0; i < kItems; ++i) b.add_interaction("u0", fmt::format("i{}", i), i);
  for (int u = 1; u < kUsers; ++u) {
    const int n = std::clamp(static_cast<int>(length(rng)), 20, 2314);
    const std::string user = fmt::format("u{}", u);
    for (int t = 0; t < n; ++t) b.add_interaction(user, fmt::format("i{}", pick(rng)), t);
  }
  return b.build("ml1m-shaped", {}, "bench");
}

// The rate of a 2048^3 matrix product in `dtype` (float: sgemm; bfloat16: the bf16 roofline).
double gemm_gflops(torch::Dtype dtype = torch::kFloat) {
  const torch::Tensor a = torch::randn({2048, 2048}).to(dtype),
                      b = torch::randn({2048, 2048}).to(dtype);
  torch::Tensor c = torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto t = Clock::now();
    c = torch::mm(a, b);
    best = std::min(best, since(t));
  }
  return 2.0 * std::pow(2048.0, 3) / best / 1e9;
}

// Multiply-accumulates of one encoder layer over rows of real lengths `l` (dense attention).
double layer_macs(const torch::Tensor& l, double h) {
  const torch::Tensor d = l.to(torch::kDouble);
  return 12 * h * h * d.sum().item<double>() + 2 * h * d.pow(2).sum().item<double>();
}

struct Timing {
  double seconds = 0, flops = 0;
  std::int64_t sequences = 0, steps = 0;
  double loss = 0;
};

using Batches = std::vector<std::vector<std::int64_t>>;

std::vector<std::span<const std::int32_t>> histories_of(const recrun::Interactions& train,
                                                        const std::vector<std::int64_t>& users) {
  std::vector<std::span<const std::int32_t>> h;
  for (const auto u : users) h.push_back(train.items(u));
  return h;
}

// With `profile`, the last batch's step runs under the operator profiler instead of being timed.
Timing time_sasrec(const recrun::Interactions& train, const Batches& batches,
                   const recrun::sasrec::NetOptions& net_options,
                   const recrun::sasrec::LossSpec& spec, std::uint64_t seed, bool bf16,
                   std::vector<recrun::bench::OpShare>* profile = nullptr,
                   double* profiled_ms = nullptr) {
  torch::manual_seed(seed);
  recrun::sasrec::SasrecNet net(net_options);
  net->train();
  const recrun::OptimizerOptions optim;
  auto optimizer = recrun::make_optimizer(optim, net->parameters());
  const recrun::sasrec::NegativeSampler sampler(net_options.num_items);
  Timing r;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const auto t = Clock::now();
    const auto batch =
        recrun::sasrec::next_item_batch(histories_of(train, batches[i]), net_options.max_len);
    double loss = 0;
    const auto train_step = [&] {
      torch::Tensor batch_loss;
      {
        const recrun::Bf16Autocast autocast(bf16);
        batch_loss = net->loss(batch, spec, sampler);
      }
      loss = recrun::step(*optimizer, optim, batch_loss);
    };
    if (profile && i + 1 == batches.size()) {
      *profile = recrun::bench::profile_ops(train_step, profiled_ms);
      break;
    }
    train_step();
    if (i == 0) continue;  // warm-up
    r.seconds += since(t);
    r.sequences += static_cast<std::int64_t>(batches[i].size());
    ++r.steps;
    r.loss += loss;
    const double h = static_cast<double>(net_options.hidden);
    const double tokens = static_cast<double>(batch.positions);
    const double out = spec.loss == recrun::sasrec::Loss::ce
                           ? static_cast<double>(net_options.num_items)
                           : static_cast<double>(1 + spec.negatives);
    r.flops += 6 * (static_cast<double>(net_options.layers) * layer_macs(batch.lengths, h) +
                    tokens * h * out);
  }
  r.loss /= std::max<std::int64_t>(1, r.steps);
  return r;
}

Timing time_bert4rec(const recrun::Interactions& train, const Batches& batches,
                     const recrun::bert4rec::NetOptions& net_options, std::uint64_t seed,
                     bool bf16, std::vector<recrun::bench::OpShare>* profile = nullptr,
                     double* profiled_ms = nullptr) {
  torch::manual_seed(seed);
  recrun::bert4rec::Bert4RecNet net(net_options);
  net->train();
  const recrun::OptimizerOptions optim;
  auto optimizer = recrun::make_optimizer(optim, net->parameters());
  Timing r;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const auto t = Clock::now();
    const auto packed = recrun::pack_sequences(histories_of(train, batches[i]), net_options.max_len);
    const auto cloze = recrun::bert4rec::cloze_mask(packed.tokens, packed.lengths,
                                                    net_options.num_items, 0.15, 0.0);
    double loss = 0;
    const auto train_step = [&] {
      torch::Tensor batch_loss;
      {
        const recrun::Bf16Autocast autocast(bf16);
        batch_loss = net->cloze_loss(cloze, packed.lengths);
      }
      loss = recrun::step(*optimizer, optim, batch_loss);
    };
    if (profile && i + 1 == batches.size()) {
      *profile = recrun::bench::profile_ops(train_step, profiled_ms);
      break;
    }
    train_step();
    if (i == 0) continue;
    r.seconds += since(t);
    r.sequences += static_cast<std::int64_t>(batches[i].size());
    ++r.steps;
    r.loss += loss;
    const double h = static_cast<double>(net_options.hidden);
    r.flops += 6 * (static_cast<double>(net_options.layers) * layer_macs(packed.lengths, h) +
                    cloze.chosen.sum().item<double>() * h *
                        static_cast<double>(net_options.num_items));
  }
  r.loss /= std::max<std::int64_t>(1, r.steps);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.retain_memory) {
    mallopt(M_MMAP_MAX, 0);  // see bench_bert4rec: keep freed attention buffers in the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  at::set_num_threads(args.threads);
  torch::manual_seed(args.seed);
  fmt::print("bench_sasrec: {} threads, hidden {}, {} heads, 2 layers, max_len 200, batch 128, "
             "{} timed steps after 1 warm-up, {} negatives for sampled_softmax and gbce\n",
             at::get_num_threads(), args.hidden, args.heads, args.steps, args.negatives);

  auto t = Clock::now();
  const recrun::Dataset data = ml1m_shaped(args.seed);
  const recrun::core::Split split = recrun::core::make_split(data, {});
  fmt::print("data: {} users, {} items, {} interactions ({:.1f} s)\n", data.num_users(),
             data.num_items(), data.num_interactions(), since(t));
  const double peak = gemm_gflops();
  fmt::print("sgemm 2048^3: {:.1f} GFLOP/s\n", peak);
  const recrun::CpuFeatures cpu = recrun::cpu_features();
  const bool with_bf16 = args.bf16 == "1" || (args.bf16 == "auto" && cpu.native_bf16());
  const double bf16_peak = with_bf16 ? gemm_gflops(torch::kBFloat16) : 0;
  if (with_bf16) fmt::print("bf16 gemm 2048^3: {:.1f} GFLOP/s (the bf16 roofline)\n", bf16_peak);
  fmt::print("\n");

  // The same batches for every variant: length-bucketed, shuffled, the first steps + 1.
  std::vector<std::int64_t> ids, lengths;
  for (std::int64_t u = 0; u < split.train.num_users(); ++u) {
    const auto n = static_cast<std::int64_t>(split.train.items(u).size());
    if (n < 2) continue;
    ids.push_back(u);
    lengths.push_back(std::min<std::int64_t>(n, 201));
  }
  std::mt19937_64 rng(args.seed);
  Batches batches = recrun::length_bucketed_batches(ids, lengths, 128, &rng);
  batches.resize(std::min<std::size_t>(batches.size(), static_cast<std::size_t>(args.steps + 1)));

  recrun::sasrec::NetOptions sas;
  sas.num_items = data.num_items();
  sas.hidden = args.hidden;
  sas.heads = args.heads;
  sas.layers = 2;
  sas.max_len = 200;
  sas.dropout = 0.2;
  recrun::bert4rec::NetOptions b4r;
  b4r.num_items = data.num_items();
  b4r.hidden = args.hidden;
  b4r.heads = args.heads;
  b4r.layers = 2;
  b4r.max_len = 200;
  b4r.dropout = 0.2;

  using recrun::sasrec::Loss;
  using recrun::sasrec::Sharing;
  struct Variant {
    std::string name;
    recrun::sasrec::LossSpec spec;
    bool bert = false;
  };
  const std::int64_t k = args.negatives;
  const std::vector<Variant> variants{
      {"sasrec ce (full softmax)", {.loss = Loss::ce}},
      {"sasrec bce, 1 negative/position", {.loss = Loss::bce, .negatives = 1, .sharing = Sharing::position}},
      {fmt::format("sasrec sampled_softmax, {}/sequence", k),
       {.loss = Loss::sampled_softmax, .negatives = k, .sharing = Sharing::sequence}},
      {fmt::format("sasrec gbce, {}/sequence", k),
       {.loss = Loss::gbce, .negatives = k, .sharing = Sharing::sequence}},
      {"bert4rec (Cloze, masked rows only)", {}, true},
  };
  fmt::print("CPU {}; bf16 {}; ATen CPU kernels: ATEN_CPU_CAPABILITY={}\n", cpu.describe(),
             with_bf16 ? "measured" : "skipped (not native; --bf16 1 forces it)",
             std::getenv("ATEN_CPU_CAPABILITY") ? std::getenv("ATEN_CPU_CAPABILITY")
                                                 : "(unset: avx2)");
  fmt::print("{:<40} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>10} {:>10}\n", "training step",
             "ms/step", "seq/s", "GFLOP/s", "sgemm", "bf16 ms", "bf16 seq/s", "bf16/fp32",
             "bf16 roof");
  std::vector<std::string> roofline;
  double bert_sps = 0, ce_sps = 0;
  for (const auto& v : variants) {
    const Timing r = v.bert ? time_bert4rec(split.train, batches, b4r, args.seed, false)
                            : time_sasrec(split.train, batches, sas, v.spec, args.seed, false);
    const double sps = static_cast<double>(r.sequences) / r.seconds;
    const double rate = r.flops / r.seconds / 1e9;
    fmt::print("{:<40} {:9.1f} {:9.1f} {:9.1f} {:7.1f}%", v.name,
               1e3 * r.seconds / static_cast<double>(r.steps), sps, rate, 100 * rate / peak);
    if (with_bf16) {
      const Timing h = v.bert ? time_bert4rec(split.train, batches, b4r, args.seed, true)
                              : time_sasrec(split.train, batches, sas, v.spec, args.seed, true);
      const double h_sps = static_cast<double>(h.sequences) / h.seconds;
      const double h_rate = h.flops / h.seconds / 1e9;
      fmt::print(" {:9.1f} {:9.1f} {:9.2f}x {:9.1f}%", 1e3 * h.seconds / static_cast<double>(h.steps),
                 h_sps, h_sps / sps, 100 * h_rate / bf16_peak);
      const double step_gflop = h.flops / static_cast<double>(h.steps) / 1e9;
      roofline.push_back(fmt::format(
          "  {}: {:.1f} GFLOP a step; at {:.0f} GFLOP/s that is {:.0f} ms, measured {:.0f} ms "
          "({:.1f}% of the roofline)",
          v.name, step_gflop, bf16_peak, 1e3 * step_gflop / bf16_peak,
          1e3 * h.seconds / static_cast<double>(h.steps), 100 * h_rate / bf16_peak));
    }
    fmt::print("\n");
    if (v.bert) bert_sps = sps;
    if (!v.bert && v.spec.loss == Loss::ce) ce_sps = sps;
  }
  fmt::print("sasrec ce / bert4rec: {:.2f}x sequences/s (fp32)\n", ce_sps / bert_sps);
  if (!roofline.empty()) {
    fmt::print("bf16 roofline (useful FLOP of a step against the bf16 gemm rate above):\n");
    for (const auto& line : roofline) fmt::print("{}\n", line);
  }
  if (args.profile) {
    // One step each under the operator profiler, after the timed steps' batches as warm-up (the
    // first steps of a new model touch fresh memory; their page faults would land on whichever
    // operator writes first).
    const Batches two = batches;
    for (const bool bert : {false, true}) {
      std::vector<recrun::bench::OpShare> ops;
      double ms = 0;
      if (bert)
        time_bert4rec(split.train, two, b4r, args.seed, with_bf16, &ops, &ms);
      else
        time_sasrec(split.train, two, sas, {.loss = Loss::ce}, args.seed, with_bf16, &ops, &ms);
      double total = 0, gemm = 0;
      for (const auto& o : ops) {
        total += o.self_ms;
        if (o.name == "aten::mm" || o.name == "aten::addmm" || o.name == "aten::bmm" ||
            o.name == "aten::baddbmm")
          gemm += o.self_ms;
      }
      fmt::print("\n{} step ({}), by operator self time: {:.0f} ms profiled ({:.0f} ms wall); "
                 "matrix products {:.1f}%\n",
                 bert ? "bert4rec" : "sasrec ce", with_bf16 ? "bf16" : "fp32", total, ms,
                 100 * gemm / std::max(total, 1e-9));
      for (std::size_t i = 0; i < ops.size() && i < 12; ++i)
        fmt::print("  {:<44} {:8.1f} ms {:6.1f}% {:6} calls\n", ops[i].name, ops[i].self_ms,
                   100 * ops[i].self_ms / std::max(total, 1e-9), ops[i].calls);
    }
  }
  fmt::print("GFLOP/s counts useful work on real tokens (dense attention, output layer: all items "
             "for ce and bert4rec's masked rows, 1 + negatives for the sampled losses), x3 for "
             "backward\n\n");

  recrun::Registry registry;
  const auto report = recrun::core::load_plugins({RECRUN_BUILD_PLUGIN_DIR}, registry);
  for (const auto& w : report.warnings) fmt::print("warning: {}\n", w);

  // --- accuracy: fp32 vs bf16 over seeds on planted data ----------------------------------------
  if (args.accuracy_seeds > 0) {
    recrun::data::SynthOptions so;
    so.users = 1000;
    so.items = 500;
    so.interactions_per_user = 30;
    so.signal = "item";
    so.seed = 7;
    const recrun::Dataset planted = recrun::data::synthesize(so).dataset;
    const recrun::core::Split psplit = recrun::core::make_split(planted, {});
    fmt::print("planted data (recrun data synth: {} users, {} items, item-chain signal); "
               "valid NDCG@10 after {} epochs, hidden {}, max_len 50\n",
               planted.num_users(), planted.num_items(), args.accuracy_epochs, args.hidden);
    fmt::print("{:<10} {:<6} {:>8} {:>8} {:>9}  per seed\n", "model", "prec", "mean", "sd",
               "s/run");
    for (const std::string model : {"bert4rec", "sasrec"}) {
      for (const std::string prec : {"fp32", "bf16"}) {
        if (prec == "bf16" && !with_bf16) continue;
        std::vector<double> ndcg;
        double seconds = 0;
        for (std::int64_t s = 1; s <= args.accuracy_seeds; ++s) {
          const auto run = recrun::bench::train_for_accuracy(
              registry, model, planted, psplit,
              {{"hidden_units", args.hidden}, {"max_len", std::int64_t{50}},
               {"batch_size", std::int64_t{128}}, {"precision", prec}},
              args.accuracy_epochs, 0, static_cast<std::uint64_t>(s), args.threads);
          ndcg.push_back(run.curve.empty() ? 0.0 : run.curve.back().ndcg);
          seconds += run.seconds;
        }
        const auto [m, sd] = recrun::bench::mean_sd(ndcg);
        fmt::print("{:<10} {:<6} {:8.4f} {:8.4f} {:9.1f}  {:.4f}\n", model, prec, m, sd,
                   seconds / static_cast<double>(ndcg.size()), fmt::join(ndcg, " "));
      }
    }
    fmt::print("\n");
  }

  // --- Mult-DAE vs Mult-VAE ---------------------------------------------------------------------
  std::vector<std::int64_t> everyone;
  for (std::int64_t u = 0; u < split.train.num_users(); ++u) everyone.push_back(u);
  fmt::print("{:<34} {:>10} {:>12} {:>10}\n", "autoencoder (plugin defaults)", "epoch s",
             "users/s", "score s");
  for (const std::string name : {"multidae", "multivae"}) {
    const recrun::ModelInfo& info = registry.model(name);
    const recrun::Params params = recrun::resolve_params(info.params, {}, name);
    torch::manual_seed(args.seed);
    auto model = info.make(params, recrun::ModelEnv{.dataset = data, .registry = registry,
                                                    .seed = args.seed});
    recrun::TrainContext ctx(data, split.train, args.seed, args.threads);
    recrun::conformance::set_deadline(ctx, Clock::now() + std::chrono::milliseconds(500));  // warm-up: a batch or two
    model->fit_epoch(ctx);
    recrun::conformance::set_deadline(ctx, Clock::time_point::max());
    recrun::conformance::begin_epoch(ctx, 1);
    t = Clock::now();
    const recrun::EpochResult epoch = model->fit_epoch(ctx);
    const double epoch_s = since(t);
    t = Clock::now();
    for (std::size_t begin = 0; begin < everyone.size(); begin += 512) {
      const std::vector<std::int64_t> users(
          everyone.begin() + static_cast<std::ptrdiff_t>(begin),
          everyone.begin() + static_cast<std::ptrdiff_t>(std::min(everyone.size(), begin + 512)));
      (void)model->score(recrun::UserBatch(users, histories_of(split.train, users),
                                           data.num_items()));
    }
    fmt::print("{:<34} {:10.2f} {:12.0f} {:10.2f}\n", name, epoch_s,
               static_cast<double>(epoch.examples) / epoch_s, since(t));
  }
  return 0;
}
