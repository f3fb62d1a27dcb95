// Load-time benchmark behind `recrun data bench` and bench/bench_load: the same data directory
// loaded by the data source (no cache), from the binary cache, and by a naive
// std::getline + std::stringstream parser as the in-run baseline.
#pragma once

#include <filesystem>
#include <string>

#include "recrun/dataset.hpp"
#include "recrun/registry.hpp"

namespace recrun::data {

/// Loads an interactions CSV the naive way (std::getline per line, std::stringstream per field,
/// std::stoll), through the same DatasetBuilder as the plugins. The baseline of the benchmark;
/// understands a header naming user/item/time columns (or their usual synonyms) and ',' only.
Dataset naive_load_csv(const std::filesystem::path& file);

/// Benchmark settings.
struct LoadBenchOptions {
  /// Timed repetitions of each way of loading; the median is reported.
  int repeats = 3;
  /// Also time the naive parser (when the source has a CSV interactions file).
  bool naive = true;
  /// Where caches go when the data directory is not writable.
  std::filesystem::path fallback_cache_dir = "results/cache";
};

/// Timings, in seconds (medians over the repetitions).
struct LoadBenchResult {
  /// The data source used.
  std::string source;
  /// Interactions loaded.
  std::int64_t rows = 0;
  /// Users and items loaded.
  std::int64_t users = 0, items = 0;
  /// Bytes of the source's input files.
  std::int64_t input_bytes = 0;
  /// Parse by the data source, no cache.
  double cold_seconds = 0;
  /// CPU time of the same (the loader is single-threaded, so on a busy machine this is what the
  /// wall time would be on an idle one).
  double cold_cpu_seconds = 0;
  /// First cached load: parse plus writing the cache.
  double first_seconds = 0;
  /// Load from the cache.
  double cached_seconds = 0;
  /// CPU time of the same.
  double cached_cpu_seconds = 0;
  /// Naive parse of the interactions file (0 when not measured).
  double naive_seconds = 0;
  /// CPU time of the same.
  double naive_cpu_seconds = 0;
  /// The interactions file the naive parser read.
  std::filesystem::path naive_file;
  /// The cache file used.
  std::filesystem::path cache_file;
  /// Size of the cache file.
  std::int64_t cache_bytes = 0;
};

/// Runs the benchmark on `dir`. The first (discarded) load warms the page cache, so "cold"
/// means "without the binary cache", not "from disk".
LoadBenchResult bench_load(const Registry& registry, const std::filesystem::path& dir,
                           const std::string& source, const LoadBenchOptions& options);

/// A short report: rows/s per way of loading and the ratios.
std::string format_bench(const LoadBenchResult& result);

}  // namespace recrun::data
