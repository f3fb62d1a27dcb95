// recrun/registry.hpp — the host-owned catalogue that plugins add their components to.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/data_source.hpp"
#include "recrun/fields.hpp"
#include "recrun/host.hpp"
#include "recrun/model_interface.hpp"
#include "recrun/params.hpp"

namespace recrun {

// Feature encoders and fusions are LibTorch modules (recrun/feature.hpp, which recrun/plugin.hpp
// includes); the registry only stores their factories, so it names them without their bodies.
struct FeatureEnv;
class FeatureEncoderImpl;
struct FusionEnv;
class FusionImpl;

class Registry;
namespace sdk_internal {
struct RegistryAccess;
}

/// What a model is built from.
struct ModelEnv {
  /// The loaded data set (item count, features).
  const Dataset& dataset;
  /// The registry, to build feature encoders and fusions by name.
  const Registry& registry;
  /// The run's seed (LibTorch's generator is already seeded with it).
  std::uint64_t seed = 0;
  /// What the host offers beyond the data: finished runs of results.db and inline training of
  /// other models (what an ensemble is built from). Null where the host offers none (unit tests,
  /// benchmarks); a model that needs it says so instead of dereferencing it.
  const HostServices* host = nullptr;
};

/// "model", "feature", "fusion" or "data".
std::string_view kind_name(ComponentKind kind);

/// A component's name and one-line description, as `recrun plugins` lists them.
struct ComponentMeta {
  /// Name used in experiment files and on the command line: lower case, digits and '_'.
  std::string name;
  /// One-line description.
  std::string summary;
};

/// Parameter names the framework itself owns (the trainer's and the run's). A model that
/// declares one is refused at registration.
const std::vector<std::string>& reserved_param_names();

/// Checkpoint keys starting with this belong to the host (trainer state, best weights); a
/// model's save() must not write them.
inline constexpr const char* kReservedCheckpointPrefix = "__";

/// A model's registration as the host keeps it: the schema derived from the plugin's field
/// declarations and a factory from resolved params. Plugins add models through the typed
/// Registry::add_model<Options>() rather than filling this in.
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

/// A plugin library the host refused (a mismatched ABI stamp, a registration that threw or
/// declared something invalid), kept so that a lookup of a component it would have provided
/// says why that component is missing.
struct RefusedLibrary {
  /// The library's path.
  std::string path;
  /// Why it was refused (the loader's message).
  std::string reason;
  /// The components it tried to register before it was refused (may be empty).
  std::vector<std::pair<ComponentKind, std::string>> components;
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
  /// Adds a model whose hyperparameters are the fields of `Options`, declared once by
  /// `declare(Fields<Options>&)`; `make(const Options&, const ModelEnv&)` builds it from the
  /// filled struct. Throws PluginError naming the model and the field for a bad declaration
  /// (a default outside its bounds or choices, a reserved or repeated name).
  template <class Options, class Declare, class Make>
  void add_model(ComponentMeta meta, Declare&& declare, Make make) {
    const Options prototype{};
    Fields<Options> fields(prototype);
    declare(fields);
    ModelInfo info{.name = std::move(meta.name), .summary = std::move(meta.summary),
                   .params = fields.specs(), .make = {}};
    info.make = [fields = std::move(fields), make = std::move(make)](
                    const Params& params, const ModelEnv& env) -> std::unique_ptr<Model> {
      return make(fields.bind(params), env);
    };
    add_model(std::move(info));
  }
  /// Adds a model without hyperparameters: `make(const ModelEnv&)` builds it.
  template <class Make>
  void add_model(ComponentMeta meta, Make make) {
    add_model(ModelInfo{.name = std::move(meta.name), .summary = std::move(meta.summary),
                        .params = {},
                        .make = [make = std::move(make)](const Params&, const ModelEnv& env)
                            -> std::unique_ptr<Model> { return make(env); }});
  }
  /// Adds a model from its host-side record; throws PluginError for a bad declaration or a
  /// name already taken.
  void add_model(ModelInfo info);
  /// Adds a feature encoder.
  void add_feature(FeatureInfo info);
  /// Adds a fusion.
  void add_fusion(FusionInfo info);
  /// Adds a data source.
  void add_data_source(DataSourceInfo info);

  /// The model called `name`; throws PluginError listing the known ones (with a did-you-mean),
  /// or, when a refused library tried to register it, naming that library and why.
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

  /// Libraries the host refused, in load order (see RefusedLibrary).
  const std::vector<RefusedLibrary>& refused() const { return refused_; }

 private:
  bool has(ComponentKind kind, std::string_view name) const;
  void claim_name(ComponentKind kind, const std::string& name);
  std::vector<ModelInfo> models_;
  std::vector<FeatureInfo> features_;
  std::vector<FusionInfo> fusions_;
  std::vector<DataSourceInfo> data_sources_;
  std::vector<std::tuple<ComponentKind, std::string, std::string>> origins_;
  std::string current_origin_;
  std::vector<RefusedLibrary> refused_;
  std::vector<std::pair<ComponentKind, std::string>> attempted_;
  friend struct sdk_internal::RegistryAccess;
};

}  // namespace recrun
