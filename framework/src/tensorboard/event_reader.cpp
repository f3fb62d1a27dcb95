#include "tensorboard/event_reader.hpp"

#include <fmt/format.h>

#include <bit>
#include <fstream>
#include <stdexcept>

#include "core/safe_file.hpp"
#include "tensorboard/crc32c.hpp"
#include "tensorboard/proto_wire.hpp"

namespace recrun::tensorboard {

using namespace recrun::tensorboard;
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
  return core::read_regular_file(path, std::uintmax_t{16} << 30, "event file");
}

// Repeated float/double fields may arrive packed (one length-delimited run) or one per tag;
// protobuf parsers must accept both, so we do too.
template <typename T, typename Decode>
void append_repeated_fixed(const ProtoField& field, WireType element_type, std::vector<T>& out,
                           Decode decode) {
  if (field.type != WireType::length_delimited) {
    out.push_back(decode(field));
    return;
  }
  const std::string_view packed = field.bytes;
  const std::size_t width = element_type == WireType::fixed64 ? 8 : 4;
  if (packed.size() % width != 0) {
    throw ProtoError(fmt::format("packed field {} has a partial element", field.number));
  }
  for (std::size_t pos = 0; pos < packed.size(); pos += width) {
    const ProtoField element{field.number, element_type, load_le(packed, pos, width), {}};
    out.push_back(decode(element));
  }
}

std::vector<std::int64_t> decode_shape(std::string_view bytes) {
  std::vector<std::int64_t> dims;
  ProtoReader shape(bytes);
  while (auto field = shape.next()) {
    if (field->number != 2) continue;  // TensorShapeProto.dim
    std::int64_t size = 0;
    ProtoReader dim(field->as_bytes());
    while (auto d = dim.next()) {
      if (d->number == 1) size = d->as_int64();  // Dim.size
    }
    dims.push_back(size);
  }
  return dims;
}

Tensor decode_tensor(std::string_view bytes) {
  Tensor tensor;
  ProtoReader reader(bytes);
  while (auto field = reader.next()) {
    switch (field->number) {
      case 1: tensor.dtype = field->as_int64(); break;
      case 2: tensor.shape = decode_shape(field->as_bytes()); break;
      case 4: tensor.tensor_content = std::string(field->as_bytes()); break;
      case 5:
        append_repeated_fixed(*field, WireType::fixed32, tensor.float_val,
                              [](const ProtoField& f) { return f.as_float(); });
        break;
      case 6:
        append_repeated_fixed(*field, WireType::fixed64, tensor.double_val,
                              [](const ProtoField& f) { return f.as_double(); });
        break;
      case 8: tensor.string_val.emplace_back(field->as_bytes()); break;
      default: break;
    }
  }
  return tensor;
}

void decode_metadata(std::string_view bytes, SummaryValue& value) {
  value.has_metadata = true;
  ProtoReader reader(bytes);
  while (auto field = reader.next()) {
    switch (field->number) {
      case 1: {
        ProtoReader plugin(field->as_bytes());
        while (auto p = plugin.next()) {
          if (p->number == 1) value.plugin_name = std::string(p->as_bytes());
          if (p->number == 2) value.plugin_content = std::string(p->as_bytes());
        }
        break;
      }
      case 2: value.display_name = std::string(field->as_bytes()); break;
      case 3: value.summary_description = std::string(field->as_bytes()); break;
      case 4: value.data_class = field->as_int64(); break;
      default: break;
    }
  }
}

SummaryValue decode_value(std::string_view bytes) {
  SummaryValue value;
  ProtoReader reader(bytes);
  while (auto field = reader.next()) {
    switch (field->number) {
      case 1: value.tag = std::string(field->as_bytes()); break;
      case 2: value.simple_value = field->as_float(); break;
      case 8: value.tensor = decode_tensor(field->as_bytes()); break;
      case 9: decode_metadata(field->as_bytes(), value); break;
      default: break;  // images, histograms, audio: not needed here
    }
  }
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
  Event event;
  ProtoReader reader(serialized);
  while (auto field = reader.next()) {
    switch (field->number) {
      case 1: event.wall_time = field->as_double(); break;
      case 2: event.step = field->as_int64(); break;
      case 3: event.file_version = std::string(field->as_bytes()); break;
      case 5: {
        event.has_summary = true;
        ProtoReader summary(field->as_bytes());
        while (auto v = summary.next()) {
          if (v->number == 1) event.values.push_back(decode_value(v->as_bytes()));
        }
        break;
      }
      default: break;  // graphs, session logs, run metadata
    }
  }
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
