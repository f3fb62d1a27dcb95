// Finds plugin libraries, checks their ABI stamp and lets them register their components.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "recrun/registry.hpp"

namespace recrun::core {

/// What a scan loaded and what it refused.
struct LoadReport {
  /// Libraries that loaded and registered.
  std::vector<std::filesystem::path> loaded;
  /// One line per refused library: "<file>: <reason>".
  std::vector<std::string> warnings;
};

/// Plugin directories in search order: `explicit_dirs`, then RECRUN_PLUGIN_PATH
/// (colon-separated), then the default (the build tree's plugins/ or the installed lib/recrun/plugins).
std::vector<std::filesystem::path> plugin_search_path(
    const std::vector<std::filesystem::path>& explicit_dirs);

/// Loads one library (rtld_now, never global), checks its ABI stamp and calls its entry point
/// into a scratch registry; merges what it registered only when all of it was accepted.
/// Throws PluginError naming the file and the reason for a library refused as a whole. A
/// component whose name `registry` already holds is skipped (the first loaded wins): the
/// returned lines say which, and who provides it. A library, once opened, stays loaded for the
/// life of the process, so whatever it handed out stays valid.
std::vector<std::string> load_plugin(const std::filesystem::path& file, Registry& registry);

/// Loads every librecrun_*.so in `dirs` (non-recursive). A library that fails gets a warning
/// in the report and the others still load.
LoadReport load_plugins(const std::vector<std::filesystem::path>& dirs, Registry& registry);

}  // namespace recrun::core
