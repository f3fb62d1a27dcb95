// lightgcn — LightGCN (He, Deng, Wang, Li, Zhang & Wang, SIGIR 2020): linear graph convolution
// over the user-item graph, trained with the BPR loss.
//
// Users and items are the m + n nodes of a bipartite graph with an edge for every distinct
// (user, item) pair of the training data; A_hat = D^-1/2 A D^-1/2 (D the degrees). From the
// embeddings E0 [m + n, d] (the only parameters), E_k = A_hat E_{k-1}, and the representation is
// the mean (E0 + E1 + ... + E_K) / (K + 1). A user's score for an item is the dot product of
// their representations. Training draws (user, positive, negative) triples as BPR-MF does
// (negatives uniform among the user's unconsumed items, from the run's generator) and minimises
// -log sigmoid(x_ui - x_uj) + reg (|e0_u|^2 + |e0_i|^2 + |e0_j|^2) / 2, averaged over the batch,
// the paper's L2 on the layer-0 embeddings.
//
// Propagation is a sparse product: the graph is held as CSR (2 x pairs entries), each product
// walks its rows in parallel on LibTorch's threads (at::parallel_for), and its backward is the
// same product (A_hat is symmetric), so no dense m + n matrix is formed. Every update propagates
// the whole graph once forward and once backward, K products each.
#include <fmt/format.h>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "../bpr/bpr.hpp"

namespace {

struct LightGcnOptions {
  /// Embedding dimension.
  std::int64_t dim = 64;
  /// Propagation layers K.
  std::int64_t layers = 3;
  /// L2 on the layer-0 embeddings of each triple.
  double reg = 1e-4;
  /// Triples per update.
  std::int64_t batch_size = 2048;
  /// E0 starts at N(0, init_std^2).
  double init_std = 0.1;
  recrun::OptimizerOptions optimizer{.lr = 1e-3, .clip_norm = 0.0};
};

void declare(recrun::Fields<LightGcnOptions>& f) {
  f.add("dim", &LightGcnOptions::dim, "embedding dimension (the paper fixes 64)").range(1, 4096);
  f.add("layers", &LightGcnOptions::layers, "propagation layers K (the paper tunes 1-4)")
      .range(0, 8);
  f.add("reg", &LightGcnOptions::reg,
        "L2 on the layer-0 embeddings of each triple (the paper tunes 1e-6 to 1e-2)")
      .range(0, 10);
  f.add("batch_size", &LightGcnOptions::batch_size, "triples per update (the paper: 2048)")
      .range(1, 1 << 22);
  f.add("init_std", &LightGcnOptions::init_std, "E0 starts at N(0, init_std^2)").range(0, 10);
  f.nest(&LightGcnOptions::optimizer, recrun::declare_optimizer_fields);
}

/// A_hat as CSR over the m + n nodes (users first).
struct Graph {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> cols;
  std::vector<float> values;
  std::int64_t nodes() const { return static_cast<std::int64_t>(offsets.size()) - 1; }
};

Graph normalised_graph(const recrun::bpr::Positives& p, std::int64_t users, std::int64_t items) {
  std::vector<std::int64_t> degree(static_cast<std::size_t>(users + items), 0);
  for (std::int64_t u = 0; u < users; ++u) degree[u] = p.offsets[u + 1] - p.offsets[u];
  for (const auto i : p.items) ++degree[users + i];
  std::vector<std::vector<std::int32_t>> item_users(static_cast<std::size_t>(items));
  for (std::int64_t u = 0; u < users; ++u)
    for (std::int64_t q = p.offsets[u]; q < p.offsets[u + 1]; ++q)
      item_users[p.items[q]].push_back(static_cast<std::int32_t>(u));
  Graph g;
  const auto weight = [&](std::int64_t a, std::int64_t b) {
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(degree[a]) * degree[b]));
  };
  for (std::int64_t u = 0; u < users; ++u) {
    for (std::int64_t q = p.offsets[u]; q < p.offsets[u + 1]; ++q) {
      g.cols.push_back(static_cast<std::int32_t>(users + p.items[q]));
      g.values.push_back(weight(u, users + p.items[q]));
    }
    g.offsets.push_back(static_cast<std::int64_t>(g.cols.size()));
  }
  for (std::int64_t i = 0; i < items; ++i) {
    for (const auto u : item_users[i]) {
      g.cols.push_back(u);
      g.values.push_back(weight(users + i, u));
    }
    g.offsets.push_back(static_cast<std::int64_t>(g.cols.size()));
  }
  return g;
}

/// A_hat x for x [nodes, d] (float32), rows in parallel.
torch::Tensor propagate(const Graph& g, const torch::Tensor& x) {
  const torch::Tensor in = x.contiguous();
  const std::int64_t d = in.size(1);
  torch::Tensor out = torch::zeros_like(in);
  const float* xp = in.data_ptr<float>();
  float* yp = out.data_ptr<float>();
  at::parallel_for(0, g.nodes(), 256, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      float* y = yp + r * d;
      for (std::int64_t e = g.offsets[r]; e < g.offsets[r + 1]; ++e) {
        const float v = g.values[e];
        const float* xr = xp + static_cast<std::int64_t>(g.cols[e]) * d;
        for (std::int64_t c = 0; c < d; ++c) y[c] += v * xr[c];
      }
    }
  });
  return out;
}

/// y = A_hat x with gradient A_hat^T g = A_hat g.
struct Propagate : torch::autograd::Function<Propagate> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const Graph* g) {
    ctx->saved_data["graph"] = reinterpret_cast<std::int64_t>(g);
    return propagate(*g, x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad) {
    const auto* g = reinterpret_cast<const Graph*>(ctx->saved_data["graph"].toInt());
    return {propagate(*g, grad[0]), torch::Tensor()};
  }
};

class LightGcn final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  LightGcn(LightGcnOptions o, const recrun::ModelEnv& env)
      : o_(o), users_(env.dataset.num_users()), items_(env.dataset.num_items()) {
    if (items_ < 2) throw recrun::DataError("lightgcn: the data set needs at least two items");
    e0_ = (torch::randn({users_ + items_, o_.dim}) * o_.init_std).requires_grad_();
    optimizer_ = recrun::make_optimizer(o_.optimizer, {e0_});
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const recrun::Interactions& train = ctx.train();
    if (train.num_users() != users_ || train.num_items() != items_)
      throw recrun::Error(fmt::format("lightgcn: the model was built for {} users and {} items, "
                                      "the training data has {} and {}",
                                      users_, items_, train.num_users(), train.num_items()));
    if (graph_.nodes() != users_ + items_) {
      positives_ = recrun::bpr::Positives::of(users_, [&](std::int64_t u) { return train.items(u); });
      graph_ = normalised_graph(positives_, users_, items_);
    }
    final_ = torch::Tensor();
    std::vector<std::int64_t> order(static_cast<std::size_t>(positives_.pairs()));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), ctx.rng());
    double loss_sum = 0;
    std::int64_t seen = 0;
    for (std::size_t begin = 0; begin < order.size(); begin += o_.batch_size) {
      if (ctx.out_of_time()) break;
      const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(o_.batch_size));
      const std::span<const std::int64_t> batch(order.data() + begin, end - begin);
      const auto t = recrun::bpr::draw_triples(positives_, batch, 1, items_, ctx.rng());
      const auto [lo, hi] = ctx.shard_range(static_cast<std::int64_t>(batch.size()));
      torch::Tensor loss;
      if (hi > lo)
        loss = batch_loss(t.users.slice(0, lo, hi), t.positives.slice(0, lo, hi),
                          t.negatives.slice(0, lo, hi).squeeze(1));
      loss_sum += recrun::step(*optimizer_, o_.optimizer, loss, static_cast<double>(hi - lo)) *
                  static_cast<double>(batch.size());
      seen += static_cast<std::int64_t>(batch.size());
    }
    return recrun::EpochResult::of(
        seen > 0 ? loss_sum / static_cast<double>(seen) : std::numeric_limits<double>::quiet_NaN(),
        seen);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor& e = representation();
    const torch::Tensor ids = torch::tensor(users.users(), torch::kInt64);
    return e.index_select(0, ids).mm(e.slice(0, users_).t());
  }

  // Adam's state of E0; per update the K layer outputs and their running sum kept for backward
  // and as many gradients in flight (all [users + items, dim]); the graph (both directions) and
  // the pair lists; at scoring the representation and a batch of scores.
  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    const std::int64_t table = e0_.numel() * 4;
    const std::int64_t state = recrun::memory::optimizer_state_bytes(e0_.numel());
    const std::int64_t layers = table * (2 * o_.layers + 2) * 2;
    const std::int64_t graph = q.train->size() * 2 * (4 + 4) + (users_ + items_ + 1) * 8 +
                               q.train->size() * (4 + 8) + (users_ + 1) * 8;
    const std::int64_t scoring = table + q.score_batch * items_ * 4;
    return recrun::MemoryEstimate{
        .bytes = state + graph + std::max(layers, scoring),
        .lowered_by = "dim or layers (each layer keeps a (users + items) x dim table)",
        .detail = fmt::format("Adam state {}, graph and pairs {}, propagation {}, scoring {}",
                              recrun::format_bytes(state), recrun::format_bytes(graph),
                              recrun::format_bytes(layers), recrun::format_bytes(scoring))};
  }

  void save(recrun::Archive& out) const override {
    out.write("embedding", e0_);
    out.write("optimizer", *optimizer_);
    // An untrained model (no graph yet) has no representation to keep.
    if (final_.defined() || graph_.nodes() == users_ + items_)
      out.write("representation", representation());
  }
  void load(const recrun::Archive& in) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor e0 = in.read("embedding");
    const torch::Tensor rep =
        in.contains("representation") ? in.read("representation") : torch::Tensor();
    if (!e0.sizes().equals(e0_.sizes()) || (rep.defined() && !rep.sizes().equals(e0_.sizes())))
      throw recrun::Error(fmt::format(
          "lightgcn: checkpoint embeddings are {}x{}, the model's {}x{} (users + items, dim)",
          e0.size(0), e0.dim() > 1 ? e0.size(1) : 0, e0_.size(0), e0_.size(1)));
    e0_.copy_(e0);
    final_ = rep.defined() ? rep.to(torch::kFloat32).contiguous() : torch::Tensor();
    if (in.contains("optimizer")) in.read("optimizer", *optimizer_);
  }

 private:
  // (E0 + A_hat E0 + ... + A_hat^K E0) / (K + 1), differentiable in E0.
  torch::Tensor forward() const {
    torch::Tensor layer = e0_, sum = e0_;
    for (std::int64_t k = 0; k < o_.layers; ++k) {
      layer = Propagate::apply(layer, &graph_);
      sum = sum + layer;
    }
    return sum / static_cast<double>(o_.layers + 1);
  }

  // The representation for scoring: computed once after training, or read from a checkpoint.
  const torch::Tensor& representation() const {
    if (!final_.defined()) {
      if (graph_.nodes() != users_ + items_)
        throw recrun::Error("lightgcn: neither trained nor loaded: nothing to score with");
      torch::NoGradGuard no_grad;
      final_ = forward().detach().contiguous();
    }
    return final_;
  }

  torch::Tensor batch_loss(const torch::Tensor& u, const torch::Tensor& i,
                           const torch::Tensor& j) const {
    const torch::Tensor e = forward();
    const torch::Tensor eu = e.index_select(0, u), ei = e.index_select(0, i + users_),
                        ej = e.index_select(0, j + users_);
    const torch::Tensor pos = (eu * ei).sum(1), neg = (eu * ej).sum(1);
    const torch::Tensor sq = (e0_.index_select(0, u).square().sum(1) +
                              e0_.index_select(0, i + users_).square().sum(1) +
                              e0_.index_select(0, j + users_).square().sum(1)) / 2;
    return recrun::bpr::bpr_loss(pos, neg, sq, o_.reg);
  }

  LightGcnOptions o_;
  std::int64_t users_, items_;
  torch::Tensor e0_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  recrun::bpr::Positives positives_;
  Graph graph_;
  mutable torch::Tensor final_;  // the representation, [users + items, dim]
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<LightGcnOptions>(
      {.name = "lightgcn",
       .summary = "LightGCN (He et al. 2020): linear propagation over the user-item graph, mean of "
                  "the layers, BPR loss; sparse"},
      declare, [](const LightGcnOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<LightGcn>(o, env);
      });
}
