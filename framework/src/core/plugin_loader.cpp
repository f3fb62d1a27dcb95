#include "core/plugin_loader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "sdk/shared_util.hpp"
#include "sdk/host_access.hpp"

namespace recrun::core {
namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path{} : exe.parent_path();
}

// Refuses a candidate that dlopen could hang on or should never map: it must be a regular
// file (a FIFO named librecrun_x.so would block open() forever; a device could be anything) of
// a bounded size that starts with an ELF header. Checked with stat, then through a
// non-blocking descriptor, before the library is opened.
void check_candidate(const fs::path& file) {
  constexpr std::uintmax_t kMaxBytes = std::uintmax_t{4} << 30;
  std::error_code ec;
  const auto st = fs::status(file, ec);
  if (!fs::is_regular_file(st))
    throw PluginError(fmt::format("{}: not loaded: it is {}, not a shared library file; remove it "
                                  "from the plugin directory",
                                  text::printable(file.string()),
                                  ec ? fmt::format("unreadable ({})", ec.message())
                                     : util::file_kind(st.type())));
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    throw PluginError(fmt::format("{}: not loaded: cannot open it: {}",
                                  text::printable(file.string()), std::strerror(errno)));
  struct stat info {};
  unsigned char magic[4] = {};
  const bool regular = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  const bool elf = regular && ::read(fd, magic, sizeof magic) == sizeof magic &&
                   std::memcmp(magic, "\x7f" "ELF", 4) == 0;
  ::close(fd);
  if (!regular)
    throw PluginError(fmt::format("{}: not loaded: it is not a regular file; remove it from the "
                                  "plugin directory",
                                  text::printable(file.string())));
  if (static_cast<std::uintmax_t>(info.st_size) > kMaxBytes)
    throw PluginError(fmt::format("{}: not loaded: {} bytes is larger than any plugin ({} GiB at "
                                  "most); remove it from the plugin directory",
                                  text::printable(file.string()), info.st_size, kMaxBytes >> 30));
  if (!elf)
    throw PluginError(fmt::format("{}: not loaded: not a shared library (no ELF header); remove "
                                  "it from the plugin directory, or rebuild the plugin",
                                  text::printable(file.string())));
}

}  // namespace

std::vector<fs::path> plugin_search_path(const std::vector<fs::path>& explicit_dirs) {
  std::vector<fs::path> dirs = explicit_dirs;
  if (const char* env = std::getenv("RECRUN_PLUGIN_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const auto part = rest.substr(0, colon);
      if (!part.empty()) dirs.emplace_back(part);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  // The default: next to the executable (build tree: bin/../plugins; install: bin/../lib/...),
  // falling back to the build tree this binary was configured in.
  const fs::path exe_dir = executable_dir();
  std::vector<fs::path> defaults = {exe_dir / ".." / "plugins",
                                    exe_dir / ".." / RECRUN_INSTALL_PLUGIN_SUBDIR,
                                    fs::path(RECRUN_BUILD_PLUGIN_DIR)};
  for (const auto& d : defaults) {
    std::error_code ec;
    if (!exe_dir.empty() && fs::is_directory(d, ec)) {
      dirs.push_back(fs::weakly_canonical(d));
      break;
    }
  }
  // Drop duplicates, keeping the first occurrence (its order is the search order).
  std::vector<fs::path> unique;
  for (const auto& d : dirs) {
    std::error_code ec;
    const fs::path c = fs::weakly_canonical(d, ec);
    const fs::path key = ec ? d : c;
    if (std::find(unique.begin(), unique.end(), key) == unique.end()) unique.push_back(key);
  }
  return unique;
}

std::vector<std::string> load_plugin(const fs::path& file, Registry& registry) {
  // Register into a scratch registry first: a library whose registration throws, or declares
  // something the registry refuses, adds nothing at all.
  Registry scratch;
  try {
    check_candidate(file);
    sdk_internal::open_plugin_library(file, scratch);
  } catch (const std::exception& e) {
    // Remembered in the registry, so that `recrun run --model NAME` says why NAME is missing.
    // The reason without the path that starts it: the lookup's message names the path itself.
    std::string reason = e.what();
    if (const std::string head = file.string() + ": "; reason.starts_with(head))
      reason.erase(0, head.size());
    sdk_internal::RegistryAccess::add_refused(
        registry, RefusedLibrary{.path = file.string(),
                                 .reason = std::move(reason),
                                 .components = sdk_internal::RegistryAccess::attempted(scratch)});
    throw;
  }
  // Names another library already holds are skipped (the first in search order wins); the
  // rest merges whole, without throwing half-way.
  std::vector<std::string> notes;
  for (const auto& clash :
       sdk_internal::RegistryAccess::merge(registry, scratch, file.filename().string()))
    notes.push_back(fmt::format(
        "{}: {} '{}' is not loaded: {} (the first library in plugin search order wins: "
        "--plugin-dir, then RECRUN_PLUGIN_PATH, then the built-in plugins; file names in order "
        "within a directory)",
        file.string(), kind_name(clash.kind), clash.name, clash.reason));
  return notes;
}

LoadReport load_plugins(const std::vector<fs::path>& dirs, Registry& registry) {
  LoadReport report;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      const auto st = fs::status(dir, ec);
      report.warnings.push_back(
          fs::exists(st) ? fmt::format("{}: plugin directory is {}, not a directory; name the "
                                       "directory that holds the plugins",
                                       text::printable(dir.string()), util::file_kind(st.type()))
                         : fmt::format("{}: plugin directory does not exist",
                                       text::printable(dir.string())));
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("librecrun_") && entry.path().extension() == ".so")
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());  // deterministic registration order
    for (const auto& f : files) {
      try {
        for (auto& note : load_plugin(f, registry)) report.warnings.push_back(std::move(note));
        report.loaded.push_back(f);
      } catch (const std::exception& e) {
        report.warnings.emplace_back(e.what());
      }
    }
  }
  return report;
}

}  // namespace recrun::core
