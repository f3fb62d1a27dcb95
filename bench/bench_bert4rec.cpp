// bench_bert4rec — BERT4Rec training and scoring speed on ML-1M-shaped synthetic data.
//
//   build/bin/bench_bert4rec [--threads 2] [--hidden 64] [--steps 16] [--seed 1]
//                            [--retain-memory 1|0]
//
// Reports, all measured in the same run on the same batches:
//  * the plugin's training throughput (sequences/s over one epoch through Model::fit_epoch) and
//    scoring throughput (users/s through the host evaluator, full ranking);
//  * a per-phase breakdown of a training step (encoder vs output layer, forward and backward,
//    optimizer) for three variants of the same step: the plugin's (last block and output layer
//    at the masked positions only), masked output over a full encoder (what the Python seed
//    does), and full [B, L, items] logits (the baseline);
//  * useful-FLOP rates as a share of a 2048^3 sgemm measured here.
// The synthetic data set has ML-1M's shape: 6,040 users, 3,416 items, ~1M interactions with a
// long-tailed history length (median ~96) and Zipf-like item popularity.
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>

#include "bench_args.hpp"
#include "../plugins/models/bert4rec/bert4rec_net.hpp"
#include "core/evaluator.hpp"
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
  std::int64_t steps = 16;  // steps per variant in the breakdown
  std::uint64_t seed = 1;
  bool retain_memory = true;
};

constexpr const char* kUsage = "bench_bert4rec [--threads 2] [--hidden 64] [--steps 16] [--seed 1] [--retain-memory 1|0]";

Args parse(int argc, char** argv) {
  Args a;
  recrun::bench::for_each_flag(argc, argv, kUsage, [&](const std::string& k, const std::string& v) {
    if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--hidden") a.hidden = std::stoll(v);
    else if (k == "--steps") a.steps = std::stoll(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else if (k == "--retain-memory") a.retain_memory = std::string(v) != "0";
    else return false;
    return true;
  });
  return a;
}

// ML-1M's shape: 6,040 users with at least 20 ratings each, a long tail (median ~96, mean
// ~166), 3,416 items of Zipf-like popularity.
recrun::Dataset ml1m_shaped(std::uint64_t seed) {
  constexpr int kUsers = 6040, kItems = 3416;
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> len(std::log(96.0), 1.04);
  std::vector<double> weights(kItems);
  for (int i = 0; i < kItems; ++i) weights[i] = 1.0 / std::pow(i + 10.0, 1.0);
  std::discrete_distribution<int> item(weights.begin(), weights.end());
  recrun::DatasetBuilder b;
  b.reserve(1'050'000);
  for (int i = 0; i < kItems; ++i) b.add_interaction("u0", fmt::format("i{}", i), i);  // all items exist
  for (int u = 1; u < kUsers; ++u) {
    const int n = std::clamp(static_cast<int>(len(rng)), 20, 2314);
    const std::string user = fmt::format("u{}", u);
    for (int t = 0; t < n; ++t) b.add_interaction(user, fmt::format("i{}", item(rng)), t);
  }
  return b.build("ml1m-shaped", {}, "bench");
}

// Multiply-accumulates of the network's matrix products for one batch, counting real tokens only
// (padding is waste, not work). `prune` = last block and output layer at masked rows only.
struct Work {
  double encoder = 0, output = 0;
};
Work step_macs(const torch::Tensor& lengths, const torch::Tensor& chosen, std::int64_t hidden,
               std::int64_t layers, std::int64_t items, bool prune, bool full_logits) {
  const double h = static_cast<double>(hidden);
  const torch::Tensor l = lengths.to(torch::kDouble);
  const double tokens = l.sum().item<double>();
  const double sq = l.pow(2).sum().item<double>();
  const double m = chosen.sum().item<double>();
  const torch::Tensor per_row = chosen.sum(1).to(torch::kDouble);
  const double qt = (per_row * l).sum().item<double>();  // masked queries x keys
  Work w;
  const double full_layer = 12 * h * h * tokens + 2 * h * sq;  // QKV+out+FFN(4x) + QK^T, PV
  if (prune)
    w.encoder = (layers - 1) * full_layer + 2 * h * h * tokens + 10 * h * h * m + 2 * h * qt;
  else
    w.encoder = layers * full_layer;
  w.output = (full_logits ? tokens : m) * h * static_cast<double>(items);
  return w;
}

struct Phase {
  double enc_fwd = 0, out_fwd = 0, out_bwd = 0, enc_bwd = 0, optim = 0, prep = 0;
  double total() const { return enc_fwd + out_fwd + out_bwd + enc_bwd + optim + prep; }
};

enum class Variant { pruned, masked, full };
const char* name(Variant v) {
  switch (v) {
    case Variant::pruned: return "plugin (masked rows, pruned last block)";
    case Variant::masked: return "masked output, full encoder (seed)";
    case Variant::full: return "full [B,L,items] logits (baseline)";
  }
  return "?";
}

struct VariantResult {
  Phase phase;
  std::int64_t sequences = 0;
  double useful_flops = 0;  // of the masked-output algorithm, real tokens only
  double executed_flops = 0;
};

VariantResult run_variant(Variant v, const recrun::Interactions& train,
                          const std::vector<std::vector<std::int64_t>>& batches,
                          const recrun::bert4rec::NetOptions& net_options, std::uint64_t seed) {
  torch::manual_seed(seed);
  recrun::bert4rec::Bert4RecNet net(net_options);
  net->train();
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
  const std::vector<torch::Tensor> params = net->parameters();
  const std::int64_t n = net_options.num_items, hidden = net_options.hidden;
  VariantResult r;
  std::vector<std::span<const std::int32_t>> histories;
  for (const auto& batch : batches) {
    auto t = Clock::now();
    histories.clear();
    for (const auto u : batch) histories.push_back(train.items(u));
    const auto packed = recrun::pack_sequences(histories, net_options.max_len);
    const auto cloze =
        recrun::bert4rec::cloze_mask(packed.tokens, packed.lengths, n, 0.15, 0.0);
    r.phase.prep += since(t);

    t = Clock::now();
    torch::Tensor h;
    if (v == Variant::pruned) {
      h = net->masked_hidden(cloze, packed.lengths);
    } else {
      h = net->hidden_all(cloze.inputs, packed.lengths);
      if (v == Variant::masked)
        h = h.reshape({-1, hidden}).index_select(0, cloze.chosen.reshape({-1}).nonzero().squeeze(1));
    }
    r.phase.enc_fwd += since(t);

    t = Clock::now();
    const torch::Tensor leaf = h.detach().requires_grad_(true);
    torch::Tensor loss;
    if (v == Variant::full) {
      const torch::Tensor targets =
          torch::where(cloze.chosen, packed.tokens - 1, torch::full_like(packed.tokens, -100));
      loss = torch::nn::functional::cross_entropy(net->logits(leaf).reshape({-1, n}),
                                                  targets.reshape({-1}));
    } else {
      loss = torch::nn::functional::cross_entropy(net->logits(leaf), cloze.labels);
    }
    (void)loss.item<double>();
    r.phase.out_fwd += since(t);

    t = Clock::now();
    loss.backward();
    r.phase.out_bwd += since(t);

    t = Clock::now();
    h.backward(leaf.grad());
    r.phase.enc_bwd += since(t);

    t = Clock::now();
    torch::nn::utils::clip_grad_norm_(params, 5.0);
    optimizer.step();
    optimizer.zero_grad();
    r.phase.optim += since(t);

    r.sequences += static_cast<std::int64_t>(batch.size());
    const Work useful = step_macs(packed.lengths, cloze.chosen, hidden, net_options.layers, n,
                                  /*prune=*/false, /*full_logits=*/false);
    const Work done = step_macs(packed.lengths, cloze.chosen, hidden, net_options.layers, n,
                                v == Variant::pruned, v == Variant::full);
    // x2 for multiply-add, x3 for forward + backward (input and weight gradients).
    r.useful_flops += 6 * (useful.encoder + useful.output);
    r.executed_flops += 6 * (done.encoder + done.output);
  }
  return r;
}

double sgemm_gflops() {
  const torch::Tensor a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
  torch::Tensor c = torch::mm(a, b);  // warm-up
  std::vector<double> times;
  for (int i = 0; i < 3; ++i) {
    const auto t = Clock::now();
    c = torch::mm(a, b);
    times.push_back(since(t));
  }
  std::sort(times.begin(), times.end());
  return 2.0 * std::pow(2048.0, 3) / times[0] / 1e9;  // best of 3: the machine's capability
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.retain_memory) {
    // glibc serves large allocations with fresh mmaps and unmaps them on free, so every
    // [B, heads, L, L] attention tensor page-faults its whole size in again. Serving them from
    // the heap and keeping freed memory there removes that (the host does the same).
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  at::set_num_threads(args.threads);
  torch::manual_seed(args.seed);
  fmt::print("bench_bert4rec: {} threads, hidden {}, max_len 200, batch 128, 2 layers, 4 heads, "
             "freed memory {}\n",
             at::get_num_threads(), args.hidden,
             args.retain_memory ? "retained (mallopt)" : "returned to the OS (glibc default)");

  auto t = Clock::now();
  const recrun::Dataset data = ml1m_shaped(args.seed);
  const recrun::core::Split split = recrun::core::make_split(data, {});
  std::int64_t capped = 0, users = 0;
  for (std::int64_t u = 0; u < split.train.num_users(); ++u) {
    const auto len = static_cast<std::int64_t>(split.train.items(u).size());
    if (len == 0) continue;
    capped += std::min<std::int64_t>(len, 200);
    ++users;
  }
  fmt::print("data: {} users, {} items, {} interactions ({:.1f} s); mean effective length {:.1f}\n",
             data.num_users(), data.num_items(), data.num_interactions(), since(t),
             static_cast<double>(capped) / users);

  const double peak = sgemm_gflops();
  fmt::print("sgemm 2048^3: {:.1f} GFLOP/s\n\n", peak);

  // --- the plugin, end to end ---------------------------------------------------------------
  recrun::Registry registry;
  const auto report = recrun::core::load_plugins({RECRUN_BUILD_PLUGIN_DIR}, registry);
  for (const auto& w : report.warnings) fmt::print("warning: {}\n", w);
  const recrun::ModelInfo& info = registry.model("bert4rec");
  const recrun::Params params = recrun::resolve_params(
      info.params,
      {{"hidden_units", args.hidden}, {"batch_size", std::int64_t{128}},
       {"max_len", std::int64_t{200}}},
      "model 'bert4rec'");
  auto model = info.make(params, recrun::ModelEnv{.dataset = data, .registry = registry,
                                                  .seed = args.seed});
  recrun::TrainContext ctx(data, split.train, args.seed, args.threads);
  recrun::conformance::set_deadline(ctx, Clock::now() + std::chrono::seconds(3));  // warm-up: a few batches
  model->fit_epoch(ctx);
  recrun::conformance::set_deadline(ctx, Clock::time_point::max());
  recrun::conformance::begin_epoch(ctx, 1);
  t = Clock::now();
  const recrun::EpochResult epoch = model->fit_epoch(ctx);
  const double epoch_s = since(t);
  const double train_sps = static_cast<double>(epoch.examples) / epoch_s;
  fmt::print("plugin training: {} sequences in {:.2f} s = {:.1f} seq/s (loss {:.3f})\n",
             epoch.examples, epoch_s, train_sps, epoch.loss);

  recrun::core::EvalOptions eval;
  eval.batch_size = 512;
  const auto valid = recrun::core::evaluate(*model, split.train, split.eval_users,
                                            split.valid_targets, eval);
  fmt::print("plugin scoring:  {} users in {:.2f} s = {:.1f} users/s (full ranking)\n\n",
             valid.users, valid.seconds, static_cast<double>(valid.users) / valid.seconds);

  // --- breakdown on the same batches -----------------------------------------------------------
  std::vector<std::int64_t> ids, lengths;
  for (std::int64_t u = 0; u < split.train.num_users(); ++u) {
    const auto len = static_cast<std::int64_t>(split.train.items(u).size());
    if (len == 0) continue;
    ids.push_back(u);
    lengths.push_back(std::min<std::int64_t>(len, 200));
  }
  std::mt19937_64 rng(args.seed);
  auto batches = recrun::length_bucketed_batches(ids, lengths, 128, &rng);
  batches.resize(std::min<std::size_t>(batches.size(), static_cast<std::size_t>(args.steps)));

  recrun::bert4rec::NetOptions net;
  net.num_items = data.num_items();
  net.hidden = args.hidden;
  net.heads = 4;
  net.layers = 2;
  net.max_len = 200;
  net.dropout = 0.2;

  fmt::print("per-step breakdown over {} batches (ms per step; same batches and masks)\n",
             batches.size());
  fmt::print("{:<42} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}\n", "variant",
             "enc fwd", "out fwd", "out bwd", "enc bwd", "optim", "total", "seq/s", "output",
             "useful");
  double masked_sps = 0, full_sps = 0, pruned_sps = 0;
  for (const Variant v : {Variant::pruned, Variant::masked, Variant::full}) {
    run_variant(v, split.train, {batches.front()}, net, args.seed);  // warm-up
    const VariantResult r = run_variant(v, split.train, batches, net, args.seed);
    const double steps = static_cast<double>(batches.size());
    const Phase& p = r.phase;
    const double sps = static_cast<double>(r.sequences) / p.total();
    const double output_share = (p.out_fwd + p.out_bwd) / (p.total() - p.prep - p.optim);
    const double rate = r.useful_flops / p.total() / 1e9;
    fmt::print("{:<42} {:8.1f} {:8.1f} {:8.1f} {:8.1f} {:8.1f} {:8.1f} {:9.1f} {:6.0f}% {:6.1f}%\n",
               name(v), 1e3 * p.enc_fwd / steps, 1e3 * p.out_fwd / steps,
               1e3 * p.out_bwd / steps, 1e3 * p.enc_bwd / steps, 1e3 * p.optim / steps,
               1e3 * p.total() / steps, sps, 100 * output_share, 100 * rate / peak);
    if (v == Variant::pruned) {
      pruned_sps = sps;
      fmt::print("  useful work {:.2f} GFLOP/step ({:.1f} GFLOP/s = {:.1f}% of sgemm); "
                 "executed {:.2f} GFLOP/step ({:.1f}% of sgemm)\n",
                 r.useful_flops / steps / 1e9, rate, 100 * rate / peak,
                 r.executed_flops / steps / 1e9,
                 100 * r.executed_flops / p.total() / 1e9 / peak);
    }
    if (v == Variant::masked) masked_sps = sps;
    if (v == Variant::full) full_sps = sps;
  }
  fmt::print("\nratios: plugin / full logits = {:.2f}x, plugin / masked-full-encoder = {:.2f}x, "
             "masked / full = {:.2f}x\n",
             pruned_sps / full_sps, pruned_sps / masked_sps, masked_sps / full_sps);
  fmt::print("reference (Python PyTorch 1.13, same machine kind, 2 threads): ~95 seq/s masked, "
             "~61 seq/s full logits\n");
  fmt::print("output = share of encoder+output time spent in the output layer; useful = "
             "masked-output FLOPs on real tokens per second, as a share of sgemm\n");
  return 0;
}
