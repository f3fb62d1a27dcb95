#include "recrun/registry.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "recrun/error.hpp"

namespace recrun {

std::string_view kind_name(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::model: return "model";
    case ComponentKind::feature: return "feature";
    case ComponentKind::fusion: return "fusion";
    case ComponentKind::data_source: return "data";
  }
  return "?";
}

void Registry::claim_name(ComponentKind kind, const std::string& name) {
  if (name.empty()) throw PluginError(fmt::format("{} registered without a name", kind_name(kind)));
  for (const auto& [k, n, origin] : origins_)
    if (k == kind && n == name)
      throw PluginError(fmt::format("{} '{}' is registered twice: by {} and by {}", kind_name(kind),
                                    name, origin.empty() ? "the host" : origin,
                                    current_origin_.empty() ? "the host" : current_origin_));
  origins_.emplace_back(kind, name, current_origin_);
}

void Registry::add_model(ModelInfo info) {
  if (!info.make) throw PluginError(fmt::format("model '{}' has no factory", info.name));
  std::vector<std::string> seen;
  for (const auto& p : info.params) {
    if (std::find(seen.begin(), seen.end(), p.name) != seen.end())
      throw PluginError(fmt::format("model '{}' declares parameter '{}' twice", info.name, p.name));
    seen.push_back(p.name);
  }
  claim_name(ComponentKind::model, info.name);
  models_.push_back(std::move(info));
}

void Registry::add_feature(FeatureInfo info) {
  if (!info.make) throw PluginError(fmt::format("feature '{}' has no factory", info.name));
  claim_name(ComponentKind::feature, info.name);
  features_.push_back(std::move(info));
}

void Registry::add_fusion(FusionInfo info) {
  if (!info.make) throw PluginError(fmt::format("fusion '{}' has no factory", info.name));
  claim_name(ComponentKind::fusion, info.name);
  fusions_.push_back(std::move(info));
}

void Registry::add_data_source(DataSourceInfo info) {
  if (!info.make) throw PluginError(fmt::format("data source '{}' has no factory", info.name));
  claim_name(ComponentKind::data_source, info.name);
  data_sources_.push_back(std::move(info));
}

namespace {
template <class Info>
const Info& find(const std::vector<Info>& list, std::string_view name, ComponentKind kind) {
  for (const auto& i : list)
    if (i.name == name) return i;
  std::vector<std::string> names;
  for (const auto& i : list) names.push_back(i.name);
  std::string hint;
  if (auto m = did_you_mean(name, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
  throw PluginError(fmt::format("unknown {} '{}'{}; available: {}", kind_name(kind), name, hint,
                                names.empty() ? "(none loaded; check --plugin-dir)"
                                              : fmt::format("{}", fmt::join(names, ", "))));
}
}  // namespace

const ModelInfo& Registry::model(std::string_view name) const {
  return find(models_, name, ComponentKind::model);
}
const FeatureInfo& Registry::feature(std::string_view name) const {
  return find(features_, name, ComponentKind::feature);
}
const FusionInfo& Registry::fusion(std::string_view name) const {
  return find(fusions_, name, ComponentKind::fusion);
}
const DataSourceInfo& Registry::data_source(std::string_view name) const {
  return find(data_sources_, name, ComponentKind::data_source);
}

std::string Registry::origin(ComponentKind kind, std::string_view name) const {
  for (const auto& [k, n, o] : origins_)
    if (k == kind && n == name) return o;
  return {};
}

}  // namespace recrun
