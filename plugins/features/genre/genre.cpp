// genre — an item's genres as the mean of their embeddings; items without a genre get a learned
// 'missing' embedding.
#include <fmt/format.h>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

RECRUN_PLUGIN(registry) {
  registry.add_feature(
      {.name = "genre",
       .summary = "mean of the item's genre embeddings (categorical feature 'genre')",
       .make = [](const recrun::FeatureEnv& env) -> std::shared_ptr<recrun::FeatureEncoderImpl> {
         const auto it = env.dataset.categorical.find("genre");
         if (it == env.dataset.categorical.end())
           throw recrun::DataError(fmt::format(
               "feature 'genre': data set '{}' has no genres (its features: [{}]); drop 'genre' "
               "from the model's features or load a source with genre metadata",
               env.dataset.name, fmt::join(env.dataset.feature_names(), ", ")));
         const recrun::CategoricalFeature& f = it->second;
         return std::make_shared<recrun::ItemBagEncoderImpl>(
             f.offsets, f.values, f.vocab_size(), env.hidden, env.metadata_dropout);
       }});
}
