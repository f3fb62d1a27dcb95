// bench_load — data loading throughput at the seed study's scale.
//
// Generates (once) a synthetic seed_tsv data set of about 5 million interactions (31k users,
// 6.8k items, with genres, directors, writers, years and titles), then times, in one run:
//   parse   the seed_tsv data source, no binary cache
//   cached  the same directory through the binary Dataset cache
//   naive   std::getline + std::stringstream + std::stoll into the same DatasetBuilder
// and reports rows/s and the ratios. The page cache is warmed first, so "parse" measures CPU.
//
//   bench_load [--dir DIR] [--users N] [--items N] [--per-user N] [--repeat N]
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench_args.hpp"
#include "core/plugin_loader.hpp"
#include "data/load_bench.hpp"
#include "data/seed_layout.hpp"
#include "data/synth.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  fs::path dir = fs::temp_directory_path() / "recrun-bench-load-5m";
  recrun::data::SynthOptions synth;
  synth.users = 31000;
  synth.items = 6800;
  synth.interactions_per_user = 161.3;  // 5.0M rows
  synth.seed = 2024;
  recrun::data::LoadBenchOptions options;
  recrun::bench::for_each_flag(argc, argv, "bench_load [--dir DIR] [--users N] [--items N] [--per-user N] [--repeat N]", [&](const std::string& flag, const std::string& value) {
    if (flag == "--dir") dir = value;
    else if (flag == "--users") synth.users = std::stoll(value);
    else if (flag == "--items") synth.items = std::stoll(value);
    else if (flag == "--per-user") synth.interactions_per_user = std::stod(value);
    else if (flag == "--repeat") options.repeats = std::stoi(value);
    else return false;
    return true;
  });
  options.fallback_cache_dir = dir.parent_path() / (dir.filename().string() + "-cache");

  // Regenerate only when the directory holds another configuration (the README records it).
  const std::string readme = recrun::data::synth_readme(synth);
  std::string existing;
  if (std::ifstream in(dir / "README.txt"); in) existing.assign(std::istreambuf_iterator<char>(in), {});
  if (existing != readme) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto result = recrun::data::synthesize(synth);
    recrun::data::write_seed_layout(result.dataset, dir);
    std::ofstream(dir / "README.txt") << readme;
    fmt::print("generated {} ({} rows) in {:.1f}s\n", dir.string(), result.dataset.num_interactions(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  recrun::Registry registry;
  const auto report = recrun::core::load_plugins(recrun::core::plugin_search_path({}), registry);
  for (const auto& w : report.warnings) fmt::print(stderr, "warning: plugin {}\n", w);
  const auto result = recrun::data::bench_load(registry, dir, "seed_tsv", options);
  fmt::print("{}", recrun::data::format_bench(result));
  return 0;
}
