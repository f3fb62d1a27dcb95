// year — the item's release year as a bucketed embedding; items without a year get a learned
// 'missing' embedding.
//
// Buckets are equal-frequency (at most kMaxBuckets, one per distinct year when there are few), so
// a catalogue dominated by recent releases still separates them, and no range has to be guessed.
#include <fmt/format.h>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

#include <algorithm>

namespace {

constexpr std::size_t kMaxBuckets = 32;

// Upper edges between buckets: bucket(v) = number of edges <= v.
std::vector<float> bucket_edges(const recrun::NumericFeature& f) {
  std::vector<float> sorted;
  for (std::size_t i = 0; i < f.values.size(); ++i)
    if (f.present[i]) sorted.push_back(f.values[i]);
  std::sort(sorted.begin(), sorted.end());
  std::vector<float> distinct = sorted;
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<float> edges;
  if (distinct.size() <= kMaxBuckets) {
    if (!distinct.empty()) edges.assign(distinct.begin() + 1, distinct.end());
    return edges;
  }
  for (std::size_t k = 1; k < kMaxBuckets; ++k) {
    const float e = sorted[k * sorted.size() / kMaxBuckets];
    if (edges.empty() || e > edges.back()) edges.push_back(e);
  }
  return edges;
}

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_feature(
      {.name = "year",
       .summary = "release year as an embedding of up to 32 equal-frequency buckets",
       .make = [](const recrun::FeatureEnv& env) -> std::shared_ptr<recrun::FeatureEncoderImpl> {
         const auto it = env.dataset.numeric.find("year");
         if (it == env.dataset.numeric.end())
           throw recrun::DataError(fmt::format(
               "feature 'year': data set '{}' has no release years (its features: [{}]); drop "
               "'year' from the model's features or load a source with years",
               env.dataset.name, fmt::join(env.dataset.feature_names(), ", ")));
         const recrun::NumericFeature& f = it->second;
         const std::vector<float> edges = bucket_edges(f);
         std::vector<std::int64_t> offsets{0};
         std::vector<std::int32_t> buckets;
         for (std::size_t i = 0; i < f.values.size(); ++i) {
           if (f.present[i])
             buckets.push_back(static_cast<std::int32_t>(
                 std::upper_bound(edges.begin(), edges.end(), f.values[i]) - edges.begin()));
           offsets.push_back(static_cast<std::int64_t>(buckets.size()));
         }
         return std::make_shared<recrun::ItemBagEncoderImpl>(
             offsets, buckets, static_cast<std::int64_t>(edges.size()) + 1, env.hidden,
             env.metadata_dropout);
       }});
}
