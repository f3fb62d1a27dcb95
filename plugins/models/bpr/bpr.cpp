// bpr — matrix factorisation trained with Bayesian Personalised Ranking (Rendle, Freudenthaler,
// Gantner & Schmidt-Thieme, UAI 2009).
//
// x_ui = w_u . h_i + b_i. Each epoch visits every distinct (user, item) pair of the training
// data once, in an order shuffled by the run's generator, and pairs it with `num_negatives`
// items drawn uniformly among those the user has not consumed; the loss of a triple is
// -log sigmoid(x_ui - x_uj) + reg (|w_u|^2 + |h_i|^2 + |h_j|^2 + b_i^2 + b_j^2) (the paper's
// lambda ||Theta||^2 on the parameters the triple touches), averaged over a batch and minimised
// with the SDK's optimizer (Adam by default; the paper's plain SGD is optimizer = sgd).
//
// Triples are drawn from TrainContext::rng(), which the trainer checkpoints, so a resumed run
// continues exactly; in a data-parallel run every rank draws the same global batch and trains on
// its part. Scoring is w_u . H^T + b for the user's id: users are embedded, not folded in.
#include <fmt/format.h>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>

#include <cmath>
#include <limits>
#include <numeric>

#include "bpr.hpp"

namespace {

struct BprOptions {
  /// Embedding dimension.
  std::int64_t dim = 64;
  /// lambda of the L2 term on the touched parameters.
  double reg = 1e-5;
  /// Negatives drawn per positive pair.
  std::int64_t num_negatives = 1;
  /// Pairs per update.
  std::int64_t batch_size = 1024;
  /// Item bias b_i.
  bool item_bias = true;
  /// Embeddings start at N(0, init_std^2).
  double init_std = 0.1;
  recrun::OptimizerOptions optimizer{.lr = 1e-3, .clip_norm = 0.0};
};

void declare(recrun::Fields<BprOptions>& f) {
  f.add("dim", &BprOptions::dim, "embedding dimension (tuned 8-512 in the literature)")
      .range(1, 4096);
  f.add("reg", &BprOptions::reg,
        "lambda: L2 on each triple's user, item and negative parameters (log scale, 1e-6 to 1)")
      .range(0, 10);
  f.add("num_negatives", &BprOptions::num_negatives,
        "negatives per positive pair, drawn uniformly among the user's unconsumed items")
      .range(1, 1000);
  f.add("batch_size", &BprOptions::batch_size, "positive pairs per update").range(1, 1 << 22);
  f.add("item_bias", &BprOptions::item_bias, "add a learned item bias b_i to every score");
  f.add("init_std", &BprOptions::init_std, "embeddings start at N(0, init_std^2)").range(0, 10);
  f.nest(&BprOptions::optimizer, recrun::declare_optimizer_fields);
}

class Bpr final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  Bpr(BprOptions o, const recrun::ModelEnv& env) : o_(o) {
    const std::int64_t m = env.dataset.num_users(), n = env.dataset.num_items();
    if (n < 2) throw recrun::DataError("bpr: the data set needs at least two items");
    users_ = (torch::randn({m, o_.dim}) * o_.init_std).requires_grad_();
    items_ = (torch::randn({n, o_.dim}) * o_.init_std).requires_grad_();
    bias_ = torch::zeros({n}).requires_grad_(o_.item_bias);
    std::vector<torch::Tensor> params{users_, items_};
    if (o_.item_bias) params.push_back(bias_);
    optimizer_ = recrun::make_optimizer(o_.optimizer, params);
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const recrun::Interactions& train = ctx.train();
    check_sizes(train.num_users(), train.num_items());
    if (positives_.offsets.size() != static_cast<std::size_t>(train.num_users()) + 1) {
      positives_ = recrun::bpr::Positives::of(train.num_users(),
                                              [&](std::int64_t u) { return train.items(u); });
    }
    std::vector<std::int64_t> order(static_cast<std::size_t>(positives_.pairs()));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), ctx.rng());
    double loss_sum = 0;
    std::int64_t seen = 0;
    for (std::size_t begin = 0; begin < order.size(); begin += o_.batch_size) {
      if (ctx.out_of_time()) break;
      const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(o_.batch_size));
      const std::span<const std::int64_t> batch(order.data() + begin, end - begin);
      // The global batch's triples, the same on every rank; this rank trains on its rows.
      const auto t = recrun::bpr::draw_triples(positives_, batch, o_.num_negatives,
                                               train.num_items(), ctx.rng());
      const auto [lo, hi] = ctx.shard_range(static_cast<std::int64_t>(batch.size()));
      torch::Tensor loss;
      if (hi > lo) loss = batch_loss(t.users.slice(0, lo, hi), t.positives.slice(0, lo, hi),
                                     t.negatives.slice(0, lo, hi));
      const double l = recrun::step(*optimizer_, o_.optimizer, loss, static_cast<double>(hi - lo));
      loss_sum += l * static_cast<double>(batch.size());
      seen += static_cast<std::int64_t>(batch.size());
    }
    const double mean = seen > 0 ? loss_sum / static_cast<double>(seen)
                                 : std::numeric_limits<double>::quiet_NaN();
    return recrun::EpochResult::of(mean, seen);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = torch::tensor(users.users(), torch::kInt64);
    torch::Tensor s = users_.index_select(0, ids).mm(items_.t());
    if (o_.item_bias) s += bias_.unsqueeze(0);
    return s;
  }

  // Gradients and Adam's moments of every parameter, the pair lists and order, one batch's
  // gathered embeddings (forward and backward), or a batch of scores.
  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    const std::int64_t params = users_.numel() + items_.numel() + bias_.numel();
    const std::int64_t state = recrun::memory::optimizer_state_bytes(params);
    const std::int64_t lists = q.train->size() * (4 + 8) + (q.train->num_users() + 1) * 8;
    const std::int64_t batch = o_.batch_size * (2 + o_.num_negatives) * o_.dim * 4 * 4;
    const std::int64_t scoring = q.score_batch * q.train->num_items() * 4;
    return recrun::MemoryEstimate{
        .bytes = state + lists + std::max(batch, scoring),
        .lowered_by = "dim, batch_size or num_negatives",
        .detail = fmt::format("gradients and Adam state {}, pair lists {}, batch {}, scoring {}",
                              recrun::format_bytes(state), recrun::format_bytes(lists),
                              recrun::format_bytes(batch), recrun::format_bytes(scoring))};
  }

  void save(recrun::Archive& out) const override {
    out.write("user_embedding", users_);
    out.write("item_embedding", items_);
    out.write("item_bias", bias_);
    out.write("optimizer", *optimizer_);
  }
  void load(const recrun::Archive& in) override {
    torch::NoGradGuard no_grad;
    copy_checked(users_, in.read("user_embedding"), "user_embedding");
    copy_checked(items_, in.read("item_embedding"), "item_embedding");
    copy_checked(bias_, in.read("item_bias"), "item_bias");
    if (in.contains("optimizer")) in.read("optimizer", *optimizer_);
  }

 private:
  // Mean BPR loss of the triples (users [B], positives [B], negatives [B, k]).
  torch::Tensor batch_loss(const torch::Tensor& u, const torch::Tensor& i,
                           const torch::Tensor& j) const {
    const torch::Tensor wu = users_.index_select(0, u);            // [B, d]
    const torch::Tensor hi = items_.index_select(0, i);            // [B, d]
    const torch::Tensor hj = items_.index_select(0, j.reshape(-1)).view({j.size(0), j.size(1), -1});
    torch::Tensor pos = (wu * hi).sum(1);                           // [B]
    torch::Tensor neg = torch::bmm(hj, wu.unsqueeze(2)).squeeze(2); // [B, k]
    torch::Tensor sq = wu.square().sum(1) + hi.square().sum(1) + hj.square().sum(2).mean(1);
    if (o_.item_bias) {
      const torch::Tensor bi = bias_.index_select(0, i);
      const torch::Tensor bj = bias_.index_select(0, j.reshape(-1)).view(j.sizes());
      pos = pos + bi;
      neg = neg + bj;
      sq = sq + bi.square() + bj.square().mean(1);
    }
    return recrun::bpr::bpr_loss(pos, neg, sq, o_.reg);
  }

  void check_sizes(std::int64_t m, std::int64_t n) const {
    if (users_.size(0) != m || items_.size(0) != n)
      throw recrun::Error(fmt::format("bpr: the model was built for {} users and {} items, the "
                                      "training data has {} and {}",
                                      users_.size(0), items_.size(0), m, n));
  }

  static void copy_checked(torch::Tensor& into, const torch::Tensor& from, const char* key) {
    if (!into.sizes().equals(from.sizes()))
      throw recrun::Error(fmt::format("bpr: checkpoint tensor '{}' has shape {}, the model {}",
                                      key, fmt::join(from.sizes(), "x"),
                                      fmt::join(into.sizes(), "x")));
    into.copy_(from);
  }

  BprOptions o_;
  torch::Tensor users_, items_, bias_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  recrun::bpr::Positives positives_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<BprOptions>(
      {.name = "bpr",
       .summary = "BPR-MF (Rendle et al. 2009): matrix factorisation, pairwise loss with sampled "
                  "negatives, trained by epochs"},
      declare, [](const BprOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<Bpr>(o, env);
      });
}
