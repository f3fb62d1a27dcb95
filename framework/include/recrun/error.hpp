// recrun/error.hpp — the exceptions that report user mistakes.
//
// Two kinds of failure exist in recrun: broken invariants (bugs: assert/abort) and user mistakes.
// User mistakes throw one of these types with a message that says what was wrong, where, and how
// to fix it; the host turns them into a clear error line and a non-zero exit (or a failed trial).
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace recrun {

/// Base class of every user-facing error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A hyperparameter is unknown, has the wrong type, or is out of range.
class ParamError : public Error {
 public:
  using Error::Error;
};

/// Bad input data: the message names the file and, where known, the 1-based line.
class DataError : public Error {
 public:
  DataError(const std::filesystem::path& file, std::int64_t line, const std::string& what);
  explicit DataError(const std::string& what) : Error(what) {}
  /// The offending file (empty when the error is not tied to one).
  const std::filesystem::path& file() const noexcept { return file_; }
  /// 1-based line number; 0 when not tied to a line.
  std::int64_t line() const noexcept { return line_; }

 private:
  std::filesystem::path file_;
  std::int64_t line_ = 0;
};

/// A plugin cannot be loaded, is incompatible, or a component name is unknown.
class PluginError : public Error {
 public:
  using Error::Error;
};

}  // namespace recrun
