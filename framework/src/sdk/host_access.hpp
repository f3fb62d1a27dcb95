// sdk/host_access.hpp — the SDK calls only the host makes.
//
// The plugin-facing headers (framework/include/recrun) hold what a plugin may call. What only
// the host does with SDK objects — recording which library registered a component, merging a
// library's scratch registry, recording refused libraries, driving a TrainContext's epochs and
// deadline, installing the process group — is declared here, in the SDK's private folder, which
// is neither installed nor on a plugin's include path. The classes below are friends of the
// objects they reach into; their code lives in librecrun_sdk.so.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "recrun/distributed.hpp"
#include "recrun/model_interface.hpp"
#include "recrun/registry.hpp"

namespace recrun::sdk_internal {

/// A component that a registry did not take, and why.
struct RegistrationProblem {
  ComponentKind kind;
  std::string name;
  std::string reason;
};

struct RegistryAccess {
  /// The library whose entry point is running (recorded as its components' origin).
  static void set_current_origin(Registry& registry, std::string origin);
  /// The components of `other` whose names `registry` already holds (which are not merged).
  static std::vector<RegistrationProblem> clashes(const Registry& registry, const Registry& other);
  /// Adds every component of `other` that does not clash, recording `origin`; returns the
  /// clashing ones, which are skipped. Never throws half-way.
  static std::vector<RegistrationProblem> merge(Registry& registry, const Registry& other,
                                                const std::string& origin);
  /// Records a library that was refused (bad stamp, failed registration, ...), so that looking
  /// up a component it would have provided says why it is missing.
  static void add_refused(Registry& registry, RefusedLibrary refused);
  /// The (kind, name) of every component the registry was asked to add, accepted or not.
  static std::vector<std::pair<ComponentKind, std::string>> attempted(const Registry& registry);
};

struct TrainContextAccess {
  /// Starts epoch `epoch` (0-based): clears the scalars logged during the previous one.
  static void begin_epoch(TrainContext& ctx, std::int64_t epoch);
  /// When out_of_time() turns true.
  static void set_deadline(TrainContext& ctx, std::chrono::steady_clock::time_point t);
  /// The scalars the model logged this epoch.
  static const std::map<std::string, double>& logged(const TrainContext& ctx);
};

/// Opens a plugin library (RTLD_NOW | RTLD_LOCAL), compares its ABI stamp with this SDK's and
/// runs its entry point into `scratch`, a fresh registry. Throws PluginError naming the file and
/// the reason when the library must be refused as a whole (components it registered before a
/// failure stay in `scratch`: RegistryAccess::attempted lists them). The library stays loaded
/// for the life of the process.
void open_plugin_library(const std::filesystem::path& file, Registry& scratch);

/// Installs the process group of a data-parallel run (nullptr removes it). Not thread-safe: set
/// it before training.
void set_collective(Collective* group);

}  // namespace recrun::sdk_internal
