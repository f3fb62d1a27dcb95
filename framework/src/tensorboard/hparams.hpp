// Summaries for TensorBoard's HParams plugin (tensorboard/plugins/hparams), so that the
// HPARAMS tab lists every run with its hyperparameters and final metric values.
//
// How TensorBoard joins them: the run holding `_hparams_/session_start_info` is a session;
// its metric values are the ordinary scalar series in that same run whose tags equal the
// experiment's metric tags (e.g. "test/NDCG@10"). The experiment config says which
// hyperparameters and metrics to show as columns.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tensorboard/proto_error.hpp"

namespace recrun::tensorboard {

class EventWriter;

/// A hyperparameter value as the HParams plugin stores it (google.protobuf.Value). A string
/// literal becomes std::string; integers do not convert implicitly (C++20 forbids the
/// narrowing), so pass `static_cast<double>(n)`.
using HParamValue = std::variant<double, std::string, bool>;

/// hparams api.proto DataType.
enum class HParamType : int { unset = 0, string = 1, boolean = 2, float64 = 3 };

/// hparams api.proto Status: how a session (one run) ended.
enum class SessionStatus : int { unknown = 0, success = 1, failure = 2, running = 3 };

/// hparams api.proto DatasetType.
enum class DatasetType : int { unknown = 0, training = 1, validation = 2 };

/// Tags under which the plugin looks for its data.
inline constexpr std::string_view hparams_experiment_tag = "_hparams_/experiment";
inline constexpr std::string_view hparams_session_start_tag = "_hparams_/session_start_info";
inline constexpr std::string_view hparams_session_end_tag = "_hparams_/session_end_info";

/// One hyperparameter column (HParamInfo).
struct HParamSpec {
  std::string name{};                                          ///< key used in session_start
  HParamType type = HParamType::unset;                         ///< value type
  std::vector<HParamValue> domain_discrete{};                  ///< allowed values, if discrete
  std::optional<std::pair<double, double>> domain_interval{};  ///< [min, max], if numeric range
  std::string display_name{};                                  ///< column title; empty: name
  std::string description{};                                   ///< markdown help text
};

/// One metric column (MetricInfo). Its values are the scalar series named `tag`.
struct MetricSpec {
  std::string tag{};                                ///< scalar tag, e.g. "test/NDCG@10"
  std::string group{};                              ///< run sub-directory; empty: same run
  std::string display_name{};                       ///< column title; empty: tag
  std::string description{};                        ///< markdown help text
  DatasetType dataset_type = DatasetType::unknown;  ///< training or validation
};

/// Writes the experiment config (`_hparams_/experiment`): the hyperparameter and metric
/// columns. Write it once, in the experiment's top directory or in each run.
void write_hparams_config(EventWriter& writer, std::span<const HParamSpec> hparams,
                          std::span<const MetricSpec> metrics,
                          std::optional<double> time_created = {});

/// Convenience overload: metrics given by scalar tag only.
void write_hparams_config(EventWriter& writer, std::span<const HParamSpec> hparams,
                          std::span<const std::string> metric_tags,
                          std::optional<double> time_created = {});

/// Marks the writer's run as a session with these hyperparameter values. Runs that share
/// `group_name` are aggregated as repeats (e.g. seeds); empty: the run is its own group.
void write_session_start(EventWriter& writer, const std::map<std::string, HParamValue>& hparams,
                         std::string_view group_name = {}, std::optional<double> start_time = {});

/// Records how the session ended.
void write_session_end(EventWriter& writer, SessionStatus status,
                       std::optional<double> end_time = {});

/// Serialized HParamsPluginData for each kind; what the write_* functions put in
/// SummaryMetadata.plugin_data.content.
std::string encode_experiment_content(std::span<const HParamSpec> hparams,
                                      std::span<const MetricSpec> metrics, double time_created);
std::string encode_session_start_content(const std::map<std::string, HParamValue>& hparams,
                                         std::string_view group_name, double start_time);
std::string encode_session_end_content(SessionStatus status, double end_time);

/// Decoded Experiment message.
struct HParamsExperiment {
  std::string name{};               ///< Experiment.name
  std::string description{};        ///< Experiment.description
  std::string user;                 ///< Experiment.user
  double time_created_secs = 0.0;   ///< Experiment.time_created_secs
  std::vector<HParamSpec> hparams;  ///< Experiment.hparam_infos
  std::vector<MetricSpec> metrics;  ///< Experiment.metric_infos
};

/// Decoded SessionStartInfo message. Null, struct and list values are left out of `hparams`.
struct SessionStartInfo {
  std::map<std::string, HParamValue> hparams;  ///< hyperparameter values by name
  std::string model_uri;                       ///< checkpoint location
  std::string monitor_url;                     ///< monitoring page
  std::string group_name;                      ///< session group
  double start_time_secs = 0.0;                ///< start time, Unix seconds
};

/// Decoded SessionEndInfo message.
struct SessionEndInfo {
  SessionStatus status = SessionStatus::unknown;  ///< how the session ended
  double end_time_secs = 0.0;                     ///< end time, Unix seconds
};

/// Decoded HParamsPluginData: a version and one of the three payloads.
struct HParamsPluginData {
  std::int32_t version = 0;  ///< schema version; TensorBoard accepts only 0
  std::variant<std::monostate, HParamsExperiment, SessionStartInfo, SessionEndInfo> data;
};

/// Decodes SummaryMetadata.plugin_data.content of an hparams summary; throws ProtoError on
/// malformed bytes.
HParamsPluginData decode_hparams_plugin_data(std::string_view content);

}  // namespace recrun::tensorboard
