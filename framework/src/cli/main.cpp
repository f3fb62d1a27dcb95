// recrun — the host runner.
#include <fmt/format.h>

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "recrun/abi.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "recrun/seq.hpp"

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const recrun::cli::Args&)> run;
  bool hidden = false;  // internal: not listed by usage()
};

// The command table. One line per subcommand.
const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"plugins", "list every loaded component and its parameters", recrun::cli::cmd_plugins},
      {"run", "train and evaluate one model on one data set", recrun::cli::cmd_run},
      {"data", "synthesize, convert, inspect and benchmark data sets", recrun::cli::cmd_data},
      {"sweep", "run an experiment file's grid of trials, resumably", recrun::cli::cmd_sweep},
      {"trial", "run one registered trial by key (what sweep workers run)", recrun::cli::cmd_trial},
      {"predict", "write top-K recommendations of a finished run", recrun::cli::cmd_predict},
      {"results", "list, pick the best of, compare and plot recorded runs", recrun::cli::cmd_results},
      {"report", "write an experiment's results as one self-contained HTML page", recrun::cli::cmd_report},
      {"zygote", "a sweep's trial zygote (started by recrun sweep)", recrun::cli::cmd_zygote, true},
  };
  return table;
}

// The shared libraries of a BLAS/LAPACK this process mapped (the one LibTorch really calls:
// Debian switches it with update-alternatives).
std::string loaded_blas() {
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return "unknown";
  std::vector<std::string> found;
  char line[4096];
  while (std::fgets(line, sizeof line, maps)) {
    std::string_view l(line);
    const auto slash = l.find('/');
    if (slash == std::string_view::npos) continue;
    std::string path(l.substr(slash));
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    const auto base = path.substr(path.rfind('/') + 1);
    const bool blas = base.find("blas") != std::string::npos || base.find("mkl") != std::string::npos;
    if (!blas) continue;
    std::error_code ec;
    const auto real = std::filesystem::weakly_canonical(path, ec);
    const std::string shown = ec ? path : real.string();
    if (std::find(found.begin(), found.end(), shown) == found.end()) found.push_back(shown);
  }
  std::fclose(maps);
  return found.empty() ? "none mapped" : fmt::format("{}", fmt::join(found, ", "));
}

int version() {
  fmt::print("recrun {}\n", RECRUN_VERSION);
  fmt::print("plugin SDK {} (ABI stamp {})\n", RECRUN_SDK_VERSION, recrun::host_abi_stamp());
  fmt::print("LibTorch {}\n", TORCH_VERSION);
  fmt::print("BLAS {}\n", loaded_blas());
  const recrun::CpuFeatures cpu = recrun::cpu_features();
  fmt::print("CPU {}; bf16 {}; precision \"auto\" runs {}\n", cpu.describe(),
             cpu.native_bf16() ? "native" : "not native",
             recrun::precision_name(recrun::resolve_precision(recrun::Precision::automatic)));
  // LibTorch 1.13 does not export the capability it dispatched to; the variable decides it.
  const char* capability = std::getenv("ATEN_CPU_CAPABILITY");
  fmt::print("ATEN_CPU_CAPABILITY {}\n", capability ? capability : "unset (LibTorch's default)");
  return 0;
}

void usage(std::FILE* out) {
  fmt::print(out, "usage: recrun <command> [options]   (recrun <command> --help for details)\n\n");
  fmt::print(out, "commands:\n");
  for (const auto& c : commands())
    if (!c.hidden) fmt::print(out, "  {:<10} {}\n", c.name, c.summary);
  fmt::print(out, "  {:<10} {}\n", "--version", "versions; CPU features and precision");
}

}  // namespace

int main(int argc, char** argv) {
  // glibc serves large blocks (attention score tensors, batches, Gram matrices) with fresh mmaps
  // and unmaps them on free, so every training step page-faults them in again, zero-filled.
  // Serving them from the heap and keeping freed memory there made BERT4Rec training 1.9x and
  // scoring 2.8x faster on 2 cores (bench_bert4rec --retain-memory 1 vs 0). Peak memory is
  // unchanged; the process keeps it until it exits (each sweep trial is its own process).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Progress lines must reach `recrun run | tee log` as they happen, not when a 4 KB block
  // fills: line-buffer stdout even when it is a pipe or a file.
  recrun::cli::guard_standard_streams();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version" || name == "version") return version();
  const recrun::cli::Args args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    int code = 1;
    try {
      code = c.run(args);
    } catch (const std::bad_alloc&) {
      fmt::print(stderr,
                 "recrun {}: error: out of memory: the request needs more memory than this "
                 "machine has (a raised --max-trials or a huge grid, data set or --topk?); "
                 "ask for less, or run it on a larger machine\n",
                 name);
    } catch (const std::exception& e) {
      // Messages quote input (headers, ids, file names): never raw bytes on the terminal.
      fmt::print(stderr, "recrun {}: error: {}\n", name, recrun::text::terminal_safe(e.what()));
    }
    // Every command has closed what it wrote (stores, event files, checkpoints) when it
    // returns: skip the static destructors, which spend ~0.3 s deregistering LibTorch's
    // thousands of operators (a short trial's whole run time, measured with perf).
    recrun::cli::exit_now(code);
  }
  std::vector<std::string> names;
  for (const auto& c : commands())
    if (!c.hidden) names.emplace_back(c.name);
  fmt::print(stderr, "recrun: unknown command '{}'; commands: {}\n", recrun::text::printable(name), fmt::join(names, ", "));
  return 2;
}
