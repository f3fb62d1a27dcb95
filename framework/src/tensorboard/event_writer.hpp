// Writes TensorBoard event files: TFRecord-framed Event protos, encoded by libprotobuf from
// recrun's own .proto files (tensorboard/proto/). One EventWriter owns one file in one run
// directory. No protobuf type appears in this header: only the tensorboard/ sources see them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace recrun::tensorboard {

/// The first record of every event file carries this version string.
inline constexpr std::string_view event_file_version = "brain.Event:2";

/// Seconds since the Unix epoch with sub-second precision, as Event.wall_time stores them.
double now_seconds();

/// Frames one record as TFRecord: uint64 length (LE), masked CRC32C of the length bytes,
/// the data, masked CRC32C of the data.
std::string frame_record(std::string_view data);

/// Serializes Event{wall_time, file_version}: the record every event file starts with.
std::string encode_file_version_event(double wall_time);

/// Serializes Event{wall_time, step, summary{value: [serialized_value]}}; throws ProtoError
/// if `serialized_value` is not a Summary.Value.
std::string encode_summary_event(double wall_time, std::int64_t step,
                                 std::string_view serialized_value);

/// Construction-time choices for an EventWriter.
struct EventWriterOptions {
  /// Time stamped into the file name and the file-version record; default: now. Fixing it
  /// makes the file's first record reproducible byte for byte.
  std::optional<double> start_time{};
};

/// Appends events to `<dir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<counter>`.
/// Thread-safe. Flushes and closes in the destructor, which never throws; write errors in
/// other calls throw std::runtime_error naming the file.
class EventWriter {
 public:
  /// Creates `dir` (and parents) and a new event file in it, then writes the file-version
  /// record. Throws std::runtime_error if the directory or file cannot be created.
  explicit EventWriter(std::filesystem::path dir, EventWriterOptions options = {});
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Logs a scalar (stored as float32 simple_value, like every TensorBoard writer). The first
  /// value of each tag also carries scalars-plugin metadata.
  void add_scalar(std::string_view tag, double value, std::int64_t step,
                  std::optional<double> wall_time = {});

  /// Logs a (markdown) text summary for the text plugin as a scalar string tensor.
  void add_text(std::string_view tag, std::string_view text, std::int64_t step,
                std::optional<double> wall_time = {});

  /// Logs one pre-serialized Summary.Value (for plugins such as hparams).
  void add_summary_value(std::string_view serialized_value, std::int64_t step,
                         std::optional<double> wall_time = {});

  /// Frames and appends one pre-serialized Event.
  void write_event(std::string_view serialized_event);

  /// Pushes buffered records to the OS; with `sync_to_disk` also fsyncs, so that the data
  /// survives a machine crash, not only a process crash.
  void flush(bool sync_to_disk = false);

  /// The event file being written.
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_locked(std::string_view serialized_event);
  /// True the first time a tag is seen: TensorBoard keeps the first metadata per tag, so
  /// repeating it on every value only costs space.
  bool first_use_locked(std::string_view tag);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
  std::set<std::string, std::less<>> tags_with_metadata_;
};

}  // namespace recrun::tensorboard
