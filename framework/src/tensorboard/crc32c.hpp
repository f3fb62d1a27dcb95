// CRC32C (Castagnoli) as used by TFRecord framing of TensorBoard event files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace recrun::tensorboard {

/// Continues a CRC32C over `size` more bytes; pass the previous result as `crc` (0 to start).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size);

/// CRC32C of a byte range (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
inline std::uint32_t crc32c(const void* data, std::size_t size) {
  return crc32c_extend(0, data, size);
}

/// CRC32C of the bytes of a string.
inline std::uint32_t crc32c(std::string_view bytes) { return crc32c(bytes.data(), bytes.size()); }

// TFRecord stores masked CRCs: a CRC of data that itself holds CRCs is weak, so the
// stored value is rotated and offset (the same constant TensorFlow and LevelDB use).
inline constexpr std::uint32_t crc_mask_delta = 0xa282ead8u;

/// Rotates right by 15 bits and adds `crc_mask_delta`.
constexpr std::uint32_t mask_crc(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + crc_mask_delta;
}

/// Inverse of `mask_crc`.
constexpr std::uint32_t unmask_crc(std::uint32_t masked) {
  const std::uint32_t rotated = masked - crc_mask_delta;
  return (rotated >> 17) | (rotated << 15);
}

/// mask_crc(crc32c(bytes)): the checksum TFRecord stores.
inline std::uint32_t masked_crc32c(std::string_view bytes) { return mask_crc(crc32c(bytes)); }

}  // namespace recrun::tensorboard
