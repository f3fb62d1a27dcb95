// The trainer's pruning hook: rung decisions from results.db.
#include "trial/pruning.hpp"

#include <vector>

#include "results/search_store.hpp"

namespace recrun::trial {

std::function<bool(std::int64_t, double)> pruning_hook(results::ResultsStore& store,
                                                        const std::string& trial_key) {
  if (trial_key.empty()) return {};
  results::SearchStore searches(store);
  const auto search = searches.pruning_search_of(trial_key);
  if (!search) return {};
  const auto pruner = results::pruner_of_spec(search->spec_json);
  if (!pruner) return {};
  const std::vector<std::int64_t> rungs = pruner->rungs();
  std::size_t next = 0;  // the first rung not asked about yet
  return [&store, key = trial_key, search_key = search->search_key, settings = *pruner, rungs,
          next](std::int64_t epochs, double value) mutable {
    results::SearchStore s(store);
    while (next < rungs.size() && rungs[next] <= epochs) {
      const auto rung = static_cast<std::int64_t>(next++);
      if (!s.decide_rung(search_key, key, rung, epochs, value, settings).keep) return true;
    }
    return false;
  };
}

}  // namespace recrun::trial
