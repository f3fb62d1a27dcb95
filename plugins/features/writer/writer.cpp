// writer — an item's writers as the mean of their embeddings; items without a writer get a
// learned 'missing' embedding.
#include <fmt/format.h>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

RECRUN_PLUGIN(registry) {
  registry.add_feature(
      {.name = "writer",
       .summary = "mean of the item's writer embeddings (categorical feature 'writer')",
       .make = [](const recrun::FeatureEnv& env) -> std::shared_ptr<recrun::FeatureEncoderImpl> {
         const auto it = env.dataset.categorical.find("writer");
         if (it == env.dataset.categorical.end())
           throw recrun::DataError(fmt::format(
               "feature 'writer': data set '{}' has no writers (its features: [{}]); drop "
               "'writer' from the model's features or load a source with writer metadata",
               env.dataset.name, fmt::join(env.dataset.feature_names(), ", ")));
         const recrun::CategoricalFeature& f = it->second;
         return std::make_shared<recrun::ItemBagEncoderImpl>(
             f.offsets, f.values, f.vocab_size(), env.hidden, env.metadata_dropout);
       }});
}
