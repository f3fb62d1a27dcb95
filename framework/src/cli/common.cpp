#include "cli/common.hpp"

#include "trial/param_input.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <iostream>
#include <thread>

#include "core/plugin_loader.hpp"
#include "core/trainer.hpp"
#include "recrun/error.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/data_source.hpp"
#include "recrun/text.hpp"
#include "results/results_store.hpp"

namespace recrun::cli {

po::options_description host_options(HostOptions& host) {
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "plugin-dir", po::value(&host.plugin_dirs)->composing(),
      "extra plugin directory (repeatable; RECRUN_PLUGIN_PATH is searched too)")(
      "threads", po::value(&host.threads)->default_value(0),
      "LibTorch threads (0 = all cores)");
  return desc;
}

po::variables_map parse(const po::options_description& desc, const Args& args,
                        const std::string& usage, const po::positional_options_description* pos,
                        const po::options_description* hidden) {
  po::variables_map vm;
  try {
    po::options_description all;
    all.add(desc);
    if (hidden) all.add(*hidden);
    auto parser = po::command_line_parser(args).options(all);
    if (pos) parser.positional(*pos);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return vm;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(fmt::format("{} (usage: {})", e.what(), usage));
  }
  return vm;
}

void check_threads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads < 0 || threads > cores)
    throw Error(fmt::format("--threads {}: must be 0 (all {} cores) or 1..{}: this machine has {} "
                            "core{}, and more threads than cores only slow LibTorch down",
                            threads, cores, cores, cores, cores == 1 ? "" : "s"));
}

int max_workers() {
  return 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void check_writable_results(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  const auto fix = [](const fs::path& p) {
    return fmt::format("make it writable (chmod u+w '{}') or choose another directory with "
                       "--results DIR",
                       p.string());
  };
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec))
    throw Error(fmt::format("--results '{}' is not a directory; choose another with --results DIR",
                            root.string()));
  fs::create_directories(root, ec);
  if (ec)
    throw Error(fmt::format("results directory '{}' cannot be created ({}); choose another with "
                            "--results DIR",
                            root.string(), ec.message()));
  const fs::path db = root / "results.db";
  if (fs::exists(db, ec)) {
    if (!fs::is_regular_file(db, ec))
      throw Error(fmt::format("results database '{}' is not a regular file; move it away or "
                              "choose another directory with --results DIR",
                              db.string()));
    const int fd = ::open(db.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
      throw Error(fmt::format("results database '{}' is not writable ({}): {}", db.string(),
                              std::strerror(errno), fix(db)));
    ::close(fd);
  }
  // SQLite creates results.db-wal and -shm next to it; logs/, checkpoints/ and tensorboard/ go
  // here too. Try it rather than guess from permission bits.
  const fs::path probe = root / fmt::format(".recrun-write-test-{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw Error(fmt::format("results directory '{}' is not writable ({}): {}", root.string(),
                            std::strerror(errno), fix(root)));
  ::close(fd);
  ::unlink(probe.c_str());
}

void load_registry(const HostOptions& host, Registry& registry, bool verbose) {
  check_threads(host.threads);
  std::vector<std::filesystem::path> dirs(host.plugin_dirs.begin(), host.plugin_dirs.end());
  const auto report = core::load_plugins(core::plugin_search_path(dirs), registry);
  for (const auto& w : report.warnings) fmt::print(stderr, "warning: plugin {}\n", text::terminal_safe(w));
  if (report.loaded.empty())
    fmt::print(stderr, "warning: no plugins loaded; build them or pass --plugin-dir\n");
  (void)verbose;
}

std::map<std::string, ParamValue> parse_sets(const std::vector<std::string>& sets,
                                             const std::vector<ParamSpec>& schema,
                                             const std::string& component) {
  std::vector<std::pair<std::string, std::string>> settings;
  for (const auto& item : sets) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ParamError(fmt::format("--set '{}': expected key=value", item));
    settings.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return trial::parse_settings(schema, settings, component, "in --set");
}

const std::vector<ParamSpec>& trainer_params_for_listing() { return core::trainer_params(); }

void exit_now(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

std::vector<core::ProtectedPath> dataset_input_paths(const Registry& registry,
                                                     const std::filesystem::path& dir,
                                                     const std::string& source) {
  std::vector<core::ProtectedPath> out;
  try {
    const std::string name = data::resolve_source(registry, dir, source);
    for (const auto& input : registry.data_source(name).make()->inputs(dir))
      out.push_back(core::input_path(
          input, fmt::format("an input file of the data set in '{}' (source '{}')",
                             text::printable(dir.string()), name)));
  } catch (const Error&) {
    // No data set to protect there (yet): the command's own load reports what is wrong.
  }
  return out;
}

namespace {
bool g_stdout_closed = false;
}  // namespace

void guard_standard_streams() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() takes the lowest free number: this one.
    const int got = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (got >= 0 && got != fd) ::close(got);
    if (fd == 1) g_stdout_closed = true;
  }
}

bool stdout_was_closed() { return g_stdout_closed; }

void mark_dead_runs_interrupted(const std::filesystem::path& db) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec)) return;
  try {
    if (const std::size_t n = results::ResultsStore(db).reap_dead_owners())
      fmt::print(stderr, "recrun run: {} run(s) in {} marked interrupted (resume them by running "
                         "the same command again)\n",
                 n, db.string());
  } catch (const std::exception& e) {
    fmt::print(stderr, "recrun run: could not mark the run interrupted in {}: {}\n", db.string(),
               text::terminal_safe(e.what()));
  }
}

}  // namespace recrun::cli
