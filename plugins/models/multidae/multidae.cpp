// multidae — denoising autoencoder for collaborative filtering with a multinomial likelihood
// (Mult-DAE, Liang et al., WWW 2018): the sibling of Mult-VAE without the Gaussian latent.
//
// A user's bag of items is L2-normalised, dropped out (the denoising), encoded by one tanh
// layer and decoded to logits over all items; the loss is the multinomial negative
// log-likelihood of the bag, -sum_i x_i log softmax(logits)_i, averaged over users. L2 on the
// weights comes from the optimizer's weight_decay (the paper's lambda = 0.01 on the squared
// weights is weight_decay = 0.02 with adam). Scoring decodes the clean (undropped) bag.
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

#include <algorithm>

namespace {

struct MultiDaeOptions {
  /// Width of the hidden layer (the paper's [I -> 200 -> I]).
  std::int64_t hidden = 200;
  /// Dropout on the normalised input.
  double dropout = 0.5;
  /// Users per update.
  std::int64_t batch_size = 500;
  /// Optimizer settings (no clipping, as in the paper's code).
  recrun::OptimizerOptions optim{.clip_norm = 0.0};
};

void declare(recrun::Fields<MultiDaeOptions>& f) {
  using O = MultiDaeOptions;
  f.add("hidden", &O::hidden, "width of the tanh hidden layer").range(1, 65536);
  f.add("dropout", &O::dropout, "dropout on the L2-normalised input bag (the denoising)")
      .range(0, 0.99);
  f.add("batch_size", &O::batch_size, "users per update").at_least(1);
  f.nest(&O::optim, recrun::declare_optimizer_fields);
}

class MultiDaeNetImpl : public torch::nn::Module {
 public:
  MultiDaeNetImpl(std::int64_t items, const MultiDaeOptions& o) : dropout_(o.dropout) {
    encoder_ = register_module("encoder", torch::nn::Linear(items, o.hidden));
    decoder_ = register_module("decoder", torch::nn::Linear(o.hidden, items));
    // Xavier-normal weights and N(0, 0.001) biases, the reference implementation's choice.
    for (auto* layer : {&encoder_, &decoder_}) {
      torch::nn::init::xavier_normal_((*layer)->weight);
      torch::nn::init::normal_((*layer)->bias, 0.0, 0.001);
    }
  }

  /// Logits [B, items] of a 0/1 bag [B, items].
  torch::Tensor forward(const torch::Tensor& bag) {
    const torch::Tensor norm = bag.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12);
    const torch::Tensor noisy = recrun::dropout(bag / norm, dropout_, is_training());
    return decoder_(torch::tanh(encoder_(noisy)));
  }

 private:
  double dropout_;
  torch::nn::Linear encoder_{nullptr}, decoder_{nullptr};
};
TORCH_MODULE(MultiDaeNet);

class MultiDae final : public recrun::Model {
 public:
  MultiDae(std::int64_t items, MultiDaeOptions options)
      : options_(std::move(options)), net_(items, options_) {
    optimizer_ = recrun::make_optimizer(options_.optim, net_->parameters());
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const recrun::Interactions& train = ctx.train();
    std::vector<std::int64_t> order;
    order.reserve(static_cast<std::size_t>(train.num_users()));
    for (std::int64_t u = 0; u < train.num_users(); ++u)
      if (!train.items(u).empty()) order.push_back(u);
    std::shuffle(order.begin(), order.end(), ctx.rng());
    net_->train();
    double weighted = 0;
    std::int64_t seen = 0;
    const auto size = static_cast<std::size_t>(options_.batch_size);
    for (std::size_t start = 0; start < order.size(); start += size) {
      if (ctx.out_of_time()) break;
      const std::span<const std::int64_t> batch(order.data() + start,
                                                std::min(size, order.size() - start));
      // Data-parallel: this rank's part of the global batch (all of it when alone).
      const std::span<const std::int64_t> users = ctx.shard(batch);
      torch::Tensor nll;
      if (!users.empty()) {
        const torch::Tensor bag = train.dense_rows(users);
        nll = -(torch::log_softmax(net_->forward(bag), 1) * bag).sum(1).mean();
      }
      const auto n = static_cast<std::int64_t>(batch.size());
      weighted += recrun::step(*optimizer_, options_.optim, nll,
                               static_cast<double>(users.size())) *
                  static_cast<double>(n);
      seen += n;
    }
    return recrun::EpochResult::of(seen ? weighted / static_cast<double>(seen) : 0.0, seen);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    net_->eval();
    return net_->forward(users.bag());
  }

  void save(recrun::Archive& out) const override {
    out.write("multidae", *net_);
    out.write("multidae.optimizer", *optimizer_);
  }

  void load(const recrun::Archive& in) override {
    in.read("multidae", *net_);
    if (in.contains("multidae.optimizer")) in.read("multidae.optimizer", *optimizer_);
  }

 private:
  MultiDaeOptions options_;
  MultiDaeNet net_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<MultiDaeOptions>(
      {.name = "multidae",
       .summary = "Mult-DAE (Liang et al. 2018): denoising autoencoder over users' item bags, "
                  "multinomial likelihood"},
      declare, [](const MultiDaeOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<MultiDae>(env.dataset.num_items(), o);
      });
}
