// ease — Embarrassingly Shallow Autoencoder (Steck, WWW 2019).
//
// Closed form: B = I - P * diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1 and diag(B) = 0.
// P comes from a Cholesky factorisation of the symmetric positive-definite regularised Gram
// matrix (potrf + potri), which is about twice as cheap as a general LU inverse and better
// conditioned; bench/bench_ease compares the two.
#include <fmt/format.h>
#include <recrun/plugin.hpp>

namespace {

enum class Precision { f32, f64 };

struct EaseOptions {
  /// L2 weight added to the Gram matrix's diagonal.
  double lambda = 500.0;
  /// Precision of the closed-form solve (float64 is slower, for ill-conditioned data).
  Precision precision = Precision::f32;
  /// Users per chunk when accumulating X^T X (bounds the dense chunk's memory).
  std::int64_t gram_chunk = 4096;
};

void declare(recrun::Fields<EaseOptions>& f) {
  f.add("lambda", &EaseOptions::lambda, "L2 regularisation of the item-item weights").at_least(0);
  f.choice("dtype", &EaseOptions::precision,
           {{"float32", Precision::f32}, {"float64", Precision::f64}},
           "precision of the closed-form solve");
  f.add("gram_chunk", &EaseOptions::gram_chunk, "users per chunk when accumulating X^T X")
      .at_least(1);
}

class Ease final : public recrun::Model {
 public:
  explicit Ease(EaseOptions options) : options_(options) {}

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const auto dtype = options_.precision == Precision::f64 ? torch::kFloat64 : torch::kFloat32;
    const recrun::Interactions& train = ctx.train();
    const std::int64_t n = train.num_items();
    // G = X^T X, accumulated over chunks of users so X is never materialised whole.
    torch::Tensor gram = torch::zeros({n, n}, dtype);
    std::vector<std::int64_t> users;
    for (std::int64_t begin = 0; begin < train.num_users(); begin += options_.gram_chunk) {
      const std::int64_t end = std::min(train.num_users(), begin + options_.gram_chunk);
      users.clear();
      for (std::int64_t u = begin; u < end; ++u)
        if (!train.items(u).empty()) users.push_back(u);
      if (users.empty()) continue;
      const torch::Tensor x = train.dense_rows(users).to(dtype);
      gram.addmm_(x.t(), x);
    }
    gram.diagonal().add_(options_.lambda);
    // Positive definite for any lambda > 0; with lambda = 0 an item nobody saw breaks it.
    const auto [factor, info] = torch::linalg_cholesky_ex(gram);
    if (info.item<std::int64_t>() != 0)
      throw recrun::Error(fmt::format(
          "ease: X^T X + lambda*I is not positive definite (lambda = {}); raise lambda",
          options_.lambda));
    torch::Tensor p = torch::cholesky_inverse(factor);
    gram = torch::Tensor();
    // B_ij = -P_ij / P_jj, zero diagonal.
    torch::Tensor b = p.div_(p.diagonal().neg().unsqueeze(0));
    b.diagonal().zero_();
    weights_ = b.to(torch::kFloat32).contiguous();
    return recrun::EpochResult::done();
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    return users.bag().mm(weights_);
  }

  void save(recrun::Archive& out) const override { out.write("weights", weights_); }
  void load(const recrun::Archive& in) override { weights_ = in.read("weights"); }

 private:
  EaseOptions options_;
  torch::Tensor weights_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<EaseOptions>(
      {.name = "ease", .summary = "EASE (Steck 2019): closed-form item-item linear autoencoder"},
      declare, [](const EaseOptions& o, const recrun::ModelEnv&) {
        return std::make_unique<Ease>(o);
      });
}
