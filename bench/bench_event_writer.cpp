// bench_event_writer — the TensorBoard event writer's cost per scalar: N add_scalar calls
// (eight tags in turn, explicit steps and wall times) into one event file, best of R repeats.
// Each call builds an Event, serializes it (libprotobuf), frames it (length + two masked
// CRC32Cs) and appends it through stdio. docs/architecture.md has the figure against the
// hand-written encoder recrun had before, built from this same source (see there).
//
//   bench_event_writer [--events N] [--repeat R] [--dir DIR]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "tensorboard/event_reader.hpp"
#include "tensorboard/event_writer.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  long events = 1'000'000;
  int repeats = 5;
  fs::path dir = fs::temp_directory_path() / fmt::format("recrun_bench_events_{}", ::getpid());
  recrun::bench::for_each_flag(argc, argv, "bench_event_writer [--events N] [--repeat R] [--dir DIR]", [&](const std::string& flag, const std::string& value) {
    if (flag == "--events") events = std::stol(value);
    else if (flag == "--repeat") repeats = std::stoi(value);
    else if (flag == "--dir") dir = value;
    else return false;
    return true;
  });
  const std::vector<std::string> tags = {"train/loss", "train/lr", "train/throughput",
                                         "valid/NDCG@10", "valid/HR@10", "valid/MRR@10",
                                         "val_gate/genre", "val_gate/title"};
  double best = 1e30;
  std::uintmax_t bytes = 0;
  fs::path last;
  for (int r = 0; r < repeats; ++r) {
    fs::remove_all(dir);
    const auto t0 = std::chrono::steady_clock::now();
    {
      recrun::tensorboard::EventWriter writer(dir, {.start_time = 1.7e9});
      for (long i = 0; i < events; ++i) {
        writer.add_scalar(tags[static_cast<std::size_t>(i) % tags.size()], 1.0 / (1.0 + i), i,
                          1.7e9 + static_cast<double>(i));
      }
      last = writer.path();
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    bytes = fs::file_size(last);
  }
  // The file must read back whole: a fast writer of wrong bytes is no result.
  const auto read = recrun::tensorboard::read_event_file(last);
  const bool ok = static_cast<long>(read.size()) == events + 1 &&
                  read.back().step == events - 1 && read.back().values.at(0).tag ==
                  tags[static_cast<std::size_t>(events - 1) % tags.size()];
  fs::remove_all(dir);
  if (!ok) {
    fmt::print(stderr, "the file did not read back as written\n");
    return 1;
  }
  fmt::print("{} scalar events, best of {}: {:.3f} s, {:.0f} ns/event, {:.1f} MB/s ({} bytes)\n",
             events, repeats, best, best / static_cast<double>(events) * 1e9,
             static_cast<double>(bytes) / best / 1e6, bytes);
  return 0;
}
