// gate — a softmax over Linear(concat(sources)) gives each position one weight per source
// (item, then each feature); the output is the weighted sum of the sources.
//
// While not training (i.e. during validation scoring) it accumulates the mean weight of each
// source over real positions; diagnostics() reports them as gate/<source> (the trainer logs
// them as val_gate/<source>) and starts afresh. They say how much the model leans on each
// feature.
#include <recrun/plugin.hpp>

namespace {

class GateFusionImpl final : public recrun::FusionImpl {
 public:
  explicit GateFusionImpl(const recrun::FusionEnv& env)
      : sources_(env.sources), sums_(env.sources.size(), 0.0) {
    const auto n = static_cast<std::int64_t>(sources_.size());
    gate_ = register_module("gate", torch::nn::Linear(n * env.hidden, n));
    // Start with (almost) equal weights: no source is preferred before training says so.
    torch::NoGradGuard no_grad;
    gate_->bias.zero_();
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& inputs,
                        const torch::Tensor& valid) override {
    TORCH_CHECK(inputs.size() == sources_.size(), "gate fusion: expected ", sources_.size(),
                " inputs, got ", inputs.size());
    const torch::Tensor weights = torch::softmax(gate_(torch::cat(inputs, -1)), -1);  // [.., S]
    torch::Tensor out = inputs[0] * weights.select(-1, 0).unsqueeze(-1);
    for (std::size_t i = 1; i < inputs.size(); ++i)
      out = out + inputs[i] * weights.select(-1, static_cast<std::int64_t>(i)).unsqueeze(-1);
    if (!is_training()) accumulate(weights, valid);
    return out;
  }

  std::map<std::string, double> diagnostics() override {
    std::map<std::string, double> out;
    if (count_ > 0)
      for (std::size_t i = 0; i < sources_.size(); ++i)
        out["gate/" + sources_[i]] = sums_[i] / static_cast<double>(count_);
    std::fill(sums_.begin(), sums_.end(), 0.0);
    count_ = 0;
    return out;
  }

 private:
  void accumulate(const torch::Tensor& weights, const torch::Tensor& valid) {
    torch::NoGradGuard no_grad;
    const auto n = static_cast<std::int64_t>(sources_.size());
    torch::Tensor w = weights.detach().reshape({-1, n});
    if (valid.defined()) w = w.index_select(0, valid.reshape({-1}).nonzero().squeeze(1));
    const torch::Tensor sums = w.sum(0, /*keepdim=*/false, torch::kDouble).contiguous();
    const double* s = sums.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) sums_[i] += s[i];
    count_ += w.size(0);
  }

  std::vector<std::string> sources_;
  std::vector<double> sums_;
  std::int64_t count_ = 0;
  torch::nn::Linear gate_{nullptr};
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_fusion({.name = "gate",
                       .summary = "softmax gate: one learned weight per source and position; "
                                  "mean weights reported as val_gate/<source>",
                       .make = [](const recrun::FusionEnv& env)
                           -> std::shared_ptr<recrun::FusionImpl> {
                         return std::make_shared<GateFusionImpl>(env);
                       }});
}
