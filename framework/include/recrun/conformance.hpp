// recrun/conformance.hpp — a check that a Model keeps the promises the framework relies on.
//
// Run it from your plugin's own tests, with any test framework (it has no GoogleTest
// dependency): build a tiny synthetic data set, hand over a factory for your model, and look at
// the report.
//
//   const recrun::Dataset data = recrun::conformance::tiny_dataset();
//   auto make = [&] { return std::make_unique<MyModel>(data.num_items()); };
//   const recrun::conformance::Report report = recrun::conformance::check(make, data);
//   report.require();   // throws recrun::Error listing every failed check; or test report.ok()
//
// The checks (their names, as used in Report):
//   "shape"              score() returns a float32 tensor of shape [B, num_items]
//   "finite"             no score is NaN or +-Inf
//   "repeatable"         scoring the same batch twice gives the same scores (eval mode, no
//                        dropout or sampling left on while scoring)
//   "batch_independence" a user's scores are the same alone, in a batch, and in the batch
//                        reversed (Model::score's contract: the evaluator batches users freely)
//   "round_trip"         save() -> Archive::save_file -> Archive::load_file -> load() into a
//                        freshly built model reproduces the trained model's scores
//   "resave"             the reloaded model saves the same keys, tensors and strings again,
//                        so load() restores everything save() wrote (optimizer state too:
//                        resumed runs need it). Optimizer state written with
//                        Archive::write(key, optimizer) is checked for presence only: LibTorch
//                        names each parameter's state by its address in it.
// plus "fit" and "build" when training the model or building a fresh one throws.
//
// check_plugin(path) checks the library itself: that the host would load it and accept every
// declaration its registration makes (parameter names, bounds, defaults, references).
//
// Scores are compared elementwise as |a - b| <= atol + rtol * |b| (rtol = atol = 1e-5 by
// default). That absorbs the last-bit differences a matrix product of another batch size or
// padding length makes (BLAS blocks the work differently), and nothing a real dependency on the
// batch or a missing tensor would cause. Set Options::bitwise for models that compute each row
// exactly the same way whatever the batch (e.g. popularity): then every comparison is bitwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/dataset.hpp"
#include "recrun/model.hpp"

namespace recrun::conformance {

/// Builds a new, untrained model with the parameters under test. Called once for the model that
/// is trained and checked, and once more for the model the checkpoint is loaded into; let it
/// give each model different initial weights if it can (e.g. by not reseeding), so that the
/// round trip really proves load() restores the trained state.
using ModelFactory = std::function<std::unique_ptr<Model>()>;

/// How the check runs.
struct Options {
  /// Epochs check(factory, dataset) trains for (fewer if fit_epoch reports convergence).
  std::int64_t epochs = 2;
  /// Seed of the TrainContext used for training (its rng(); LibTorch's generator is not touched).
  std::uint64_t seed = 1;
  /// Users scored: the first max_users users with a non-empty history (at least 2 are needed).
  std::int64_t max_users = 32;
  /// Users of the batch that are also scored alone.
  std::int64_t singles = 4;
  /// Relative tolerance of every score comparison.
  double rtol = 1e-5;
  /// Absolute tolerance of every score comparison.
  double atol = 1e-5;
  /// Compare scores bitwise instead (for models whose rows do not depend on the batch size).
  bool bitwise = false;
  /// Folder for the round trip's checkpoint file (removed afterwards); empty: the system's
  /// temporary directory. (Every member has an initializer, so that designated initializers
  /// such as {.epochs = 3} compile without -Wmissing-field-initializers warnings.)
  std::filesystem::path temp_dir = {};
};

/// One failed check.
struct Failure {
  /// Name of the check ("shape", "finite", "repeatable", "batch_independence", "round_trip",
  /// "resave", "fit", "build").
  std::string check;
  /// What went wrong, with the user and item where a score differed.
  std::string message;
};

/// What the check found.
struct Report {
  /// Checks that ran and passed.
  std::vector<std::string> passed;
  /// Checks that ran and failed.
  std::vector<Failure> failures;
  /// Checks that could not run, with the reason (e.g. "round_trip: shape failed").
  std::vector<std::string> skipped;

  /// True when nothing failed or was skipped.
  bool ok() const;
  /// Whether the named check failed.
  bool failed(std::string_view check) const;
  /// One line per check: "PASS shape", "FAIL round_trip: ...", "SKIP ...".
  std::string summary() const;
  /// Throws recrun::Error with summary() unless ok().
  void require() const;
};

/// Builds a model with `make`, trains it for options.epochs on every interaction of `dataset`,
/// and runs every check on it.
Report check(const ModelFactory& make, const Dataset& dataset, const Options& options = {});

/// Runs every check on a model you trained yourself on `data`; `make` builds the fresh model the
/// checkpoint is loaded into. The users scored are those of `data`.
Report check_trained(Model& trained, const ModelFactory& make, const Interactions& data,
                     const Options& options = {});

/// Drives a TrainContext the way the trainer does, for a plugin's own tests (resume tests,
/// time budgets): starts epoch `epoch` (0-based), and sets when out_of_time() turns true.
void begin_epoch(TrainContext& ctx, std::int64_t epoch);
void set_deadline(TrainContext& ctx, std::chrono::steady_clock::time_point deadline);

/// Loads a built plugin library the way the host does (RTLD_LOCAL, the ABI stamp compared with
/// this SDK's, the entry point run into a fresh registry with every declaration checked) and
/// reports the check "registration": it fails, with the loader's reason, when the host would
/// refuse the library. `passed` also lists "component <kind> <name>" for each component it
/// registered. The library stays loaded for the life of the process, as in the host.
Report check_plugin(const std::filesystem::path& library);

/// Every interaction of a data set, as the training Interactions of a full-data run.
Interactions all_interactions(const Dataset& dataset);

/// Calls model.fit_epoch up to `epochs` times on `train` (stopping once it reports
/// convergence), as the trainer would, and returns the last epoch's result.
EpochResult fit(Model& model, const Dataset& dataset, const Interactions& train,
                std::int64_t epochs, std::uint64_t seed = 1);

/// Shape of tiny_dataset().
struct TinyDatasetSpec {
  /// Users ("u0", "u1", ...).
  int users = 48;
  /// Items ("i0", "i1", ...); every item occurs at least once.
  int items = 30;
  /// Taste groups: a user mostly picks items of one group, so there is something to learn.
  int groups = 3;
  /// History length range (inclusive).
  int min_len = 3, max_len = 12;
  /// Seed of the generator.
  std::uint64_t seed = 7;
};

/// A small synthetic data set built with DatasetBuilder (no files, no host): users with
/// time-ordered histories of different lengths, a "genre" categorical feature (the item's group)
/// and a "year" numeric feature, so feature-using models can be checked too.
Dataset tiny_dataset(const TinyDatasetSpec& spec = {});

}  // namespace recrun::conformance
