// gru4rec — GRU4Rec (Hidasi, Karatzoglou, Baltrunas & Tikk, ICLR 2016; Hidasi & Karatzoglou,
// CIKM 2018): a GRU reads a user's history left to right and predicts the next item at every
// position, with a cross-entropy or BPR-max loss over negatives taken from the whole catalogue,
// from the batch (the other sequences' targets at the same step), from a popularity-weighted
// sample shared by the batch, or from the batch and the sample together.
//
// A user is one sequence (the last max_len + 1 items of the history; GRU4Rec's sessions are the
// users here), batched by length with the SDK's length_bucketed_batches, right-padded; scoring
// runs the last max_len items and ranks the catalogue by the state after the last one.
#include <fmt/format.h>
#include <recrun/chunked_ce.hpp>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

#include <limits>

#include "gru4rec_net.hpp"

namespace {

using recrun::gru4rec::Gru4RecNet;
using recrun::gru4rec::Loss;
using recrun::gru4rec::Negatives;
using recrun::gru4rec::NetOptions;

struct Gru4RecOptions {
  NetOptions net;
  Loss loss = Loss::ce;
  Negatives negatives = Negatives::all;
  std::int64_t num_negatives = 2048;
  double sample_alpha = 0.5;
  double bpreg = 1.0;
  std::int64_t max_len = 50;
  std::int64_t batch_size = 64;
  recrun::CeChunkOptions ce;
  recrun::OptimizerOptions optimizer{.lr = 1e-3, .clip_norm = 5.0};
};

void declare(recrun::Fields<Gru4RecOptions>& f) {
  using O = Gru4RecOptions;
  f.nest(&O::net, [](recrun::Fields<NetOptions>& n) {
    n.add("hidden_units", &NetOptions::hidden,
          "GRU and embedding width (Hidasi et al. tune 32-512)")
        .range(1, 4096);
    n.add("num_layers", &NetOptions::layers, "stacked GRU layers").range(1, 8);
    n.add("embedding_dropout", &NetOptions::embedding_dropout,
          "dropout on the input embeddings (tuned 0-0.5)")
        .range(0, 0.9);
    n.add("hidden_dropout", &NetOptions::hidden_dropout,
          "dropout on the GRU's output (tuned 0-0.7)")
        .range(0, 0.9);
    n.add("tie_embeddings", &NetOptions::tie_embeddings,
          "score with the input embedding (GRU4Rec's constrained embedding); false = a separate "
          "output table");
  });
  f.choice("loss", &O::loss, {{"ce", Loss::ce}, {"bpr_max", Loss::bpr_max}},
           "ce (softmax cross-entropy over target and negatives) or bpr_max (Hidasi & "
           "Karatzoglou 2018)");
  f.choice("negatives", &O::negatives,
           {{"all", Negatives::all},
            {"batch", Negatives::batch},
            {"sampled", Negatives::sampled},
            {"batch_sampled", Negatives::batch_sampled}},
           "all: every other item; batch: the other sequences' targets at the same step; "
           "sampled: num_negatives items drawn per batch (popularity^sample_alpha), out of batch; "
           "batch_sampled: both");
  f.add("num_negatives", &O::num_negatives,
        "out-of-batch negatives per batch for sampled and batch_sampled (tuned 0-8192)")
      .range(1, 1 << 20);
  f.add("sample_alpha", &O::sample_alpha,
        "sampling probability proportional to count^sample_alpha: 0 uniform, 1 popularity")
      .range(0, 1);
  f.add("bpreg", &O::bpreg, "BPR-max's score regularisation (tuned 0-2)").range(0, 10);
  f.add("max_len", &O::max_len,
        "longest input sequence; training uses the last max_len + 1 items").range(1, 100000);
  f.add("batch_size", &O::batch_size, "sequences per batch (and users per scoring chunk)")
      .range(1, 100000);
  f.nest(&O::ce, recrun::declare_ce_chunk_field);
  f.nest(&O::optimizer, recrun::declare_optimizer_fields);
}

class Gru4Rec final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  Gru4Rec(Gru4RecOptions o, const recrun::ModelEnv& env) : o_(std::move(o)) {
    o_.net.num_items = env.dataset.num_items();
    if (o_.net.num_items < 2) throw recrun::DataError("gru4rec: the data set needs two items");
    net_ = Gru4RecNet(o_.net);
    optimizer_ = recrun::make_optimizer(o_.optimizer, net_->parameters());
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    net_->train();
    const recrun::Interactions& train = ctx.train();
    if (samples_needed() && !sampling_.defined())
      sampling_ = train.item_counts().to(torch::kDouble).pow(o_.sample_alpha).to(torch::kFloat);
    std::vector<std::int64_t> users, lengths;
    for (std::int64_t u = 0; u < train.num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(train.items(u).size());
      if (n < 2) continue;
      users.push_back(u);
      lengths.push_back(std::min(n, o_.max_len + 1));
    }
    const auto batches = recrun::length_bucketed_batches(users, lengths, o_.batch_size, &ctx.rng());
    double loss_sum = 0;
    std::int64_t positions = 0, examples = 0;
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto& batch : batches) {
      if (ctx.out_of_time()) break;
      std::int64_t batch_positions = 0;
      for (const auto u : batch)
        batch_positions += std::min<std::int64_t>(train.items(u).size(), o_.max_len + 1) - 1;
      histories.clear();
      for (const auto u : ctx.shard(batch)) histories.push_back(train.items(u));
      torch::Tensor loss;
      double weight = 0;
      if (!histories.empty()) {
        const auto next = recrun::gru4rec::next_item_batch(histories, o_.max_len);
        loss = batch_loss(next);
        weight = static_cast<double>(next.positions);
      }
      loss_sum += recrun::step(*optimizer_, o_.optimizer, loss, weight) *
                  static_cast<double>(batch_positions);
      positions += batch_positions;
      examples += static_cast<std::int64_t>(batch.size());
    }
    ctx.log("positions", static_cast<double>(positions));
    return recrun::EpochResult::of(positions > 0 ? loss_sum / static_cast<double>(positions)
                                                 : std::numeric_limits<double>::quiet_NaN(),
                                   examples);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    net_->eval();
    const std::int64_t b = users.size();
    std::vector<std::int64_t> rows, lengths;
    for (std::int64_t i = 0; i < b; ++i) {
      const auto n = static_cast<std::int64_t>(users.history(i).size());
      if (n == 0) continue;  // nothing to read: scores stay zero
      rows.push_back(i);
      lengths.push_back(std::min(o_.max_len, n));
    }
    torch::Tensor out = torch::zeros({b, o_.net.num_items});
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto& chunk : recrun::length_bucketed_batches(rows, lengths, o_.batch_size)) {
      histories.clear();
      for (const auto i : chunk) histories.push_back(users.history(i));
      const recrun::PackedSequences packed = recrun::pack_sequences(histories, o_.max_len);
      const torch::Tensor h = net_->forward(packed.tokens);  // [c, T, H]
      const torch::Tensor last =
          h.gather(1, (packed.lengths - 1).view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)}))
              .squeeze(1);
      out.index_copy_(0, torch::tensor(chunk, torch::kInt64), net_->logits(last));
    }
    return out;
  }

  void save(recrun::Archive& out) const override {
    out.write("gru4rec", *net_);
    out.write("gru4rec.optimizer", *optimizer_);
  }
  void load(const recrun::Archive& in) override {
    in.read("gru4rec", *net_);
    if (in.contains("gru4rec.optimizer")) in.read("gru4rec.optimizer", *optimizer_);
  }

 private:
  bool samples_needed() const {
    return o_.negatives == Negatives::sampled || o_.negatives == Negatives::batch_sampled;
  }

  torch::Tensor batch_loss(const recrun::gru4rec::NextItemBatch& next) {
    const torch::Tensor h = net_->forward(next.inputs);
    if (o_.loss == Loss::ce && o_.negatives == Negatives::all) {
      // Over the whole catalogue, ce_chunk positions at a time: never [positions, items] at once.
      return recrun::chunked_cross_entropy(h.index({next.valid}), net_->item_weights(),
                                           net_->bias(), next.targets.index({next.valid}),
                                           o_.ce.ce_chunk);
    }
    torch::Tensor sampled;
    if (samples_needed())  // LibTorch's generator: seeded, checkpointed, per rank
      sampled = torch::multinomial(sampling_, o_.num_negatives, /*replacement=*/true);
    const auto c = net_->candidates(h, next, o_.negatives, sampled);
    return o_.loss == Loss::ce ? recrun::gru4rec::ce_loss(c)
                               : recrun::gru4rec::bpr_max_loss(c, o_.bpreg);
  }

  // The largest tensors of one training step: the scores of the positions against their
  // negatives (in chunks for ce over all items; a few copies through softmax and backward
  // otherwise), and the GRU's activations kept for backward.
  struct StepBytes {
    std::int64_t loss, activations;
  };
  StepBytes step_bytes(std::int64_t positions) const {
    const std::int64_t n = o_.net.num_items, h = o_.net.hidden;
    std::int64_t loss = 0;
    if (o_.negatives == Negatives::all && o_.loss == Loss::ce) {
      loss = recrun::ce_working_bytes(positions, n, h, o_.ce.ce_chunk);
    } else {
      const std::int64_t k = o_.negatives == Negatives::all ? n
                             : (o_.negatives == Negatives::sampled ? 0 : o_.batch_size) +
                                   (samples_needed() ? o_.num_negatives : 0);
      loss = positions * k * 4 * 4;
    }
    return {loss, positions * h * 4 * 10 * o_.net.layers};
  }

 public:
  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    std::int64_t users = 0, longest = 0;
    for (std::int64_t u = 0; u < q.train->num_users(); ++u) {
      const auto n = static_cast<std::int64_t>(q.train->items(u).size());
      if (n < 2) continue;
      ++users;
      longest = std::max(longest, std::min(n, o_.max_len + 1) - 1);
    }
    if (users == 0) return std::nullopt;
    std::int64_t params = 0;
    for (const auto& p : net_->parameters()) params += p.numel();
    const std::int64_t state = recrun::memory::optimizer_state_bytes(params);
    const StepBytes step = step_bytes(std::min(o_.batch_size, users) * longest);
    const std::int64_t scoring =
        q.score_batch * (o_.net.num_items + std::min(o_.max_len, longest) * o_.net.hidden * 4) * 4;
    return recrun::MemoryEstimate{
        .bytes = state + std::max(step.loss + step.activations, scoring),
        .lowered_by = o_.negatives == Negatives::all
                          ? "batch_size, max_len, ce_chunk, or negatives = batch or sampled"
                          : "batch_size, max_len or num_negatives",
        .detail = fmt::format("gradients and Adam state {}, activations {}, loss {}, scoring {}",
                              recrun::format_bytes(state), recrun::format_bytes(step.activations),
                              recrun::format_bytes(step.loss), recrun::format_bytes(scoring))};
  }

 private:
  Gru4RecOptions o_;
  Gru4RecNet net_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  torch::Tensor sampling_;  // unnormalised sampling weights [num_items]
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<Gru4RecOptions>(
      {.name = "gru4rec",
       .summary = "GRU4Rec (Hidasi et al. 2016/2018): GRU over the history, next item at every "
                  "position; ce or bpr_max loss, negatives from the catalogue, the batch or a "
                  "popularity sample"},
      declare, [](const Gru4RecOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<Gru4Rec>(o, env);
      });
}
