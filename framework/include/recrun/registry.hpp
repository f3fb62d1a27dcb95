// recrun/registry.hpp — the host-owned catalogue that plugins add their components to.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/data_source.hpp"
#include "recrun/feature.hpp"
#include "recrun/model.hpp"
#include "recrun/params.hpp"

namespace recrun {

class Registry;

/// What a model is built from.
struct ModelEnv {
  /// The loaded data set (item count, features).
  const Dataset& dataset;
  /// The registry, to build feature encoders and fusions by name.
  const Registry& registry;
  /// The run's seed (LibTorch's generator is already seeded with it).
  std::uint64_t seed = 0;
};

/// Kinds of components.
enum class ComponentKind { model, feature, fusion, data_source };

/// "model", "feature", "fusion" or "data".
std::string_view kind_name(ComponentKind kind);

/// A model plugin's registration.
struct ModelInfo {
  /// Name used in experiment files and on the command line.
  std::string name;
  /// One-line description.
  std::string summary;
  /// Hyperparameters.
  std::vector<ParamSpec> params;
  /// Builds a model from validated params.
  std::function<std::unique_ptr<Model>(const Params&, const ModelEnv&)> make;
};

/// A feature encoder plugin's registration.
struct FeatureInfo {
  /// Feature name, as listed in a model's `features` parameter.
  std::string name;
  /// One-line description.
  std::string summary;
  /// Builds the encoder; throws DataError when the data set lacks the feature.
  std::function<std::shared_ptr<FeatureEncoderImpl>(const FeatureEnv&)> make;
};

/// A fusion plugin's registration.
struct FusionInfo {
  /// Fusion name, as given in a model's `fusion` parameter.
  std::string name;
  /// One-line description.
  std::string summary;
  /// Builds the fusion module.
  std::function<std::shared_ptr<FusionImpl>(const FusionEnv&)> make;
};

/// A data source plugin's registration.
struct DataSourceInfo {
  /// Source name, as given in `[data] source = ...`.
  std::string name;
  /// One-line description.
  std::string summary;
  /// Builds the reader.
  std::function<std::unique_ptr<DataSource>()> make;
};

/// The catalogue of components. The host owns it; plugins add to it in their entry point.
class Registry {
 public:
  /// Adds a model; throws PluginError if the name is taken.
  void add_model(ModelInfo info);
  /// Adds a feature encoder.
  void add_feature(FeatureInfo info);
  /// Adds a fusion.
  void add_fusion(FusionInfo info);
  /// Adds a data source.
  void add_data_source(DataSourceInfo info);

  /// The model called `name`; throws PluginError listing the known ones (with a did-you-mean).
  const ModelInfo& model(std::string_view name) const;
  /// The feature encoder called `name`.
  const FeatureInfo& feature(std::string_view name) const;
  /// The fusion called `name`.
  const FusionInfo& fusion(std::string_view name) const;
  /// The data source called `name`.
  const DataSourceInfo& data_source(std::string_view name) const;

  /// Every registered model.
  const std::vector<ModelInfo>& models() const { return models_; }
  /// Every registered feature encoder.
  const std::vector<FeatureInfo>& features() const { return features_; }
  /// Every registered fusion.
  const std::vector<FusionInfo>& fusions() const { return fusions_; }
  /// Every registered data source.
  const std::vector<DataSourceInfo>& data_sources() const { return data_sources_; }
  /// The library a component came from ("" for built-ins).
  std::string origin(ComponentKind kind, std::string_view name) const;

  /// Host side: the library whose entry point is running (recorded as components' origin).
  void set_current_origin(std::string origin) { current_origin_ = std::move(origin); }

 private:
  void claim_name(ComponentKind kind, const std::string& name);
  std::vector<ModelInfo> models_;
  std::vector<FeatureInfo> features_;
  std::vector<FusionInfo> fusions_;
  std::vector<DataSourceInfo> data_sources_;
  std::vector<std::tuple<ComponentKind, std::string, std::string>> origins_;
  std::string current_origin_;
};

}  // namespace recrun
