#include "predict/topk.hpp"

#include <torch/torch.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/evaluator.hpp"
#include "recrun/error.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::predict {

bool has_release_years(const Dataset& dataset) {
  if (!dataset.numeric.count("year")) return false;
  return std::any_of(dataset.timestamps.begin(), dataset.timestamps.end(),
                     [](std::int64_t t) { return t != 0; });
}

int year_of(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (!::gmtime_r(&t, &tm)) return std::numeric_limits<int>::max();
  return tm.tm_year + 1900;
}

std::vector<UserList> top_k(Model& model, const Dataset& dataset,
                            const std::vector<std::int64_t>& users, const TopKOptions& options) {
  if (options.k < 1) throw ParamError(fmt::format("--topk {}: must be >= 1", options.k));
  if (options.batch_size < 1)
    throw ParamError(fmt::format("--batch-size {}: must be >= 1", options.batch_size));
  const std::int64_t n = dataset.num_items();
  const NumericFeature* years = nullptr;
  if (options.exclude_future) {
    if (!has_release_years(dataset))
      throw DataError(fmt::format("{}: the future filter needs release years and timestamps, and "
                                  "this data set lacks them (use --no-exclude-future)",
                                  dataset.source_dir.string()));
    years = &dataset.numeric.at("year");
  }
  torch::NoGradGuard no_grad;
  std::vector<UserList> lists;
  lists.reserve(users.size());
  std::vector<std::int32_t> scratch, best;
  for (std::size_t begin = 0; begin < users.size(); begin += options.batch_size) {
    const std::size_t end = std::min(users.size(), begin + static_cast<std::size_t>(options.batch_size));
    std::vector<std::int64_t> batch_users(users.begin() + begin, users.begin() + end);
    std::vector<std::span<const std::int32_t>> histories;
    for (const auto u : batch_users) {
      if (u < 0 || u >= dataset.num_users())
        throw Error(fmt::format("predict: user id {} out of range", u));
      histories.push_back(dataset.user_items(u));
    }
    const UserBatch batch(batch_users, histories, n);
    torch::Tensor scores = model.score(batch);
    const auto b = static_cast<std::int64_t>(batch_users.size());
    if (!scores.defined() || scores.dim() != 2 || scores.size(0) != b || scores.size(1) != n)
      throw Error(fmt::format("the model returned scores of shape [{}] for {} users and {} items",
                              scores.defined() ? fmt::format("{}", fmt::join(scores.sizes(), ", "))
                                               : "undefined",
                              b, n));
    scores = scores.to(torch::kFloat).contiguous();
    if (scores.isnan().any().item<bool>()) throw Error("the model produced NaN scores");
    float* s = scores.data_ptr<float>();
    constexpr float kOut = -std::numeric_limits<float>::infinity();
    for (std::int64_t r = 0; r < b; ++r) {
      float* row = s + r * n;
      for (const std::int32_t seen : histories[r]) row[seen] = kOut;
      if (years) {
        const auto times = dataset.user_times(batch_users[r]);
        const int last_year = times.empty() ? std::numeric_limits<int>::max()
                                            : year_of(*std::max_element(times.begin(), times.end()));
        for (std::int64_t j = 0; j < n; ++j)
          if (years->present[j] && years->values[j] > static_cast<float>(last_year)) row[j] = kOut;
      }
      // The evaluator's own top-K selection: (score desc, id asc), -inf items never listed.
      core::top_k(row, n, options.k, scratch, best);
      UserList list;
      list.user = batch_users[r];
      list.items = best;
      for (const std::int32_t item : best) list.scores.push_back(row[item]);
      lists.push_back(std::move(list));
    }
    if (options.progress) options.progress(static_cast<std::int64_t>(end), static_cast<std::int64_t>(users.size()));
  }
  return lists;
}

void write_lists(std::ostream& out, const Dataset& dataset, const std::vector<UserList>& lists,
                 Format format) {
  if (format == Format::csv) {
    out << "user,item,rank,score\n";
    for (const auto& l : lists) {
      const std::string user = util::csv_field(dataset.user_ids[l.user]);
      for (std::size_t i = 0; i < l.items.size(); ++i)
        out << fmt::format("{},{},{},{:.6g}\n", user, util::csv_field(dataset.item_ids[l.items[i]]),
                           i + 1, l.scores[i]);
    }
    return;
  }
  for (const auto& l : lists) {
    nlohmann::json j;
    j["user"] = dataset.user_ids[l.user];
    auto items = nlohmann::json::array();
    auto scores = nlohmann::json::array();
    for (std::size_t i = 0; i < l.items.size(); ++i) {
      items.push_back(dataset.item_ids[l.items[i]]);
      scores.push_back(l.scores[i]);
    }
    j["items"] = std::move(items);
    j["scores"] = std::move(scores);
    // Ids are arbitrary bytes: replace invalid UTF-8 rather than throw.
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
}

}  // namespace recrun::predict
