#include "recrun/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "recrun/error.hpp"

namespace recrun {

std::optional<std::int32_t> Dataset::find_item(std::string_view original_id) const {
  if (item_index_.empty()) {
    item_index_.reserve(item_ids.size());
    for (std::size_t i = 0; i < item_ids.size(); ++i)
      item_index_.emplace(item_ids[i], static_cast<std::int32_t>(i));
  }
  const auto it = item_index_.find(std::string(original_id));
  if (it == item_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::int64_t> Dataset::find_user(std::string_view original_id) const {
  if (user_index_.empty()) {
    user_index_.reserve(user_ids.size());
    for (std::size_t i = 0; i < user_ids.size(); ++i)
      user_index_.emplace(user_ids[i], static_cast<std::int64_t>(i));
  }
  const auto it = user_index_.find(std::string(original_id));
  if (it == user_index_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Dataset::feature_names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : categorical) out.push_back(name);
  for (const auto& [name, f] : numeric) out.push_back(name);
  for (const auto& [name, f] : dense) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

// --- DatasetBuilder ------------------------------------------------------------------------------

void DatasetBuilder::reserve(std::size_t rows) { rows_.reserve(rows); }

void DatasetBuilder::add_interaction(std::string_view user, std::string_view item,
                                     std::int64_t time) {
  // Keys are short ids; one std::string per lookup is cheaper than it looks next to parsing.
  thread_local std::string key;
  key.assign(user);
  auto [uit, unew] = user_index_.try_emplace(key, static_cast<std::int64_t>(user_ids_.size()));
  if (unew) user_ids_.push_back(key);
  key.assign(item);
  auto [iit, inew] = item_index_.try_emplace(key, static_cast<std::int32_t>(item_ids_.size()));
  if (inew) item_ids_.push_back(key);
  rows_.push_back({uit->second, iit->second, time});
}

std::optional<std::int32_t> DatasetBuilder::item_id(std::string_view item) const {
  const auto it = item_index_.find(std::string(item));
  if (it == item_index_.end()) return std::nullopt;
  return it->second;
}

void DatasetBuilder::add_category(const std::string& feature, std::int32_t item,
                                  std::string_view value) {
  auto& per_item = cat_values_[feature];
  auto& index = cat_vocab_index_[feature];
  auto& vocab = cat_vocab_[feature];
  if (per_item.size() < static_cast<std::size_t>(item) + 1) per_item.resize(item + 1);
  auto [it, fresh] = index.try_emplace(std::string(value), static_cast<std::int32_t>(vocab.size()));
  if (fresh) vocab.emplace_back(value);
  auto& values = per_item[item];
  // A value listed twice for one item counts once (mean pooling must not double-weight it).
  if (std::find(values.begin(), values.end(), it->second) == values.end())
    values.push_back(it->second);
}

void DatasetBuilder::set_numeric(const std::string& feature, std::int32_t item, float value) {
  auto& f = numeric_[feature];
  if (f.values.size() < static_cast<std::size_t>(item) + 1) {
    f.values.resize(item + 1, 0.0f);
    f.present.resize(item + 1, 0);
  }
  f.values[item] = value;
  f.present[item] = 1;
}

void DatasetBuilder::set_dense(const std::string& feature, std::int32_t item,
                               std::span<const float> vec) {
  auto& f = dense_[feature];
  if (f.dim == 0) f.dim = static_cast<std::int64_t>(vec.size());
  if (static_cast<std::int64_t>(vec.size()) != f.dim)
    throw DataError(fmt::format("feature '{}': vector of length {} where earlier ones had {}",
                                feature, vec.size(), f.dim));
  if (f.present.size() < static_cast<std::size_t>(item) + 1) {
    f.values.resize((item + 1) * f.dim, 0.0f);
    f.present.resize(item + 1, 0);
  }
  std::copy(vec.begin(), vec.end(), f.values.begin() + item * f.dim);
  f.present[item] = 1;
}

void DatasetBuilder::set_title(std::int32_t item, std::string_view title) {
  if (titles_.size() < static_cast<std::size_t>(item) + 1) titles_.resize(item + 1);
  titles_[item] = std::string(title);
}

Dataset DatasetBuilder::build(std::string name, std::filesystem::path source_dir,
                              std::string fingerprint) {
  Dataset d;
  d.name = std::move(name);
  d.source_dir = std::move(source_dir);
  d.fingerprint = std::move(fingerprint);
  const std::size_t num_users = user_ids_.size();
  const std::size_t num_items = item_ids_.size();

  // Counting sort by user keeps file order inside each user; a stable sort by time then lets
  // file order break timestamp ties, as the protocol requires.
  d.user_offsets.assign(num_users + 1, 0);
  for (const auto& r : rows_) ++d.user_offsets[r.user + 1];
  std::partial_sum(d.user_offsets.begin(), d.user_offsets.end(), d.user_offsets.begin());
  std::vector<std::int64_t> cursor(d.user_offsets.begin(), d.user_offsets.end() - 1);
  std::vector<std::pair<std::int64_t, std::int32_t>> sorted(rows_.size());
  for (const auto& r : rows_) sorted[cursor[r.user]++] = {r.time, r.item};
  rows_.clear();
  rows_.shrink_to_fit();
  for (std::size_t u = 0; u < num_users; ++u) {
    auto first = sorted.begin() + d.user_offsets[u];
    auto last = sorted.begin() + d.user_offsets[u + 1];
    if (!std::is_sorted(first, last, [](auto& a, auto& b) { return a.first < b.first; }))
      std::stable_sort(first, last, [](auto& a, auto& b) { return a.first < b.first; });
  }
  d.items.resize(sorted.size());
  d.timestamps.resize(sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    d.timestamps[i] = sorted[i].first;
    d.items[i] = sorted[i].second;
  }

  for (auto& [feature, per_item] : cat_values_) {
    CategoricalFeature f;
    f.vocab = std::move(cat_vocab_[feature]);
    per_item.resize(num_items);
    f.offsets.assign(num_items + 1, 0);
    for (std::size_t i = 0; i < num_items; ++i)
      f.offsets[i + 1] = f.offsets[i] + static_cast<std::int64_t>(per_item[i].size());
    f.values.reserve(f.offsets.back());
    for (const auto& v : per_item) f.values.insert(f.values.end(), v.begin(), v.end());
    d.categorical.emplace(feature, std::move(f));
  }
  for (auto& [feature, f] : numeric_) {
    f.values.resize(num_items, 0.0f);
    f.present.resize(num_items, 0);
    d.numeric.emplace(feature, std::move(f));
  }
  for (auto& [feature, f] : dense_) {
    f.values.resize(num_items * f.dim, 0.0f);
    f.present.resize(num_items, 0);
    d.dense.emplace(feature, std::move(f));
  }
  if (!titles_.empty()) {
    titles_.resize(num_items);
    d.titles = std::move(titles_);
  }
  d.user_ids = std::move(user_ids_);
  d.item_ids = std::move(item_ids_);
  *this = DatasetBuilder{};
  return d;
}

}  // namespace recrun
