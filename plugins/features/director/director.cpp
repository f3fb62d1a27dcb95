// director — a lookup of the item's (first-listed) director. Every known director has its own
// row; items whose director is unknown share one more, learned row.
//
// A lookup rather than a mean: co-directed films are rare, and the first-listed director is the
// one the seed study used.
#include <fmt/format.h>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

RECRUN_PLUGIN(registry) {
  registry.add_feature(
      {.name = "director",
       .summary = "lookup of the item's first-listed director; unknown directors share a row",
       .make = [](const recrun::FeatureEnv& env) -> std::shared_ptr<recrun::FeatureEncoderImpl> {
         const auto it = env.dataset.categorical.find("director");
         if (it == env.dataset.categorical.end())
           throw recrun::DataError(fmt::format(
               "feature 'director': data set '{}' has no directors (its features: [{}]); drop "
               "'director' from the model's features or load a source with director metadata",
               env.dataset.name, fmt::join(env.dataset.feature_names(), ", ")));
         const recrun::CategoricalFeature& f = it->second;
         // Keep the first value of each item: bags of at most one make the encoder a lookup.
         const std::int64_t n = static_cast<std::int64_t>(f.offsets.size()) - 1;
         std::vector<std::int64_t> offsets{0};
         std::vector<std::int32_t> values;
         for (std::int64_t i = 0; i < n; ++i) {
           if (f.offsets[i + 1] > f.offsets[i]) values.push_back(f.values[f.offsets[i]]);
           offsets.push_back(static_cast<std::int64_t>(values.size()));
         }
         return std::make_shared<recrun::ItemBagEncoderImpl>(
             offsets, values, f.vocab_size(), env.hidden, env.metadata_dropout);
       }});
}
