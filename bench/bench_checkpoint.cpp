// bench_checkpoint — what the per-record checksums of checkpoint files cost.
//
// Saves and loads an EASE-sized archive (a 9.7k x 9.7k float matrix, ~380 MB) in one run, both
// ways: format 3 (XXH3-64 checksum of every record, verified on load) and format 2 (no checksums,
// written by the compatibility mode and loaded unverified). Each is repeated and the median
// reported, the order alternating between repeats so that the page cache and disk treat them
// alike, then the ratios. The file goes to --dir (default: the temp directory).
//
//   bench_checkpoint [--dir DIR] [--items N] [--repeat N]
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "recrun/archive.hpp"

// Header-only here: only to time the hash alone (the SDK links libxxhash itself).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = fs::temp_directory_path();
  std::int64_t items = 9700;
  int repeats = 5;
  recrun::bench::for_each_flag(argc, argv, "bench_checkpoint [--dir DIR] [--items N] [--repeat N]", [&](const std::string& flag, const std::string& value) {
    if (flag == "--dir") dir = value;
    else if (flag == "--items") items = std::stoll(value);
    else if (flag == "--repeat") repeats = std::max(1, std::stoi(value));
    else return false;
    return true;
  });
  torch::manual_seed(1);
  recrun::Archive a;
  a.write("model.B", torch::randn({items, items}));
  a.write_text("__trainer__.next_epoch", "1");
  const double mb = static_cast<double>(items * items * 4) / 1e6;
  const fs::path with = dir / "recrun-bench-ckpt-v3.ckpt";
  const fs::path without = dir / "recrun-bench-ckpt-v2.ckpt";
  const recrun::Archive::FileOptions sums{.checksums = true, .verify = true};
  const recrun::Archive::FileOptions none{.checksums = false, .verify = false};

  std::vector<double> save3, save2, load3, load2;
  // The order alternates between repeats: the second file of a pair is written while the first
  // one's pages are still being flushed, which would otherwise always penalise the same format.
  for (int r = 0; r < repeats; ++r) {
    const auto save = [&](const fs::path& file, const recrun::Archive::FileOptions& o,
                          std::vector<double>& times) {
      const auto t0 = Clock::now();
      a.save_file(file, o);
      times.push_back(seconds(t0));
    };
    const auto load = [&](const fs::path& file, const recrun::Archive::FileOptions& o,
                          std::vector<double>& times) {
      const auto t0 = Clock::now();
      auto b = recrun::Archive::load_file(file, o);
      times.push_back(seconds(t0));
      return b.read("model.B");
    };
    torch::Tensor b, c;
    if (r % 2 == 0) {
      save(with, sums, save3);
      save(without, none, save2);
      b = load(with, sums, load3);
      c = load(without, none, load2);
    } else {
      save(without, none, save2);
      save(with, sums, save3);
      c = load(without, none, load2);
      b = load(with, sums, load3);
    }
    if (!b.equal(c)) {
      fmt::print(stderr, "the two files load different tensors\n");
      return 1;
    }
  }
  if (std::getenv("BENCH_VERBOSE"))
    for (int r = 0; r < repeats; ++r)
      fmt::print("  run {}: save {:.3f}/{:.3f}s  load {:.3f}/{:.3f}s (with/without)\n", r, save3[r],
                 save2[r], load3[r], load2[r]);
  // The hash alone, in memory: the floor of what verification can cost.
  std::vector<double> hash_times;
  std::uint64_t sink = 0;
  const torch::Tensor m = a.read("model.B");
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    sink ^= XXH3_64bits(m.data_ptr(), static_cast<std::size_t>(m.numel() * m.element_size()));
    hash_times.push_back(seconds(t0));
  }
  fs::remove(with);
  fs::remove(without);
  fmt::print("archive: {}x{} float32 = {:.0f} MB, median of {} runs\n", items, items, mb, repeats);
  fmt::print("  save  with checksums {:.3f}s ({:.0f} MB/s)  without {:.3f}s ({:.0f} MB/s)  ratio {:.3f}\n",
             median(save3), mb / median(save3), median(save2), mb / median(save2),
             median(save3) / median(save2));
  fmt::print("  load  verified       {:.3f}s ({:.0f} MB/s)  without {:.3f}s ({:.0f} MB/s)  ratio {:.3f}\n",
             median(load3), mb / median(load3), median(load2), mb / median(load2),
             median(load3) / median(load2));
  const double total3 = median(save3) + median(load3), total2 = median(save2) + median(load2);
  fmt::print("  save+load ratio {:.3f}\n", total3 / total2);
  fmt::print("  XXH3-64 alone over the matrix in memory: {:.3f}s ({:.0f} MB/s) [{:x}]\n",
             median(hash_times), mb / median(hash_times), sink & 0xf);
  return 0;
}
