// The sweep's progress display: on a terminal, a header and one live line per worker, redrawn
// in place; elsewhere (a pipe, a log file, CI), plain log lines, one per event worth keeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trial/recorder.hpp"

namespace recrun::sweep {

/// Draws progress. Not thread-safe: the scheduler's loop owns it.
class ProgressDisplay {
 public:
  /// `live` draws live lines (a terminal); otherwise plain lines. `total` is the number of
  /// trials this sweep runs, `done_before` those already finished before it started.
  ProgressDisplay(std::FILE* out, bool live, int slots, std::size_t total, std::string monitor);
  ~ProgressDisplay();

  /// The trials this sweep runs, per model: the ETA is estimated per model, from the wall time of
  /// its finished trials, and shows "?" while a model with trials left has finished none.
  void plan(const std::map<std::string, std::size_t>& trials_per_model);
  /// Wall seconds of trials of `model` that finished before this sweep (any experiment in
  /// results.db): the ETA uses them until this sweep's own trials of the model finish.
  void history(const std::string& model, const std::vector<double>& seconds);
  /// A worker slot started a trial of `model`.
  void started(int slot, const std::string& key, const std::string& title, bool resuming,
               const std::string& model = "");
  /// The header's ETA: "?" until it can be estimated (see plan()).
  std::string eta() const;
  /// A progress event arrived from a slot's worker.
  void event(int slot, const trial::ProgressEvent& e);
  /// A slot's trial ended: `status` is "finished", "failed" or "interrupted"; `detail` the
  /// metric or the reason.
  void ended(int slot, const std::string& status, const std::string& detail, double seconds);
  /// Prints a line that stays (above the live block on a terminal).
  void log(const std::string& line);
  /// Redraws the live block if it changed and enough time passed.
  void tick();
  /// Removes the live block (before the summary).
  void close();

 private:
  struct Slot {
    bool busy = false;
    std::string key;
    std::string title;
    std::chrono::steady_clock::time_point start;
    std::int64_t epoch = -1;
    std::int64_t max_epochs = 0;
    double loss = std::numeric_limits<double>::quiet_NaN();
    double best = std::numeric_limits<double>::quiet_NaN();
    double epoch_seconds_sum = 0;
    std::int64_t epochs_timed = 0;
    std::string phase = "starting";
    std::string model;
    // A closed-form fit said it is complete: no epochs/max_epochs, no epoch ETA.
    bool converged = false;
  };
  struct ModelTimes {
    std::size_t planned = 0;
    std::size_t ended = 0;
    std::size_t finished = 0;
    double finished_seconds = 0;
    /// Finished before this sweep (results.db).
    std::size_t earlier = 0;
    double earlier_seconds = 0;
    /// The mean wall seconds of a trial: this sweep's finished ones, else the earlier ones.
    std::optional<double> mean() const;
  };
  /// A training trial's own bound: epochs left times its mean epoch so far (what the worker line
  /// shows); nothing before its first timed epoch or for a closed-form fit.
  static std::optional<double> epoch_bound(const Slot& s);
  /// What is left of a running trial: its own epoch bound when it has one (the worker line's),
  /// else the model's mean less what it has run (0 when over); nothing when neither is known.
  std::optional<double> remaining(const Slot& s, std::chrono::steady_clock::time_point now) const;
  std::string header_line() const;
  std::string slot_line(int index, const Slot& s) const;
  void erase_block();
  void draw_block();
  int width() const;

  std::FILE* out_;
  bool live_;
  std::vector<Slot> slots_;
  std::size_t total_;
  std::size_t done_ = 0;
  std::size_t failed_ = 0;
  std::size_t started_ = 0;
  double finished_seconds_sum_ = 0;
  std::map<std::string, ModelTimes> models_;
  std::string monitor_;
  std::chrono::steady_clock::time_point begin_;
  std::chrono::steady_clock::time_point last_draw_{};
  int drawn_lines_ = 0;
  bool dirty_ = true;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace recrun::sweep
