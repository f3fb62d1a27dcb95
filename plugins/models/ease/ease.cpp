// ease — Embarrassingly Shallow Autoencoder (Steck, WWW 2019).
//
// Closed form: B = I - P * diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1 and diag(B) = 0.
// The Gram matrix comes from the sparse interactions (Interactions::gram: each user adds only
// its own item pairs). P comes from a Cholesky factorisation of the symmetric positive-definite
// regularised Gram matrix (LAPACK potrf + potri), about twice as cheap as a general LU inverse
// and better conditioned. The factorisation, the inverse and B are all computed in the Gram
// matrix's own buffer, so one n x n matrix is alive at the end (two with dtype = float64: the
// float32 weights are a copy). bench/bench_ease times it against SciPy's Cholesky path.
#include <fmt/format.h>
#include <recrun/plugin.hpp>

#include <ATen/Parallel.h>

#include <cstddef>

// LAPACK (linked from the system's liblapack.so.3: OpenBLAS's where it is installed). The
// trailing argument is the hidden length of the Fortran character argument.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, std::size_t);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info, std::size_t);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t);
}

namespace {

enum class Precision { f32, f64 };

struct EaseOptions {
  /// L2 weight added to the Gram matrix's diagonal.
  double lambda = 500.0;
  /// Precision of the closed-form solve (float64 is slower, for ill-conditioned data).
  Precision precision = Precision::f32;
};

void declare(recrun::Fields<EaseOptions>& f) {
  f.add("lambda", &EaseOptions::lambda, "L2 regularisation of the item-item weights").at_least(0);
  f.choice("dtype", &EaseOptions::precision,
           {{"float32", Precision::f32}, {"float64", Precision::f64}},
           "precision of the closed-form solve");
}

void potrf(const char* uplo, const int* n, float* a, int* info) { spotrf_(uplo, n, a, n, info, 1); }
void potrf(const char* uplo, const int* n, double* a, int* info) { dpotrf_(uplo, n, a, n, info, 1); }
void potri(const char* uplo, const int* n, float* a, int* info) { spotri_(uplo, n, a, n, info, 1); }
void potri(const char* uplo, const int* n, double* a, int* info) { dpotri_(uplo, n, a, n, info, 1); }

// Runs f(block) for blocks [0, blocks), dealt to LibTorch's threads cyclically (block b goes
// to thread b mod threads), which balances the work of a triangle's block rows.
template <typename F>
void for_blocks_cyclic(std::int64_t blocks, const F& f) {
  const std::int64_t threads = std::max<std::int64_t>(1, at::get_num_threads());
  at::parallel_for(0, threads, 1, [&](std::int64_t t_begin, std::int64_t t_end) {
    for (std::int64_t t = t_begin; t < t_end; ++t)
      for (std::int64_t b = t; b < blocks; b += threads) f(b);
  });
}

// a holds G + lambda I (row-major, symmetric); on return it holds B. Returns LAPACK's info of
// the factorisation (> 0: not positive definite).
template <typename T>
int solve_in_place(T* a, std::int64_t size) {
  const int n = static_cast<int>(size);
  int info = 0;
  // Row-major storage read as column-major is the same symmetric matrix; LAPACK's lower
  // triangle is the row-major upper one (j >= i), which is where P lands.
  potrf("L", &n, a, &info);
  if (info != 0) return info;
  potri("L", &n, a, &info);
  if (info != 0) return info;
  std::vector<T> d(static_cast<std::size_t>(size));
  for (std::int64_t i = 0; i < size; ++i) d[i] = a[i * size + i];
  // B_ij = -P_ij / P_jj for both triangles from the upper P, in square tiles; tile row ti
  // writes its own upper rows and the lower entries of column block ti, so tile rows are
  // independent.
  constexpr std::int64_t tile = 64;
  const std::int64_t tiles = (size + tile - 1) / tile;
  for_blocks_cyclic(tiles, [&](std::int64_t ti) {
    const std::int64_t i0 = ti * tile, i1 = std::min(size, i0 + tile);
    for (std::int64_t j0 = i0; j0 < size; j0 += tile) {
      const std::int64_t j1 = std::min(size, j0 + tile);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = std::max(j0, i + 1); j < j1; ++j) {
          const T p = a[i * size + j];
          a[j * size + i] = -p / d[i];
          a[i * size + j] = -p / d[j];
        }
    }
    for (std::int64_t i = i0; i < i1; ++i) a[i * size + i] = 0;
  });
  return 0;
}

class Ease final : public recrun::Model {
 public:
  explicit Ease(EaseOptions options) : options_(options) {}

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const auto dtype = options_.precision == Precision::f64 ? torch::kFloat64 : torch::kFloat32;
    const recrun::Interactions& train = ctx.train();
    const std::int64_t n = train.num_items();
    if (n > std::numeric_limits<int>::max())
      throw recrun::DataError(fmt::format("ease: {} items is more than LAPACK can index", n));
    torch::Tensor a = train.gram(dtype);
    a.diagonal().add_(options_.lambda);
    // Positive definite for any lambda > 0; with lambda = 0 an item nobody saw breaks it.
    const int info = dtype == torch::kFloat64 ? solve_in_place(a.data_ptr<double>(), n)
                                              : solve_in_place(a.data_ptr<float>(), n);
    if (info != 0)
      throw recrun::Error(fmt::format(
          "ease: X^T X + lambda*I is not positive definite (lambda = {}); raise lambda",
          options_.lambda));
    weights_ = a.to(torch::kFloat32);
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
