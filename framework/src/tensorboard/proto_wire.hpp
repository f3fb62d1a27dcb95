// A minimal protobuf wire-format encoder and decoder: enough for the Event, Summary and
// HParams messages TensorBoard reads, without linking libprotobuf.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace recrun::tensorboard {

/// Protobuf wire types; groups (3, 4) are deliberately unsupported.
enum class WireType : std::uint8_t {
  varint = 0,
  fixed64 = 1,
  length_delimited = 2,
  fixed32 = 5,
};

/// Thrown when bytes are not a well-formed message or a field has an unexpected wire type.
class ProtoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends fields to a serialized message. Fields are written exactly as called (including
/// default values), so callers that want canonical proto3 output skip defaults themselves
/// and call in field-number order.
class ProtoWriter {
 public:
  /// Unsigned varint field (uint32, uint64).
  void add_varint(std::uint32_t field, std::uint64_t value);
  /// int32/int64/enum field: negative values are sign-extended to 10 bytes, as protobuf does.
  void add_int64(std::uint32_t field, std::int64_t value);
  /// bool field.
  void add_bool(std::uint32_t field, bool value) { add_varint(field, value ? 1 : 0); }
  /// double field (fixed64, little-endian IEEE 754).
  void add_double(std::uint32_t field, double value);
  /// float field (fixed32, little-endian IEEE 754).
  void add_float(std::uint32_t field, float value);
  /// string, bytes or embedded-message field.
  void add_bytes(std::uint32_t field, std::string_view bytes);
  /// Embedded message field.
  void add_message(std::uint32_t field, const ProtoWriter& message) {
    add_bytes(field, message.bytes());
  }

  /// The serialized message so far.
  const std::string& bytes() const { return buffer_; }
  /// Moves the serialized message out; the writer is empty afterwards.
  std::string take() { return std::move(buffer_); }

 private:
  void put_tag(std::uint32_t field, WireType type);
  void put_varint(std::uint64_t value);
  void put_fixed32(std::uint32_t value);
  void put_fixed64(std::uint64_t value);

  std::string buffer_;
};

/// One decoded field. `bytes` views the reader's input and lives as long as it does.
struct ProtoField {
  std::uint32_t number = 0;          ///< field number from the tag
  WireType type = WireType::varint;  ///< wire type from the tag
  std::uint64_t scalar = 0;          ///< varint, fixed32 or fixed64 payload
  std::string_view bytes;            ///< length-delimited payload

  /// Unsigned varint value; throws ProtoError on another wire type.
  std::uint64_t as_uint64() const;
  /// int64/int32/enum value (two's complement of the varint).
  std::int64_t as_int64() const { return static_cast<std::int64_t>(as_uint64()); }
  /// int32/enum value; protobuf truncates to the low 32 bits.
  std::int32_t as_int32() const { return static_cast<std::int32_t>(as_uint64()); }
  /// bool value.
  bool as_bool() const { return as_uint64() != 0; }
  /// double value; requires fixed64.
  double as_double() const;
  /// float value; requires fixed32.
  float as_float() const;
  /// string/bytes/message payload; requires length_delimited.
  std::string_view as_bytes() const;
};

/// Iterates over the fields of one serialized message, which must outlive the reader and
/// the fields it returns (they view it without copying).
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view message) : data_(message) {}

  /// The next field, or nullopt at the end; throws ProtoError on malformed input.
  std::optional<ProtoField> next();
  /// Byte offset of the next unread field within the message.
  std::size_t position() const { return pos_; }

 private:
  std::uint64_t read_varint();

  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace recrun::tensorboard
