// ease — Embarrassingly Shallow Autoencoder (Steck, WWW 2019).
//
// Closed form: B = I - P * diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1 and diag(B) = 0.
// Two exact ways to P, whichever needs fewer operations for the data's shape, counting the fit
// and the scoring of the users the run will score (ease_route.hpp):
// - items <= users (ML-1M): the Gram matrix comes from the sparse interactions
//   (Interactions::gram: each user adds only its own item pairs), then a Cholesky
//   factorisation of X^T X + lambda I and its inverse (LAPACK potrf + potri, about n^3 flops),
//   all in the Gram matrix's own buffer;
// - many more items than users (the bundled MovieLens: 610 users, 9.7k items): the Woodbury
//   identity, (lambda I_n + X^T X)^-1 = (I_n - X^T (lambda I_m + X X^T)^-1 X) / lambda
//   = (I_n - W^T W) / lambda with W = L^-1 X and L L^T = lambda I_m + X X^T: an m x m Cholesky
//   factorisation and a triangular solve (m^2 n multiply-adds instead of n^3). B is never
//   formed: the model keeps W^T [n, m] and 1 / (lambda P_jj) [n], scores x B as
//   x - (x - (x W^T) W) / (lambda P_jj) (x W^T sums the W^T rows of the user's items, so
//   x m + m n per user), and its checkpoint is m n floats instead of n^2 (24 MB instead of
//   378 MB on the bundled data).
// Either way a user's scores sum rows (of B, or of W^T) over the items of its history, never a
// dense [users, items] x [items, ...] product.
// The direct path turns P into B in its own buffer, so one n x n matrix is alive at the end (two
// with dtype = float64: the float32 weights are a copy). bench/bench_ease times both shapes
// against SciPy's Cholesky path.
#include <fmt/format.h>
#include <lapacke.h>
#include <recrun/plugin.hpp>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstddef>

#include "ease_route.hpp"

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

// LAPACKE (liblapacke over the system's LAPACK: OpenBLAS's where it is installed), column-major.
int potrf(int n, float* a) { return LAPACKE_spotrf(LAPACK_COL_MAJOR, 'L', n, a, n); }
int potrf(int n, double* a) { return LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, a, n); }
int potri(int n, float* a) { return LAPACKE_spotri(LAPACK_COL_MAJOR, 'L', n, a, n); }
int potri(int n, double* a) { return LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', n, a, n); }

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

// a holds P in its row-major upper triangle (j >= i); on return it holds B (both triangles).
template <typename T>
void p_to_b_in_place(T* a, std::int64_t size) {
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
}

// a holds G + lambda I (row-major, symmetric); on return it holds B. Returns LAPACK's info of
// the factorisation (> 0: not positive definite).
template <typename T>
int solve_in_place(T* a, std::int64_t size) {
  const int n = static_cast<int>(size);
  // Row-major storage read as column-major is the same symmetric matrix; LAPACK's lower
  // triangle is the row-major upper one (j >= i), which is where P lands.
  if (const int info = potrf(n, a); info != 0) return info;
  if (const int info = potri(n, a); info != 0) return info;
  p_to_b_in_place(a, size);
  return 0;
}

// out[r] = the sum of rows[j] ([*, width] float32) over the distinct items j of user r's history.
torch::Tensor sum_rows(const recrun::UserBatch& users, const torch::Tensor& rows) {
  const std::int64_t b = users.size(), width = rows.size(1);
  torch::Tensor out = torch::zeros({b, width});
  const float* src = rows.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int32_t> items;
    for (std::int64_t r = begin; r < end; ++r) {
      const auto h = users.history(r);
      items.assign(h.begin(), h.end());
      std::sort(items.begin(), items.end());
      items.erase(std::unique(items.begin(), items.end()), items.end());
      float* o = dst + r * width;
      for (const std::int32_t j : items) {
        const float* s = src + static_cast<std::int64_t>(j) * width;
        for (std::int64_t k = 0; k < width; ++k) o[k] += s[k];
      }
    }
  });
  return out;
}

// The data's shape for the route choice: users with a history, their mean distinct items, and
// the users a run scores (validation and test: each such user twice).
recrun::ease::Shape shape_of(const recrun::Interactions& train) {
  recrun::ease::Shape s;
  s.items = static_cast<double>(train.num_items());
  double items = 0;
  for (std::int64_t u = 0; u < train.num_users(); ++u) {
    const auto h = train.items(u);
    if (h.empty()) continue;
    s.users += 1;
    items += static_cast<double>(h.size());
  }
  s.items_per_user = s.users > 0 ? items / s.users : 0;
  s.scored_users = 2 * s.users;
  return s;
}

// The factors of B by the Woodbury identity (see the top of the file): W = L^-1 X [m, n] over
// the users with a history, and inv_j = 1 / (1 - |w_j|^2) = 1 / (lambda P_jj).
struct WoodburyFactors {
  torch::Tensor w;
  torch::Tensor inv;
};

WoodburyFactors woodbury_factors(const recrun::Interactions& train, double lambda,
                                 torch::ScalarType dtype) {
  std::vector<std::int64_t> rows;
  for (std::int64_t u = 0; u < train.num_users(); ++u)
    if (!train.items(u).empty()) rows.push_back(u);
  const torch::Tensor x = train.dense_rows(rows).to(dtype);  // [m, n], 0/1
  torch::Tensor k = x.mm(x.t());
  k.diagonal().add_(lambda);
  const torch::Tensor l = torch::linalg_cholesky(k);
  torch::Tensor w = torch::linalg_solve_triangular(l, x, /*upper=*/false);
  // lambda P_jj = 1 - |w_j|^2 lies in [lambda / (lambda + count_j), 1]: positive.
  torch::Tensor inv = (1 - w.square().sum(0)).reciprocal();
  return {w.to(torch::kFloat32).contiguous(), inv.to(torch::kFloat32).contiguous()};
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
    // Woodbury needs lambda > 0 (it divides by it); the direct path reports lambda = 0's failure.
    const recrun::ease::Shape shape = shape_of(train);
    if (recrun::ease::choose_route(shape, options_.lambda > 0) == recrun::ease::Route::woodbury) {
      auto f = woodbury_factors(train, options_.lambda, dtype);
      wt_ = f.w.t().contiguous();
      inv_ = std::move(f.inv);
      weights_ = torch::Tensor();
      return recrun::EpochResult::done();
    }
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
    wt_ = inv_ = torch::Tensor();
    return recrun::EpochResult::done();
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    if (weights_.defined()) return sum_rows(users, weights_);  // x B
    // x B with B = I - P diag(1/P_jj): x_j - (x P)_j / P_jj, and lambda x P = x - (x W^T) W.
    const torch::Tensor x = users.bag();
    return x - (x - sum_rows(users, wt_).mm(wt_.t())) * inv_;
  }

  // B itself ([n, n]) from the direct path; W and inv ([m, n] and [n]) from Woodbury's.
  void save(recrun::Archive& out) const override {
    if (weights_.defined()) {
      out.write("weights", weights_);
    } else {
      out.write("woodbury_w", wt_.t().contiguous());
      out.write("woodbury_inv", inv_);
    }
  }
  void load(const recrun::Archive& in) override {
    if (in.contains("weights")) {
      weights_ = in.read("weights");
      wt_ = inv_ = torch::Tensor();
    } else {
      const torch::Tensor w = in.read("woodbury_w");
      inv_ = in.read("woodbury_inv");
      weights_ = torch::Tensor();
      if (w.dim() != 2 || inv_.dim() != 1 || w.size(1) != inv_.size(0))
        throw recrun::Error(fmt::format("ease: checkpoint factors have {} and {} dimensions of "
                                        "sizes {} and {}, which do not fit together",
                                        w.dim(), inv_.dim(), w.dim() == 2 ? w.size(1) : -1,
                                        inv_.dim() == 1 ? inv_.size(0) : -1));
      wt_ = w.t().contiguous();
    }
  }

 private:
  EaseOptions options_;
  torch::Tensor weights_;  // B, from the direct path
  torch::Tensor wt_, inv_;  // Woodbury's factors of B: W^T [n, m] and 1 / (lambda P_jj)
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<EaseOptions>(
      {.name = "ease", .summary = "EASE (Steck 2019): closed-form item-item linear autoencoder"},
      declare, [](const EaseOptions& o, const recrun::ModelEnv&) {
        return std::make_unique<Ease>(o);
      });
}
