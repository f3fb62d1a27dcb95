#include "tensorboard/proto_wire.hpp"

#include <fmt/format.h>

#include <bit>

namespace recrun::tensorboard {
namespace {

const char* wire_type_name(WireType type) {
  switch (type) {
    case WireType::varint: return "varint";
    case WireType::fixed64: return "fixed64";
    case WireType::length_delimited: return "length-delimited";
    case WireType::fixed32: return "fixed32";
  }
  return "unknown";
}

[[noreturn]] void throw_wrong_type(const ProtoField& field, WireType wanted) {
  throw ProtoError(fmt::format("protobuf field {} has wire type {}, expected {}", field.number,
                               wire_type_name(field.type), wire_type_name(wanted)));
}

}  // namespace

void ProtoWriter::put_varint(std::uint64_t value) {
  while (value >= 0x80) {
    buffer_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  buffer_.push_back(static_cast<char>(value));
}

void ProtoWriter::put_fixed32(std::uint32_t value) {
  for (int i = 0; i < 4; ++i) buffer_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void ProtoWriter::put_fixed64(std::uint64_t value) {
  for (int i = 0; i < 8; ++i) buffer_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void ProtoWriter::put_tag(std::uint32_t field, WireType type) {
  put_varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(type));
}

void ProtoWriter::add_varint(std::uint32_t field, std::uint64_t value) {
  put_tag(field, WireType::varint);
  put_varint(value);
}

void ProtoWriter::add_int64(std::uint32_t field, std::int64_t value) {
  add_varint(field, static_cast<std::uint64_t>(value));
}

void ProtoWriter::add_double(std::uint32_t field, double value) {
  put_tag(field, WireType::fixed64);
  put_fixed64(std::bit_cast<std::uint64_t>(value));
}

void ProtoWriter::add_float(std::uint32_t field, float value) {
  put_tag(field, WireType::fixed32);
  put_fixed32(std::bit_cast<std::uint32_t>(value));
}

void ProtoWriter::add_bytes(std::uint32_t field, std::string_view bytes) {
  put_tag(field, WireType::length_delimited);
  put_varint(bytes.size());
  buffer_.append(bytes);
}

std::uint64_t ProtoField::as_uint64() const {
  if (type != WireType::varint) throw_wrong_type(*this, WireType::varint);
  return scalar;
}

double ProtoField::as_double() const {
  if (type != WireType::fixed64) throw_wrong_type(*this, WireType::fixed64);
  return std::bit_cast<double>(scalar);
}

float ProtoField::as_float() const {
  if (type != WireType::fixed32) throw_wrong_type(*this, WireType::fixed32);
  return std::bit_cast<float>(static_cast<std::uint32_t>(scalar));
}

std::string_view ProtoField::as_bytes() const {
  if (type != WireType::length_delimited) throw_wrong_type(*this, WireType::length_delimited);
  return bytes;
}

std::uint64_t ProtoReader::read_varint() {
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= data_.size()) {
      throw ProtoError(
          fmt::format("protobuf varint runs past the end of the message at byte {}", pos_));
    }
    const auto byte = static_cast<unsigned char>(data_[pos_++]);
    value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  throw ProtoError(fmt::format("protobuf varint longer than 10 bytes ending at byte {}", pos_));
}

std::optional<ProtoField> ProtoReader::next() {
  if (pos_ >= data_.size()) return std::nullopt;
  const std::size_t tag_pos = pos_;
  const std::uint64_t tag = read_varint();
  ProtoField field;
  const std::uint64_t number = tag >> 3;
  if (number == 0 || number > 0x1FFFFFFF) {
    throw ProtoError(fmt::format("invalid protobuf field number {} at byte {}", number, tag_pos));
  }
  field.number = static_cast<std::uint32_t>(number);
  const auto type = static_cast<std::uint8_t>(tag & 7);
  auto take_fixed = [&](std::size_t width) {
    if (data_.size() - pos_ < width) {
      throw ProtoError(
          fmt::format("protobuf field {} at byte {} is cut short", field.number, tag_pos));
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    }
    pos_ += width;
    return v;
  };
  switch (type) {
    case 0:
      field.type = WireType::varint;
      field.scalar = read_varint();
      break;
    case 1:
      field.type = WireType::fixed64;
      field.scalar = take_fixed(8);
      break;
    case 2: {
      field.type = WireType::length_delimited;
      const std::uint64_t size = read_varint();
      if (size > data_.size() - pos_) {
        throw ProtoError(
            fmt::format("protobuf field {} at byte {} claims {} bytes but only {} remain",
                        field.number, tag_pos, size, data_.size() - pos_));
      }
      field.bytes = data_.substr(pos_, static_cast<std::size_t>(size));
      pos_ += static_cast<std::size_t>(size);
      break;
    }
    case 5:
      field.type = WireType::fixed32;
      field.scalar = take_fixed(4);
      break;
    default:
      throw ProtoError(fmt::format("unsupported protobuf wire type {} for field {} at byte {}",
                                   type, field.number, tag_pos));
  }
  return field;
}

}  // namespace recrun::tensorboard
