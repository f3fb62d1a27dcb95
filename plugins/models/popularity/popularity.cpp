// popularity — recommends the most interacted-with items the user has not seen.
// The sanity floor: every personalised model must beat it.
#include <recrun/plugin.hpp>

namespace {

class Popularity final : public recrun::Model {
 public:
  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    counts_ = ctx.train().item_counts().to(torch::kFloat);
    return recrun::EpochResult::done();
  }
  torch::Tensor score(const recrun::UserBatch& users) override {
    return counts_.unsqueeze(0).expand({users.size(), counts_.size(0)});
  }
  void save(recrun::Archive& out) const override { out.write("counts", counts_); }
  void load(const recrun::Archive& in) override { counts_ = in.read("counts"); }

 private:
  torch::Tensor counts_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model({.name = "popularity",
                      .summary = "most popular unseen items; the floor every model must beat"},
                     [](const recrun::ModelEnv&) { return std::make_unique<Popularity>(); });
}
