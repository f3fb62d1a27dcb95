// Parameters that name other plugins, checked against the loaded ones (trial/param_input.hpp).
#include "trial/param_input.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "recrun/error.hpp"
#include "recrun/member_ref.hpp"

namespace recrun::trial {

void check_references(const ParamSpec& spec, const ParamValue& value,
                           const Registry& registry, const std::string& component) {
  if (!spec.refers_to) return;
  const ParamReference& ref = *spec.refers_to;
  std::vector<std::string> names;
  switch (ref.kind) {
    case ComponentKind::model:
      for (const auto& i : registry.models()) names.push_back(i.name);
      break;
    case ComponentKind::feature:
      for (const auto& i : registry.features()) names.push_back(i.name);
      break;
    case ComponentKind::fusion:
      for (const auto& i : registry.fusions()) names.push_back(i.name);
      break;
    case ComponentKind::data_source:
      for (const auto& i : registry.data_sources()) names.push_back(i.name);
      break;
  }
  const std::string_view kind = kind_name(ref.kind);
  const auto check = [&](const std::string& name) {
    for (const auto& r : ref.reserved)
      if (name == r) return;
    if (std::find(names.begin(), names.end(), name) != names.end()) return;
    std::vector<std::string> choices = names;
    for (const auto& r : ref.reserved)
      if (!r.empty()) choices.push_back(r);
    std::string hint;
    if (auto m = did_you_mean(name, choices)) hint = fmt::format(" (did you mean '{}'?)", *m);
    std::string refused;
    for (const auto& r : registry.refused())
      for (const auto& [k, n] : r.components)
        if (k == ref.kind && n == name)
          refused = fmt::format(" ({} {} '{}' was refused: {})", r.path, kind, name, r.reason);
    throw Error(fmt::format("{}: parameter '{}': no {} plugin named '{}'{}; loaded: {}{}{}",
                            component, spec.name, kind, name, hint,
                            names.empty() ? std::string("none")
                                          : fmt::format("{}", fmt::join(names, ", ")),
                            ref.reserved.empty() || ref.reserved.front().empty()
                                ? std::string()
                                : fmt::format(" (or '{}')", ref.reserved.front()),
                            refused));
  };
  // A member reference names a model unless it is a run's key; the run itself is looked up
  // when the trial starts.
  const auto check_value = [&](const std::string& text) {
    if (!ref.member_refs) return check(text);
    MemberRef member;
    try {
      member = parse_member_ref(text);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: parameter '{}': {}", component, spec.name, e.what()));
    }
    if (member.kind != MemberRef::Kind::run) check(member.model);
  };
  if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
    for (const auto& n : *list) check_value(n);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    check_value(*s);
  }
}

std::map<std::string, ParamValue> parse_settings(
    const std::vector<ParamSpec>& schema,
    const std::vector<std::pair<std::string, std::string>>& settings, const std::string& component,
    std::string_view where) {
  std::map<std::string, ParamValue> raw;
  std::vector<std::string> names;
  for (const auto& s : schema) names.push_back(s.name);
  const std::string in = where.empty() ? std::string() : fmt::format(" {}", where);
  for (const auto& [key, text] : settings) {
    const auto spec = std::find_if(schema.begin(), schema.end(),
                                   [&](const ParamSpec& s) { return s.name == key; });
    if (spec == schema.end()) {
      std::string hint;
      if (auto m = did_you_mean(key, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
      throw ParamError(fmt::format("{}: unknown parameter '{}'{}{}; known parameters: {}",
                                   component, key, in, hint, fmt::join(names, ", ")));
    }
    if (raw.count(key))
      throw ParamError(fmt::format("{}: '{}' is given twice{}", component, key, in));
    raw[key] = parse_param_text(*spec, text, component);
  }
  return raw;
}

}  // namespace recrun::trial
