// core/memory_check: the estimate against MemAvailable and the limit (see memory_check.hpp).
#include "core/memory_check.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "recrun/error.hpp"

namespace recrun::core {

std::int64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::int64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;  // kB
  }
  return -1;
}

std::int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
}

std::int64_t memory_limit_bytes() {
  const char* text = std::getenv(kMemoryLimitEnv);
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const double mb = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(mb >= 0) || mb > 1e9)
    throw ParamError(fmt::format("{}='{}': expected a number of MiB from 0 to 1e9",
                                 kMemoryLimitEnv, text));
  return static_cast<std::int64_t>(mb * 1024 * 1024);
}

MemoryPlan plan_memory(const Model& model, const Interactions& train, std::int64_t num_items,
                       std::int64_t score_batch) {
  MemoryPlan plan;
  plan.resident = resident_bytes();
  plan.available = mem_available_bytes();
  plan.limit = memory_limit_bytes();
  // The evaluator's masks over one batch of scores (a few bytes per score).
  plan.evaluation = score_batch * num_items * 4;
  if (const auto* estimator = dynamic_cast<const MemoryEstimator*>(&model))
    plan.model = estimator->estimate_memory(MemoryQuery{&train, score_batch});
  plan.peak = plan.resident + plan.evaluation + (plan.model ? plan.model->bytes : 0);
  return plan;
}

void check_memory(const MemoryPlan& plan, std::string_view model_name) {
  if (!plan.model) return;
  fmt::print("memory: estimated peak {} MiB ({} in use + {} model + {} evaluation); {} MiB "
             "available{}\n",
             plan.peak >> 20, plan.resident >> 20, plan.model->bytes >> 20, plan.evaluation >> 20,
             plan.available >> 20,
             plan.limit > 0 ? fmt::format(", limit {} MiB", plan.limit >> 20) : std::string());
  std::fflush(stdout);
  if (const char* off = std::getenv(kNoMemoryCheckEnv); off != nullptr && std::string(off) == "1")
    return;
  const std::int64_t needed = plan.peak - plan.resident;  // what the run will still allocate
  std::string exceeds;
  if (plan.limit > 0 && plan.peak > plan.limit)
    exceeds = fmt::format("the memory limit of {} ({}={} MiB: execution.memory_limit_mb, or "
                          "recrun run --memory-limit-mb)",
                          format_bytes(plan.limit), kMemoryLimitEnv, plan.limit >> 20);
  else if (plan.available >= 0 && needed > plan.available)
    exceeds = fmt::format("the memory this machine has available: {} now in use by this process "
                          "+ {} available (MemAvailable)",
                          format_bytes(plan.resident), format_bytes(plan.available));
  if (exceeds.empty()) return;
  const MemoryEstimate& m = *plan.model;
  throw Error(fmt::format(
      "{}: estimated peak memory {} exceeds {}. The estimate: {} in use before training + {} for "
      "the model's training and scoring{} + {} for evaluation (--eval-batch-size). Lower it with "
      "{}; the run was not started ({}=1 skips this check)",
      model_name, format_bytes(plan.peak), exceeds, format_bytes(plan.resident),
      format_bytes(m.bytes), m.detail.empty() ? "" : fmt::format(" ({})", m.detail),
      format_bytes(plan.evaluation), m.lowered_by, kNoMemoryCheckEnv));
}

}  // namespace recrun::core
