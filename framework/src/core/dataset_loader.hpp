// Loads a data directory through a DataSource plugin.
#pragma once

#include <filesystem>
#include <string>

#include "recrun/dataset.hpp"
#include "recrun/registry.hpp"

namespace recrun::host {

/// Loads `dir` with the data source named `source`, or the first one whose detect() accepts the
/// directory when `source` is empty or "auto". Warnings about skipped rows go to stderr, one line
/// per kind with its count. Throws DataError/PluginError with file, line or plugin name.
Dataset load_dataset(const Registry& registry, const std::filesystem::path& dir,
                     const std::string& source);

/// The name of the source load_dataset would use for `dir`.
std::string resolve_source(const Registry& registry, const std::filesystem::path& dir,
                           const std::string& source);

}  // namespace recrun::host
