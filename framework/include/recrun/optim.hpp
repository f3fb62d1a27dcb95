// recrun/optim.hpp — optimizer settings shared by every gradient-trained model.
//
// A model holds an OptimizerOptions member in its options struct (its initialiser sets the
// model's defaults, e.g. `recrun::OptimizerOptions optimizer{.clip_norm = 0.0};`), declares it
// with `f.nest(&MyOptions::optimizer, recrun::declare_optimizer_fields)`, and calls
// make_optimizer() and step(), so that every model treats lr, weight decay and gradient clipping
// the same way.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "recrun/fields.hpp"
#include "recrun/params.hpp"

namespace recrun {

/// The optimizers make_optimizer() builds.
enum class OptimizerKind { adam, adamw, sgd };

/// Optimizer settings: the standard parameters optimizer, lr, weight_decay and clip_norm.
struct OptimizerOptions {
  /// adam, adamw (decoupled weight decay) or sgd (momentum 0.9).
  OptimizerKind kind = OptimizerKind::adam;
  /// Learning rate.
  double lr = 1e-3;
  /// L2 penalty (decoupled for adamw).
  double weight_decay = 0.0;
  /// Max global gradient norm; 0 disables clipping.
  double clip_norm = 5.0;
};

/// Declares the standard optimizer parameters (optimizer, lr, weight_decay, clip_norm); nest it
/// into a model's fields. Defaults come from the model's OptimizerOptions member.
void declare_optimizer_fields(Fields<OptimizerOptions>& fields);

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
///
/// Data-parallel runs: `loss` is the mean loss of this rank's part of the global batch
/// (TrainContext::shard) and `weight` the number of examples it is a mean over (sequences,
/// predicted positions, ...). The gradients of all ranks are summed with these weights, in one
/// all-reduce, into the gradient of the global batch's mean loss; clipping and the update then
/// run on that, identically on every rank. The returned loss is the global batch's mean, the
/// same on every rank, and so is the non-finite check. A rank whose part is empty passes an
/// undefined tensor and weight 0, and still takes part. Alone, `weight` changes nothing and an
/// undefined loss skips the step (returning NaN).
double step(torch::optim::Optimizer& optimizer, const OptimizerOptions& options,
            const torch::Tensor& loss, double weight = 1.0);

/// Appends `extra` specs to `base` (for composing schemas).
std::vector<ParamSpec> concat(std::vector<ParamSpec> base, const std::vector<ParamSpec>& extra);

}  // namespace recrun
