#include "tensorboard/event_writer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "tensorboard/crc32c.hpp"
#include "tensorboard/proto/event.pb.h"
#include "tensorboard/proto_error.hpp"

namespace recrun::tensorboard {
namespace {

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

void set_plugin(pb::SummaryMetadata& metadata, std::string_view plugin_name) {
  metadata.mutable_plugin_data()->set_plugin_name(std::string(plugin_name));
}

// An Event holding one Summary.Value, which the caller fills in.
pb::Summary::Value& summary_event(pb::Event& event, double wall_time, std::int64_t step) {
  event.set_wall_time(wall_time);
  event.set_step(step);
  return *event.mutable_summary()->add_value();
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

std::string encode_file_version_event(double wall_time) {
  pb::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version(std::string(event_file_version));
  return event.SerializeAsString();
}

std::string encode_summary_event(double wall_time, std::int64_t step,
                                 std::string_view serialized_value) {
  pb::Event event;
  pb::Summary::Value& value = summary_event(event, wall_time, step);
  if (serialized_value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !value.ParseFromArray(serialized_value.data(), static_cast<int>(serialized_value.size()))) {
    throw ProtoError(fmt::format("{} bytes given as a Summary.Value are not one",
                                 serialized_value.size()));
  }
  return event.SerializeAsString();
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
  pb::Event event;
  pb::Summary::Value& v = summary_event(event, wall_time.value_or(now_seconds()), step);
  v.set_tag(std::string(tag));
  v.set_simple_value(static_cast<float>(value));
  std::lock_guard lock(mutex_);
  // data_class stays unset: TensorBoard derives it from the plugin name for simple_value
  // scalars, exactly as it does for files written by TensorFlow 1.x and PyTorch.
  if (first_use_locked(tag)) set_plugin(*v.mutable_metadata(), "scalars");
  write_locked(event.SerializeAsString());
}

void EventWriter::add_text(std::string_view tag, std::string_view text, std::int64_t step,
                           std::optional<double> wall_time) {
  pb::Event event;
  pb::Summary::Value& v = summary_event(event, wall_time.value_or(now_seconds()), step);
  v.set_tag(std::string(tag));
  // A rank-0 DT_STRING tensor; the present but empty shape is what marks it as a scalar.
  pb::TensorProto& tensor = *v.mutable_tensor();
  tensor.set_dtype(pb::DT_STRING);
  tensor.mutable_tensor_shape();
  tensor.add_string_val(std::string(text));
  std::lock_guard lock(mutex_);
  if (first_use_locked(tag)) {
    pb::SummaryMetadata& metadata = *v.mutable_metadata();
    set_plugin(metadata, "text");
    metadata.set_data_class(pb::DATA_CLASS_TENSOR);
  }
  write_locked(event.SerializeAsString());
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
