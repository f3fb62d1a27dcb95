// concat — concatenates the item and feature embeddings and projects them back to hidden.
#include <recrun/plugin.hpp>

namespace {

class ConcatFusionImpl final : public recrun::FusionImpl {
 public:
  explicit ConcatFusionImpl(const recrun::FusionEnv& env)
      : sources_(static_cast<std::int64_t>(env.sources.size())) {
    proj_ = register_module("proj", torch::nn::Linear(sources_ * env.hidden, env.hidden));
    // LibTorch's default weights keep the output at about the inputs' scale; its default bias
    // (up to 1/sqrt(fan_in)) would dwarf embeddings that start at N(0, 0.02), so it starts at 0.
    torch::NoGradGuard no_grad;
    proj_->bias.zero_();
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& inputs,
                        const torch::Tensor& valid) override {
    TORCH_CHECK(static_cast<std::int64_t>(inputs.size()) == sources_, "concat fusion: expected ",
                sources_, " inputs, got ", inputs.size());
    return proj_(torch::cat(inputs, -1));
  }

 private:
  std::int64_t sources_;
  torch::nn::Linear proj_{nullptr};
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_fusion({.name = "concat",
                       .summary = "concatenate item and feature embeddings, Linear back to hidden",
                       .make = [](const recrun::FusionEnv& env)
                           -> std::shared_ptr<recrun::FusionImpl> {
                         return std::make_shared<ConcatFusionImpl>(env);
                       }});
}
