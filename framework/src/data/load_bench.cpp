#include "data/load_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <ctime>

#include "data/dataset_loader.hpp"
#include "sdk/safe_file.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"

namespace recrun::data {
namespace fs = std::filesystem;

Dataset naive_load_csv(const fs::path& file) {
  util::check_regular_file(file, "data file");  // std::getline would read /dev/zero for ever
  std::ifstream in(file);
  if (!in) throw DataError(file, 0, "cannot open");
  std::string line;
  if (!std::getline(in, line)) throw DataError(file, 1, "the file is empty");
  std::vector<std::string> header;
  {
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) header.push_back(field);
  }
  const auto column = [&](std::initializer_list<const char*> names) {
    for (std::size_t i = 0; i < header.size(); ++i)
      for (const char* n : names)
        if (header[i] == n) return i;
    throw DataError(file, 1, fmt::format("missing column '{}' (the header has: {})",
                                         *names.begin(), text::printable(line, 200)));
  };
  const std::size_t u = column({"user", "user_id", "userId"});
  const std::size_t i = column({"item", "item_id", "movieId"});
  const std::size_t t = column({"time", "timestamp"});
  DatasetBuilder builder;
  std::vector<std::string> fields;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    fields.clear();
    for (std::string field; std::getline(ss, field, ',');) fields.push_back(field);
    if (fields.size() != header.size()) continue;
    builder.add_interaction(fields[u], fields[i], std::stoll(fields[t]));
  }
  return builder.build(file.parent_path().filename().string(), file.parent_path(), "");
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

double cpu_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 0, cpu = 0;
};

template <class F>
Timing timed(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_now();
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu_now() - c0};
}

// Medians of wall and CPU time over `repeats` runs.
template <class F>
Timing median_of(int repeats, F&& f) {
  std::vector<double> wall, cpu;
  for (int k = 0; k < repeats; ++k) {
    const Timing t = timed(f);
    wall.push_back(t.wall);
    cpu.push_back(t.cpu);
  }
  return {median(wall), median(cpu)};
}

}  // namespace

LoadBenchResult bench_load(const Registry& registry, const fs::path& dir, const std::string& source,
                           const LoadBenchOptions& options) {
  LoadBenchResult r;
  r.source = resolve_source(registry, dir, source);
  const int repeats = std::max(1, options.repeats);
  LoadOptions uncached{.use_cache = false, .fallback_cache_dir = options.fallback_cache_dir,
                       .print_warnings = false};
  LoadOptions cached = uncached;
  cached.use_cache = true;

  for (const auto& in : registry.data_source(r.source).make()->inputs(dir)) {
    std::error_code ec;
    r.input_bytes += static_cast<std::int64_t>(fs::file_size(in, ec));
  }
  {
    const Dataset warm = load_dataset(registry, dir, r.source, uncached).dataset;  // page cache
    r.rows = warm.num_interactions();
    r.users = warm.num_users();
    r.items = warm.num_items();
  }

  const Timing cold = median_of(repeats, [&] { load_dataset(registry, dir, r.source, uncached); });
  r.cold_seconds = cold.wall;
  r.cold_cpu_seconds = cold.cpu;

  // Remove any cache so that the first cached load really builds it.
  std::error_code ec;
  fs::remove(primary_cache_file(dir, r.source), ec);
  fs::remove(fallback_cache_file(options.fallback_cache_dir, dir, r.source), ec);
  r.first_seconds = timed([&] {
                      const auto first = load_dataset(registry, dir, r.source, cached);
                      r.cache_file = first.cache_file;
                    }).wall;
  const Timing hit = median_of(repeats, [&] {
    const auto again = load_dataset(registry, dir, r.source, cached);
    if (!again.from_cache)
      throw Error(fmt::format("the cache of '{}' was not used; is the directory writable?", dir.string()));
  });
  r.cached_seconds = hit.wall;
  r.cached_cpu_seconds = hit.cpu;
  if (!r.cache_file.empty()) r.cache_bytes = static_cast<std::int64_t>(fs::file_size(r.cache_file, ec));

  if (options.naive) {
    for (const char* name : {"train_ratings.csv", "ratings.csv"})
      if (fs::is_regular_file(dir / name, ec)) {
        r.naive_file = dir / name;
        break;
      }
    if (!r.naive_file.empty()) {
      const Timing naive = median_of(repeats, [&] { naive_load_csv(r.naive_file); });
      r.naive_seconds = naive.wall;
      r.naive_cpu_seconds = naive.cpu;
    }
  }
  return r;
}

std::string format_bench(const LoadBenchResult& r) {
  std::string out;
  auto o = std::back_inserter(out);
  const auto rate = [&](double s) { return s > 0 ? static_cast<double>(r.rows) / s : 0.0; };
  fmt::format_to(o, "source {}: {} interactions, {} users, {} items, {:.1f} MB of input\n", r.source,
                 r.rows, r.users, r.items, static_cast<double>(r.input_bytes) / 1e6);
  fmt::format_to(o, "  {:<34} {:>8} {:>12} {:>8} {:>12}\n", "", "wall s", "rows/s", "CPU s", "rows/CPU-s");
  const auto row = [&](const char* name, double wall, double cpu) {
    fmt::format_to(o, "  {:<34} {:>8.3f} {:>12.0f} {:>8} {:>12}\n", name, wall, rate(wall),
                   cpu > 0 ? fmt::format("{:.3f}", cpu) : "", cpu > 0 ? fmt::format("{:.0f}", rate(cpu)) : "");
  };
  row("parse (no cache)", r.cold_seconds, r.cold_cpu_seconds);
  row("first load (parse + write cache)", r.first_seconds, 0);
  row("cached", r.cached_seconds, r.cached_cpu_seconds);
  if (r.naive_seconds > 0) row("naive getline+stringstream", r.naive_seconds, r.naive_cpu_seconds);
  fmt::format_to(o, "cache: {} ({:.1f} MB)\n", r.cache_file.empty() ? "not written" : r.cache_file.string(),
                 static_cast<double>(r.cache_bytes) / 1e6);
  if (r.cached_seconds > 0)
    fmt::format_to(o, "cached vs parse: {:.1f}x faster\n", r.cold_seconds / r.cached_seconds);
  if (r.naive_seconds > 0 && r.cold_seconds > 0)
    fmt::format_to(o, "parse vs naive: {:.1f}x faster (cached vs naive: {:.1f}x); by CPU time {:.1f}x ({:.1f}x)\n",
                   r.naive_seconds / r.cold_seconds, r.naive_seconds / std::max(r.cached_seconds, 1e-9),
                   r.naive_cpu_seconds / std::max(r.cold_cpu_seconds, 1e-9),
                   r.naive_cpu_seconds / std::max(r.cached_cpu_seconds, 1e-9));
  return out;
}

}  // namespace recrun::data
