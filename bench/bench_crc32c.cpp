// bench_crc32c — the CRC32C that frames TensorBoard event records: Boost.CRC (what the host
// uses) against the slicing-by-8 table code recrun had before (kept here as the baseline).
//
// Times both over one buffer (64 MiB by default) and over many event-sized records, checks they
// agree, and reports MB/s and the ratio. The event writer checksums a few hundred bytes per
// scalar, so what matters is whether either figure comes anywhere near the writer's needs.
//
//   bench_crc32c [--mb N] [--repeat N]
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "tensorboard/crc32c.hpp"

namespace {

// --- the baseline: slicing-by-8, as framework/src/tensorboard/crc32c.cpp had it -------------
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    t[0][i] = crc;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
  return t;
}

constexpr Tables tables = make_tables();

inline std::uint32_t load_le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::uint32_t table_crc32c(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  while (size >= 8) {
    const std::uint32_t lo = load_le32(p) ^ c;
    const std::uint32_t hi = load_le32(p + 4);
    c = tables[7][lo & 0xFFu] ^ tables[6][(lo >> 8) & 0xFFu] ^ tables[5][(lo >> 16) & 0xFFu] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xFFu] ^ tables[2][(hi >> 8) & 0xFFu] ^
        tables[1][(hi >> 16) & 0xFFu] ^ tables[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xFFu];
  return ~c;
}

template <class F>
double best_seconds(int repeats, F&& f) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mb = 64;
  int repeats = 5;
  recrun::bench::for_each_flag(argc, argv, "bench_crc32c [--mb N] [--repeat N]", [&](const std::string& flag, const std::string& value) {
    if (flag == "--mb") mb = std::stoul(value);
    else if (flag == "--repeat") repeats = std::stoi(value);
    else return false;
    return true;
  });
  std::vector<unsigned char> buf(mb << 20);
  std::mt19937_64 rng(7);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());

  volatile std::uint32_t sink = 0;
  std::uint32_t a = 0, b = 0;
  const double t_table = best_seconds(repeats, [&] { sink = a = table_crc32c(buf.data(), buf.size()); });
  const double t_boost = best_seconds(repeats, [&] {
    sink = b = recrun::tensorboard::crc32c(buf.data(), buf.size());
  });
  if (a != b) {
    fmt::print(stderr, "mismatch: table {:08x}, boost {:08x}\n", a, b);
    return 1;
  }
  const double mbytes = static_cast<double>(buf.size()) / 1e6;
  fmt::print("one {} MiB buffer (best of {}):\n", mb, repeats);
  fmt::print("  table (slicing-by-8)  {:8.1f} MB/s\n", mbytes / t_table);
  fmt::print("  Boost.CRC             {:8.1f} MB/s   ratio boost/table {:.2f}\n", mbytes / t_boost,
             t_table / t_boost);

  // Event-sized records: a scalar event is ~60 bytes, an HParams session start ~1 KB. Every
  // record is checksummed twice (its 8-byte length header, then its payload).
  constexpr std::size_t kRecord = 96;
  const std::size_t records = buf.size() / kRecord;
  const auto per_record = [&](auto&& crc) {
    std::uint32_t x = 0;
    for (std::size_t r = 0; r < records; ++r) {
      x ^= crc(buf.data() + r * kRecord, 8);
      x ^= crc(buf.data() + r * kRecord + 8, kRecord - 8);
    }
    sink = x;
  };
  const double r_table = best_seconds(repeats, [&] { per_record(table_crc32c); });
  const double r_boost = best_seconds(repeats, [&] {
    per_record([](const void* p, std::size_t n) { return recrun::tensorboard::crc32c(p, n); });
  });
  fmt::print("{} records of {} bytes:\n", records, kRecord);
  fmt::print("  table (slicing-by-8)  {:8.1f} ns/record\n", r_table / records * 1e9);
  fmt::print("  Boost.CRC             {:8.1f} ns/record   ratio boost/table {:.2f}\n",
             r_boost / records * 1e9, r_table / r_boost);
  (void)sink;
  return 0;
}
