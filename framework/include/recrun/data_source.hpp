// recrun/data_source.hpp — readers of on-disk data formats.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "recrun/dataset.hpp"
#include "recrun/params.hpp"

namespace recrun {

/// Collects warnings about rows that were safely skipped (shown once each, with counts).
using WarningSink = std::function<void(const std::string& message)>;

/// Reads a directory in one format into a Dataset.
class DataSource {
 public:
  virtual ~DataSource() = default;
  /// Loads `dir`. Bad input throws DataError naming the file and line.
  virtual Dataset load(const std::filesystem::path& dir, const WarningSink& warn) = 0;
  /// Files whose size and mtime key the binary cache of `dir` (the ones load() reads).
  virtual std::vector<std::filesystem::path> inputs(const std::filesystem::path& dir) = 0;
  /// Whether `dir` looks like this format (used to pick a source when none is named).
  virtual bool detect(const std::filesystem::path& dir) = 0;
};

}  // namespace recrun
