#include "trial/protocol.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "recrun/error.hpp"

namespace recrun::trial {

namespace {

// Insertion order, so that the stored text reads in the order the fields are documented.
using Json = nlohmann::ordered_json;

Json parse_object(std::string_view text) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw Error(fmt::format("protocol JSON: {} in '{}'", e.what(), text));
  }
  if (!j.is_object()) throw Error(fmt::format("protocol JSON: not an object: '{}'", text));
  return j;
}

}  // namespace

std::string Protocol::canonical() const {
  return fmt::format("split={};min_interactions={};metrics={};ks={};monitor={}", split,
                     min_interactions, fmt::join(metrics, ","), fmt::join(ks, ","), monitor);
}

std::string Protocol::to_json(std::string_view data_source) const {
  Json j;
  j["split"] = split;
  j["min_interactions"] = min_interactions;
  j["metrics"] = metrics;
  j["ks"] = ks;
  j["monitor"] = monitor;
  j["eval_batch_size"] = eval_batch_size;
  if (!data_source.empty()) j["data_source"] = std::string(data_source);
  return j.dump();
}

std::string Protocol::data_source_from_json(std::string_view text) {
  const Json j = parse_object(text);
  const auto it = j.find("data_source");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("auto");
}

Protocol Protocol::from_json(std::string_view text) {
  Protocol p;
  const Json j = parse_object(text);
  const auto bad = [&](const std::string& key) {
    return Error(fmt::format("protocol JSON: '{}' has the wrong type in '{}'", key, text));
  };
  const auto str = [&](const Json& v, const std::string& key) {
    if (!v.is_string()) throw bad(key);
    return v.get<std::string>();
  };
  const auto num = [&](const Json& v, const std::string& key) {
    if (v.is_number_integer()) return v.get<std::int64_t>();
    if (v.is_number()) return static_cast<std::int64_t>(v.get<double>());
    throw bad(key);
  };
  const auto list = [&](const std::string& key) -> const Json* {
    const auto it = j.find(key);
    if (it == j.end()) return nullptr;
    if (!it->is_array()) throw bad(key);
    return &*it;
  };
  if (const auto it = j.find("split"); it != j.end()) p.split = str(*it, "split");
  if (const auto it = j.find("min_interactions"); it != j.end())
    p.min_interactions = num(*it, "min_interactions");
  if (const auto it = j.find("monitor"); it != j.end()) p.monitor = str(*it, "monitor");
  if (const auto it = j.find("eval_batch_size"); it != j.end())
    p.eval_batch_size = num(*it, "eval_batch_size");
  if (const Json* l = list("metrics")) {
    p.metrics.clear();
    for (const auto& v : *l) p.metrics.push_back(str(v, "metrics"));
  }
  if (const Json* l = list("ks")) {
    p.ks.clear();
    for (const auto& v : *l) p.ks.push_back(num(v, "ks"));
  }
  return p;
}

}  // namespace recrun::trial
