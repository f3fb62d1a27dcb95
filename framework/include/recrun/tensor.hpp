// recrun/tensor.hpp — the Tensor class alone, for headers that only pass tensors around.
//
// <torch/torch.h> costs a translation unit about 19 s to parse on a 2-core machine, and host
// files that only hand tensors through (the registry, results, the sweep) need none of it.
// This header gives them torch::Tensor and torch::ScalarType from ATen's core header (about
// 2.5 s) and declares the module and optimizer classes that archives take by reference. Code
// that computes with tensors includes <torch/torch.h> itself (recrun/plugin.hpp does).
#pragma once

#include <ATen/core/Tensor.h>

namespace torch {
using at::ScalarType;
using at::Tensor;
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch
