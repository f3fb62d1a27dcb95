// The host's hashes are libxxhash's XXH3: checked against the algorithm's published reference
// values, so that a key or checksum computed here is the one any XXH3 implementation computes.
#include <gtest/gtest.h>

#include <string>

#include "core/hash.hpp"

namespace recrun::core {
namespace {

TEST(Hash, MatchesPublishedXxh3Vectors) {
  // XXH3_64bits("", 0) and XXH3_128bits("", 0), as listed in xxHash's documentation and test
  // vectors (and printed by `xxhsum -H3 /dev/null`, `xxhsum -H2 /dev/null`).
  EXPECT_EQ(hash64(""), 0x2D06800538D394C2ULL);
  EXPECT_EQ(hash64_hex(""), "2d06800538d394c2");
  EXPECT_EQ(hash128_hex(""), "99aa06d3014798d86001c324468d497f");
}

TEST(Hash, IsSensitiveToEveryByteAndTheSeed) {
  const std::string big(1000, 'x');
  const auto h = hash64(big);
  for (std::size_t pos : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{999}}) {
    std::string changed = big;
    changed[pos] = 'y';
    EXPECT_NE(hash64(changed), h) << pos;
    EXPECT_NE(hash128_hex(changed), hash128_hex(big)) << pos;
  }
  EXPECT_NE(hash64("abc", 1), hash64("abc", 2));
  EXPECT_EQ(hash64("abc", 1), hash64("abc", 1));
  EXPECT_EQ(hash128_hex("abc").size(), 32u);
}

}  // namespace
}  // namespace recrun::core
