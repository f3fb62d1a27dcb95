// The Recorder: one RunObserver that reports a run everywhere it is watched from — TensorBoard
// event files, the results store's epoch curves, a parent sweep's progress pipe and the console.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/trainer.hpp"
#include "recrun/params.hpp"
#include "results/results_store.hpp"
#include "tensorboard/event_writer.hpp"
#include "tensorboard/hparams.hpp"

namespace recrun::trial {

/// Receives one line per training event (see progress_line formats in recorder.cpp's
/// ProgressEvent), e.g. for a parent sweep that draws the progress display.
using ProgressSink = std::function<void(const std::string& line)>;

/// What a Recorder writes to, and about which run.
struct RecorderOptions {
  /// The run's key in the store; with `store`, epoch metrics go to results.db.
  std::string trial_key;
  /// The results store, or null to keep results.db out of it.
  results::ResultsStore* store = nullptr;
  /// The run's TensorBoard directory; empty writes no event file.
  std::filesystem::path tensorboard_dir;
  /// Hyperparameters for the HParams tab (session start).
  std::map<std::string, tensorboard::HParamValue> hparams;
  /// Runs sharing this name are repeats (seeds) in the HParams tab.
  std::string hparams_group;
  /// The validation metric that picks the best epoch.
  std::string monitor = "NDCG@10";
  /// Epoch limit, for the progress display's ETA.
  std::int64_t max_epochs = 0;
  /// Progress lines go here when set.
  ProgressSink progress;
  /// Print one line per epoch and validation to stdout.
  bool console = false;
};

/// What a progress event reports; the letter is its tag on the wire.
enum class ProgressKind : char {
  start = 'S',       ///< training starts (max_epochs)
  resumed = 'R',     ///< resumed from a checkpoint at `epoch`
  epoch = 'E',       ///< an epoch ended (loss, seconds, examples)
  converged = 'C',   ///< a closed-form fit is complete
  validation = 'V',  ///< validated (value of the monitor, seconds, improved)
  test = 'T',        ///< tested (value of the monitor, seconds)
};

/// One progress event, as a worker sends it to its sweep (one text line each). Fields that
/// its kind does not use stay at their defaults.
struct ProgressEvent {
  ProgressKind kind = ProgressKind::start;
  std::int64_t epoch = -1;
  /// start: the epoch limit.
  std::int64_t max_epochs = 0;
  /// epoch: mean training loss.
  double loss = 0;
  /// validation and test: the monitor's value.
  double value = 0;
  /// epoch, validation, test: seconds it took.
  double seconds = 0;
  /// epoch: training examples.
  std::int64_t examples = 0;
  /// validation: a new best.
  bool improved = false;
};
/// The text line of an event (no newline).
std::string format_progress(const ProgressEvent& event);
/// Parses a line written by format_progress; nullopt for anything else.
std::optional<ProgressEvent> parse_progress(std::string_view line);

/// Writes a run's curves and hyperparameters. begin() before training, end() after.
class Recorder final : public core::RunObserver {
 public:
  explicit Recorder(RecorderOptions options);
  ~Recorder() override;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /// Opens the event file and writes the HParams session start.
  void begin();
  void on_epoch(std::int64_t epoch, const EpochResult& result,
                const std::map<std::string, double>& logged, double seconds) override;
  void on_validation(std::int64_t epoch, const core::EvalResult& result,
                     const std::map<std::string, double>& diagnostics, bool improved) override;
  void on_test(const core::EvalResult& result) override;
  void on_resume(std::int64_t epoch) override;
  /// Writes the HParams session end and flushes. `outcome` is null when the run failed.
  void end(const core::RunOutcome* outcome);

  /// The event file being written (empty when none).
  std::filesystem::path event_file() const;

 private:
  void first_event();
  /// Copies the earlier attempts' curve points up to `epoch` into this attempt's event file and
  /// removes their files.
  void adopt_earlier_events(std::int64_t epoch);
  void scalar(const std::string& tag, double value, std::int64_t step);

  RecorderOptions options_;
  std::unique_ptr<tensorboard::EventWriter> writer_;
  bool started_ = false;
  bool resumed_ = false;
  std::int64_t best_epoch_ = -1;
};

/// A run's hyperparameters as the HParams tab shows them: the model's resolved parameters
/// plus "model", "group" and "seed".
std::map<std::string, tensorboard::HParamValue> hparams_of(const Params& params, const std::string& model,
                                                  const std::string& group, std::int64_t seed);

/// Final metric values for the store: validation metrics of the best epoch plus diagnostics
/// (as "val_<name>"), and test metrics.
std::vector<results::Metric> metrics_of(const std::map<std::string, double>& values,
                                        std::string_view prefix = {});

/// Writes the HParams experiment config (columns: every hyperparameter seen in `sessions`,
/// and test/ and valid/ of every metric) into a fresh event file in `experiment_dir`,
/// replacing the config an earlier sweep of the experiment left there.
void write_experiment_config(const std::filesystem::path& experiment_dir,
                             std::span<const std::map<std::string, tensorboard::HParamValue>> sessions,
                             std::span<const std::string> metric_names);

}  // namespace recrun::trial
