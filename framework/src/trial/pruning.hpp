// The trainer's pruning hook for a trial of a search with a pruner (`[group.search] pruner =
// "asha"` or "median"): after each validation it asks results.db for the decision at every rung
// the trial has reached (results/search_store.hpp), so a decision is taken once, in a
// transaction, and a resumed trial that reaches a rung again gets the same one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "results/results_store.hpp"

namespace recrun::trial {

/// The hook for core::TrainerOptions::should_prune, or an empty function when the trial belongs
/// to no search with a pruner. `store` must outlive the hook.
std::function<bool(std::int64_t epochs_trained, double value)> pruning_hook(
    results::ResultsStore& store, const std::string& trial_key);

}  // namespace recrun::trial
