// Opening one plugin library and running its registration, as the host and the conformance
// check both do (sdk/host_access.hpp: open_plugin_library).
#include <fmt/format.h>

#include <boost/dll/import.hpp>
#include <boost/dll/shared_library.hpp>
#include <mutex>

#include "recrun/abi.hpp"
#include "recrun/error.hpp"
#include "recrun/plugin.hpp"
#include "sdk/host_access.hpp"

namespace recrun::sdk_internal {

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

}  // namespace

void open_plugin_library(const std::filesystem::path& file, Registry& scratch) {
  std::lock_guard lock(load_mutex());
  boost::dll::shared_library lib;
  try {
    lib.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("{}: cannot load: {}", file.string(), e.what()));
  }
  // From here on the library's code has run (static initialisers, maybe the entry point), and
  // what it made (factories, exception objects, atexit handlers) may outlive this call: the
  // library stays loaded for the life of the process, whatever happens next.
  kept_libraries().push_back(lib);
  if (lib.has("recrun_plugin_v1"))
    throw PluginError(fmt::format(
        "{}: built for recrun's SDK 1, but this recrun has SDK {}; port it to the typed "
        "registration (docs/writing-a-plugin.md) and rebuild it",
        file.string(), RECRUN_SDK_VERSION));
  if (!lib.has(RECRUN_ABI_SYMBOL)) {
    throw PluginError(fmt::format(
        "{}: not a recrun plugin (no {} stamp; build it with RECRUN_PLUGIN from "
        "<recrun/plugin.hpp>)",
        file.string(), RECRUN_ABI_SYMBOL));
  }
  // The stamp carries the SDK's one version number: compare it before touching anything else.
  const auto stamp_fn = boost::dll::import_alias<detail::AbiStampFn>(lib, RECRUN_ABI_SYMBOL);
  const char* stamp_text = stamp_fn();
  const std::string stamp = stamp_text ? stamp_text : "";
  if (stamp != host_abi_stamp())
    throw PluginError(fmt::format(
        "{}: built for [{}] but this recrun is [{}]; rebuild the plugin against this recrun's SDK",
        file.string(), stamp, host_abi_stamp()));
  if (!lib.has(RECRUN_ENTRY_SYMBOL))
    throw PluginError(fmt::format("{}: has recrun's ABI stamp but no {} entry point; build it "
                                  "with RECRUN_PLUGIN from <recrun/plugin.hpp>",
                                  file.string(), RECRUN_ENTRY_SYMBOL));
  const auto entry = boost::dll::import_alias<detail::PluginEntry>(lib, RECRUN_ENTRY_SYMBOL);
  RegistryAccess::set_current_origin(scratch, file.filename().string());
  try {
    entry(scratch);
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("{}: registration failed, nothing from it is loaded: {}",
                                  file.string(), e.what()));
  } catch (...) {
    throw PluginError(fmt::format(
        "{}: registration failed with a non-standard exception, nothing from it is loaded",
        file.string()));
  }
}

}  // namespace recrun::sdk_internal
