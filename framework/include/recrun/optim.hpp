// recrun/optim.hpp — optimizer settings shared by every gradient-trained model.
//
// Models add optimizer_params() to their schema, read OptimizerOptions once at construction,
// and call make_optimizer() and step() so that every model treats lr, weight decay and gradient
// clipping the same way.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "recrun/params.hpp"

namespace recrun {

/// Optimizer settings read from the standard parameters.
struct OptimizerOptions {
  /// "adam", "adamw" or "sgd".
  std::string kind = "adam";
  /// Learning rate.
  double lr = 1e-3;
  /// L2 penalty (decoupled for adamw).
  double weight_decay = 0.0;
  /// Max global gradient norm; 0 disables clipping.
  double clip_norm = 5.0;
  /// Reads the options from resolved params that include optimizer_params().
  static OptimizerOptions from(const Params& params);
};

/// The standard optimizer parameters: optimizer, lr, weight_decay, clip_norm (defaults given).
std::vector<ParamSpec> optimizer_params(double lr = 1e-3, double weight_decay = 0.0,
                                        double clip_norm = 5.0);

/// Builds the optimizer over `parameters`.
///
/// Explicitly exported: the LibTorch precompiled header is built with hidden visibility, which
/// makes std::vector<at::Tensor> (and so any function taking one by value) hidden in the SDK.
__attribute__((visibility("default")))
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& options,
                                                        std::vector<torch::Tensor> parameters);

/// backward(), gradient clipping, step() and zero_grad(); returns the loss as a double.
///
/// Throws recrun::Error("non-finite loss ...") when the loss is NaN or Inf, so the run fails
/// cleanly instead of training on garbage.
double step(torch::optim::Optimizer& optimizer, const OptimizerOptions& options,
            const torch::Tensor& loss);

/// Appends `extra` specs to `base` (for composing schemas).
std::vector<ParamSpec> concat(std::vector<ParamSpec> base, const std::vector<ParamSpec>& extra);

}  // namespace recrun
