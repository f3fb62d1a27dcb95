// Item metadata for the sequential models (recrun/seq.hpp): the bag encoder of categorical
// features, the `features`/`fusion` fields and building the encoders and fusion they name.
#include "recrun/seq.hpp"

#include <fmt/format.h>
#include <set>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {

// --- item metadata -----------------------------------------------------------------------------

ItemBagEncoderImpl::ItemBagEncoderImpl(std::span<const std::int64_t> offsets,
                                       std::span<const std::int32_t> values,
                                       std::int64_t num_values, std::int64_t hidden,
                                       double dropout)
    : num_items_(offsets.empty() ? 0 : static_cast<std::int64_t>(offsets.size()) - 1),
      dropout_(dropout) {
  std::vector<std::int64_t> flat, starts;
  flat.reserve(values.size() + num_items_);
  starts.reserve(num_items_);
  single_valued_ = true;
  for (std::int64_t i = 0; i < num_items_; ++i) {
    starts.push_back(static_cast<std::int64_t>(flat.size()));
    const std::int64_t begin = offsets[i], end = offsets[i + 1];
    if (begin == end) {
      flat.push_back(num_values);  // the learned 'missing' row
      continue;
    }
    single_valued_ &= end - begin == 1;
    for (std::int64_t k = begin; k < end; ++k) {
      if (values[k] < 0 || values[k] >= num_values)
        throw Error(fmt::format("item {} has value id {} outside [0, {})", i, values[k],
                                num_values));
      flat.push_back(values[k]);
    }
  }
  bag_values_ = torch::tensor(flat, torch::kInt64);
  bag_offsets_ = torch::tensor(starts, torch::kInt64);
  table_ = register_module("table", torch::nn::Embedding(num_values + 1, hidden));
  // The scale of BERT-style item embeddings, so that no source dominates a fusion at the start.
  torch::NoGradGuard no_grad;
  table_->weight.normal_(0.0, 0.02);
}

torch::Tensor ItemBagEncoderImpl::forward(const torch::Tensor& items) {
  const torch::Tensor flat = items.reshape({-1});
  torch::Tensor out;
  if (single_valued_) {
    out = table_(bag_values_.index_select(0, flat));
  } else {
    // Means for the whole catalogue, then a gather: cheaper than bagging per position whenever
    // a batch has more positions than the catalogue has items, and never much dearer than the
    // [.., num_items] output layer that scores them anyway.
    const torch::Tensor per_item = std::get<0>(torch::embedding_bag(
        table_->weight, bag_values_, bag_offsets_, /*scale_grad_by_freq=*/false, /*mode=mean*/ 1));
    out = per_item.index_select(0, flat);
  }
  std::vector<std::int64_t> shape(items.sizes().begin(), items.sizes().end());
  shape.push_back(out.size(1));
  out = out.view(shape);
  return recrun::dropout(out, dropout_, is_training());
}

// --- item features ------------------------------------------------------------------------------

void declare_feature_fields(Fields<FeatureOptions>& f) {
  f.add("features", &FeatureOptions::features,
        "item features fused with the item embedding (feature plugins: genre, director, writer, "
        "title, year, ...); empty = plain model")
      .refers_to(ComponentKind::feature);
  f.add("fusion", &FeatureOptions::fusion,
        "how features are fused: a fusion plugin (concat, add, gate, ...); 'none' only without "
        "features")
      .refers_to(ComponentKind::fusion, {"none", ""})
      .only_when("features", "fusion has no effect without features");
  f.add("metadata_dropout", &FeatureOptions::metadata_dropout, "dropout on the feature embeddings")
      .range(0, 0.95);
}

ItemFeatures make_item_features(const Registry& registry, const Dataset& dataset,
                                const std::vector<std::string>& features,
                                const std::string& fusion, std::int64_t hidden,
                                double metadata_dropout, std::string_view model) {
  ItemFeatures out;
  if (features.empty()) return out;
  if (fusion == "none") {
    std::vector<std::string> names;
    for (const auto& f : registry.fusions()) names.push_back(f.name);
    throw ParamError(fmt::format(
        "{}: features [{}] need a fusion to combine them with the item embedding; set fusion to "
        "one of: {}",
        model, fmt::join(features, ", "),
        names.empty() ? std::string("(no fusion plugin loaded)")
                      : fmt::format("{}", fmt::join(names, ", "))));
  }
  std::set<std::string> seen;
  FusionEnv fusion_env{.hidden = hidden, .sources = {"item"}};
  for (const auto& name : features) {
    if (!seen.insert(name).second)
      throw ParamError(fmt::format("{}: feature '{}' is listed twice in features", model, name));
    const FeatureInfo& info = registry.feature(name);  // throws did-you-mean
    out.encoders.push_back(info.make(
        FeatureEnv{.dataset = dataset, .hidden = hidden, .metadata_dropout = metadata_dropout}));
    out.names.push_back(name);
    fusion_env.sources.push_back(name);
  }
  out.fusion = registry.fusion(fusion).make(fusion_env);
  return out;
}

}  // namespace recrun
