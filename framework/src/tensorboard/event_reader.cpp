#include "tensorboard/event_reader.hpp"

#include <fmt/format.h>

#include <bit>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "sdk/safe_file.hpp"
#include "tensorboard/crc32c.hpp"
#include "tensorboard/proto/event.pb.h"
#include "tensorboard/proto_error.hpp"

namespace recrun::tensorboard {
namespace {

constexpr std::size_t header_size = 12;  // uint64 length + uint32 masked CRC of it
constexpr std::size_t footer_size = 4;   // uint32 masked CRC of the data

std::uint64_t load_le(std::string_view bytes, std::size_t offset, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return v;
}

// Event files are named by users (and tools); a FIFO or /dev/zero must not hang or exhaust memory.
std::string read_whole_file(const std::filesystem::path& path) {
  return util::read_regular_file(path, std::uintmax_t{16} << 30, "event file");
}

Tensor convert_tensor(const pb::TensorProto& proto) {
  Tensor tensor;
  tensor.dtype = proto.dtype();
  for (const auto& dim : proto.tensor_shape().dim()) tensor.shape.push_back(dim.size());
  tensor.float_val.assign(proto.float_val().begin(), proto.float_val().end());
  tensor.double_val.assign(proto.double_val().begin(), proto.double_val().end());
  tensor.string_val.assign(proto.string_val().begin(), proto.string_val().end());
  tensor.tensor_content = proto.tensor_content();
  return tensor;
}

SummaryValue convert_value(const pb::Summary::Value& proto) {
  SummaryValue value;
  value.tag = proto.tag();
  if (proto.has_simple_value()) value.simple_value = proto.simple_value();
  if (proto.has_tensor()) value.tensor = convert_tensor(proto.tensor());
  value.has_metadata = proto.has_metadata();
  const pb::SummaryMetadata& metadata = proto.metadata();
  value.plugin_name = metadata.plugin_data().plugin_name();
  value.plugin_content = metadata.plugin_data().content();
  value.display_name = metadata.display_name();
  value.summary_description = metadata.summary_description();
  value.data_class = metadata.data_class();
  return value;
}

}  // namespace

std::optional<double> SummaryValue::scalar() const {
  if (simple_value) return *simple_value;
  if (!tensor) return std::nullopt;
  if (tensor->float_val.size() == 1) return tensor->float_val[0];
  if (tensor->double_val.size() == 1) return tensor->double_val[0];
  const std::string& raw = tensor->tensor_content;
  if (tensor->dtype == 1 && raw.size() == 4) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(load_le(raw, 0, 4)));
  }
  if (tensor->dtype == 2 && raw.size() == 8) return std::bit_cast<double>(load_le(raw, 0, 8));
  return std::nullopt;
}

Event decode_event(std::string_view serialized) {
  pb::Event proto;
  if (serialized.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    throw ProtoError(fmt::format("{} bytes do not parse as an Event protobuf", serialized.size()));
  }
  Event event;
  event.wall_time = proto.wall_time();
  event.step = proto.step();
  event.file_version = proto.file_version();
  event.has_summary = proto.has_summary();
  for (const auto& value : proto.summary().value()) event.values.push_back(convert_value(value));
  return event;
}

std::vector<std::string> read_records(const std::filesystem::path& path, ReadOptions options,
                                      bool* truncated_tail, std::uint64_t* valid_bytes) {
  const std::string bytes = read_whole_file(path);
  std::vector<std::string> records;
  std::size_t offset = 0;
  bool truncated = false;
  auto truncation = [&](std::string_view what) {
    if (!options.allow_truncated_tail) {
      throw std::runtime_error(fmt::format(
          "event file '{}' is truncated at byte offset {}: {} (file size {}); a writer was "
          "probably killed mid-write, read with allow_truncated_tail to use the records before it",
          path.string(), offset, what, bytes.size()));
    }
    truncated = true;
  };
  while (offset < bytes.size()) {
    const std::size_t remaining = bytes.size() - offset;
    if (remaining < header_size) {
      truncation("partial record header");
      break;
    }
    const std::uint64_t length = load_le(bytes, offset, 8);
    const auto stored_length_crc = static_cast<std::uint32_t>(load_le(bytes, offset + 8, 4));
    const std::uint32_t length_crc = masked_crc32c(std::string_view(bytes).substr(offset, 8));
    if (stored_length_crc != length_crc) {
      throw std::runtime_error(
          fmt::format("event file '{}' is corrupt at byte offset {}: record length CRC mismatch "
                      "(stored {:#010x}, computed {:#010x})",
                      path.string(), offset, stored_length_crc, length_crc));
    }
    if (length > remaining - header_size || remaining - header_size - length < footer_size) {
      truncation(fmt::format("record of {} bytes but only {} bytes remain", length, remaining));
      break;
    }
    const std::string_view data = std::string_view(bytes).substr(offset + header_size, length);
    const auto stored_data_crc =
        static_cast<std::uint32_t>(load_le(bytes, offset + header_size + length, 4));
    const std::uint32_t data_crc = masked_crc32c(data);
    if (stored_data_crc != data_crc) {
      throw std::runtime_error(
          fmt::format("event file '{}' is corrupt at byte offset {}: record data CRC mismatch "
                      "(stored {:#010x}, computed {:#010x})",
                      path.string(), offset, stored_data_crc, data_crc));
    }
    records.emplace_back(data);
    offset += header_size + length + footer_size;
  }
  if (truncated_tail != nullptr) *truncated_tail = truncated;
  if (valid_bytes != nullptr) *valid_bytes = offset;
  return records;
}

EventFile read_event_file_detailed(const std::filesystem::path& path, ReadOptions options) {
  EventFile file;
  // Offsets are recomputed here (cheaply, from the record sizes) so that a decode error can
  // name the record's position in the file.
  const std::vector<std::string> records =
      read_records(path, options, &file.truncated_tail, &file.valid_bytes);
  file.events.reserve(records.size());
  std::uint64_t offset = 0;
  for (const std::string& record : records) {
    try {
      file.events.push_back(decode_event(record));
    } catch (const ProtoError& e) {
      throw std::runtime_error(
          fmt::format("event file '{}': record at byte offset {} is not a "
                      "valid Event: {}",
                      path.string(), offset, e.what()));
    }
    offset += header_size + record.size() + footer_size;
  }
  return file;
}

std::vector<Event> read_event_file(const std::filesystem::path& path, ReadOptions options) {
  return read_event_file_detailed(path, options).events;
}

}  // namespace recrun::tensorboard
