// Reads TensorBoard event files back, for the tests: they check what the host's writer
// (framework/src/tensorboard/event_writer) wrote, and what a killed writer left behind. recrun
// itself never reads event files, so this lives with the tests, not in the host library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tensorboard/proto_error.hpp"

namespace recrun::tensorboard {

/// The parts of a TensorProto that TensorBoard summaries use.
struct Tensor {
  std::int64_t dtype = 0;               ///< tensorflow DataType (1 float, 2 double, 7 string)
  std::vector<std::int64_t> shape;      ///< dimension sizes; empty for a scalar
  std::vector<float> float_val;         ///< DT_FLOAT values
  std::vector<double> double_val;       ///< DT_DOUBLE values
  std::vector<std::string> string_val;  ///< DT_STRING values
  std::string tensor_content;           ///< raw little-endian contents, if used instead
};

/// One Summary.Value with its metadata flattened.
struct SummaryValue {
  std::string tag;                    ///< series name, e.g. "train/loss"
  std::optional<float> simple_value;  ///< legacy scalar payload
  std::optional<Tensor> tensor;       ///< tensor payload (text, hparams, new-style scalars)
  bool has_metadata = false;          ///< whether this value carried SummaryMetadata
  std::string plugin_name;            ///< metadata.plugin_data.plugin_name
  std::string plugin_content;         ///< metadata.plugin_data.content (raw bytes)
  std::string display_name;           ///< metadata.display_name
  std::string summary_description;    ///< metadata.summary_description
  std::int64_t data_class = 0;        ///< metadata.data_class (1 scalar, 2 tensor)

  /// The scalar this value holds: simple_value, or a one-element float/double tensor.
  std::optional<double> scalar() const;
};

/// One decoded Event record.
struct Event {
  double wall_time = 0.0;            ///< seconds since the Unix epoch
  std::int64_t step = 0;             ///< global step
  std::string file_version;          ///< set only in a file's first record
  bool has_summary = false;          ///< whether the event carried a Summary
  std::vector<SummaryValue> values;  ///< Summary.value entries, in file order
};

/// How strictly to read.
struct ReadOptions {
  /// Accept a final record that is cut short (a writer killed mid-write) and stop before it,
  /// instead of throwing. A record whose bytes are all present but whose CRC fails is an
  /// error either way.
  bool allow_truncated_tail = false;
};

/// Everything read from one file.
struct EventFile {
  std::vector<Event> events;      ///< events in file order
  bool truncated_tail = false;    ///< a partial final record was skipped
  std::uint64_t valid_bytes = 0;  ///< length of the file's complete, verified prefix
};

/// Splits a TFRecord file into record payloads, verifying both CRCs of each record. Throws
/// std::runtime_error naming the file and the record's byte offset on a CRC mismatch or
/// (unless allowed) a truncated record.
std::vector<std::string> read_records(const std::filesystem::path& path, ReadOptions options = {},
                                      bool* truncated_tail = nullptr,
                                      std::uint64_t* valid_bytes = nullptr);

/// Decodes one serialized Event (with libprotobuf); throws ProtoError on malformed bytes.
Event decode_event(std::string_view serialized);

/// Reads and decodes an event file, with details on a truncated tail.
EventFile read_event_file_detailed(const std::filesystem::path& path, ReadOptions options = {});

/// Reads and decodes every event of an event file.
std::vector<Event> read_event_file(const std::filesystem::path& path, ReadOptions options = {});

}  // namespace recrun::tensorboard
