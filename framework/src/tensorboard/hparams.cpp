#include "tensorboard/hparams.hpp"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <limits>

#include "tensorboard/event_writer.hpp"
#include "tensorboard/proto/event.pb.h"
#include "tensorboard/proto/hparams.pb.h"

// The messages are tensorboard/proto/hparams.proto (TensorBoard's field numbers) and
// google.protobuf.Value. libprotobuf omits singular proto3 fields at their default and always
// writes a set oneof member, which is what TensorBoard's own writer does too.

namespace recrun::tensorboard {
namespace {

constexpr std::string_view plugin_name = "hparams";

// Map entries in key order, so that equal inputs give equal bytes (libprotobuf's default map
// order is its hash table's).
std::string serialize_deterministic(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

void set_value(google::protobuf::Value& out, const HParamValue& value) {
  if (const auto* d = std::get_if<double>(&value)) out.set_number_value(*d);
  if (const auto* s = std::get_if<std::string>(&value)) out.set_string_value(*s);
  if (const auto* b = std::get_if<bool>(&value)) out.set_bool_value(*b);
}

// Null, struct and list values have no HParamValue.
std::optional<HParamValue> get_value(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNumberValue: return value.number_value();
    case google::protobuf::Value::kStringValue: return value.string_value();
    case google::protobuf::Value::kBoolValue: return value.bool_value();
    default: return std::nullopt;
  }
}

void set_hparam_info(pb::HParamInfo& info, const HParamSpec& spec) {
  info.set_name(spec.name);
  info.set_display_name(spec.display_name);
  info.set_description(spec.description);
  info.set_type(static_cast<pb::HParamDataType>(spec.type));
  if (!spec.domain_discrete.empty()) {
    google::protobuf::ListValue& list = *info.mutable_domain_discrete();
    for (const HParamValue& v : spec.domain_discrete) set_value(*list.add_values(), v);
  } else if (spec.domain_interval) {
    pb::Interval& interval = *info.mutable_domain_interval();
    interval.set_min_value(spec.domain_interval->first);
    interval.set_max_value(spec.domain_interval->second);
  }
}

void set_metric_info(pb::MetricInfo& info, const MetricSpec& spec) {
  info.mutable_name()->set_group(spec.group);
  info.mutable_name()->set_tag(spec.tag);
  info.set_display_name(spec.display_name);
  info.set_description(spec.description);
  info.set_dataset_type(static_cast<pb::DatasetType>(spec.dataset_type));
}

void write_hparams_summary(EventWriter& writer, std::string_view tag, std::string_view content,
                           double wall_time) {
  pb::Summary::Value value;
  value.set_tag(std::string(tag));
  // TensorBoard's own hparams summaries carry a length-0 float tensor: the generic data
  // path only lists tags that have a tensor, and this is the smallest valid one.
  pb::TensorProto& tensor = *value.mutable_tensor();
  tensor.set_dtype(pb::DT_FLOAT);
  tensor.mutable_tensor_shape()->add_dim();  // one dimension of size 0
  pb::SummaryMetadata::PluginData& plugin = *value.mutable_metadata()->mutable_plugin_data();
  plugin.set_plugin_name(std::string(plugin_name));
  plugin.set_content(std::string(content));
  writer.add_summary_value(value.SerializeAsString(), 0, wall_time);
}

HParamSpec get_hparam_info(const pb::HParamInfo& info) {
  HParamSpec spec;
  spec.name = info.name();
  spec.display_name = info.display_name();
  spec.description = info.description();
  spec.type = static_cast<HParamType>(info.type());
  if (info.has_domain_discrete()) {
    for (const auto& item : info.domain_discrete().values()) {
      if (auto v = get_value(item)) spec.domain_discrete.push_back(std::move(*v));
    }
  }
  if (info.has_domain_interval()) {
    spec.domain_interval =
        std::pair{info.domain_interval().min_value(), info.domain_interval().max_value()};
  }
  return spec;
}

MetricSpec get_metric_info(const pb::MetricInfo& info) {
  return MetricSpec{.tag = info.name().tag(),
                    .group = info.name().group(),
                    .display_name = info.display_name(),
                    .description = info.description(),
                    .dataset_type = static_cast<DatasetType>(info.dataset_type())};
}

HParamsExperiment get_experiment(const pb::Experiment& proto) {
  HParamsExperiment experiment;
  experiment.name = proto.name();
  experiment.description = proto.description();
  experiment.user = proto.user();
  experiment.time_created_secs = proto.time_created_secs();
  for (const auto& info : proto.hparam_infos()) experiment.hparams.push_back(get_hparam_info(info));
  for (const auto& info : proto.metric_infos()) experiment.metrics.push_back(get_metric_info(info));
  return experiment;
}

SessionStartInfo get_session_start(const pb::SessionStartInfo& proto) {
  SessionStartInfo info;
  for (const auto& [name, value] : proto.hparams()) {
    if (auto v = get_value(value)) info.hparams.insert_or_assign(name, std::move(*v));
  }
  info.model_uri = proto.model_uri();
  info.monitor_url = proto.monitor_url();
  info.group_name = proto.group_name();
  info.start_time_secs = proto.start_time_secs();
  return info;
}

}  // namespace

std::string encode_experiment_content(std::span<const HParamSpec> hparams,
                                      std::span<const MetricSpec> metrics, double time_created) {
  pb::HParamsPluginData data;  // version 0, the only one TensorBoard accepts
  pb::Experiment& experiment = *data.mutable_experiment();
  experiment.set_time_created_secs(time_created);
  for (const HParamSpec& spec : hparams) set_hparam_info(*experiment.add_hparam_infos(), spec);
  for (const MetricSpec& spec : metrics) set_metric_info(*experiment.add_metric_infos(), spec);
  return serialize_deterministic(data);
}

std::string encode_session_start_content(const std::map<std::string, HParamValue>& hparams,
                                         std::string_view group_name, double start_time) {
  pb::HParamsPluginData data;
  pb::SessionStartInfo& info = *data.mutable_session_start_info();
  for (const auto& [name, value] : hparams) set_value((*info.mutable_hparams())[name], value);
  info.set_group_name(std::string(group_name));
  info.set_start_time_secs(start_time);
  return serialize_deterministic(data);
}

std::string encode_session_end_content(SessionStatus status, double end_time) {
  pb::HParamsPluginData data;
  pb::SessionEndInfo& info = *data.mutable_session_end_info();
  info.set_status(static_cast<pb::SessionStatus>(status));
  info.set_end_time_secs(end_time);
  return serialize_deterministic(data);
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
  pb::HParamsPluginData proto;
  if (content.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(content.data(), static_cast<int>(content.size()))) {
    throw ProtoError(
        fmt::format("{} bytes do not parse as an HParamsPluginData protobuf", content.size()));
  }
  HParamsPluginData data;
  data.version = proto.version();
  switch (proto.data_case()) {
    case pb::HParamsPluginData::kExperiment: data.data = get_experiment(proto.experiment()); break;
    case pb::HParamsPluginData::kSessionStartInfo:
      data.data = get_session_start(proto.session_start_info());
      break;
    case pb::HParamsPluginData::kSessionEndInfo:
      data.data = SessionEndInfo{
          .status = static_cast<SessionStatus>(proto.session_end_info().status()),
          .end_time_secs = proto.session_end_info().end_time_secs()};
      break;
    default: break;
  }
  return data;
}

}  // namespace recrun::tensorboard
