#include "recrun/optim.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "recrun/distributed.hpp"

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

namespace {

std::vector<torch::Tensor> parameters_of(torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) params.push_back(p);
  return params;
}

Error non_finite(double value) {
  return Error(fmt::format(
      "non-finite loss ({}): training diverged; lower lr or raise clip_norm", value));
}

void clip_and_update(torch::optim::Optimizer& optimizer, const OptimizerOptions& o) {
  if (o.clip_norm > 0) torch::nn::utils::clip_grad_norm_(parameters_of(optimizer), o.clip_norm);
  optimizer.step();
}

// One all-reduce of [w * grad of every parameter..., whether each had a gradient..., w, w * loss,
// non-finite]: the weighted mean gradient, whether any rank touched each parameter, and an
// agreed loss and divergence verdict. Parameters no rank touched keep no gradient, as alone.
double distributed_step(Collective& group, torch::optim::Optimizer& optimizer,
                        const OptimizerOptions& o, const torch::Tensor& loss, double weight) {
  const std::vector<torch::Tensor> params = parameters_of(optimizer);
  optimizer.zero_grad();
  double value = 0;
  bool finite = true;
  const bool contributes = loss.defined() && weight > 0;
  if (contributes) {
    value = loss.item<double>();
    finite = std::isfinite(value);
    if (finite) loss.backward();
  }
  std::int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  const auto n = static_cast<std::int64_t>(params.size());
  torch::Tensor buffer = torch::zeros({numel + n + 3}, torch::kFloat32);
  float* flags = buffer.data_ptr<float>() + numel;
  std::int64_t offset = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const torch::Tensor& p = params[i];
    const torch::Tensor& g = p.grad();
    if (contributes && finite && g.defined()) {
      buffer.narrow(0, offset, p.numel()).copy_(g.reshape({-1}).to(torch::kFloat32)).mul_(weight);
      flags[i] = 1;
    }
    offset += p.numel();
  }
  if (contributes) {
    flags[n] = static_cast<float>(weight);
    flags[n + 1] = finite ? static_cast<float>(weight * value) : 0.0f;
    flags[n + 2] = finite ? 0.0f : 1.0f;
  }
  group.all_reduce_sum(buffer);
  flags = buffer.data_ptr<float>() + numel;
  const double total_weight = flags[n];
  if (flags[n + 2] > 0)
    throw non_finite(finite ? std::numeric_limits<double>::quiet_NaN() : value);
  if (!(total_weight > 0)) return std::numeric_limits<double>::quiet_NaN();  // nothing anywhere
  offset = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    torch::Tensor p = params[i];
    if (flags[i] > 0) {
      const torch::Tensor g = buffer.narrow(0, offset, p.numel()).view(p.sizes()).div(total_weight);
      p.mutable_grad() = g.to(p.scalar_type());
    } else {
      p.mutable_grad() = torch::Tensor();
    }
    offset += p.numel();
  }
  clip_and_update(optimizer, o);
  return flags[n + 1] / total_weight;
}

}  // namespace

double step(torch::optim::Optimizer& optimizer, const OptimizerOptions& o,
            const torch::Tensor& loss, double weight) {
  if (Collective* group = collective(); group && group->world_size() > 1)
    return distributed_step(*group, optimizer, o, loss, weight);
  if (!loss.defined()) return std::numeric_limits<double>::quiet_NaN();
  const double value = loss.item<double>();
  if (!std::isfinite(value)) throw non_finite(value);
  optimizer.zero_grad();
  loss.backward();
  clip_and_update(optimizer, o);
  return value;
}

std::vector<ParamSpec> concat(std::vector<ParamSpec> base, const std::vector<ParamSpec>& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

}  // namespace recrun
