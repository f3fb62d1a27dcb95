// Loads a data directory through a DataSource plugin, through the binary Dataset cache.
#pragma once

#include <filesystem>
#include <string>

#include "data/dataset_cache.hpp"
#include "recrun/dataset.hpp"
#include "recrun/registry.hpp"

namespace recrun::data {

/// How load_dataset uses the binary cache.
struct LoadOptions {
  /// Read and write the cache (the environment variable RECRUN_NO_CACHE=1 turns it off too).
  bool use_cache = true;
  /// Where caches go when the data directory is not writable.
  std::filesystem::path fallback_cache_dir = "results/cache";
  /// Print the skipped-row warnings to stderr (one line per kind, with its count) when the files
  /// are read; a load from the cache, which keeps them, does not repeat them.
  bool print_warnings = true;
  /// Give a data set with titles but no title vectors vectors computed from the titles' text
  /// (cached with it). Off for converters, which write the source's own features; the cache is
  /// then bypassed, since it holds derived vectors.
  bool derive_title_vectors = true;
};

/// What a load did.
struct LoadResult {
  /// The data set.
  Dataset dataset;
  /// The data source that read it.
  std::string source;
  /// Whether it came from the cache.
  bool from_cache = false;
  /// The cache file read or written ("" when the cache was off or could not be written).
  std::filesystem::path cache_file;
  /// Skipped-row warnings and their counts (also kept in, and replayed from, the cache).
  WarningCounts warnings;
};

/// Loads `dir` with the data source named `source`, or the first one whose detect() accepts the
/// directory when `source` is empty or "auto". Warnings about skipped rows go to stderr, one line
/// per kind with its count. Throws DataError/PluginError with file, line or plugin name.
Dataset load_dataset(const Registry& registry, const std::filesystem::path& dir,
                     const std::string& source);

/// load_dataset with explicit cache options, reporting where the data set came from.
LoadResult load_dataset(const Registry& registry, const std::filesystem::path& dir,
                        const std::string& source, const LoadOptions& options);

/// The name of the source load_dataset would use for `dir`.
std::string resolve_source(const Registry& registry, const std::filesystem::path& dir,
                           const std::string& source);

}  // namespace recrun::data
