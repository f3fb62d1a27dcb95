// sasrec — SASRec (Kang & McAuley, ICDM 2018): a causal self-attention network that predicts
// the next item at every position, with a choice of loss: full softmax cross-entropy (SASRec+,
// Klenitskiy & Vasilev 2023), the paper's BCE with sampled negatives, sampled softmax, and
// gSASRec's generalised BCE (Petrov & Macdonald 2023). Item metadata can be fused into the item
// embedding through feature and fusion plugins, as in bert4rec.
//
// Batches group users of similar history length so they pad only to their own longest; scoring
// computes the last block for the last position only; the sampled losses never build
// [positions, items] logits, and ce builds them a chunk of positions at a time.
#include <fmt/format.h>
#include <recrun/chunked_ce.hpp>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

#include <algorithm>
#include <limits>

#include "sasrec_net.hpp"

namespace {

using recrun::sasrec::Loss;
using recrun::sasrec::NetOptions;
using recrun::sasrec::Sampling;
using recrun::sasrec::SasrecNet;
using recrun::sasrec::Sharing;

struct SasrecOptions {
  /// Network shape (num_items is filled in from the data set).
  NetOptions net;
  /// Training objective.
  Loss loss = Loss::ce;
  /// Sampled negatives; 0 = the loss's default.
  std::int64_t num_negatives = 0;
  /// gBCE calibration t.
  double gbce_t = 0.75;
  /// Negative distribution.
  Sampling sampling = Sampling::uniform;
  /// logQ correction for sampled_softmax with popularity sampling.
  bool logq_correction = true;
  /// Which positions share a draw of negatives.
  Sharing negative_sharing = Sharing::automatic;
  /// Positions per chunk of the ce loss.
  recrun::CeChunkOptions ce;
  /// Sequences per training batch (and users per scoring chunk).
  std::int64_t batch_size = 128;
  /// Item features, their fusion and dropout.
  recrun::FeatureOptions item_features;
  /// lr, weight decay, clipping.
  recrun::OptimizerOptions optimizer;
  /// fp32, bf16 or auto.
  recrun::PrecisionOptions precision;
};

/// The default number of negatives of each sampled loss.
std::int64_t default_negatives(Loss loss) { return loss == Loss::bce ? 1 : 256; }

void declare(recrun::Fields<SasrecOptions>& f) {
  using O = SasrecOptions;
  f.nest(&O::net, [](recrun::Fields<NetOptions>& n) {
    n.add("hidden_units", &NetOptions::hidden, "embedding and transformer width").at_least(1);
    n.add("num_heads", &NetOptions::heads, "attention heads (must divide hidden_units)")
        .at_least(1);
    n.add("num_layers", &NetOptions::layers, "transformer blocks").range(1, 64);
    n.add("max_len", &NetOptions::max_len,
          "longest input sequence; older items are dropped (training uses the last max_len + 1 "
          "items: max_len inputs and their next items)")
        .at_least(1);
    n.add("dropout", &NetOptions::dropout, "dropout on embeddings, attention and sublayer outputs")
        .range(0, 0.95);
    n.choice("activation", &NetOptions::activation,
             {{"relu", recrun::Activation::relu}, {"gelu", recrun::Activation::gelu}},
             "feed-forward non-linearity (the paper's relu, or gelu)");
    n.add("norm_first", &NetOptions::norm_first,
          "pre-LayerNorm blocks plus a final LayerNorm, as in the authors' code; false = post-LN");
  });
  f.choice("loss", &O::loss,
           {{"ce", Loss::ce},
            {"bce", Loss::bce},
            {"sampled_softmax", Loss::sampled_softmax},
            {"gbce", Loss::gbce}},
           "training loss at every position: ce (softmax over all items, SASRec+), bce (the "
           "paper's, sampled negatives), sampled_softmax (softmax over the target and sampled "
           "negatives), gbce (gSASRec's generalised BCE)");
  f.add("num_negatives", &O::num_negatives,
        "negatives per position for bce, sampled_softmax and gbce; 0 = the loss's default (1 for "
        "bce, 256 for sampled_softmax and gbce, at most num_items - 1); ignored by ce")
      .at_least(0);
  f.add("gbce_t", &O::gbce_t,
        "gbce calibration t in [0, 1]: 0 is plain BCE, 1 fully corrects the sampling rate")
      .range(0, 1);
  f.choice("sampling", &O::sampling,
           {{"uniform", Sampling::uniform}, {"popularity", Sampling::popularity}},
           "negative distribution: uniform over items, or in proportion to training counts "
           "(sampled_softmax only)");
  f.add("logq_correction", &O::logq_correction,
        "with sampling = popularity, subtract log q(item) from every sampled_softmax score");
  f.choice("negative_sharing", &O::negative_sharing,
           {{"auto", Sharing::automatic},
            {"position", Sharing::position},
            {"sequence", Sharing::sequence}},
           "position: each position draws its own negatives; sequence: a sequence's positions "
           "share one draw (far less memory for many negatives); auto: position up to 16 "
           "negatives, else sequence");
  f.add("batch_size", &O::batch_size, "sequences per training batch").at_least(1);
  f.nest(&O::ce, recrun::declare_ce_chunk_field);
  f.nest(&O::item_features, recrun::declare_feature_fields);
  f.nest(&O::optimizer, recrun::declare_optimizer_fields);
  f.nest(&O::precision, recrun::declare_precision_field);
}

class Sasrec final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  Sasrec(SasrecOptions o, const recrun::ModelEnv& env) : options_(std::move(o)) {
    options_.net.num_items = env.dataset.num_items();
    const std::int64_t n = options_.net.num_items;
    if (n < 1) throw recrun::DataError("sasrec: the data set has no items");
    if (options_.net.hidden % options_.net.heads != 0)
      throw recrun::ParamError(fmt::format(
          "sasrec: hidden_units ({}) must be a multiple of num_heads ({})", options_.net.hidden,
          options_.net.heads));
    spec_.loss = options_.loss;
    spec_.gbce_t = options_.gbce_t;
    spec_.sampling = options_.sampling;
    spec_.logq_correction = options_.logq_correction;
    spec_.ce_chunk = options_.ce.ce_chunk;
    if (options_.loss != Loss::ce) {
      if (n < 2)
        throw recrun::DataError("sasrec: sampled losses need at least two items; use loss = ce");
      if (options_.num_negatives == 0) {
        spec_.negatives = std::min(default_negatives(options_.loss), n - 1);
      } else if (options_.num_negatives > n - 1) {
        throw recrun::ParamError(fmt::format(
            "sasrec: num_negatives ({}) must be below the number of items ({})",
            options_.num_negatives, n));
      } else {
        spec_.negatives = options_.num_negatives;
      }
      spec_.sharing = recrun::sasrec::resolve_sharing(options_.negative_sharing, spec_.negatives);
    }
    if (options_.sampling == Sampling::popularity && options_.loss != Loss::sampled_softmax)
      throw recrun::ParamError(
          "sasrec: sampling = popularity is only for loss = sampled_softmax (bce and gbce "
          "assume uniform negatives); set sampling = uniform or loss = sampled_softmax");
    net_ = SasrecNet(options_.net,
                     recrun::make_item_features(env.registry, env.dataset, options_.item_features,
                                                options_.net.hidden, "sasrec"));
    optimizer_ = recrun::make_optimizer(options_.optimizer, net_->parameters());
    bf16_ = recrun::resolve_precision(options_.precision.precision) == recrun::Precision::bf16;
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    net_->train();
    const recrun::Interactions& train = ctx.train();
    if (options_.loss != Loss::ce && !sampler_ready_) {
      sampler_ = options_.sampling == Sampling::popularity
                     ? recrun::sasrec::NegativeSampler(train.item_counts().to(torch::kFloat))
                     : recrun::sasrec::NegativeSampler(options_.net.num_items);
      sampler_ready_ = true;
    }
    std::vector<std::int64_t> users, lengths;
    for (std::int64_t u = 0; u < train.num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(train.items(u).size());
      if (n < 2) continue;  // a single item has no next item to learn
      users.push_back(u);
      lengths.push_back(std::min(n, options_.net.max_len + 1));
    }
    const auto batches =
        recrun::length_bucketed_batches(users, lengths, options_.batch_size, &ctx.rng());
    double loss_sum = 0;
    std::int64_t positions = 0, examples = 0;
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto& batch : batches) {
      if (ctx.out_of_time()) break;
      // Data-parallel: every rank draws the same global batch and trains on its part of it;
      // step() sums the parts' gradients weighted by their positions.
      std::int64_t batch_positions = 0;  // of the global batch: the epoch's mean weights them
      for (const auto u : batch)
        batch_positions +=
            std::min<std::int64_t>(train.items(u).size(), options_.net.max_len + 1) - 1;
      histories.clear();
      for (const auto u : ctx.shard(batch)) histories.push_back(train.items(u));
      torch::Tensor batch_loss;
      double weight = 0;
      if (!histories.empty()) {
        const auto next = recrun::sasrec::next_item_batch(histories, options_.net.max_len);
        // bf16 forward under autocast; backward and the fp32 weights' update after it.
        const recrun::Bf16Autocast autocast(bf16_);
        batch_loss = net_->loss(next, spec_, sampler_);
        weight = static_cast<double>(next.positions);
      }
      const double loss = recrun::step(*optimizer_, options_.optimizer, batch_loss, weight);
      loss_sum += loss * static_cast<double>(batch_positions);
      positions += batch_positions;
      examples += static_cast<std::int64_t>(batch.size());  // all ranks': throughput is global
    }
    ctx.log("positions", static_cast<double>(positions));
    const double mean = positions > 0 ? loss_sum / static_cast<double>(positions)
                                      : std::numeric_limits<double>::quiet_NaN();
    return recrun::EpochResult::of(mean, examples);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    net_->eval();
    const std::int64_t b = users.size();
    std::vector<std::int64_t> rows, lengths;
    for (std::int64_t i = 0; i < b; ++i) {
      const auto n = static_cast<std::int64_t>(users.history(i).size());
      if (n == 0) continue;  // no history: nothing to attend to, scores stay zero
      rows.push_back(i);
      lengths.push_back(std::min(options_.net.max_len, n));
    }
    torch::Tensor out = torch::zeros({b, options_.net.num_items});
    std::vector<std::span<const std::int32_t>> histories;
    const recrun::Bf16Autocast autocast(bf16_);
    for (const auto& chunk : recrun::length_bucketed_batches(rows, lengths, options_.batch_size)) {
      histories.clear();
      for (const auto i : chunk) histories.push_back(users.history(i));
      const recrun::PackedSequences packed =
          recrun::pack_sequences(histories, options_.net.max_len);
      const torch::Tensor h = net_->hidden_last(packed.tokens, packed.lengths);
      out.index_copy_(0, torch::tensor(chunk, torch::kInt64), net_->logits(h).to(torch::kFloat));
    }
    return out;
  }

  void save(recrun::Archive& out) const override {
    out.write("sasrec", *net_);
    out.write("sasrec.optimizer", *optimizer_);
  }

  void load(const recrun::Archive& in) override {
    in.read("sasrec", *net_);
    // A checkpoint without optimizer state (written for scoring only) still loads.
    if (in.contains("sasrec.optimizer")) in.read("sasrec.optimizer", *optimizer_);
  }

  std::map<std::string, double> diagnostics() override { return net_->features().diagnostics(); }

  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    // The longest batch: batch_size users of the longest histories, each max_len positions at
    // most (length-bucketed batches put the longest together).
    std::int64_t users = 0, longest = 0;
    for (std::int64_t u = 0; u < q.train->num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(q.train->items(u).size());
      if (n < 2) continue;
      ++users;
      longest = std::max(longest, std::min(n, options_.net.max_len + 1) - 1);
    }
    if (users == 0) return std::nullopt;
    std::int64_t params = 0;
    for (const auto& p : net_->parameters()) params += p.numel();
    const auto m = recrun::sasrec::estimate_memory(
        options_.net, params, std::min(options_.batch_size, users), longest, spec_, bf16_,
        q.score_batch);
    recrun::MemoryEstimate e;
    e.bytes = m.peak();
    e.detail = fmt::format("gradients and Adam state {}, activations {}, loss {}, scoring {}",
                           recrun::format_bytes(m.state), recrun::format_bytes(m.activations),
                           recrun::format_bytes(m.loss), recrun::format_bytes(m.scoring));
    e.lowered_by = options_.loss == Loss::ce
                       ? "batch_size, ce_chunk (positions per chunk of the loss), max_len, or a "
                         "sampled loss (loss = sampled_softmax, gbce or bce)"
                       : "batch_size, num_negatives, negative_sharing = sequence, or max_len";
    return e;
  }

 private:
  SasrecOptions options_;
  recrun::sasrec::LossSpec spec_;
  recrun::sasrec::NegativeSampler sampler_;
  bool sampler_ready_ = false;
  SasrecNet net_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  bool bf16_ = false;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<SasrecOptions>(
      {.name = "sasrec",
       .summary = "SASRec (Kang & McAuley 2018): causal self-attention, next-item prediction at "
                  "every position; loss ce (SASRec+), bce, sampled_softmax or gbce (gSASRec); "
                  "optional item-feature fusion"},
      declare, [](const SasrecOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<Sasrec>(o, env);
      });
}
