#include "tensorboard/event_writer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "tensorboard/crc32c.hpp"
#include "tensorboard/proto_wire.hpp"

namespace recrun::tensorboard {
namespace {

// Field numbers from tensorflow/core/util/event.proto and framework/summary.proto.
namespace event_field {
constexpr std::uint32_t wall_time = 1;
constexpr std::uint32_t step = 2;
constexpr std::uint32_t file_version = 3;
constexpr std::uint32_t summary = 5;
}  // namespace event_field
constexpr std::uint32_t summary_value_field = 1;
namespace value_field {
constexpr std::uint32_t tag = 1;
constexpr std::uint32_t simple_value = 2;
constexpr std::uint32_t tensor = 8;
constexpr std::uint32_t metadata = 9;
}  // namespace value_field
namespace metadata_field {
constexpr std::uint32_t plugin_data = 1;
constexpr std::uint32_t data_class = 4;
}  // namespace metadata_field
namespace plugin_data_field {
constexpr std::uint32_t plugin_name = 1;
}  // namespace plugin_data_field
namespace tensor_field {
constexpr std::uint32_t dtype = 1;
constexpr std::uint32_t tensor_shape = 2;
constexpr std::uint32_t string_val = 8;
}  // namespace tensor_field
constexpr std::int64_t dt_string = 7;
constexpr std::int64_t data_class_tensor = 2;

// Distinguishes files that one process opens in the same second in the same directory.
std::atomic<unsigned> file_counter{0};

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
  std::string name(buffer);
  // The name becomes part of a file name; keep it to characters every filesystem accepts.
  for (char& c : name) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
  }
  return name;
}

std::string plugin_metadata(std::string_view plugin_name, std::int64_t data_class) {
  ProtoWriter plugin_data;
  plugin_data.add_bytes(plugin_data_field::plugin_name, plugin_name);
  ProtoWriter metadata;
  metadata.add_message(metadata_field::plugin_data, plugin_data);
  if (data_class != 0) metadata.add_int64(metadata_field::data_class, data_class);
  return metadata.take();
}

}  // namespace

double now_seconds() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(since_epoch).count();
}

std::string frame_record(std::string_view data) {
  std::string header(8, '\0');
  const std::uint64_t length = data.size();
  for (std::size_t i = 0; i < 8; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  auto append_le32 = [](std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::string record;
  record.reserve(data.size() + 16);
  record += header;
  append_le32(record, masked_crc32c(header));
  record.append(data);
  append_le32(record, masked_crc32c(data));
  return record;
}

// proto3 omits fields holding their default value; doing the same keeps our bytes identical
// to what TensorFlow's own writer produces.
std::string encode_file_version_event(double wall_time) {
  ProtoWriter event;
  if (wall_time != 0.0) event.add_double(event_field::wall_time, wall_time);
  event.add_bytes(event_field::file_version, event_file_version);
  return event.take();
}

std::string encode_summary_event(double wall_time, std::int64_t step,
                                 std::string_view serialized_value) {
  ProtoWriter summary;
  summary.add_bytes(summary_value_field, serialized_value);
  ProtoWriter event;
  if (wall_time != 0.0) event.add_double(event_field::wall_time, wall_time);
  if (step != 0) event.add_int64(event_field::step, step);
  event.add_message(event_field::summary, summary);
  return event.take();
}

EventWriter::EventWriter(std::filesystem::path dir, EventWriterOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error(fmt::format(
        "cannot create TensorBoard directory '{}': {}; check the path and its permissions",
        dir.string(), ec.message()));
  }
  const double start_time = options.start_time.value_or(now_seconds());
  const auto seconds = static_cast<long long>(start_time);
  const std::string host = host_name();
  const long long pid = ::getpid();
  // "x" (C11 exclusive create) never appends to another writer's file; on a clash we move
  // on to the next counter value.
  for (int attempt = 0; attempt < 1000 && file_ == nullptr; ++attempt) {
    path_ = dir / fmt::format("events.out.tfevents.{:010}.{}.{}.{}", seconds, host, pid,
                              file_counter.fetch_add(1));
    file_ = std::fopen(path_.c_str(), "wbx");
    if (file_ == nullptr && errno != EEXIST) break;
  }
  if (file_ == nullptr) {
    throw std::runtime_error(fmt::format("cannot create TensorBoard event file '{}': {}",
                                         path_.string(), std::strerror(errno)));
  }
  try {
    std::lock_guard lock(mutex_);
    write_locked(encode_file_version_event(start_time));
    // Push the header out at once so that a watching TensorBoard sees a valid file.
    std::fflush(file_);
  } catch (...) {
    std::fclose(file_);
    file_ = nullptr;
    throw;
  }
}

EventWriter::~EventWriter() {
  if (file_ == nullptr) return;
  // Errors here have nowhere to go: a destructor must not throw, and the data written so far
  // is already framed record by record, so readers can still use it.
  std::fflush(file_);
  std::fclose(file_);
}

void EventWriter::write_locked(std::string_view serialized_event) {
  const std::string record = frame_record(serialized_event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    throw std::runtime_error(fmt::format("cannot write TensorBoard event file '{}': {}",
                                         path_.string(), std::strerror(errno)));
  }
}

bool EventWriter::first_use_locked(std::string_view tag) {
  if (tags_with_metadata_.find(tag) != tags_with_metadata_.end()) return false;
  tags_with_metadata_.emplace(tag);
  return true;
}

void EventWriter::write_event(std::string_view serialized_event) {
  std::lock_guard lock(mutex_);
  write_locked(serialized_event);
}

void EventWriter::add_summary_value(std::string_view serialized_value, std::int64_t step,
                                    std::optional<double> wall_time) {
  const std::string event =
      encode_summary_event(wall_time.value_or(now_seconds()), step, serialized_value);
  std::lock_guard lock(mutex_);
  write_locked(event);
}

void EventWriter::add_scalar(std::string_view tag, double value, std::int64_t step,
                             std::optional<double> wall_time) {
  const double time = wall_time.value_or(now_seconds());
  std::lock_guard lock(mutex_);
  ProtoWriter v;
  v.add_bytes(value_field::tag, tag);
  v.add_float(value_field::simple_value, static_cast<float>(value));
  // data_class stays unset: TensorBoard derives it from the plugin name for simple_value
  // scalars, exactly as it does for files written by TensorFlow 1.x and PyTorch.
  if (first_use_locked(tag)) v.add_bytes(value_field::metadata, plugin_metadata("scalars", 0));
  write_locked(encode_summary_event(time, step, v.bytes()));
}

void EventWriter::add_text(std::string_view tag, std::string_view text, std::int64_t step,
                           std::optional<double> wall_time) {
  const double time = wall_time.value_or(now_seconds());
  std::lock_guard lock(mutex_);
  // A rank-0 DT_STRING tensor; the empty TensorShapeProto is what marks it as a scalar.
  ProtoWriter tensor;
  tensor.add_int64(tensor_field::dtype, dt_string);
  tensor.add_bytes(tensor_field::tensor_shape, {});
  tensor.add_bytes(tensor_field::string_val, text);
  ProtoWriter v;
  v.add_bytes(value_field::tag, tag);
  v.add_message(value_field::tensor, tensor);
  if (first_use_locked(tag)) {
    v.add_bytes(value_field::metadata, plugin_metadata("text", data_class_tensor));
  }
  write_locked(encode_summary_event(time, step, v.bytes()));
}

void EventWriter::flush(bool sync_to_disk) {
  std::lock_guard lock(mutex_);
  if (std::fflush(file_) != 0) {
    throw std::runtime_error(fmt::format("cannot flush TensorBoard event file '{}': {}",
                                         path_.string(), std::strerror(errno)));
  }
  if (sync_to_disk && ::fsync(::fileno(file_)) != 0) {
    throw std::runtime_error(fmt::format("cannot fsync TensorBoard event file '{}': {}",
                                         path_.string(), std::strerror(errno)));
  }
}

}  // namespace recrun::tensorboard
