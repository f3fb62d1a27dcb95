// Tests for the binary Dataset cache (framework/src/data/dataset_cache) and its use by
// load_dataset: exact round trip, invalidation by size/mtime, silent rebuild of a corrupt cache,
// and the fallback location when the data directory cannot hold one.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/dataset_loader.hpp"
#include "data/dataset_cache.hpp"
#include "data/synth.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void expect_same(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.user_ids, b.user_ids);
  EXPECT_EQ(a.item_ids, b.item_ids);
  EXPECT_EQ(a.user_offsets, b.user_offsets);
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(a.timestamps, b.timestamps);
  EXPECT_EQ(a.titles, b.titles);
  ASSERT_EQ(a.feature_names(), b.feature_names());
  for (const auto& [name, f] : a.categorical) {
    EXPECT_EQ(f.vocab, b.categorical.at(name).vocab);
    EXPECT_EQ(f.offsets, b.categorical.at(name).offsets);
    EXPECT_EQ(f.values, b.categorical.at(name).values);
  }
  for (const auto& [name, f] : a.numeric) {
    EXPECT_EQ(f.values, b.numeric.at(name).values);
    EXPECT_EQ(f.present, b.numeric.at(name).present);
  }
  for (const auto& [name, f] : a.dense) {
    EXPECT_EQ(f.dim, b.dense.at(name).dim);
    EXPECT_EQ(f.values, b.dense.at(name).values);
    EXPECT_EQ(f.present, b.dense.at(name).present);
  }
}

// A small seed_tsv directory with a skipped row (so that there is a warning to replay).
fs::path make_data(const std::string& tag) {
  const auto dir = test::temp_dir(tag) / "data";
  fs::create_directories(dir);
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n2,2,1\n2,3,5\n");
  write(dir / "genres.tsv", "1\tComedy\n2\tDrama\n77\tWar\n");
  write(dir / "years.tsv", "1\t1990\n");
  return dir;
}

data::LoadOptions quiet(const fs::path& fallback) {
  return {.use_cache = true, .fallback_cache_dir = fallback, .print_warnings = false};
}

// Moves a file's mtime, as an edit would, without relying on the clock's resolution.
void touch_later(const fs::path& p) {
  fs::last_write_time(p, fs::last_write_time(p) + std::chrono::seconds(5));
}

TEST(DataCache, EncodeDecodeIsExact) {
  data::SynthOptions o;
  o.users = 60;
  o.items = 50;
  o.interactions_per_user = 10;
  o.title_dim = 3;
  const Dataset d = data::synthesize(o).dataset;
  const data::WarningCounts warnings = {{"a warning", 3}, {"another", 1}};
  const std::string bytes = data::encode_dataset(d, warnings, "key-1");
  const auto back = data::decode_dataset(bytes, "key-1");
  ASSERT_TRUE(back.has_value());
  expect_same(d, back->dataset);
  EXPECT_EQ(back->warnings, warnings);
  EXPECT_FALSE(data::decode_dataset(bytes, "key-2").has_value());  // another state of the files
}

TEST(DataCache, AnyDamageIsAMissNeverACrash) {
  data::SynthOptions o;
  o.users = 30;
  o.items = 20;
  o.interactions_per_user = 6;
  const std::string bytes = data::encode_dataset(data::synthesize(o).dataset, {}, "k");
  for (std::size_t n : {std::size_t{0}, std::size_t{7}, bytes.size() / 2, bytes.size() - 1})
    EXPECT_FALSE(data::decode_dataset(std::string_view(bytes).substr(0, n), "k").has_value()) << n;
  for (std::size_t pos = 0; pos < bytes.size(); pos += 7) {
    std::string damaged = bytes;
    damaged[pos] = static_cast<char>(damaged[pos] ^ 0x5A);
    EXPECT_FALSE(data::decode_dataset(damaged, "k").has_value()) << "flipped byte " << pos;
  }
}

TEST(DataCache, SecondLoadComesFromTheCacheWithTheSameDataAndWarnings) {
  const auto dir = make_data("hit");
  const auto fallback = dir.parent_path() / "fallback";
  const auto first = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.source, "seed_tsv");
  EXPECT_EQ(first.cache_file, dir / ".recrun-cache" / "seed_tsv.dataset");
  EXPECT_TRUE(fs::exists(dir / ".recrun-cache" / ".gitignore"));
  ASSERT_EQ(first.warnings.size(), 1u);

  const auto second = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_TRUE(second.from_cache);
  expect_same(first.dataset, second.dataset);
  EXPECT_EQ(second.warnings, first.warnings);
  EXPECT_EQ(second.dataset.source_dir, dir);
  EXPECT_FALSE(fs::exists(fallback));
}

TEST(DataCache, AnEditedFileInvalidatesTheCache) {
  const auto dir = make_data("stale");
  const auto fallback = dir.parent_path() / "fallback";
  data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  // Same size, new mtime: the key changes even though the byte count does not.
  write(dir / "years.tsv", "1\t1991\n");
  touch_later(dir / "years.tsv");
  auto r = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.dataset.numeric.at("year").values[0], 1991.0f);
  // A new optional file is a new input.
  write(dir / "titles.tsv", "1\tOne\n");
  r = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.dataset.title(0), "One");
  EXPECT_TRUE(data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback)).from_cache);
}

TEST(DataCache, ASameLengthEditWithItsMtimeRestoredIsSeen) {
  const auto dir = make_data("restored-mtime");
  const auto fallback = dir.parent_path() / "fallback";
  const auto train = dir / "train_ratings.csv";
  const auto first = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  ASSERT_TRUE(data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback)).from_cache);
  // Same length, same mtime (as rsync -t, tar or cp -p leave it): only the content differs.
  const auto mtime = fs::last_write_time(train);
  const auto size = fs::file_size(train);
  write(train, "user,item,time\n1,1,1\n1,3,2\n2,2,1\n2,3,5\n");
  fs::last_write_time(train, mtime);
  ASSERT_EQ(fs::file_size(train), size);
  ASSERT_EQ(fs::last_write_time(train), mtime);
  const auto r = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_FALSE(r.from_cache);
  EXPECT_NE(r.dataset.fingerprint, first.dataset.fingerprint);
  EXPECT_NE(r.dataset.items, first.dataset.items);
  const auto again = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.dataset.items, r.dataset.items);
}

TEST(DataCache, ACorruptCacheIsSilentlyRebuilt) {
  const auto dir = make_data("corrupt");
  const auto fallback = dir.parent_path() / "fallback";
  const auto good = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  const fs::path cache = good.cache_file;
  std::string bytes = slurp(cache);
  bytes[bytes.size() / 2] ^= 0x01;
  write(cache, bytes);
  testing::internal::CaptureStderr();
  const auto rebuilt = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_FALSE(rebuilt.from_cache);
  expect_same(good.dataset, rebuilt.dataset);
  write(cache, "garbage");
  EXPECT_FALSE(data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback)).from_cache);
  EXPECT_TRUE(data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback)).from_cache);
}

TEST(DataCache, AnOlderFormatIsRebuiltWithANote) {
  const auto dir = make_data("old-format");
  const auto fallback = dir.parent_path() / "fallback";
  const auto good = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  std::string bytes = slurp(good.cache_file);
  ASSERT_EQ(data::cache_format_of(bytes), data::kCacheFormatVersion);
  // What recrun wrote before XXH3 checksums: the same magic with format version 1.
  const std::uint32_t v1 = 1;
  std::memcpy(bytes.data() + 8, &v1, sizeof v1);
  write(good.cache_file, bytes);
  ASSERT_EQ(data::cache_format_of(bytes), 1u);
  testing::internal::CaptureStderr();
  const auto rebuilt = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(rebuilt.from_cache);
  EXPECT_NE(err.find("cache format 1"), std::string::npos) << err;
  EXPECT_NE(err.find("rebuilding it"), std::string::npos) << err;
  expect_same(good.dataset, rebuilt.dataset);
  EXPECT_EQ(data::cache_format_of(slurp(good.cache_file)), data::kCacheFormatVersion);
  EXPECT_TRUE(data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback)).from_cache);
}

TEST(DataCache, FallsBackWhenTheDataDirectoryCannotHoldACache) {
  const auto dir = make_data("fallback");
  const auto fallback = dir.parent_path() / "results-cache";
  // A file where the cache folder would go makes the data directory unusable for the cache,
  // even for root (for whom read-only permissions do not bind).
  write(dir / ".recrun-cache", "in the way");
  const auto first = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.cache_file, data::fallback_cache_file(fallback, dir, "seed_tsv"));
  EXPECT_EQ(first.cache_file.parent_path().parent_path(), fallback);
  EXPECT_TRUE(fs::exists(first.cache_file));
  const auto second = data::load_dataset(test::test_registry(), dir, "auto", quiet(fallback));
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.cache_file, first.cache_file);
  expect_same(first.dataset, second.dataset);
}

TEST(DataCache, CanBeTurnedOff) {
  const auto dir = make_data("off");
  auto options = quiet(dir.parent_path() / "fallback");
  options.use_cache = false;
  EXPECT_FALSE(data::load_dataset(test::test_registry(), dir, "auto", options).from_cache);
  EXPECT_FALSE(fs::exists(dir / ".recrun-cache"));
  ::setenv("RECRUN_NO_CACHE", "1", 1);
  options.use_cache = true;
  const auto r = data::load_dataset(test::test_registry(), dir, "auto", options);
  ::unsetenv("RECRUN_NO_CACHE");
  EXPECT_FALSE(r.from_cache);
  EXPECT_FALSE(fs::exists(dir / ".recrun-cache"));
}

}  // namespace
}  // namespace recrun
