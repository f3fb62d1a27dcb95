#include "recrun/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "recrun/error.hpp"
#include "sdk/host_access.hpp"

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

const std::vector<std::string>& reserved_param_names() {
  // The trainer's parameters (accepted beside every model's) and names the run itself owns.
  static const std::vector<std::string> names = {
      "epochs", "eval_every", "patience", "time_budget",  // trainer
      "seed", "threads", "checkpoint_every",                // the run's own
  };
  return names;
}

namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || !(std::islower(static_cast<unsigned char>(name[0])))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

// Why a model's declaration is refused, or nothing.
std::optional<std::string> declaration_problem(const ModelInfo& info) {
  if (!valid_name(info.name))
    return fmt::format("model name '{}' must start with a lower-case letter and hold only "
                       "lower-case letters, digits and '_'", info.name);
  if (!info.make) return fmt::format("model '{}' has no factory", info.name);
  for (const auto& p : info.params) {
    const auto& reserved = reserved_param_names();
    if (std::find(reserved.begin(), reserved.end(), p.name) != reserved.end())
      return fmt::format("model '{}': parameter '{}' uses a name the framework reserves (the "
                         "trainer's and the run's own: {}); rename it",
                         info.name, p.name, fmt::join(reserved, ", "));
  }
  if (auto problem = schema_problem(info.params))
    return fmt::format("model '{}': {}", info.name, *problem);
  return std::nullopt;
}

template <class Info>
std::optional<std::string> simple_problem(const Info& info, ComponentKind kind) {
  if (!valid_name(info.name))
    return fmt::format("{} name '{}' must start with a lower-case letter and hold only "
                       "lower-case letters, digits and '_'", kind_name(kind), info.name);
  if (!info.make) return fmt::format("{} '{}' has no factory", kind_name(kind), info.name);
  return std::nullopt;
}

}  // namespace

bool Registry::has(ComponentKind kind, std::string_view name) const {
  for (const auto& [k, n, origin] : origins_)
    if (k == kind && n == name) return true;
  return false;
}

void Registry::claim_name(ComponentKind kind, const std::string& name) {
  for (const auto& [k, n, origin] : origins_)
    if (k == kind && n == name) {
      if (origin == current_origin_)
        throw PluginError(fmt::format("{} registers {} '{}' twice",
                                      origin.empty() ? "the host" : origin, kind_name(kind), name));
      throw PluginError(fmt::format("{} '{}' is registered twice: by {} and by {}", kind_name(kind),
                                    name, origin.empty() ? "the host" : origin,
                                    current_origin_.empty() ? "the host" : current_origin_));
    }
  origins_.emplace_back(kind, name, current_origin_);
}

void Registry::add_model(ModelInfo info) {
  attempted_.emplace_back(ComponentKind::model, info.name);
  if (auto problem = declaration_problem(info)) throw PluginError(*problem);
  claim_name(ComponentKind::model, info.name);
  models_.push_back(std::move(info));
}

void Registry::add_feature(FeatureInfo info) {
  attempted_.emplace_back(ComponentKind::feature, info.name);
  if (auto problem = simple_problem(info, ComponentKind::feature)) throw PluginError(*problem);
  claim_name(ComponentKind::feature, info.name);
  features_.push_back(std::move(info));
}

void Registry::add_fusion(FusionInfo info) {
  attempted_.emplace_back(ComponentKind::fusion, info.name);
  if (auto problem = simple_problem(info, ComponentKind::fusion)) throw PluginError(*problem);
  claim_name(ComponentKind::fusion, info.name);
  fusions_.push_back(std::move(info));
}

void Registry::add_data_source(DataSourceInfo info) {
  attempted_.emplace_back(ComponentKind::data_source, info.name);
  if (auto problem = simple_problem(info, ComponentKind::data_source)) throw PluginError(*problem);
  claim_name(ComponentKind::data_source, info.name);
  data_sources_.push_back(std::move(info));
}

namespace {
template <class Info>
const Info& find(const std::vector<Info>& list, std::string_view name, ComponentKind kind,
                 const std::vector<RefusedLibrary>& refused) {
  for (const auto& i : list)
    if (i.name == name) return i;
  // A refused library that tried to register this very component is the answer.
  for (const auto& r : refused)
    for (const auto& [k, n] : r.components)
      if (k == kind && n == name)
        throw PluginError(fmt::format("{} '{}' is not loaded: its library {} was refused: {}",
                                      kind_name(kind), name, r.path, r.reason));
  std::vector<std::string> names;
  for (const auto& i : list) names.push_back(i.name);
  std::string hint;
  if (auto m = did_you_mean(name, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
  std::string refusals;
  for (const auto& r : refused) refusals += fmt::format("; refused: {}: {}", r.path, r.reason);
  throw PluginError(fmt::format("unknown {} '{}'{}; available: {}{}", kind_name(kind), name, hint,
                                names.empty() ? "(none loaded; check --plugin-dir)"
                                              : fmt::format("{}", fmt::join(names, ", ")),
                                refusals));
}
}  // namespace

const ModelInfo& Registry::model(std::string_view name) const {
  return find(models_, name, ComponentKind::model, refused_);
}
const FeatureInfo& Registry::feature(std::string_view name) const {
  return find(features_, name, ComponentKind::feature, refused_);
}
const FusionInfo& Registry::fusion(std::string_view name) const {
  return find(fusions_, name, ComponentKind::fusion, refused_);
}
const DataSourceInfo& Registry::data_source(std::string_view name) const {
  return find(data_sources_, name, ComponentKind::data_source, refused_);
}

namespace sdk_internal {

void RegistryAccess::set_current_origin(Registry& registry, std::string origin) {
  registry.current_origin_ = std::move(origin);
}

std::vector<RegistrationProblem> RegistryAccess::clashes(const Registry& registry,
                                                          const Registry& other) {
  std::vector<RegistrationProblem> out;
  for (const auto& [kind, name, origin] : other.origins_)
    if (registry.has(kind, name)) {
      const std::string holder = registry.origin(kind, name);
      out.push_back({kind, name,
                     fmt::format("{} already provides it", holder.empty() ? "the host" : holder)});
    }
  return out;
}

std::vector<RegistrationProblem> RegistryAccess::merge(Registry& registry, const Registry& other,
                                                        const std::string& origin) {
  auto skipped = clashes(registry, other);
  const auto skip = [&](ComponentKind kind, const std::string& name) {
    return std::any_of(skipped.begin(), skipped.end(),
                       [&](const auto& p) { return p.kind == kind && p.name == name; });
  };
  // Everything left is known not to clash, and was validated when `other` accepted it, so the
  // adds below cannot throw: nothing is merged half-way.
  for (const auto& m : other.models_)
    if (!skip(ComponentKind::model, m.name)) {
      registry.models_.push_back(m);
      registry.origins_.emplace_back(ComponentKind::model, m.name, origin);
    }
  for (const auto& f : other.features_)
    if (!skip(ComponentKind::feature, f.name)) {
      registry.features_.push_back(f);
      registry.origins_.emplace_back(ComponentKind::feature, f.name, origin);
    }
  for (const auto& f : other.fusions_)
    if (!skip(ComponentKind::fusion, f.name)) {
      registry.fusions_.push_back(f);
      registry.origins_.emplace_back(ComponentKind::fusion, f.name, origin);
    }
  for (const auto& d : other.data_sources_)
    if (!skip(ComponentKind::data_source, d.name)) {
      registry.data_sources_.push_back(d);
      registry.origins_.emplace_back(ComponentKind::data_source, d.name, origin);
    }
  // Refusals recorded in the scratch registry travel with it.
  for (const auto& r : other.refused_) registry.refused_.push_back(r);
  return skipped;
}

void RegistryAccess::add_refused(Registry& registry, RefusedLibrary refused) {
  registry.refused_.push_back(std::move(refused));
}

std::vector<std::pair<ComponentKind, std::string>> RegistryAccess::attempted(
    const Registry& registry) {
  return registry.attempted_;
}

}  // namespace sdk_internal


std::string Registry::origin(ComponentKind kind, std::string_view name) const {
  for (const auto& [k, n, o] : origins_)
    if (k == kind && n == name) return o;
  return {};
}

}  // namespace recrun
