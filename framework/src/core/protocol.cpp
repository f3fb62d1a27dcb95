#include "core/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/evaluator.hpp"
#include "recrun/error.hpp"
#include "recrun/params.hpp"

namespace recrun::core {

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

std::string_view to_string(SplitMode mode) {
  return mode == SplitMode::full ? "full" : "leave_one_out";
}

std::optional<SplitMode> parse_split_mode(std::string_view text) {
  if (text == "leave_one_out") return SplitMode::leave_one_out;
  if (text == "full") return SplitMode::full;
  return std::nullopt;
}

void check_min_interactions(SplitMode mode, std::int64_t min_interactions) {
  const std::int64_t least = mode == SplitMode::full ? 1 : 3;
  if (min_interactions >= least) return;
  throw ProtocolError(
      "min_interactions",
      mode == SplitMode::full
          ? fmt::format("protocol.min_interactions must be >= 1, got {}", min_interactions)
          : fmt::format("protocol.min_interactions must be >= 3 for leave_one_out (each user "
                        "needs a training item, a validation target and a test target), got {}",
                        min_interactions));
}

void check_monitor(const std::vector<std::string>& metrics, const std::vector<std::int64_t>& ks,
                   const std::string& monitor) {
  std::vector<std::string> computed;
  for (const auto& m : metrics)
    for (const auto k : ks) computed.push_back(fmt::format("{}@{}", m, k));
  if (std::find(computed.begin(), computed.end(), monitor) != computed.end()) return;
  std::string hint;
  if (auto m = did_you_mean(monitor, computed)) hint = fmt::format(" (did you mean '{}'?)", *m);
  throw ProtocolError("monitor", fmt::format("protocol.monitor '{}' is not among the computed "
                                             "metrics (metrics x ks){}; computed: {}",
                                             monitor, hint, fmt::join(computed, ", ")));
}

void Protocol::validate(ProtocolUse use) const {
  if (use == ProtocolUse::sweep && split == SplitMode::full)
    throw ProtocolError("split",
                        "protocol.split = 'full' trains without evaluation, so a sweep could not "
                        "compare its trials; use `recrun run --split full` for final models");
  check_min_interactions(split, min_interactions);
  EvalOptions eval;
  eval.metrics = metrics;
  eval.ks = ks;
  eval.batch_size = eval_batch_size;
  try {
    core::validate(eval);
  } catch (const ParamError& e) {
    // "protocol.ks: ..." -> field "ks"
    const std::string what = e.what();
    std::string field = "metrics";
    for (const char* f : {"ks", "metrics", "eval_batch_size"})
      if (what.starts_with(fmt::format("protocol.{}", f))) field = f;
    throw ProtocolError(field, what);
  }
  check_monitor(metrics, ks, monitor);
}

std::string Protocol::canonical() const {
  return fmt::format("split={};min_interactions={};metrics={};ks={};monitor={}", to_string(split),
                     min_interactions, fmt::join(metrics, ","), fmt::join(ks, ","), monitor);
}

std::string Protocol::to_json(std::string_view data_source) const {
  Json j;
  j["split"] = std::string(to_string(split));
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
  if (const auto it = j.find("split"); it != j.end()) {
    const std::string name = str(*it, "split");
    const auto mode = parse_split_mode(name);
    if (!mode)
      throw Error(fmt::format("protocol JSON: unknown split '{}' in '{}' (leave_one_out or full)",
                              name, text));
    p.split = *mode;
  }
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
  try {
    p.validate(ProtocolUse::run);
  } catch (const ProtocolError& e) {
    throw Error(fmt::format("stored protocol '{}' is not valid: {}", text, e.what()));
  }
  return p;
}

}  // namespace recrun::core
