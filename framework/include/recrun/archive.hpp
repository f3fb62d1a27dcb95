// recrun/archive.hpp — named tensors a model saves to, and loads from, a checkpoint.
#pragma once

#include "recrun/tensor.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace recrun {

/// A flat, ordered map of named tensors and strings; checkpoints are Archives on disk.
class Archive {
 public:
  /// Stores a tensor under `key` (a detached CPU copy).
  void write(const std::string& key, const torch::Tensor& tensor);
  /// Stores every parameter and buffer of a module under "<prefix>.<name>".
  void write(const std::string& prefix, const torch::nn::Module& module);
  /// Stores a string under `key`.
  void write_text(const std::string& key, const std::string& text);
  /// The tensor stored under `key`; throws recrun::Error naming the key if absent.
  torch::Tensor read(const std::string& key) const;
  /// Copies "<prefix>.<name>" tensors into a module's parameters and buffers (shapes must match).
  void read(const std::string& prefix, torch::nn::Module& module) const;
  /// Stores an optimizer's state (moments, step counts) so a resumed run continues exactly.
  void write(const std::string& key, const torch::optim::Optimizer& optimizer);
  /// Restores an optimizer's state written by write(key, optimizer).
  void read(const std::string& key, torch::optim::Optimizer& optimizer) const;
  /// The string stored under `key`; throws if absent.
  const std::string& read_text(const std::string& key) const;
  /// Whether a tensor or string is stored under `key`.
  bool contains(const std::string& key) const;
  /// Every tensor key, in order.
  std::vector<std::string> keys() const;
  /// Every string key, in order.
  std::vector<std::string> text_keys() const;

  /// Writes the archive to a file atomically (temporary file + rename). Every tensor and text
  /// record carries an XXH3-64 checksum of its name, shape and bytes (format 3).
  void save_file(const std::filesystem::path& path) const;
  /// Reads an archive written by save_file(); throws recrun::Error naming the file, and on a
  /// checksum mismatch the damaged tensor or text. Files of the earlier formats (2, and the
  /// pickle format before it) have no checksums and load unverified.
  static Archive load_file(const std::filesystem::path& path);

  /// How a file is written or read; the defaults are what save_file(path)/load_file(path) do.
  struct FileOptions {
    /// Write format 3 with per-record checksums; false writes format 2 (no checksums), which
    /// exists for benchmarks and compatibility tests.
    bool checksums = true;
    /// Verify the checksums of a format-3 file on load; false skips it (benchmarks).
    bool verify = true;
  };
  void save_file(const std::filesystem::path& path, const FileOptions& options) const;
  static Archive load_file(const std::filesystem::path& path, const FileOptions& options);

 private:
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, std::string> texts_;
};

}  // namespace recrun
