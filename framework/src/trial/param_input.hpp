// Parameters as users give them: `key=value` text (recrun run --set, inline ensemble members)
// parsed against a schema, and values that name other plugins (ParamSpec::refers_to) checked
// against the registry. The one place where run, sweep and trial do either, from the
// declarations alone.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "recrun/params.hpp"
#include "recrun/registry.hpp"

namespace recrun::trial {

/// Checks the plugin names a parameter's value refers to (ParamSpec::refers_to: each element a
/// plugin of the declared kind, a reserved value, or a member reference whose model is loaded)
/// against the registry. Parameters that refer to nothing pass. Throws recrun::Error naming
/// `component`, the parameter and the unknown name, with a did-you-mean, the loaded names, and
/// the refused library that would have provided it.
void check_references(const ParamSpec& spec, const ParamValue& value, const Registry& registry,
                      const std::string& component);

/// Parses `key=value` settings against `schema`: each key must be declared (else ParamError with
/// a did-you-mean and the known names), given once, and its text must parse as the spec's type.
/// `where` says where the settings came from in messages ("in --set").
std::map<std::string, ParamValue> parse_settings(
    const std::vector<ParamSpec>& schema,
    const std::vector<std::pair<std::string, std::string>>& settings, const std::string& component,
    std::string_view where);

}  // namespace recrun::trial
