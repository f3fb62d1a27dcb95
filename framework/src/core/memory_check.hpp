// core/memory_check — refuses a run before it trains when the model's own memory estimate
// (recrun/memory.hpp) does not fit: neither in what the machine has available now
// (/proc/meminfo MemAvailable) nor under the configured limit (execution.memory_limit_mb for a
// sweep's workers, recrun run --memory-limit-mb), which reaches the run through the
// RECRUN_MEMORY_LIMIT_MB environment variable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "recrun/memory.hpp"
#include "recrun/model_interface.hpp"

namespace recrun::core {

/// Memory limit of a run in MiB (unset or 0: none), set by the sweep for its workers and by
/// `recrun run --memory-limit-mb`.
inline constexpr const char* kMemoryLimitEnv = "RECRUN_MEMORY_LIMIT_MB";
/// Set to 1 to skip the check (the estimate is a model's guess; this overrides it).
inline constexpr const char* kNoMemoryCheckEnv = "RECRUN_NO_MEMORY_CHECK";

/// The numbers the check compares.
struct MemoryPlan {
  /// Resident bytes of this process when asked (libraries, data set, the built model).
  std::int64_t resident = 0;
  /// The model's estimate (nullopt: the model gives none, nothing is checked).
  std::optional<MemoryEstimate> model;
  /// The evaluator's own buffers for one batch of scores.
  std::int64_t evaluation = 0;
  /// resident + model + evaluation.
  std::int64_t peak = 0;
  /// MemAvailable, bytes (-1 when unknown).
  std::int64_t available = -1;
  /// The limit in bytes (0: none).
  std::int64_t limit = 0;
};

/// MemAvailable from /proc/meminfo in bytes, or -1.
std::int64_t mem_available_bytes();
/// Resident bytes of this process (/proc/self/statm), or 0.
std::int64_t resident_bytes();
/// The limit from RECRUN_MEMORY_LIMIT_MB in bytes (0: none); a bad value throws ParamError.
std::int64_t memory_limit_bytes();

/// Asks `model` for its estimate (when it is a MemoryEstimator) and fills the plan.
MemoryPlan plan_memory(const Model& model, const Interactions& train, std::int64_t num_items,
                       std::int64_t score_batch);

/// Prints the plan as one line ("memory: estimated peak N MiB (...)") and throws recrun::Error
/// naming the estimate, what it exceeds and the parameters that lower it when the plan does not
/// fit; does nothing for a model without an estimate. RECRUN_NO_MEMORY_CHECK=1 skips the
/// refusal, not the line.
void check_memory(const MemoryPlan& plan, std::string_view model_name);

}  // namespace recrun::core
