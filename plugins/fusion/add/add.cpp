// add — the element-wise sum of the item and feature embeddings (no parameters).
#include <recrun/plugin.hpp>

namespace {

class AddFusionImpl final : public recrun::FusionImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs,
                        const torch::Tensor& valid) override {
    TORCH_CHECK(!inputs.empty(), "add fusion: no inputs");
    torch::Tensor sum = inputs[0];
    for (std::size_t i = 1; i < inputs.size(); ++i) sum = sum + inputs[i];
    return sum;
  }
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_fusion({.name = "add",
                       .summary = "element-wise sum of item and feature embeddings",
                       .make = [](const recrun::FusionEnv&) -> std::shared_ptr<recrun::FusionImpl> {
                         return std::make_shared<AddFusionImpl>();
                       }});
}
