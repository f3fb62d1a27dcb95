#include "tensorboard/hparams.hpp"

#include <fmt/format.h>

#include "tensorboard/event_writer.hpp"
#include "tensorboard/proto_wire.hpp"

// Field numbers below come from tensorboard/plugins/hparams/api.proto and plugin_data.proto,
// and google/protobuf/struct.proto. Singular proto3 fields at their default are omitted, as
// protobuf itself does; oneof members are always written because a oneof has presence.

namespace recrun::tensorboard {
namespace {

constexpr std::string_view plugin_name = "hparams";

std::string encode_value(const HParamValue& value) {
  ProtoWriter v;                                                         // google.protobuf.Value
  if (const auto* d = std::get_if<double>(&value)) v.add_double(2, *d);  // number_value
  if (const auto* s = std::get_if<std::string>(&value)) v.add_bytes(3, *s);  // string_value
  if (const auto* b = std::get_if<bool>(&value)) v.add_bool(4, *b);          // bool_value
  return v.take();
}

std::string encode_hparam_info(const HParamSpec& spec) {
  ProtoWriter info;
  if (!spec.name.empty()) info.add_bytes(1, spec.name);
  if (!spec.display_name.empty()) info.add_bytes(2, spec.display_name);
  if (!spec.description.empty()) info.add_bytes(3, spec.description);
  if (spec.type != HParamType::unset) info.add_int64(4, static_cast<std::int64_t>(spec.type));
  if (!spec.domain_discrete.empty()) {
    ProtoWriter list;  // google.protobuf.ListValue
    for (const HParamValue& v : spec.domain_discrete) list.add_bytes(1, encode_value(v));
    info.add_message(5, list);
  } else if (spec.domain_interval) {
    ProtoWriter interval;
    if (spec.domain_interval->first != 0.0) interval.add_double(1, spec.domain_interval->first);
    if (spec.domain_interval->second != 0.0) interval.add_double(2, spec.domain_interval->second);
    info.add_message(6, interval);
  }
  return info.take();
}

std::string encode_metric_info(const MetricSpec& spec) {
  ProtoWriter name;  // MetricName
  if (!spec.group.empty()) name.add_bytes(1, spec.group);
  if (!spec.tag.empty()) name.add_bytes(2, spec.tag);
  ProtoWriter info;
  info.add_message(1, name);
  if (!spec.display_name.empty()) info.add_bytes(3, spec.display_name);
  if (!spec.description.empty()) info.add_bytes(4, spec.description);
  if (spec.dataset_type != DatasetType::unknown) {
    info.add_int64(5, static_cast<std::int64_t>(spec.dataset_type));
  }
  return info.take();
}

// HParamsPluginData with version 0 (omitted): the only version TensorBoard accepts.
std::string wrap_plugin_data(std::uint32_t oneof_field, const ProtoWriter& payload) {
  ProtoWriter data;
  data.add_message(oneof_field, payload);
  return data.take();
}

void write_hparams_summary(EventWriter& writer, std::string_view tag, std::string_view content,
                           double wall_time) {
  ProtoWriter plugin_data;
  plugin_data.add_bytes(1, plugin_name);
  plugin_data.add_bytes(2, content);
  ProtoWriter metadata;
  metadata.add_message(1, plugin_data);
  // TensorBoard's own hparams summaries carry a length-0 float tensor: the generic data
  // path only lists tags that have a tensor, and this is the smallest valid one.
  ProtoWriter dim;  // empty Dim: size 0 is the proto3 default
  ProtoWriter shape;
  shape.add_message(2, dim);
  ProtoWriter tensor;
  tensor.add_int64(1, 1);  // DT_FLOAT
  tensor.add_message(2, shape);
  ProtoWriter value;
  value.add_bytes(1, tag);
  value.add_message(8, tensor);
  value.add_message(9, metadata);
  writer.add_summary_value(value.bytes(), 0, wall_time);
}

HParamValue decode_value_or_skip(std::string_view bytes, bool& ok) {
  ok = false;
  HParamValue result;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 2:
        result = f->as_double();
        ok = true;
        break;
      case 3:
        result = std::string(f->as_bytes());
        ok = true;
        break;
      case 4:
        result = f->as_bool();
        ok = true;
        break;
      default: ok = false; break;  // null, struct, list: no HParamValue for them
    }
  }
  return result;
}

HParamSpec decode_hparam_info(std::string_view bytes) {
  HParamSpec spec;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 1: spec.name = std::string(f->as_bytes()); break;
      case 2: spec.display_name = std::string(f->as_bytes()); break;
      case 3: spec.description = std::string(f->as_bytes()); break;
      case 4: spec.type = static_cast<HParamType>(f->as_int32()); break;
      case 5: {
        ProtoReader list(f->as_bytes());
        while (auto item = list.next()) {
          bool ok = false;
          HParamValue v = decode_value_or_skip(item->as_bytes(), ok);
          if (ok && item->number == 1) spec.domain_discrete.push_back(std::move(v));
        }
        break;
      }
      case 6: {
        std::pair<double, double> interval{0.0, 0.0};
        ProtoReader r(f->as_bytes());
        while (auto g = r.next()) {
          if (g->number == 1) interval.first = g->as_double();
          if (g->number == 2) interval.second = g->as_double();
        }
        spec.domain_interval = interval;
        break;
      }
      default: break;
    }
  }
  return spec;
}

MetricSpec decode_metric_info(std::string_view bytes) {
  MetricSpec spec;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 1: {
        ProtoReader name(f->as_bytes());
        while (auto g = name.next()) {
          if (g->number == 1) spec.group = std::string(g->as_bytes());
          if (g->number == 2) spec.tag = std::string(g->as_bytes());
        }
        break;
      }
      case 3: spec.display_name = std::string(f->as_bytes()); break;
      case 4: spec.description = std::string(f->as_bytes()); break;
      case 5: spec.dataset_type = static_cast<DatasetType>(f->as_int32()); break;
      default: break;
    }
  }
  return spec;
}

HParamsExperiment decode_experiment(std::string_view bytes) {
  HParamsExperiment experiment;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 1: experiment.description = std::string(f->as_bytes()); break;
      case 2: experiment.user = std::string(f->as_bytes()); break;
      case 3: experiment.time_created_secs = f->as_double(); break;
      case 4: experiment.hparams.push_back(decode_hparam_info(f->as_bytes())); break;
      case 5: experiment.metrics.push_back(decode_metric_info(f->as_bytes())); break;
      case 6: experiment.name = std::string(f->as_bytes()); break;
      default: break;
    }
  }
  return experiment;
}

SessionStartInfo decode_session_start(std::string_view bytes) {
  SessionStartInfo info;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 1: {  // map entry {key = 1, value = 2}
        std::string key;
        HParamValue value;
        bool ok = false;
        ProtoReader entry(f->as_bytes());
        while (auto g = entry.next()) {
          if (g->number == 1) key = std::string(g->as_bytes());
          if (g->number == 2) value = decode_value_or_skip(g->as_bytes(), ok);
        }
        if (ok) info.hparams.insert_or_assign(std::move(key), std::move(value));
        break;
      }
      case 2: info.model_uri = std::string(f->as_bytes()); break;
      case 3: info.monitor_url = std::string(f->as_bytes()); break;
      case 4: info.group_name = std::string(f->as_bytes()); break;
      case 5: info.start_time_secs = f->as_double(); break;
      default: break;
    }
  }
  return info;
}

SessionEndInfo decode_session_end(std::string_view bytes) {
  SessionEndInfo info;
  ProtoReader reader(bytes);
  while (auto f = reader.next()) {
    if (f->number == 1) info.status = static_cast<SessionStatus>(f->as_int32());
    if (f->number == 2) info.end_time_secs = f->as_double();
  }
  return info;
}

}  // namespace

std::string encode_experiment_content(std::span<const HParamSpec> hparams,
                                      std::span<const MetricSpec> metrics, double time_created) {
  ProtoWriter experiment;
  if (time_created != 0.0) experiment.add_double(3, time_created);
  for (const HParamSpec& spec : hparams) experiment.add_bytes(4, encode_hparam_info(spec));
  for (const MetricSpec& spec : metrics) experiment.add_bytes(5, encode_metric_info(spec));
  return wrap_plugin_data(2, experiment);
}

std::string encode_session_start_content(const std::map<std::string, HParamValue>& hparams,
                                         std::string_view group_name, double start_time) {
  ProtoWriter info;
  for (const auto& [name, value] : hparams) {
    ProtoWriter entry;
    entry.add_bytes(1, name);
    entry.add_bytes(2, encode_value(value));
    info.add_message(1, entry);
  }
  if (!group_name.empty()) info.add_bytes(4, group_name);
  if (start_time != 0.0) info.add_double(5, start_time);
  return wrap_plugin_data(3, info);
}

std::string encode_session_end_content(SessionStatus status, double end_time) {
  ProtoWriter info;
  if (status != SessionStatus::unknown) info.add_int64(1, static_cast<std::int64_t>(status));
  if (end_time != 0.0) info.add_double(2, end_time);
  return wrap_plugin_data(4, info);
}

void write_hparams_config(EventWriter& writer, std::span<const HParamSpec> hparams,
                          std::span<const MetricSpec> metrics, std::optional<double> time_created) {
  const double now = now_seconds();
  write_hparams_summary(writer, hparams_experiment_tag,
                        encode_experiment_content(hparams, metrics, time_created.value_or(now)),
                        now);
}

void write_hparams_config(EventWriter& writer, std::span<const HParamSpec> hparams,
                          std::span<const std::string> metric_tags,
                          std::optional<double> time_created) {
  std::vector<MetricSpec> metrics;
  metrics.reserve(metric_tags.size());
  for (const std::string& tag : metric_tags) metrics.push_back(MetricSpec{.tag = tag});
  write_hparams_config(writer, hparams, metrics, time_created);
}

void write_session_start(EventWriter& writer, const std::map<std::string, HParamValue>& hparams,
                         std::string_view group_name, std::optional<double> start_time) {
  const double time = start_time.value_or(now_seconds());
  write_hparams_summary(writer, hparams_session_start_tag,
                        encode_session_start_content(hparams, group_name, time), time);
}

void write_session_end(EventWriter& writer, SessionStatus status, std::optional<double> end_time) {
  const double time = end_time.value_or(now_seconds());
  write_hparams_summary(writer, hparams_session_end_tag, encode_session_end_content(status, time),
                        time);
}

HParamsPluginData decode_hparams_plugin_data(std::string_view content) {
  HParamsPluginData data;
  ProtoReader reader(content);
  while (auto f = reader.next()) {
    switch (f->number) {
      case 1: data.version = f->as_int32(); break;
      case 2: data.data = decode_experiment(f->as_bytes()); break;
      case 3: data.data = decode_session_start(f->as_bytes()); break;
      case 4: data.data = decode_session_end(f->as_bytes()); break;
      default: break;
    }
  }
  return data;
}

}  // namespace recrun::tensorboard
