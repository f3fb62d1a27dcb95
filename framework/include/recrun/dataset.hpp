// recrun/dataset.hpp — the immutable in-memory data set every model reads.
//
// A Dataset holds dense user and item ids (with maps back to the original ids), each user's
// interactions in time order as CSR, and optional item features. DataSource plugins build one
// through DatasetBuilder; the host loads it once per sweep and shares it with every trial.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recrun {

/// A multi-valued categorical item feature (genre, director, writer) as per-item CSR.
struct CategoricalFeature {
  /// Value names; a value id indexes this vector.
  std::vector<std::string> vocab;
  /// offsets[i]..offsets[i+1] delimit item i's values; size num_items + 1.
  std::vector<std::int64_t> offsets;
  /// Value ids, grouped by item.
  std::vector<std::int32_t> values;

  /// Value ids of one item (empty when the item has no value).
  std::span<const std::int32_t> of(std::int64_t item) const {
    return {values.data() + offsets[item], values.data() + offsets[item + 1]};
  }
  /// Number of distinct values.
  std::int64_t vocab_size() const { return static_cast<std::int64_t>(vocab.size()); }
};

/// A scalar numeric item feature (release year).
struct NumericFeature {
  /// One value per item; meaningless where present[i] == 0.
  std::vector<float> values;
  /// 1 where the item has a value.
  std::vector<std::uint8_t> present;
};

/// A dense vector item feature (precomputed title embeddings).
struct DenseFeature {
  /// Vector length.
  std::int64_t dim = 0;
  /// num_items * dim floats, row-major; rows of absent items are zero.
  std::vector<float> values;
  /// 1 where the item has a vector.
  std::vector<std::uint8_t> present;
};

/// The loaded data set. Immutable once built.
class Dataset {
 public:
  /// Number of users (dense ids 0..num_users-1).
  std::int64_t num_users() const { return static_cast<std::int64_t>(user_ids.size()); }
  /// Number of items (dense ids 0..num_items-1).
  std::int64_t num_items() const { return static_cast<std::int64_t>(item_ids.size()); }
  /// Number of interactions.
  std::int64_t num_interactions() const { return static_cast<std::int64_t>(items.size()); }
  /// A user's items, oldest first.
  std::span<const std::int32_t> user_items(std::int64_t user) const {
    return {items.data() + user_offsets[user], items.data() + user_offsets[user + 1]};
  }
  /// A user's timestamps, aligned with user_items().
  std::span<const std::int64_t> user_times(std::int64_t user) const {
    return {timestamps.data() + user_offsets[user], timestamps.data() + user_offsets[user + 1]};
  }
  /// Dense id of an original item id, if known.
  std::optional<std::int32_t> find_item(std::string_view original_id) const;
  /// Dense id of an original user id, if known.
  std::optional<std::int64_t> find_user(std::string_view original_id) const;
  /// Title text of an item ("" when unknown).
  std::string_view title(std::int64_t item) const {
    return titles.empty() ? std::string_view{} : std::string_view{titles[item]};
  }
  /// Names of every item feature available ("genre", "director", "writer", "year", "title").
  std::vector<std::string> feature_names() const;

  /// Name of the data set (directory name by default).
  std::string name;
  /// Directory it was loaded from.
  std::filesystem::path source_dir;
  /// Stable hash of the source files' contents; part of every trial key.
  std::string fingerprint;
  /// Original user ids, by dense id.
  std::vector<std::string> user_ids;
  /// Original item ids, by dense id.
  std::vector<std::string> item_ids;
  /// CSR offsets into items/timestamps; size num_users + 1.
  std::vector<std::int64_t> user_offsets;
  /// Item of each interaction, grouped by user, stably sorted by time (file order breaks ties).
  std::vector<std::int32_t> items;
  /// Timestamp of each interaction.
  std::vector<std::int64_t> timestamps;
  /// Multi-valued categorical features by name ("genre", "director", "writer").
  std::map<std::string, CategoricalFeature> categorical;
  /// Scalar features by name ("year").
  std::map<std::string, NumericFeature> numeric;
  /// Dense vector features by name ("title").
  std::map<std::string, DenseFeature> dense;
  /// Title text by item (empty vector when the source has no titles).
  std::vector<std::string> titles;

 private:
  friend class DatasetBuilder;
  mutable std::unordered_map<std::string, std::int32_t> item_index_;
  mutable std::unordered_map<std::string, std::int64_t> user_index_;
};

/// Builds a Dataset: interactions first, then item metadata keyed by original item id.
///
/// Dense ids follow first appearance in the interaction rows. build() groups interactions by
/// user and stably sorts each user's rows by time, so file order breaks ties.
class DatasetBuilder {
 public:
  /// Reserves room for `rows` interactions.
  void reserve(std::size_t rows);
  /// Adds one interaction.
  void add_interaction(std::string_view user, std::string_view item, std::int64_t time);
  /// Dense id of an item already seen in the interactions.
  std::optional<std::int32_t> item_id(std::string_view item) const;
  /// Number of items seen so far.
  std::int64_t num_items() const { return static_cast<std::int64_t>(item_ids_.size()); }
  /// Adds a categorical value (e.g. feature "genre", value "Comedy") to a known item.
  void add_category(const std::string& feature, std::int32_t item, std::string_view value);
  /// Sets a numeric feature of a known item.
  void set_numeric(const std::string& feature, std::int32_t item, float value);
  /// Sets a dense vector feature of a known item; every vector of a feature has one length.
  void set_dense(const std::string& feature, std::int32_t item, std::span<const float> vec);
  /// Sets the title text of a known item.
  void set_title(std::int32_t item, std::string_view title);
  /// Finishes the data set. The builder is left empty.
  Dataset build(std::string name, std::filesystem::path source_dir, std::string fingerprint);

 private:
  // 16 bytes a row: at 5M rows the row buffer is the loader's largest allocation.
  struct Row { std::int64_t time; std::int32_t user; std::int32_t item; };
  // Open-addressing map from id text to dense id; the texts live in the ids vector it indexes,
  // so a lookup needs no std::string (the hot path of every data source).
  class IdIndex {
   public:
    /// Dense id of `key`, or -1.
    std::int64_t find(std::string_view key, const std::vector<std::string>& ids) const;
    /// Dense id of `key`, appending it to `ids` when new.
    std::int64_t intern(std::string_view key, std::vector<std::string>& ids);

   private:
    // Ids of up to 8 bytes (every integer id below 10^8) are compared inside the slot, without
    // touching the id strings.
    struct Slot {
      std::uint64_t prefix = 0;  // the key's first 8 bytes, zero-padded
      std::uint32_t id = 0;      // dense id + 1; 0 = empty
      std::uint32_t size = 0;    // key length
    };
    void grow(const std::vector<std::string>& ids);
    std::vector<Slot> slots_;
  };
  IdIndex user_index_;
  IdIndex item_index_;
  std::vector<std::string> user_ids_;
  std::vector<std::string> item_ids_;
  std::int64_t last_user_ = -1;  // rows come grouped by user: most lookups repeat the last one
  std::vector<Row> rows_;
  std::map<std::string, std::vector<std::vector<std::int32_t>>> cat_values_;
  std::map<std::string, std::unordered_map<std::string, std::int32_t>> cat_vocab_index_;
  std::map<std::string, std::vector<std::string>> cat_vocab_;
  std::map<std::string, NumericFeature> numeric_;
  std::map<std::string, DenseFeature> dense_;
  std::vector<std::string> titles_;
};

}  // namespace recrun
