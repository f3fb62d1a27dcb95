// Hashes the host uses for keys and checksums: XXH3 from libxxhash, so every value is the
// published algorithm's, stable across runs, builds and machines. Not part of the SDK: plugins
// fingerprint their files with recrun::text::Fingerprint.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace recrun::core {

/// XXH3-64 of `bytes` with `seed`.
std::uint64_t hash64(std::string_view bytes, std::uint64_t seed = 0) noexcept;

/// XXH3-64 of `bytes` (seed 0) as 16 lower-case hex digits.
std::string hash64_hex(std::string_view bytes);

/// XXH3-128 of `bytes` (seed 0) as 32 lower-case hex digits, high half first (XXH128's
/// canonical byte order).
std::string hash128_hex(std::string_view bytes);

}  // namespace recrun::core
