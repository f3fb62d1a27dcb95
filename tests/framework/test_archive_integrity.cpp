// Checkpoints that cannot lie: every tensor and text record of a format-3 file carries a checksum
// verified on load, so a zeroed tensor or a flipped byte fails with the file and the record's
// name instead of loading silently; files of format 2 (no checksums) still load.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "recrun/archive.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A model-like archive: one weight matrix whose bytes are easy to find in the file.
Archive model_archive() {
  Archive a;
  a.write("model.item_embedding", torch::full({64, 16}, 0.2901f));
  a.write("model.bias", torch::arange(16, torch::kFloat32));
  a.write_text("__trainer__.next_epoch", "7");
  return a;
}

// Offset of the first run of `count` floats equal to `value` in `bytes`.
std::size_t find_floats(const std::string& bytes, float value, std::size_t count) {
  std::string needle(count * sizeof(float), '\0');
  for (std::size_t i = 0; i < count; ++i) std::memcpy(needle.data() + i * sizeof(float), &value, sizeof value);
  const auto at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos);
  return at;
}

std::string load_error(const fs::path& file, const Archive::FileOptions& options = {}) {
  try {
    Archive::load_file(file, options);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

TEST(ArchiveIntegrity, AZeroedTensorFailsNamingTheFileAndTheTensor) {
  const fs::path file = test::temp_dir("archive-zeroed") / "last.ckpt";
  model_archive().save_file(file);
  std::string bytes = slurp(file);
  // Zero a stretch of the embedding's values in place: the size and the trailer stay right.
  const std::size_t at = find_floats(bytes, 0.2901f, 64 * 16);
  std::memset(bytes.data() + at + 128, 0, 256);
  spit(file, bytes);

  const std::string error = load_error(file);
  ASSERT_FALSE(error.empty()) << "a zeroed tensor loaded without complaint";
  EXPECT_NE(error.find(file.string()), std::string::npos) << error;
  EXPECT_NE(error.find("'model.item_embedding'"), std::string::npos) << error;
  EXPECT_NE(error.find("checksum"), std::string::npos) << error;
}

TEST(ArchiveIntegrity, AFlippedByteInATextFailsNamingTheText) {
  const fs::path file = test::temp_dir("archive-text") / "last.ckpt";
  model_archive().save_file(file);
  std::string bytes = slurp(file);
  const std::string key = "__trainer__.next_epoch";
  const auto at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  // The value follows the key as u64 length + bytes: "7" becomes "9".
  ASSERT_EQ(bytes[at + key.size() + 8], '7');
  bytes[at + key.size() + 8] = '9';
  spit(file, bytes);
  const std::string error = load_error(file);
  EXPECT_NE(error.find(file.string()), std::string::npos) << error;
  EXPECT_NE(error.find("text '__trainer__.next_epoch'"), std::string::npos) << error;
}

TEST(ArchiveIntegrity, AnUndamagedFileVerifiesAndRoundTrips) {
  const fs::path file = test::temp_dir("archive-ok") / "a.ckpt";
  const Archive a = model_archive();
  a.save_file(file);
  EXPECT_EQ(slurp(file).substr(0, 8), "RECRUNA3");
  const Archive b = Archive::load_file(file);
  EXPECT_TRUE(b.read("model.item_embedding").equal(a.read("model.item_embedding")));
  EXPECT_TRUE(b.read("model.bias").equal(a.read("model.bias")));
  EXPECT_EQ(b.read_text("__trainer__.next_epoch"), "7");
}

TEST(ArchiveIntegrity, VerificationCanBeSkippedOnlyOnRequest) {
  const fs::path file = test::temp_dir("archive-noverify") / "a.ckpt";
  model_archive().save_file(file);
  std::string bytes = slurp(file);
  bytes[find_floats(bytes, 0.2901f, 64 * 16)] ^= 0x01;
  spit(file, bytes);
  EXPECT_FALSE(load_error(file).empty());
  EXPECT_TRUE(load_error(file, {.checksums = true, .verify = false}).empty());
}

// Format 2 as the previous release wrote it, byte by byte: no checksums.
std::string format2_bytes() {
  std::string out = "RECRUNA2";
  const auto u64 = [&](std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  const auto i32 = [&](std::int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  const auto str = [&](const std::string& s) {
    u64(s.size());
    out += s;
  };
  u64(1);  // tensors
  u64(1);  // texts
  str("w");
  i32(static_cast<std::int32_t>(torch::kFloat32));
  i32(2);
  u64(2);
  u64(3);
  u64(24);
  for (int i = 0; i < 6; ++i) {
    const float f = static_cast<float>(i);
    out.append(reinterpret_cast<const char*>(&f), 4);
  }
  str("t");
  str("hello");
  out += "RECRUNEND";
  u64(out.size() + 8);
  return out;
}

TEST(ArchiveIntegrity, Format2FilesWithoutChecksumsStillLoad) {
  const fs::path dir = test::temp_dir("archive-v2");
  spit(dir / "old.ckpt", format2_bytes());
  const Archive a = Archive::load_file(dir / "old.ckpt");
  EXPECT_TRUE(a.read("w").equal(torch::arange(6, torch::kFloat32).view({2, 3})));
  EXPECT_EQ(a.read_text("t"), "hello");
  // The writer's compatibility mode produces exactly that format, and it loads back too.
  a.save_file(dir / "again.ckpt", {.checksums = false});
  EXPECT_EQ(slurp(dir / "again.ckpt"), format2_bytes());
  EXPECT_TRUE(Archive::load_file(dir / "again.ckpt").read("w").equal(a.read("w")));
}

}  // namespace
}  // namespace recrun
