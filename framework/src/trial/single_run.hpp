// trial/single_run.hpp — the life of one `recrun run` in the results store: a new or unfinished
// run claims its row; a finished one is reported, or with --force re-run under a hidden staging
// row that replaces the finished result only when the new attempt finishes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "results/results_store.hpp"
#include "trial/layout.hpp"
#include "trial/runner.hpp"

namespace recrun::trial {

/// What the store says about a run before it starts (rank 0 only).
struct SingleRun {
  /// The row as it was before this command, if there was one.
  std::optional<results::RunRow> existing;
  /// Finished before: reported instead of run, unless --force.
  bool finished_before = false;
  /// --force over a finished run: this attempt's number (its staging row and files are
  /// "attempt-N"); 0 otherwise.
  std::int64_t attempt = 0;
};

/// Reaps rows whose process died (printing a note), registers `spec` and reads its row.
SingleRun prepare_single_run(results::ResultsStore& store, const results::TrialSpec& spec,
                             const ResultsLayout& layout);

/// Prints a finished run's stored metrics and files (what `recrun run` says instead of running
/// it again).
void print_finished_run(const results::RunRow& row, const ResultsLayout& layout);

/// Takes the row for `job` (whose key and directories are the run's own): a claim, or with a
/// finished row a replacement, which moves job.key to the staging row and the directories to
/// attempt-N (emptied). `fresh_checkpoints` empties the checkpoint directory of a claimed run.
/// Throws Error when another process holds the run.
void claim_single_run(results::ResultsStore& store, SingleRun& run, Job& job,
                      bool fresh_checkpoints);

/// Runs the claimed job. A failed replacement is discarded (the finished result kept, and said
/// so in the thrown Error); any other failure throws naming where it was recorded. A finished
/// replacement removes the replaced attempt's checkpoint and event files.
JobResult finish_single_run(const Registry& registry, const Dataset& dataset,
                            const core::Split& split, const Job& job, const std::string& key,
                            const SingleRun& run, results::ResultsStore& store,
                            const ResultsLayout& layout);

}  // namespace recrun::trial
