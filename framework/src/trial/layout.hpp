// Where a results directory keeps what: one place, so that the sweep, its workers and
// `recrun run` agree on paths.
#pragma once

#include <filesystem>
#include <string>

namespace recrun::trial {

/// The layout of a results directory (default results/).
struct ResultsLayout {
  /// The results directory.
  std::filesystem::path root = "results";

  /// results.db
  std::filesystem::path db() const { return root / "results.db"; }
  /// tensorboard/<experiment>/
  std::filesystem::path tensorboard(const std::string& experiment) const {
    return root / "tensorboard" / experiment;
  }
  /// tensorboard/<experiment>/<trial>/
  std::filesystem::path tensorboard(const std::string& experiment, const std::string& key) const {
    return tensorboard(experiment) / key;
  }
  /// checkpoints/<experiment>/<trial>/ (best.ckpt, last.ckpt)
  std::filesystem::path checkpoints(const std::string& experiment, const std::string& key) const {
    return root / "checkpoints" / experiment / key;
  }
  /// logs/<experiment>/<trial>.log: a worker's stdout and stderr.
  std::filesystem::path log(const std::string& experiment, const std::string& key) const {
    return root / "logs" / experiment / (key + ".log");
  }
};

/// The directory name runs made by `recrun run` (no experiment) are filed under.
inline constexpr const char* kSingleRunExperiment = "runs";

}  // namespace recrun::trial
