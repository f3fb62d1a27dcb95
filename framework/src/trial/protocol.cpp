#include "trial/protocol.hpp"

#include <fmt/format.h>

#include "recrun/error.hpp"
#include "trial/json_lite.hpp"

namespace recrun::trial {

// --- protocol --------------------------------------------------------------------------------

std::string Protocol::canonical() const {
  return fmt::format("split={};min_interactions={};metrics={};ks={};monitor={}", split,
                     min_interactions, fmt::join(metrics, ","), fmt::join(ks, ","), monitor);
}

std::string Protocol::to_json(std::string_view data_source) const {
  std::vector<std::string> m;
  for (const auto& x : metrics) m.push_back(json::quote(x));
  std::string out = fmt::format(
      "{{\"split\":{},\"min_interactions\":{},\"metrics\":[{}],\"ks\":[{}],\"monitor\":{},"
      "\"eval_batch_size\":{}",
      json::quote(split), min_interactions, fmt::join(m, ","), fmt::join(ks, ","),
      json::quote(monitor), eval_batch_size);
  if (!data_source.empty()) out += fmt::format(",\"data_source\":{}", json::quote(data_source));
  return out + "}";
}

std::string Protocol::data_source_from_json(std::string_view text) {
  const auto obj = json::parse_flat_object(text);
  const auto it = obj.find("data_source");
  if (it == obj.end()) return "auto";
  const auto* s = std::get_if<json::Scalar>(&it->second);
  const auto* v = s ? std::get_if<std::string>(s) : nullptr;
  return v ? *v : "auto";
}

Protocol Protocol::from_json(std::string_view text) {
  Protocol p;
  const auto obj = json::parse_flat_object(text);
  const auto bad = [&](const std::string& key) {
    return Error(fmt::format("protocol JSON: '{}' has the wrong type in '{}'", key, text));
  };
  const auto scalar = [&](const std::string& key) -> const json::Scalar* {
    const auto it = obj.find(key);
    if (it == obj.end()) return nullptr;
    const auto* s = std::get_if<json::Scalar>(&it->second);
    if (!s) throw bad(key);
    return s;
  };
  const auto list = [&](const std::string& key) -> const std::vector<json::Scalar>* {
    const auto it = obj.find(key);
    if (it == obj.end()) return nullptr;
    const auto* l = std::get_if<std::vector<json::Scalar>>(&it->second);
    if (!l) throw bad(key);
    return l;
  };
  const auto str = [&](const json::Scalar& s, const std::string& key) {
    if (const auto* v = std::get_if<std::string>(&s)) return *v;
    throw bad(key);
  };
  const auto num = [&](const json::Scalar& s, const std::string& key) {
    if (const auto* v = std::get_if<double>(&s)) return static_cast<std::int64_t>(*v);
    throw bad(key);
  };
  if (const auto* s = scalar("split")) p.split = str(*s, "split");
  if (const auto* s = scalar("min_interactions")) p.min_interactions = num(*s, "min_interactions");
  if (const auto* s = scalar("monitor")) p.monitor = str(*s, "monitor");
  if (const auto* s = scalar("eval_batch_size")) p.eval_batch_size = num(*s, "eval_batch_size");
  if (const auto* l = list("metrics")) {
    p.metrics.clear();
    for (const auto& s : *l) p.metrics.push_back(str(s, "metrics"));
  }
  if (const auto* l = list("ks")) {
    p.ks.clear();
    for (const auto& s : *l) p.ks.push_back(num(s, "ks"));
  }
  return p;
}

}  // namespace recrun::trial
