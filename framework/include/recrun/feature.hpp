// recrun/feature.hpp — item-feature encoders and fusion strategies for sequential models.
//
// A feature encoder turns item metadata into one [.., hidden] embedding per item; a fusion
// combines the item embedding with any number of feature embeddings into one [.., hidden] tensor.
// Both are torch modules created by plugins and registered as submodules of the model that uses
// them, so they train, save and load with it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun {

/// What a feature encoder is built from.
struct FeatureEnv {
  /// The data set whose item metadata is encoded.
  const Dataset& dataset;
  /// Output width.
  std::int64_t hidden = 64;
  /// Dropout applied to the feature embedding during training.
  double metadata_dropout = 0.0;
};

/// Encodes item metadata: forward(items) maps dense item ids [...] to embeddings [..., hidden].
class FeatureEncoderImpl : public torch::nn::Module {
 public:
  /// `items` holds dense item ids in [0, num_items), any shape, int64.
  virtual torch::Tensor forward(const torch::Tensor& items) = 0;
};

/// What a fusion is built from.
struct FusionEnv {
  /// Width of every input and of the output.
  std::int64_t hidden = 64;
  /// Names of the inputs in order: "item" first, then the feature names.
  std::vector<std::string> sources;
};

/// Combines embeddings: forward({item, feature1, ...}) -> [..., hidden].
class FusionImpl : public torch::nn::Module {
 public:
  /// `inputs[0]` is the item embedding; every input has the same shape [..., hidden].
  /// `valid` (optional, bool [...]) marks real positions so diagnostics skip padding.
  virtual torch::Tensor forward(const std::vector<torch::Tensor>& inputs,
                                const torch::Tensor& valid = {}) = 0;
  /// Diagnostics accumulated since the last call while not training (e.g. {"gate/item": 0.4});
  /// returning them resets the accumulators.
  virtual std::map<std::string, double> diagnostics() { return {}; }
};

}  // namespace recrun
