#include "core/split.hpp"

#include <fmt/format.h>

#include "recrun/error.hpp"

namespace recrun::core {

Split make_split(const Dataset& dataset, const SplitOptions& options) {
  const bool loo = options.mode == SplitMode::leave_one_out;
  check_min_interactions(options.mode, options.min_interactions);

  Split s;
  s.options = options;
  const std::int64_t num_users = dataset.num_users();
  std::vector<std::int64_t> train_off{0}, tv_off{0};
  std::vector<std::int32_t> train_items, tv_items;
  train_off.reserve(num_users + 1);
  tv_off.reserve(num_users + 1);
  train_items.reserve(dataset.num_interactions());
  if (loo) tv_items.reserve(dataset.num_interactions());
  for (std::int64_t u = 0; u < num_users; ++u) {
    const auto items = dataset.user_items(u);
    const auto n = static_cast<std::int64_t>(items.size());
    if (n < options.min_interactions) {
      ++s.dropped_users;
    } else if (loo) {
      train_items.insert(train_items.end(), items.begin(), items.end() - 2);
      tv_items.insert(tv_items.end(), items.begin(), items.end() - 1);
      s.eval_users.push_back(u);
      s.valid_targets.push_back(items[n - 2]);
      s.test_targets.push_back(items[n - 1]);
    } else {
      train_items.insert(train_items.end(), items.begin(), items.end());
    }
    train_off.push_back(static_cast<std::int64_t>(train_items.size()));
    tv_off.push_back(static_cast<std::int64_t>(tv_items.size()));
  }
  s.train = Interactions(std::move(train_off), std::move(train_items), dataset.num_items());
  if (loo) s.train_valid = Interactions(std::move(tv_off), std::move(tv_items), dataset.num_items());
  return s;
}

}  // namespace recrun::core
