// op_profile.hpp — where a training step's time goes, by LibTorch operator: runs a callable under
// LibTorch's CPU profiler (the legacy event lists: one push/pop pair per operator call, per
// thread) and sums each operator's self time (its time less that of the operators it called), so
// that the shares add up to the profiled time. For the benches' per-operator tables.
#pragma once

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace recrun::bench {

/// One operator's part of a profiled run.
struct OpShare {
  std::string name;      ///< "aten::mm", "aten::_softmax_backward_data", ...
  double self_ms = 0;    ///< time in the operator itself, summed over its calls
  std::int64_t calls = 0;
};

/// The operators `run` called, by self time (largest first), and the wall time of `run` itself
/// in `wall_ms` (profiling adds a little per call; the shares are of the profiled time).
template <class F>
std::vector<OpShare> profile_ops(F&& run, double* wall_ms) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(
      torch::profiler::impl::ProfilerState::CPU));
  const auto t0 = std::chrono::steady_clock::now();
  run();
  if (wall_ms)
    *wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                   .count();
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();
  std::map<std::string, OpShare> by_name;
  for (const auto& events : lists) {
    // Calls nest within a thread: a stack of open calls, each with the time its children took.
    struct Open {
      const prof::LegacyEvent* push;
      double children_us;
    };
    std::vector<Open> open;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        open.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !open.empty()) {
        const Open o = open.back();
        open.pop_back();
        const double total_us = o.push->cpuElapsedUs(e);
        auto& share = by_name[o.push->name()];
        share.name = o.push->name();
        share.self_ms += std::max(0.0, total_us - o.children_us) / 1e3;
        ++share.calls;
        if (!open.empty()) open.back().children_us += total_us;
      }
    }
  }
  std::vector<OpShare> out;
  for (auto& [name, share] : by_name) out.push_back(std::move(share));
  std::sort(out.begin(), out.end(),
            [](const OpShare& a, const OpShare& b) { return a.self_ms > b.self_ms; });
  return out;
}

}  // namespace recrun::bench
