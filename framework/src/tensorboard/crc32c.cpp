#include "tensorboard/crc32c.hpp"

#include <boost/crc.hpp>

namespace recrun::tensorboard {
namespace {

// CRC32C: polynomial 0x1EDC6F41 (0x82F63B78 reflected), init and final xor 0xFFFFFFFF,
// reflected input and output. Boost.CRC's byte-wise table is fast enough for event records
// (bench/bench_crc32c.cpp and docs/tensorboard.md have the figures).
using Crc32c = boost::crc_optimal<32, 0x1EDC6F41u, 0xFFFFFFFFu, 0xFFFFFFFFu, true, true>;

constexpr std::uint32_t reverse_bits(std::uint32_t v) {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i, v >>= 1) r = (r << 1) | (v & 1u);
  return r;
}

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) {
  // A finished CRC is the reflected register xor 0xFFFFFFFF, and Boost.CRC takes an initial
  // remainder in unreflected order: undo both to continue from it (0, the CRC of nothing,
  // gives the standard initial value 0xFFFFFFFF).
  Crc32c c(reverse_bits(~crc));
  c.process_bytes(data, size);
  return c.checksum();
}

}  // namespace recrun::tensorboard
