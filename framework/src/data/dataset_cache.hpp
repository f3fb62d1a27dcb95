// The binary Dataset cache: a loaded data set written next to its data, so that every later load
// (each trial of a sweep, each worker process) reads it back in a fraction of the parse time.
//
// A cache file is keyed by the data source's name, the source plugin library's size and mtime
// and every input file's name, size, mtime (nanoseconds) and content hash (XXH3-64). It lives in
// <data_dir>/.recrun-cache/<source>.dataset, or under a fallback directory (results/cache by
// default) when the data directory is read-only. A cache that is stale, truncated or corrupt is
// ignored and rebuilt: a cache can make loading faster, never different.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun::data {

/// The cache format this recrun writes and reads. Bump it whenever the layout or the meaning of
/// a Dataset field changes. 2: checksums are XXH3-64 (libxxhash) and data fingerprints changed
/// with the SDK's Fingerprint; 1: a hand-written hash. A cache of another format is rebuilt.
// 3: data sets with titles carry title vectors computed at load time.
inline constexpr std::uint32_t kCacheFormatVersion = 3;

/// Warnings from the original parse, kept so that a cached load reports them too.
using WarningCounts = std::vector<std::pair<std::string, std::int64_t>>;

/// A data set as stored in (or read from) the cache.
struct CachedDataset {
  /// The data set.
  Dataset dataset;
  /// Skipped-row warnings of the parse that built it, with counts.
  WarningCounts warnings;
};

/// XXH3-64 of a file's content, read in 1 MiB blocks; nothing when it cannot be read.
std::optional<std::uint64_t> file_content_hash(const std::filesystem::path& file);

/// The text that identifies one state of a data directory: `source`, the plugin library (may be
/// empty; by size and mtime) and the inputs' names, sizes, modification times and content
/// hashes (XXH3-64; or "missing"). Only the content hash is trusted: a same-length edit with
/// its mtime restored changes the key.
std::string cache_key(const std::string& source, const std::filesystem::path& plugin_library,
                      const std::vector<std::filesystem::path>& inputs);

/// Serialises a data set and its warnings under `key` (format version, key, payload, checksum).
std::string encode_dataset(const Dataset& dataset, const WarningCounts& warnings,
                           const std::string& key);

/// Decodes what encode_dataset wrote; nothing when the bytes are not a complete, uncorrupted
/// cache for `key` (wrong magic or version, another key, truncation, checksum mismatch, or data
/// that fails the structural checks).
std::optional<CachedDataset> decode_dataset(std::string_view bytes, const std::string& key);

/// The cache file of `dir` for `source` inside the data directory.
std::filesystem::path primary_cache_file(const std::filesystem::path& dir, const std::string& source);

/// The cache file of `dir` for `source` under `fallback_dir` (one folder per data directory,
/// named after it plus a hash of its absolute path).
std::filesystem::path fallback_cache_file(const std::filesystem::path& fallback_dir,
                                          const std::filesystem::path& dir,
                                          const std::string& source);

/// The format version of a cache file's bytes, when they start like a cache; nothing otherwise.
std::optional<std::uint32_t> cache_format_of(std::string_view bytes);

/// Reads a cache file; nothing when it is absent, unreadable, stale or corrupt. When the file is
/// a cache of another format version (an older recrun wrote it), `note`, if given, says so.
std::optional<CachedDataset> read_cache(const std::filesystem::path& file, const std::string& key,
                                        std::string* note = nullptr);

/// Writes a cache file atomically (a temporary file renamed over the old one, so that
/// concurrent readers see the old or the new file, never half of one). Creates the folder,
/// with a .gitignore so that caches never end up in version control. False when it cannot.
bool write_cache(const std::filesystem::path& file, const std::string& bytes);

}  // namespace recrun::data
