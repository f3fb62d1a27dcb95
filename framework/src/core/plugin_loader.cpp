#include "core/plugin_loader.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/import.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <mutex>

#include "recrun/abi.hpp"
#include "recrun/error.hpp"
#include "recrun/plugin.hpp"

namespace recrun::core {
namespace fs = std::filesystem;

namespace {

// Deliberately leaked: libraries must outlive every model, module and deleter they handed out,
// including objects destroyed during static destruction. recrun never unloads a plugin.
std::vector<boost::dll::shared_library>& kept_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}
std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path{} : exe.parent_path();
}

// Copies every component of `from` into `to`, recording `origin`.
void merge(Registry& to, const Registry& from, const std::string& origin) {
  to.set_current_origin(origin);
  for (const auto& m : from.models()) to.add_model(m);
  for (const auto& f : from.features()) to.add_feature(f);
  for (const auto& f : from.fusions()) to.add_fusion(f);
  for (const auto& d : from.data_sources()) to.add_data_source(d);
  to.set_current_origin("");
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

void load_plugin(const fs::path& file, Registry& registry) {
  std::lock_guard lock(load_mutex());
  boost::dll::shared_library lib;
  try {
    lib.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("{}: cannot load: {}", file.string(), e.what()));
  }
  if (!lib.has("recrun_abi_v1") || !lib.has("recrun_plugin_v1"))
    throw PluginError(fmt::format(
        "{}: not a recrun plugin (no recrun_abi_v1/recrun_plugin_v1 entry; build it with "
        "RECRUN_PLUGIN from <recrun/plugin.hpp>)",
        file.string()));
  const auto stamp_fn = boost::dll::import_alias<detail::AbiStampFn>(lib, "recrun_abi_v1");
  const std::string stamp = stamp_fn();
  if (stamp != host_abi_stamp())
    throw PluginError(fmt::format(
        "{}: built for [{}] but this recrun is [{}]; rebuild the plugin against this recrun's SDK",
        file.string(), stamp, host_abi_stamp()));
  const auto entry = boost::dll::import_alias<detail::PluginEntry>(lib, "recrun_plugin_v1");
  // Register into a scratch registry first, so a plugin that throws half-way adds nothing.
  Registry scratch;
  try {
    entry(scratch);
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("{}: registration failed: {}", file.string(), e.what()));
  }
  merge(registry, scratch, file.filename().string());
  kept_libraries().push_back(std::move(lib));
}

LoadReport load_plugins(const std::vector<fs::path>& dirs, Registry& registry) {
  LoadReport report;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      report.warnings.push_back(fmt::format("{}: plugin directory does not exist", dir.string()));
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
        load_plugin(f, registry);
        report.loaded.push_back(f);
      } catch (const std::exception& e) {
        report.warnings.emplace_back(e.what());
      }
    }
  }
  return report;
}

}  // namespace recrun::core
