// bert4rec — BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained with the
// Cloze task, optionally fusing item metadata (feature plugins) into the item embedding
// (fusion plugins).
//
// Speed comes from not computing what is thrown away: batches group users of similar history
// length so they pad only to their own longest; the last transformer block and the output layer
// run only at the masked positions (training) or the [MASK] slot (scoring).
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <recrun/chunked_ce.hpp>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

#include <algorithm>

#include "bert4rec_net.hpp"

namespace {

using recrun::bert4rec::Bert4RecNet;
using recrun::bert4rec::NetOptions;

struct Bert4RecOptions {
  /// Network shape (num_items is filled in from the data set).
  NetOptions net;
  /// Share of real positions chosen for the Cloze task.
  double mask_prob = 0.15;
  /// Extra probability of masking a sequence's last item.
  double last_item_mask_ratio = 0.0;
  /// Sequences per training batch (and users per scoring chunk).
  std::int64_t batch_size = 128;
  /// Masked positions per chunk of the cross-entropy.
  recrun::CeChunkOptions ce;
  /// Item features, their fusion and dropout.
  recrun::FeatureOptions item_features;
  /// lr, weight decay, clipping.
  recrun::OptimizerOptions optimizer;
  /// fp32, bf16 or auto.
  recrun::PrecisionOptions precision;
};

void declare(recrun::Fields<Bert4RecOptions>& f) {
  using O = Bert4RecOptions;
  f.nest(&O::net, [](recrun::Fields<NetOptions>& n) {
    n.add("hidden_units", &NetOptions::hidden, "embedding and transformer width").at_least(1);
    n.add("num_heads", &NetOptions::heads, "attention heads (must divide hidden_units)")
        .at_least(1);
    n.add("num_layers", &NetOptions::layers, "transformer blocks").range(1, 64);
    n.add("max_len", &NetOptions::max_len,
          "longest sequence, [MASK] included; older items are dropped")
        .at_least(2);
    n.add("dropout", &NetOptions::dropout, "dropout on embeddings, attention and sublayer outputs")
        .range(0, 0.95);
  });
  f.add("mask_prob", &O::mask_prob,
        "share of positions masked for the Cloze task (80% [MASK], 10% random item, 10% "
        "unchanged)")
      .range(1e-6, 1);
  f.add("last_item_mask_ratio", &O::last_item_mask_ratio,
        "extra probability of replacing a sequence's last item by [MASK]")
      .range(0, 1);
  f.add("batch_size", &O::batch_size, "sequences per training batch").at_least(1);
  f.nest(&O::ce, recrun::declare_ce_chunk_field);
  f.nest(&O::net, [](recrun::Fields<NetOptions>& n) {
    n.add("share_embeddings", &NetOptions::share_embeddings,
          "tie the output layer to the item embedding");
  });
  f.nest(&O::item_features, recrun::declare_feature_fields);
  f.nest(&O::optimizer, recrun::declare_optimizer_fields);
  f.nest(&O::precision, recrun::declare_precision_field);
}

class Bert4Rec final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  Bert4Rec(Bert4RecOptions o, const recrun::ModelEnv& env) : options_(std::move(o)) {
    options_.net.num_items = env.dataset.num_items();
    if (options_.net.num_items < 1)
      throw recrun::DataError("bert4rec: the data set has no items");
    if (options_.net.hidden % options_.net.heads != 0)
      throw recrun::ParamError(fmt::format(
          "bert4rec: hidden_units ({}) must be a multiple of num_heads ({})", options_.net.hidden,
          options_.net.heads));

    // With no features the model is plain BERT4Rec whatever `fusion` says, so a sweep over
    // fusion x feature sets may include the empty set.
    net_ = Bert4RecNet(options_.net,
                       recrun::make_item_features(env.registry, env.dataset, options_.item_features,
                                                options_.net.hidden, "bert4rec"));
    optimizer_ = recrun::make_optimizer(options_.optimizer, net_->parameters());
    bf16_ = recrun::resolve_precision(options_.precision.precision) == recrun::Precision::bf16;
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    net_->train();
    const recrun::Interactions& train = ctx.train();
    std::vector<std::int64_t> users, lengths;
    for (std::int64_t u = 0; u < train.num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(train.items(u).size());
      if (n == 0) continue;
      users.push_back(u);
      lengths.push_back(std::min(n, options_.net.max_len));
    }
    const auto batches =
        recrun::length_bucketed_batches(users, lengths, options_.batch_size, &ctx.rng());
    double loss_sum = 0;
    std::int64_t predicted = 0, examples = 0;
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto& batch : batches) {
      if (ctx.out_of_time()) break;
      histories.clear();
      for (const auto u : batch) histories.push_back(train.items(u));
      // The Cloze mask is drawn for the whole global batch from a generator seeded by the
      // model's rng(), which is the same on every rank of a data-parallel run; each rank then
      // trains on its rows. So one rank and N ranks train on the same masked examples.
      auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.rng()());
      const recrun::PackedSequences packed =
          recrun::pack_sequences(histories, options_.net.max_len);
      auto cloze = recrun::bert4rec::cloze_mask(packed.tokens, packed.lengths,
                                                options_.net.num_items, options_.mask_prob,
                                                options_.last_item_mask_ratio, gen);
      torch::Tensor lengths = packed.lengths;
      examples += static_cast<std::int64_t>(batch.size());
      const std::int64_t m = cloze.labels.numel();  // of the global batch
      if (m == 0) continue;  // nothing drawn (tiny batch of short histories): same on every rank
      if (ctx.world_size() > 1) {
        const auto [begin, end] = ctx.shard_range(static_cast<std::int64_t>(batch.size()));
        lengths = lengths.slice(0, begin, end);
        cloze = recrun::bert4rec::rows_of(cloze, packed.tokens, begin, end);
      }
      torch::Tensor batch_loss;
      const std::int64_t mine = cloze.labels.numel();
      if (mine > 0) {
        // bf16 forward under autocast; backward and the fp32 weights' update after it.
        const recrun::Bf16Autocast autocast(bf16_);
        batch_loss = net_->cloze_loss(cloze, lengths, options_.ce.ce_chunk);
      }
      const double loss = recrun::step(*optimizer_, options_.optimizer, batch_loss,
                                       static_cast<double>(mine));
      loss_sum += loss * static_cast<double>(m);
      predicted += m;
    }
    const double mean = predicted > 0 ? loss_sum / static_cast<double>(predicted)
                                      : std::numeric_limits<double>::quiet_NaN();
    return recrun::EpochResult::of(mean, examples);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    net_->eval();
    const std::int64_t b = users.size();
    const std::int64_t body = options_.net.max_len - 1;  // room for the [MASK] after the history
    std::vector<std::int64_t> rows(b), lengths(b);
    for (std::int64_t i = 0; i < b; ++i) {
      rows[i] = i;
      lengths[i] = std::min<std::int64_t>(body, static_cast<std::int64_t>(users.history(i).size()));
    }
    torch::Tensor out = torch::empty({b, options_.net.num_items});
    std::vector<std::span<const std::int32_t>> histories;
    const recrun::Bf16Autocast autocast(bf16_);
    // Scoring in length-sorted chunks keeps padding low for any batch the caller sends.
    for (const auto& chunk : recrun::length_bucketed_batches(rows, lengths, options_.batch_size)) {
      histories.clear();
      for (const auto i : chunk) histories.push_back(users.history(i));
      const recrun::PackedSequences packed =
          recrun::pack_sequences(histories, body, 1, 0, net_->mask_token());
      const torch::Tensor slot = (packed.lengths - 1).unsqueeze(1);
      const torch::Tensor h = net_->hidden_at(packed.tokens, packed.lengths, slot).squeeze(1);
      out.index_copy_(0, torch::tensor(chunk, torch::kInt64), net_->logits(h).to(torch::kFloat));
    }
    return out;
  }

  void save(recrun::Archive& out) const override {
    out.write("bert4rec", *net_);
    out.write("bert4rec.optimizer", *optimizer_);
  }

  void load(const recrun::Archive& in) override {
    in.read("bert4rec", *net_);
    // Resumed runs continue with the optimizer's moments; a checkpoint without them (e.g.
    // written for scoring only) still loads.
    if (in.contains("bert4rec.optimizer")) in.read("bert4rec.optimizer", *optimizer_);
  }

  std::map<std::string, double> diagnostics() override {
    return net_->fusion() ? net_->fusion()->diagnostics() : std::map<std::string, double>{};
  }

  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    std::int64_t users = 0, longest = 0;
    for (std::int64_t u = 0; u < q.train->num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(q.train->items(u).size());
      if (n == 0) continue;
      ++users;
      longest = std::max(longest, std::min(n, options_.net.max_len));
    }
    if (users == 0) return std::nullopt;
    std::int64_t params = 0;
    for (const auto& p : net_->parameters()) params += p.numel();
    recrun::MemoryEstimate e;
    e.bytes = recrun::bert4rec::estimate_memory(
        options_.net, params, std::min(options_.batch_size, users), longest, options_.mask_prob,
        options_.last_item_mask_ratio, options_.ce.ce_chunk, bf16_, q.score_batch, &e.detail);
    e.lowered_by = "batch_size, ce_chunk (masked positions per chunk of the loss), max_len or "
                   "hidden_units";
    return e;
  }

 private:
  Bert4RecOptions options_;
  Bert4RecNet net_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  bool bf16_ = false;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<Bert4RecOptions>(
      {.name = "bert4rec",
       .summary = "BERT4Rec (Sun 2019): bidirectional transformer with Cloze training; optional "
                  "item-feature fusion"},
      declare, [](const Bert4RecOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<Bert4Rec>(o, env);
      });
}
