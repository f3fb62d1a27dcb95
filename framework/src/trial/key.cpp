#include "trial/key.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/hash.hpp"
#include "core/trainer.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"

namespace recrun::trial {

namespace {

const ParamSpec* find_spec(const std::vector<ParamSpec>& schema, std::string_view name) {
  for (const auto& s : schema)
    if (s.name == name) return &s;
  return nullptr;
}

std::string list_json(const std::vector<std::string>& list) { return nlohmann::json(list).dump(); }

}  // namespace

int key_version(std::string_view key) noexcept {
  const bool hex = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (!hex) return 0;
  if (key.size() == 32) return 2;
  if (key.size() == 16) return 1;
  return 0;
}

std::string legacy_key_note(std::string_view key) {
  const int version = key_version(key);
  if (version == 0 || version == kKeyVersion) return {};
  return fmt::format(
      "trial {} has a version-{} key (made by a recrun before version-{} keys, which hash with "
      "XXH3 and fingerprint data differently); its row stays readable in results.db, but it is "
      "not run again under that key: run its sweep (or `recrun run`) again to register it "
      "under a version-{} key",
      key, version, kKeyVersion, kKeyVersion);
}

std::size_t count_legacy_keys(const std::vector<results::RunRow>& rows) {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [](const auto& r) {
    const int v = key_version(r.trial_key);
    return v != 0 && v < kKeyVersion;
  }));
}

std::string canonical_text(const std::string& model, const Params& params,
                           const std::string& data_fingerprint, const Protocol& protocol,
                           std::int64_t seed) {
  std::string text = fmt::format("recrun-trial-v{}\n", kKeyVersion);
  text += fmt::format("model={}\n", model);
  // Params::values() is ordered by name, so the text does not depend on file order.
  for (const auto& [k, v] : params.values()) text += fmt::format("param.{}={}\n", k, to_string(v));
  text += fmt::format("data={}\n", data_fingerprint);
  text += fmt::format("protocol={}\n", protocol.canonical());
  text += fmt::format("seed={}\n", seed);
  return text;
}

std::string make_key(const std::string& model, const Params& params,
                     const std::string& data_fingerprint, const Protocol& protocol,
                     std::int64_t seed) {
  return core::hash128_hex(canonical_text(model, params, data_fingerprint, protocol, seed));
}

std::vector<ParamSpec> full_schema(const ModelInfo& model) {
  return concat(model.params, core::trainer_params());
}

std::vector<results::Param> store_params(const Params& params,
                                         const std::vector<ParamSpec>& schema) {
  std::vector<results::Param> out;
  for (const auto& [name, value] : params.values()) {
    const ParamSpec* spec = find_spec(schema, name);
    const ParamType type = spec ? spec->type : type_of(value);
    switch (type) {
      case ParamType::integer: out.push_back(results::Param::of_int(name, std::get<std::int64_t>(value))); break;
      case ParamType::real: out.push_back(results::Param::of_float(name, std::get<double>(value))); break;
      case ParamType::boolean: out.push_back(results::Param::of_bool(name, std::get<bool>(value))); break;
      case ParamType::string: out.push_back(results::Param::of_string(name, std::get<std::string>(value))); break;
      case ParamType::string_list:
        out.push_back(results::Param::of_list(name, list_json(std::get<std::vector<std::string>>(value))));
        break;
      case ParamType::real_list:
        out.push_back(results::Param::of_list(
            name, nlohmann::json(std::get<std::vector<double>>(value)).dump()));
        break;
    }
    // The key hashes to_string(); store that exact text so the row reads back to the same key.
    if (type != ParamType::string_list && type != ParamType::real_list)
      out.back().value = to_string(value);
  }
  return out;
}

Params params_from_store(const std::vector<results::Param>& stored,
                         const std::vector<ParamSpec>& schema, const std::string& component) {
  std::map<std::string, ParamValue> raw;
  for (const auto& p : stored) {
    const ParamSpec* spec = find_spec(schema, p.name);
    if (!spec)
      throw ParamError(fmt::format("{}: the stored parameter '{}' is not in the plugin's schema "
                                   "any more (was the plugin changed since the trial was "
                                   "registered?)",
                                   component, p.name));
    raw[p.name] = parse_param_text(*spec, p.value, component);
  }
  return resolve_params(schema, raw, component);
}

}  // namespace recrun::trial
