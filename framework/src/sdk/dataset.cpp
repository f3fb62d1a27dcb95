#include "recrun/dataset.hpp"

#include <fmt/format.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "recrun/error.hpp"
#include "shared_util.hpp"

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

namespace {

// A fast hash for short id strings; in-memory only, so it need not be stable across machines.
inline std::uint64_t id_hash(std::string_view s) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xD6E8FEB86659FD93ULL);
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  if (n) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBULL;
  }
  h ^= h >> 29;
  h *= 0xFF51AFD7ED558CCDULL;
  return h ^ (h >> 32);
}

}  // namespace

namespace {

inline std::uint64_t prefix_of(std::string_view s) noexcept {
  std::uint64_t w = 0;
  std::memcpy(&w, s.data(), std::min<std::size_t>(s.size(), 8));
  return w;
}

}  // namespace

std::int64_t DatasetBuilder::IdIndex::find(std::string_view key,
                                           const std::vector<std::string>& ids) const {
  if (slots_.empty()) return -1;
  const std::uint64_t prefix = prefix_of(key);
  const auto size = static_cast<std::uint32_t>(key.size());
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = id_hash(key) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.id == 0) return -1;
    if (slot.prefix == prefix && slot.size == size &&
        (size <= 8 || std::string_view(ids[slot.id - 1]) == key))
      return static_cast<std::int64_t>(slot.id) - 1;
  }
}

std::int64_t DatasetBuilder::IdIndex::intern(std::string_view key, std::vector<std::string>& ids) {
  if ((ids.size() + 1) * 2 > slots_.size()) grow(ids);  // load factor <= 1/2
  const std::uint64_t prefix = prefix_of(key);
  const auto size = static_cast<std::uint32_t>(key.size());
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = id_hash(key) & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (slot.id == 0) {
      if (ids.size() >= 0xFFFFFFFEULL)
        throw DataError("more than 4 billion distinct ids; recrun's dense ids are 32-bit");
      ids.emplace_back(key);
      slot = {prefix, static_cast<std::uint32_t>(ids.size()), size};
      return static_cast<std::int64_t>(ids.size()) - 1;
    }
    if (slot.prefix == prefix && slot.size == size &&
        (size <= 8 || std::string_view(ids[slot.id - 1]) == key))
      return static_cast<std::int64_t>(slot.id) - 1;
  }
}

void DatasetBuilder::IdIndex::grow(const std::vector<std::string>& ids) {
  std::size_t capacity = slots_.empty() ? 1024 : slots_.size() * 2;
  while (capacity < (ids.size() + 1) * 2) capacity *= 2;
  slots_.assign(capacity, Slot{});
  const std::size_t mask = capacity - 1;
  for (std::size_t id = 0; id < ids.size(); ++id) {
    std::size_t i = id_hash(ids[id]) & mask;
    while (slots_[i].id != 0) i = (i + 1) & mask;
    slots_[i] = {prefix_of(ids[id]), static_cast<std::uint32_t>(id + 1),
                 static_cast<std::uint32_t>(ids[id].size())};
  }
}

void DatasetBuilder::reserve(std::size_t rows) {
  rows_.reserve(rows);
  util::advise_huge_pages(rows_.data(), rows_.capacity() * sizeof(Row));
}

void DatasetBuilder::add_interaction(std::string_view user, std::string_view item,
                                     std::int64_t time) {
  if (last_user_ < 0 || user_ids_[last_user_] != user)
    last_user_ = user_index_.intern(user, user_ids_);
  const std::int64_t i = item_index_.intern(item, item_ids_);
  if (user_ids_.size() > 0x7FFFFFFFULL || item_ids_.size() > 0x7FFFFFFFULL)
    throw DataError("more than 2^31 distinct users or items; recrun's dense ids are 32-bit");
  rows_.push_back({time, static_cast<std::int32_t>(last_user_), static_cast<std::int32_t>(i)});
}

std::optional<std::int32_t> DatasetBuilder::item_id(std::string_view item) const {
  const std::int64_t id = item_index_.find(item, item_ids_);
  if (id < 0) return std::nullopt;
  return static_cast<std::int32_t>(id);
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

  // Counting sort by user keeps file order inside each user, scattering straight into the
  // output arrays; a stable sort by time then runs only for users whose rows are out of order,
  // so file order breaks timestamp ties, as the protocol requires.
  d.user_offsets.assign(num_users + 1, 0);
  for (const auto& r : rows_) ++d.user_offsets[r.user + 1];
  std::partial_sum(d.user_offsets.begin(), d.user_offsets.end(), d.user_offsets.begin());
  std::vector<std::int64_t> cursor(d.user_offsets.begin(), d.user_offsets.end() - 1);
  d.items.reserve(rows_.size());
  d.timestamps.reserve(rows_.size());
  util::advise_huge_pages(d.items.data(), d.items.capacity() * sizeof(std::int32_t));
  util::advise_huge_pages(d.timestamps.data(), d.timestamps.capacity() * sizeof(std::int64_t));
  d.items.resize(rows_.size());
  d.timestamps.resize(rows_.size());
  for (const auto& r : rows_) {
    const std::int64_t at = cursor[r.user]++;
    d.items[at] = r.item;
    d.timestamps[at] = r.time;
  }
  rows_.clear();
  rows_.shrink_to_fit();
  std::vector<std::pair<std::int64_t, std::int32_t>> scratch;
  for (std::size_t u = 0; u < num_users; ++u) {
    const auto first = d.user_offsets[u], last = d.user_offsets[u + 1];
    if (std::is_sorted(d.timestamps.begin() + first, d.timestamps.begin() + last)) continue;
    scratch.clear();
    for (auto k = first; k < last; ++k) scratch.emplace_back(d.timestamps[k], d.items[k]);
    std::stable_sort(scratch.begin(), scratch.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto k = first; k < last; ++k) {
      d.timestamps[k] = scratch[k - first].first;
      d.items[k] = scratch[k - first].second;
    }
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
