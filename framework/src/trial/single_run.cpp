#include "trial/single_run.hpp"

#include <fmt/format.h>

#include <map>
#include <utility>

#include "recrun/error.hpp"

namespace recrun::trial {

namespace fs = std::filesystem;

SingleRun prepare_single_run(results::ResultsStore& store, const results::TrialSpec& spec,
                             const ResultsLayout& layout) {
  if (const auto reaped = store.reap_dead_owners(); reaped > 0)
    fmt::print("note: {} run(s) in {} whose process had died are now marked interrupted\n", reaped,
               layout.db().string());
  store.register_trials({spec});
  SingleRun run;
  run.existing = store.find(spec.trial_key);
  run.finished_before = run.existing && run.existing->status == results::RunStatus::finished;
  return run;
}

void print_finished_run(const results::RunRow& row, const ResultsLayout& layout) {
  fmt::print("\nrun {} is already finished in {} (attempt {}, finished {}); not running it "
             "again (--force re-runs it and replaces the result only once the new attempt "
             "finishes)\n",
             row.trial_key, layout.db().string(), row.attempts, row.finished_at);
  if (!row.valid_metrics.empty() || !row.test_metrics.empty()) {
    fmt::print("  {:<12} {:>10} {:>10}\n", "metric", "valid", "test");
    std::map<std::string, std::pair<std::optional<double>, std::optional<double>>> table;
    for (const auto& m : row.valid_metrics) table[m.name].first = m.value;
    for (const auto& m : row.test_metrics) table[m.name].second = m.value;
    const auto cell = [](const std::optional<double>& v) {
      return v ? fmt::format("{:.4f}", *v) : std::string("-");
    };
    for (const auto& [name, v] : table)
      fmt::print("  {:<12} {:>10} {:>10}\n", name, cell(v.first), cell(v.second));
  }
  fmt::print("  checkpoint: {}\n  events: {}\n",
             row.checkpoint_path.empty() ? "(none kept)" : row.checkpoint_path,
             row.tensorboard_path.empty() ? "(none)" : row.tensorboard_path);
}

void claim_single_run(results::ResultsStore& store, SingleRun& run, Job& job,
                      bool fresh_checkpoints) {
  const std::string key = job.key;
  std::error_code ec;
  if (run.finished_before) {
    // --force: the new attempt runs under a hidden staging row with its own files, and replaces
    // the finished one (one transaction) only when it finishes.
    const auto rep = store.begin_replacement(key);
    if (rep.result != results::ClaimResult::claimed)
      throw Error(fmt::format("run {} is being re-run by another process right now; wait for it",
                              key));
    run.attempt = rep.attempt;
    job.key = rep.staging_key;
    const std::string sub = fmt::format("attempt-{}", run.attempt);
    job.tensorboard_dir /= sub;
    job.checkpoint_dir /= sub;
    fs::remove_all(job.tensorboard_dir, ec);
    fs::remove_all(job.checkpoint_dir, ec);
    return;
  }
  const auto claim = store.claim(key, /*retry_failed=*/true);
  if (claim != results::ClaimResult::claimed)
    throw Error(fmt::format("run {} is being run by another process right now ({}); wait for it "
                            "or pick another seed",
                            key, results::to_string(claim)));
  // A fresh run; resuming is what `recrun trial` and sweeps do.
  if (fresh_checkpoints) fs::remove_all(job.checkpoint_dir, ec);
}

namespace {

// The files of the attempt a --force run replaced.
void remove_replaced_files(const results::RunRow& replaced) {
  std::error_code ec;
  if (!replaced.checkpoint_path.empty()) {
    const fs::path old_ckpt = replaced.checkpoint_path;
    fs::remove(old_ckpt, ec);
    fs::remove(old_ckpt.parent_path() / "last.ckpt", ec);
    fs::remove(old_ckpt.parent_path(), ec);  // only if empty
  }
  if (!replaced.tensorboard_path.empty()) {
    const fs::path old_tb = replaced.tensorboard_path;
    for (const auto& entry : fs::directory_iterator(old_tb, ec))
      if (entry.is_regular_file(ec) &&
          entry.path().filename().string().rfind("events.out.tfevents", 0) == 0)
        fs::remove(entry.path(), ec);
    fs::remove(old_tb, ec);  // only if empty
  }
}

}  // namespace

JobResult finish_single_run(const Registry& registry, const Dataset& dataset,
                            const core::Split& split, const Job& job, const std::string& key,
                            const SingleRun& run, results::ResultsStore& store,
                            const ResultsLayout& layout) {
  JobResult result = execute(registry, dataset, split, job, store);
  if (!result.finished) {
    if (run.finished_before) {
      store.discard_replacement(job.key);
      std::error_code ec;
      fs::remove_all(job.checkpoint_dir, ec);
      throw Error(fmt::format("run {} (attempt {}, --force) failed: {}; the earlier finished "
                              "result in {} is kept unchanged",
                              key, run.attempt, result.error, layout.db().string()));
    }
    throw Error(fmt::format("run {} failed: {} (recorded in {})", key, result.error,
                            layout.db().string()));
  }
  // The new attempt is in place: remove the files of the one it replaced.
  if (run.finished_before) remove_replaced_files(*run.existing);
  return result;
}

}  // namespace recrun::trial
