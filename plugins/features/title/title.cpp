// title — a learned linear projection of precomputed title vectors (e.g. Sentence-BERT), of any
// dimension; items without a vector get a learned 'missing' embedding.
#include <fmt/format.h>
#include <recrun/plugin.hpp>
#include <recrun/seq.hpp>

namespace {

class TitleEncoderImpl final : public recrun::FeatureEncoderImpl {
 public:
  TitleEncoderImpl(const recrun::DenseFeature& f, std::int64_t hidden, double dropout)
      : dropout_(dropout) {
    const auto n = static_cast<std::int64_t>(f.present.size());
    vectors_ = torch::tensor(f.values, torch::kFloat).view({n, f.dim});
    present_ = torch::tensor(std::vector<std::uint8_t>(f.present.begin(), f.present.end()),
                             torch::kUInt8)
                   .to(torch::kBool)
                   .unsqueeze(1);
    proj_ = register_module("proj", torch::nn::Linear(f.dim, hidden));
    missing_ = register_parameter("missing", torch::randn({hidden}) * 0.02);
  }

  torch::Tensor forward(const torch::Tensor& items) override {
    const torch::Tensor flat = items.reshape({-1});
    std::vector<std::int64_t> shape(items.sizes().begin(), items.sizes().end());
    shape.push_back(missing_.size(0));
    const torch::Tensor out = table().index_select(0, flat).view(shape);
    return recrun::dropout(out, dropout_, is_training());
  }

 private:
  // Projects the whole catalogue once per call: a batch typically touches most items, and the
  // table is far cheaper than the [.., num_items] output layer. While scoring, the table is
  // reused until a parameter changes (optimizer steps and checkpoint loads bump versions).
  torch::Tensor table() {
    const bool frozen = !is_training() && !torch::GradMode::is_enabled();
    const std::array<std::int64_t, 3> versions{
        static_cast<std::int64_t>(proj_->weight._version()),
        static_cast<std::int64_t>(proj_->bias._version()),
        static_cast<std::int64_t>(missing_._version())};
    if (frozen && cached_.defined() && versions == cached_versions_) return cached_;
    torch::Tensor t = torch::where(present_, proj_(vectors_), missing_);
    if (frozen) {
      cached_ = t;
      cached_versions_ = versions;
    } else {
      cached_ = torch::Tensor();
    }
    return t;
  }

  double dropout_;
  torch::Tensor vectors_, present_, missing_, cached_;
  std::array<std::int64_t, 3> cached_versions_{};
  torch::nn::Linear proj_{nullptr};
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_feature(
      {.name = "title",
       .summary = "linear projection of precomputed title vectors (dense feature 'title')",
       .make = [](const recrun::FeatureEnv& env) -> std::shared_ptr<recrun::FeatureEncoderImpl> {
         const auto it = env.dataset.dense.find("title");
         if (it == env.dataset.dense.end() || it->second.dim == 0)
           throw recrun::DataError(fmt::format(
               "feature 'title': data set '{}' has no title vectors (its features: [{}]); drop "
               "'title' from the model's features or provide precomputed title embeddings",
               env.dataset.name, fmt::join(env.dataset.feature_names(), ", ")));
         return std::make_shared<TitleEncoderImpl>(it->second, env.hidden, env.metadata_dropout);
       }});
}
