// multivae — variational autoencoder for collaborative filtering (Liang et al., WWW 2018).
//
// A user's bag of items, L2-normalised and dropped out, is encoded to a Gaussian latent; the
// decoder's multinomial log-likelihood over all items is the reconstruction term, and the KL
// term is annealed linearly from 0 to `anneal_cap` over `total_anneal_steps` updates, as in the
// paper. Scoring decodes the posterior mean.
#include <recrun/plugin.hpp>

#include <algorithm>
#include <numeric>

namespace {

struct MultiVaeOptions {
  /// Width of the encoder's and decoder's hidden layer.
  std::int64_t hidden = 600;
  /// Latent dimension.
  std::int64_t latent = 200;
  /// Input dropout.
  double dropout = 0.5;
  /// Final KL weight.
  double anneal_cap = 0.2;
  /// Updates over which the KL weight rises from 0 to anneal_cap.
  std::int64_t total_anneal_steps = 200000;
  /// Users per update.
  std::int64_t batch_size = 500;
  /// Optimizer settings (no gradient clipping by default, as in the paper's code).
  recrun::OptimizerOptions optim{.clip_norm = 0.0};
};

void declare(recrun::Fields<MultiVaeOptions>& f) {
  using O = MultiVaeOptions;
  f.add("hidden", &O::hidden, "encoder/decoder hidden width").range(1, 65536);
  f.add("latent", &O::latent, "latent dimension").range(1, 65536);
  f.add("dropout", &O::dropout, "input dropout").range(0, 0.99);
  f.add("anneal_cap", &O::anneal_cap, "final KL weight (beta)").range(0, 10);
  f.add("total_anneal_steps", &O::total_anneal_steps,
        "updates over which beta rises from 0 to anneal_cap; 0 = at once")
      .at_least(0);
  f.add("batch_size", &O::batch_size, "users per update").at_least(1);
  f.nest(&O::optim, recrun::declare_optimizer_fields);
}

class MultiVaeNetImpl : public torch::nn::Module {
 public:
  MultiVaeNetImpl(std::int64_t items, const MultiVaeOptions& o) : latent_(o.latent), dropout_(o.dropout) {
    enc1_ = register_module("enc1", torch::nn::Linear(items, o.hidden));
    enc2_ = register_module("enc2", torch::nn::Linear(o.hidden, 2 * o.latent));
    dec1_ = register_module("dec1", torch::nn::Linear(o.latent, o.hidden));
    dec2_ = register_module("dec2", torch::nn::Linear(o.hidden, items));
    // Xavier weights and small normal biases, as in the reference implementation.
    for (auto* l : {&enc1_, &enc2_, &dec1_, &dec2_}) {
      torch::nn::init::xavier_normal_((*l)->weight);
      torch::nn::init::normal_((*l)->bias, 0.0, 0.001);
    }
  }

  /// Returns (logits, mu, logvar) for a bag [B, items].
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(torch::Tensor bag) {
    torch::Tensor h = torch::nn::functional::normalize(
        bag, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
    h = torch::dropout(h, dropout_, is_training());
    h = torch::tanh(enc1_(h));
    const torch::Tensor stats = enc2_(h);
    const torch::Tensor mu = stats.narrow(1, 0, latent_);
    const torch::Tensor logvar = stats.narrow(1, latent_, latent_);
    torch::Tensor z = mu;
    if (is_training()) z = mu + torch::randn_like(mu) * torch::exp(0.5 * logvar);
    return {dec2_(torch::tanh(dec1_(z))), mu, logvar};
  }

 private:
  std::int64_t latent_;
  double dropout_;
  torch::nn::Linear enc1_{nullptr}, enc2_{nullptr}, dec1_{nullptr}, dec2_{nullptr};
};
TORCH_MODULE(MultiVaeNet);

class MultiVae final : public recrun::Model {
 public:
  MultiVae(std::int64_t items, MultiVaeOptions options)
      : options_(std::move(options)), net_(items, options_) {
    optimizer_ = recrun::make_optimizer(options_.optim, net_->parameters());
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const recrun::Interactions& train = ctx.train();
    std::vector<std::int64_t> users;
    for (std::int64_t u = 0; u < train.num_users(); ++u)
      if (!train.items(u).empty()) users.push_back(u);
    std::shuffle(users.begin(), users.end(), ctx.rng());
    net_->train();
    double loss_sum = 0;
    std::int64_t batches = 0, examples = 0;
    for (std::size_t begin = 0; begin < users.size(); begin += options_.batch_size) {
      if (ctx.out_of_time()) break;
      const std::size_t end = std::min(users.size(), begin + options_.batch_size);
      const std::span<const std::int64_t> batch(users.data() + begin, end - begin);
      const double beta =
          options_.total_anneal_steps > 0
              ? std::min(options_.anneal_cap,
                         static_cast<double>(updates_) / options_.total_anneal_steps)
              : options_.anneal_cap;
      // Data-parallel: this rank's part of the global batch (all of it when alone).
      const std::span<const std::int64_t> mine = ctx.shard(batch);
      torch::Tensor loss;
      if (!mine.empty()) {
        const torch::Tensor bag = train.dense_rows(mine);
        auto [logits, mu, logvar] = net_->forward(bag);
        const torch::Tensor nll = -(torch::log_softmax(logits, 1) * bag).sum(1).mean();
        const torch::Tensor kl =
            (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean();
        loss = nll + beta * kl;
      }
      loss_sum += recrun::step(*optimizer_, options_.optim, loss, static_cast<double>(mine.size()));
      ++updates_;
      ++batches;
      examples += static_cast<std::int64_t>(batch.size());
      ctx.log("beta", beta);
    }
    return recrun::EpochResult::of(batches ? loss_sum / batches : 0.0, examples);
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    torch::NoGradGuard no_grad;
    net_->eval();
    return std::get<0>(net_->forward(users.bag()));
  }

  void save(recrun::Archive& out) const override {
    out.write("net", *net_);
    out.write("optimizer", *optimizer_);
    out.write("updates", torch::tensor(updates_));
  }

  void load(const recrun::Archive& in) override {
    in.read("net", *net_);
    if (in.contains("optimizer")) in.read("optimizer", *optimizer_);
    updates_ = in.read("updates").item<std::int64_t>();
  }

 private:
  MultiVaeOptions options_;
  MultiVaeNet net_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::int64_t updates_ = 0;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<MultiVaeOptions>(
      {.name = "multivae",
       .summary = "Mult-VAE (Liang et al. 2018): variational autoencoder over users' item bags"},
      declare, [](const MultiVaeOptions& o, const recrun::ModelEnv& env) {
        return std::make_unique<MultiVae>(env.dataset.num_items(), o);
      });
}
