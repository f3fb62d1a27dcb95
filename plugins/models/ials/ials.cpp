// ials — implicit alternating least squares (Hu, Koren & Volinsky, ICDM 2008) in the form and
// with the tuning advice of Rendle, Krichene, Zhang & Koren, "Revisiting the Performance of iALS
// on Item Recommendation Benchmarks" (RecSys 2022).
//
// User factors W [m, d] and item factors H [n, d] minimise
//
//   L = sum_{(u,i) observed} (w_u.h_i - 1)^2 + alpha0 sum_{u, i} (w_u.h_i)^2
//       + reg * ( sum_u (|I_u| + alpha0 n)^nu |w_u|^2 + sum_i (|U_i| + alpha0 m)^nu |h_i|^2 )
//
// (alpha0 = the weight of every unobserved pair, nu = reg_exponent: 1 is Rendle et al.'s
// frequency-scaled regularisation, 0 the classic constant one). With H fixed, each user's w_u is
// an independent least-squares problem,
//
//   (alpha0 G + sum_{i in I_u} h_i h_i^T + reg_u I) w_u = sum_{i in I_u} h_i,   G = H^T H,
//
// which costs |I_u| d^2 to build with the Gramian trick (the unobserved pairs enter only through
// G, computed once per half-sweep), and is then solved exactly (solver = cholesky, d^3 / 6) or by
// `cg_steps` conjugate-gradient steps warm-started at the current w_u (solver = cg, |I_u| d + d^2
// per step, the choice for large d). Items are solved the same way with W fixed. One epoch = a
// user sweep then an item sweep; rows are shared between LibTorch's threads (at::parallel_for),
// each row's arithmetic the same whatever the thread count.
//
// Scoring is the user step on the history being scored (which, at test time, includes the
// validation item): w_u is solved from the item factors and the history, so a user's scores
// depend on nothing but H and their own history.
#include <fmt/format.h>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace {

enum class Solver { cholesky, cg };

struct IalsOptions {
  /// Embedding dimension d.
  std::int64_t dim = 64;
  /// Regularisation lambda.
  double reg = 0.005;
  /// Weight of the unobserved pairs.
  double alpha0 = 0.1;
  /// Frequency scaling of the regularisation (nu).
  double reg_exponent = 1.0;
  /// Initial item factors ~ N(0, (init_std / sqrt(d))^2).
  double init_std = 0.1;
  /// Exact or conjugate-gradient row solves.
  Solver solver = Solver::cholesky;
  /// CG steps per row and half-sweep.
  std::int64_t cg_steps = 3;
};

void declare(recrun::Fields<IalsOptions>& f) {
  f.add("dim", &IalsOptions::dim,
        "embedding dimension d (Rendle et al. 2022 go up to 2048: larger is better once reg is "
        "tuned)")
      .range(1, 4096);
  f.add("reg", &IalsOptions::reg,
        "L2 regularisation lambda, scaled per row by (|row| + alpha0 * other side)^reg_exponent "
        "(search it on a log scale)")
      .range(0, 100);
  f.add("alpha0", &IalsOptions::alpha0,
        "weight of every unobserved user-item pair (search it on a log scale, e.g. 1e-3 to 10)")
      .range(0, 100);
  f.add("reg_exponent", &IalsOptions::reg_exponent,
        "nu: 1 = frequency-scaled regularisation (Rendle et al. 2022), 0 = constant lambda")
      .range(0, 2);
  f.add("init_std", &IalsOptions::init_std,
        "item factors start at N(0, (init_std / sqrt(dim))^2) (Rendle et al.: 0.1)")
      .range(0, 10);
  f.choice("solver", &IalsOptions::solver, {{"cholesky", Solver::cholesky}, {"cg", Solver::cg}},
           "row solve: cholesky (exact, d^3/6 per row) or cg (cg_steps conjugate-gradient steps "
           "from the current row, for large dim)");
  f.add("cg_steps", &IalsOptions::cg_steps, "conjugate-gradient steps per row (solver = cg)")
      .range(1, 64);
}

/// Each side's rows as CSR with repeats removed: users' items and items' users.
struct Csr {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> cols;
  std::int64_t rows() const { return static_cast<std::int64_t>(offsets.size()) - 1; }
  std::span<const std::int32_t> row(std::int64_t r) const {
    return {cols.data() + offsets[r], cols.data() + offsets[r + 1]};
  }
};

Csr user_rows(const recrun::Interactions& train) {
  Csr x;
  std::vector<std::int32_t> row;
  for (std::int64_t u = 0; u < train.num_users(); ++u) {
    const auto items = train.items(u);
    row.assign(items.begin(), items.end());
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    x.cols.insert(x.cols.end(), row.begin(), row.end());
    x.offsets.push_back(static_cast<std::int64_t>(x.cols.size()));
  }
  return x;
}

Csr transpose(const Csr& x, std::int64_t cols) {
  Csr t;
  t.offsets.assign(static_cast<std::size_t>(cols) + 1, 0);
  for (const auto c : x.cols) ++t.offsets[static_cast<std::size_t>(c) + 1];
  for (std::int64_t c = 0; c < cols; ++c) t.offsets[c + 1] += t.offsets[c];
  t.cols.resize(x.cols.size());
  std::vector<std::int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  for (std::int64_t r = 0; r < x.rows(); ++r)
    for (const auto c : x.row(r)) t.cols[fill[c]++] = static_cast<std::int32_t>(r);
  return t;
}

/// What one row's solve needs besides its own entries.
struct SideSystem {
  const float* other;     // the fixed side's factors [*, d]
  const float* gramian;   // G = other^T other [d, d]
  std::int64_t d;
  double alpha0;
  double reg;             // lambda
  double reg_exponent;    // nu
  double other_rows;      // |other side| (items for a user row)
};

double row_reg(const SideSystem& s, std::size_t entries) {
  const double base = static_cast<double>(entries) + s.alpha0 * s.other_rows;
  return s.reg * (s.reg_exponent == 0 ? 1.0 : std::pow(base, s.reg_exponent));
}

/// Scratch space of one thread.
struct Scratch {
  std::vector<float> a, b, p, q, r;
  std::vector<double> l, z;
  explicit Scratch(std::int64_t d)
      : a(static_cast<std::size_t>(d * d)), b(d), p(d), q(d), r(d),
        l(static_cast<std::size_t>(d * d)), z(d) {}
};

/// x = the exact minimiser: (alpha0 G + sum_j y_j y_j^T + reg I)^-1 sum_j y_j, by a Cholesky
/// factorisation in double precision.
void solve_exact(const SideSystem& s, std::span<const std::int32_t> entries, float* x, Scratch& w) {
  const std::int64_t d = s.d;
  float* a = w.a.data();
  float* b = w.b.data();
  const auto alpha0 = static_cast<float>(s.alpha0);
  for (std::int64_t k = 0; k < d * d; ++k) a[k] = alpha0 * s.gramian[k];
  std::fill(b, b + d, 0.0f);
  for (const auto j : entries) {
    const float* y = s.other + static_cast<std::int64_t>(j) * d;
    for (std::int64_t r = 0; r < d; ++r) {
      const float yr = y[r];
      float* ar = a + r * d;
      for (std::int64_t c = 0; c <= r; ++c) ar[c] += yr * y[c];
      b[r] += yr;
    }
  }
  const double reg = row_reg(s, entries.size());
  // Cholesky L L^T = A (lower triangle), then L z = b, L^T x = z.
  double* l = w.l.data();
  for (std::int64_t r = 0; r < d; ++r) {
    for (std::int64_t c = 0; c <= r; ++c) {
      double sum = a[r * d + c] + (r == c ? reg : 0.0);
      for (std::int64_t k = 0; k < c; ++k) sum -= l[r * d + k] * l[c * d + k];
      if (r == c) {
        // Positive definite unless reg = 0 and the row is degenerate: then leave it at zero.
        l[r * d + r] = sum > 0 ? std::sqrt(sum) : 0.0;
      } else {
        l[r * d + c] = l[c * d + c] > 0 ? sum / l[c * d + c] : 0.0;
      }
    }
  }
  double* zv = w.z.data();
  for (std::int64_t r = 0; r < d; ++r) {
    double sum = b[r];
    for (std::int64_t k = 0; k < r; ++k) sum -= l[r * d + k] * zv[k];
    zv[r] = l[r * d + r] > 0 ? sum / l[r * d + r] : 0.0;
  }
  for (std::int64_t r = d - 1; r >= 0; --r) {
    double sum = zv[r];
    for (std::int64_t k = r + 1; k < d; ++k) sum -= l[k * d + r] * x[k];
    x[r] = static_cast<float>(l[r * d + r] > 0 ? sum / l[r * d + r] : 0.0);
  }
}

/// out = (alpha0 G + sum_j y_j y_j^T + reg I) v.
void apply_system(const SideSystem& s, std::span<const std::int32_t> entries, double reg,
                  const float* v, float* out) {
  const std::int64_t d = s.d;
  for (std::int64_t r = 0; r < d; ++r) {
    const float* g = s.gramian + r * d;
    float sum = 0;
    for (std::int64_t c = 0; c < d; ++c) sum += g[c] * v[c];
    out[r] = static_cast<float>(s.alpha0) * sum + static_cast<float>(reg) * v[r];
  }
  for (const auto j : entries) {
    const float* y = s.other + static_cast<std::int64_t>(j) * d;
    float dot = 0;
    for (std::int64_t c = 0; c < d; ++c) dot += y[c] * v[c];
    for (std::int64_t c = 0; c < d; ++c) out[c] += dot * y[c];
  }
}

/// `steps` conjugate-gradient steps on the row's system, starting from x as it is.
void solve_cg(const SideSystem& s, std::span<const std::int32_t> entries, std::int64_t steps,
              float* x, Scratch& w) {
  const std::int64_t d = s.d;
  const double reg = row_reg(s, entries.size());
  float *r = w.r.data(), *p = w.p.data(), *q = w.q.data();
  apply_system(s, entries, reg, x, q);
  std::fill(r, r + d, 0.0f);
  for (const auto j : entries) {
    const float* y = s.other + static_cast<std::int64_t>(j) * d;
    for (std::int64_t c = 0; c < d; ++c) r[c] += y[c];
  }
  double rs = 0;
  for (std::int64_t c = 0; c < d; ++c) {
    r[c] -= q[c];
    p[c] = r[c];
    rs += static_cast<double>(r[c]) * r[c];
  }
  for (std::int64_t step = 0; step < steps && rs > 1e-20; ++step) {
    apply_system(s, entries, reg, p, q);
    double pq = 0;
    for (std::int64_t c = 0; c < d; ++c) pq += static_cast<double>(p[c]) * q[c];
    if (pq <= 0) break;
    const double alpha = rs / pq;
    double rs_new = 0;
    for (std::int64_t c = 0; c < d; ++c) {
      x[c] += static_cast<float>(alpha * p[c]);
      r[c] -= static_cast<float>(alpha * q[c]);
      rs_new += static_cast<double>(r[c]) * r[c];
    }
    const double beta = rs_new / rs;
    for (std::int64_t c = 0; c < d; ++c) p[c] = r[c] + static_cast<float>(beta * p[c]);
    rs = rs_new;
  }
}

class Ials final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  explicit Ials(IalsOptions options) : o_(options) {}

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    const recrun::Interactions& train = ctx.train();
    const std::int64_t m = train.num_users(), n = train.num_items(), d = o_.dim;
    if (!h_.defined()) {
      h_ = torch::randn({n, d}) * (o_.init_std / std::sqrt(static_cast<double>(d)));
      w_ = torch::zeros({m, d});
    }
    if (h_.size(0) != n || w_.size(0) != m || h_.size(1) != d)
      throw recrun::Error(fmt::format(
          "ials: the factors are [{}, {}] and [{}, {}], the data {} users and {} items with dim "
          "{}",
          w_.size(0), w_.size(1), h_.size(0), h_.size(1), m, n, d));
    if (users_.rows() != m) {
      users_ = user_rows(train);
      items_ = transpose(users_, n);
    }
    sweep(w_, h_, users_);  // users given items
    sweep(h_, w_, items_);  // items given users
    gramian_ = torch::Tensor();
    return recrun::EpochResult::of(loss(), static_cast<std::int64_t>(users_.cols.size()));
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    if (!gramian_.defined()) gramian_ = h_.t().mm(h_).contiguous();
    const std::int64_t b = users.size(), d = o_.dim;
    torch::Tensor x = torch::zeros({b, d});
    const SideSystem s = system(h_, gramian_);
    float* xp = x.data_ptr<float>();
    const float* stored = w_.data_ptr<float>();
    at::parallel_for(0, b, 4, [&](std::int64_t begin, std::int64_t end) {
      Scratch scratch(d);
      std::vector<std::int32_t> items;
      for (std::int64_t r = begin; r < end; ++r) {
        const auto h = users.history(r);
        items.assign(h.begin(), h.end());
        std::sort(items.begin(), items.end());
        items.erase(std::unique(items.begin(), items.end()), items.end());
        float* row = xp + r * d;
        if (o_.solver == Solver::cholesky) {
          solve_exact(s, items, row, scratch);
        } else {
          // The next sweep's CG step for this user, from its stored factors when it has them.
          const std::int64_t u = users.users()[r];
          if (u >= 0 && u < w_.size(0)) std::copy(stored + u * d, stored + (u + 1) * d, row);
          solve_cg(s, items, o_.cg_steps, row, scratch);
        }
      }
    });
    return x.mm(h_.t());
  }

  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    const std::int64_t fit = fit_bytes(*q.train);
    const std::int64_t scoring = q.score_batch * (q.train->num_items() + o_.dim) * 4;
    return recrun::MemoryEstimate{
        .bytes = fit + scoring,
        .lowered_by = "dim (factors are (users + items) x dim floats)",
        .detail = fmt::format("factors, lists and solver scratch {}, scoring {}",
                              recrun::format_bytes(fit), recrun::format_bytes(scoring))};
  }

  void save(recrun::Archive& out) const override {
    out.write("user_factors", w_);
    out.write("item_factors", h_);
  }
  void load(const recrun::Archive& in) override {
    w_ = in.read("user_factors").to(torch::kFloat32).contiguous();
    h_ = in.read("item_factors").to(torch::kFloat32).contiguous();
    if (w_.dim() != 2 || h_.dim() != 2 || w_.size(1) != o_.dim || h_.size(1) != o_.dim)
      throw recrun::Error(fmt::format("ials: checkpoint factors are not [*, {}] (dim)", o_.dim));
    gramian_ = torch::Tensor();
  }

 private:
  SideSystem system(const torch::Tensor& other, const torch::Tensor& gramian) const {
    return {other.data_ptr<float>(), gramian.data_ptr<float>(), o_.dim, o_.alpha0, o_.reg,
            o_.reg_exponent, static_cast<double>(other.size(0))};
  }

  // Solves every row of `x` with `other` fixed; rows[r] lists the other side's entries of row r.
  void sweep(torch::Tensor& x, const torch::Tensor& other, const Csr& rows) const {
    const torch::Tensor gramian = other.t().mm(other).contiguous();
    const SideSystem s = system(other, gramian);
    float* xp = x.data_ptr<float>();
    const std::int64_t d = o_.dim;
    at::parallel_for(0, rows.rows(), 16, [&](std::int64_t begin, std::int64_t end) {
      Scratch scratch(d);
      for (std::int64_t r = begin; r < end; ++r) {
        if (o_.solver == Solver::cholesky) {
          solve_exact(s, rows.row(r), xp + r * d, scratch);
        } else {
          solve_cg(s, rows.row(r), o_.cg_steps, xp + r * d, scratch);
        }
      }
    });
  }

  // The objective L (above) divided by the number of observed pairs.
  double loss() const {
    const torch::Tensor gw = w_.t().mm(w_), gh = h_.t().mm(h_);
    double total = o_.alpha0 * (gw.to(torch::kFloat64) * gh.to(torch::kFloat64)).sum().item<double>();
    const float* w = w_.data_ptr<float>();
    const float* h = h_.data_ptr<float>();
    const std::int64_t d = o_.dim;
    std::vector<double> part(static_cast<std::size_t>(users_.rows()), 0.0);
    at::parallel_for(0, users_.rows(), 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t u = begin; u < end; ++u) {
        double sum = 0;
        for (const auto i : users_.row(u)) {
          double dot = 0;
          for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(w[u * d + c]) * h[i * d + c];
          sum += (dot - 1) * (dot - 1);
        }
        part[u] = sum;
      }
    });
    for (const double p : part) total += p;
    const torch::Tensor wn = w_.square().sum(1).to(torch::kFloat64).contiguous();
    const torch::Tensor hn = h_.square().sum(1).to(torch::kFloat64).contiguous();
    const SideSystem su = system(h_, gh), si = system(w_, gw);
    const double* wnp = wn.data_ptr<double>();
    const double* hnp = hn.data_ptr<double>();
    for (std::int64_t u = 0; u < users_.rows(); ++u)
      total += row_reg(su, users_.row(u).size()) * wnp[u];
    for (std::int64_t i = 0; i < items_.rows(); ++i)
      total += row_reg(si, items_.row(i).size()) * hnp[i];
    return total / std::max<double>(1.0, static_cast<double>(users_.cols.size()));
  }

  // Factors, their Gramian, the CSR both ways, and per thread the scratch of a row solve.
  std::int64_t fit_bytes(const recrun::Interactions& train) const {
    const std::int64_t m = train.num_users(), n = train.num_items(), d = o_.dim;
    const std::int64_t threads = std::max<std::int64_t>(1, at::get_num_threads());
    return (m + n) * d * 4 + d * d * 4 + 2 * train.size() * 4 + (m + n) * 8 +
           threads * d * d * 12;
  }

  IalsOptions o_;
  torch::Tensor w_, h_;     // [m, d], [n, d]
  torch::Tensor gramian_;   // H^T H for scoring, recomputed after fit and load
  Csr users_, items_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<IalsOptions>(
      {.name = "ials",
       .summary = "implicit ALS (Hu et al. 2008) with Rendle et al. 2022's frequency-scaled "
                  "regularisation and unobserved weight alpha0; Cholesky or CG row solves"},
      declare, [](const IalsOptions& o, const recrun::ModelEnv&) {
        return std::make_unique<Ials>(o);
      });
}
