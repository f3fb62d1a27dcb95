#include "recrun/optim.hpp"

#include <fmt/format.h>

#include <cmath>

#include "recrun/error.hpp"

namespace recrun {

void declare_optimizer_fields(Fields<OptimizerOptions>& f) {
  f.choice("optimizer", &OptimizerOptions::kind,
           {{"adam", OptimizerKind::adam}, {"adamw", OptimizerKind::adamw},
            {"sgd", OptimizerKind::sgd}},
           "optimizer: adam, adamw or sgd (momentum 0.9)");
  f.add("lr", &OptimizerOptions::lr, "learning rate").range(1e-8, 10.0);
  f.add("weight_decay", &OptimizerOptions::weight_decay, "L2 penalty (decoupled for adamw)")
      .range(0, 1);
  f.add("clip_norm", &OptimizerOptions::clip_norm, "max global gradient norm; 0 disables clipping")
      .at_least(0);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o,
                                                        std::vector<torch::Tensor> parameters) {
  switch (o.kind) {
    case OptimizerKind::adam:
      return std::make_unique<torch::optim::Adam>(
          std::move(parameters), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
    case OptimizerKind::adamw:
      return std::make_unique<torch::optim::AdamW>(
          std::move(parameters), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
    case OptimizerKind::sgd:
      return std::make_unique<torch::optim::SGD>(
          std::move(parameters),
          torch::optim::SGDOptions(o.lr).momentum(0.9).weight_decay(o.weight_decay));
  }
  throw ParamError("unknown optimizer kind");
}

double step(torch::optim::Optimizer& optimizer, const OptimizerOptions& o,
            const torch::Tensor& loss) {
  const double value = loss.item<double>();
  if (!std::isfinite(value))
    throw Error(fmt::format("non-finite loss ({}): training diverged; lower lr or raise clip_norm",
                            value));
  optimizer.zero_grad();
  loss.backward();
  if (o.clip_norm > 0) {
    std::vector<torch::Tensor> params;
    for (const auto& group : optimizer.param_groups())
      for (const auto& p : group.params()) params.push_back(p);
    torch::nn::utils::clip_grad_norm_(params, o.clip_norm);
  }
  optimizer.step();
  return value;
}

std::vector<ParamSpec> concat(std::vector<ParamSpec> base, const std::vector<ParamSpec>& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

}  // namespace recrun
