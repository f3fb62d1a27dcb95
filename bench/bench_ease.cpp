// EASE fit on ML-1M-shaped data: recrun's plugin (sparse Gram + in-place Cholesky solve) against
// SciPy's float32 Cholesky path on the same interactions in the same run, plus the steps inside
// recrun's fit against their dense alternatives (dense X^T X, the plain inverse formula).
//
//   build/bin/bench_ease [--users 6040] [--items 3416] [--per-user 165] [--threads 2] [--reps 3]
//                        [--libtorch 1]
//
// With fewer users than items (the bundled data's shape: --users 610 --items 9742 --per-user
// 165) the plugin takes its Woodbury path and keeps B in factored form; the bench then rebuilds
// B from the scores of one-item histories to compare it with SciPy's. --libtorch 0 skips the
// LibTorch solves (two n^3 inverses through copies), which dominate the bench at that shape.
//
// The SciPy side runs Debian's /usr/bin/python3 with python3-scipy when it is installed (the
// bench says so when it is not): scipy.sparse X^T X, then LAPACK spotrf + spotri through
// scipy.linalg.lapack on the same OpenBLAS, with OMP_NUM_THREADS set to --threads.
#include <torch/torch.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <unistd.h>

#include "bench_args.hpp"
#include "core/plugin_loader.hpp"
#include "core/trainer.hpp"
#include "recrun/registry.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// Process CPU seconds (all threads): unlike wall time, it does not count the time a busy shared
// machine keeps the process waiting.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Popularity-skewed random histories (Zipf-like item draws), about users*per_user interactions.
recrun::Interactions synth(std::int64_t users, std::int64_t items, std::int64_t per_user) {
  std::mt19937_64 rng(1);
  std::vector<double> weights(items);
  for (std::int64_t i = 0; i < items; ++i) weights[i] = 1.0 / std::pow(i + 10.0, 0.9);
  std::discrete_distribution<std::int32_t> pick(weights.begin(), weights.end());
  std::geometric_distribution<std::int64_t> len(1.0 / per_user);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  std::vector<char> seen(items);
  for (std::int64_t u = 0; u < users; ++u) {
    std::fill(seen.begin(), seen.end(), 0);
    const std::int64_t n = std::min<std::int64_t>(items / 2, 20 + len(rng));
    for (std::int64_t k = 0; k < n; ++k) {
      const auto i = pick(rng);
      if (!seen[i]) { seen[i] = 1; flat.push_back(i); }
    }
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  return recrun::Interactions(offsets, flat, items);
}

// The peer: the whole fit in SciPy, timed inside Python (interpreter start-up and reading the
// data are not counted). Prints one line: gram factor inverse weights total abs_sum cpu, where
// cpu is the process CPU seconds of the fastest repetition.
constexpr const char* kScipyScript = R"PY(
import sys, time
import numpy as np, scipy.sparse as sp
from scipy.linalg import lapack
d, users, n, lam, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
offsets = np.fromfile(d + "/offsets.bin", dtype=np.int64)
items = np.fromfile(d + "/items.bin", dtype=np.int32)
X = sp.csr_matrix((np.ones(len(items), dtype=np.float32), items, offsets), shape=(users, n))
best = None
for _ in range(reps):
    c0 = time.process_time()
    t0 = time.perf_counter()
    G = (X.T @ X).toarray()
    G[np.diag_indices(n)] += lam
    t1 = time.perf_counter()
    c, info = lapack.spotrf(G, lower=0, overwrite_a=1, clean=0)
    assert info == 0, info
    t2 = time.perf_counter()
    P, info = lapack.spotri(c, lower=0, overwrite_c=1)
    assert info == 0, info
    t3 = time.perf_counter()
    P = np.triu(P) + np.triu(P, 1).T
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0.0)
    t4 = time.perf_counter()
    row = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, time.process_time() - c0)
    if best is None or row[4] < best[4]:
        best = row
    del G, c, P
print(*best[:5], float(np.abs(B).sum(dtype=np.float64)), best[5])
)PY";

struct Scipy {
  bool ran = false;
  std::string why_not;
  double gram = 0, factor = 0, inverse = 0, weights = 0, total = 0, abs_sum = 0, cpu = 0;
};

Scipy run_scipy(const recrun::Interactions& train, double lambda, std::int64_t reps, int threads) {
  Scipy out;
  const char* python = "/usr/bin/python3";
  if (!std::filesystem::exists(python)) {
    out.why_not = "no /usr/bin/python3";
    return out;
  }
  if (std::system("/usr/bin/python3 -c 'import scipy.sparse, scipy.linalg' >/dev/null 2>&1") != 0) {
    out.why_not = "SciPy is not installed (Debian: apt-get install python3-scipy)";
    return out;
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("recrun_bench_ease_{}", static_cast<long>(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream o(dir / "offsets.bin", std::ios::binary);
    o.write(reinterpret_cast<const char*>(train.offsets().data()),
            static_cast<std::streamsize>(train.offsets().size() * sizeof(std::int64_t)));
    std::ofstream i(dir / "items.bin", std::ios::binary);
    i.write(reinterpret_cast<const char*>(train.flat_items().data()),
            static_cast<std::streamsize>(train.flat_items().size() * sizeof(std::int32_t)));
    std::ofstream s(dir / "ease.py");
    s << kScipyScript;
  }
  const std::string cmd = fmt::format(
      "OMP_NUM_THREADS={0} OPENBLAS_NUM_THREADS={0} {1} {2}/ease.py {2} {3} {4} {5} {6}", threads,
      python, dir.string(), train.num_users(), train.num_items(), lambda, reps);
  FILE* p = ::popen(cmd.c_str(), "r");
  char line[512] = {0};
  const bool got = p && std::fgets(line, sizeof line, p) != nullptr;
  const int rc = p ? ::pclose(p) : -1;
  std::filesystem::remove_all(dir);
  if (!got || rc != 0 ||
      std::sscanf(line, "%lf %lf %lf %lf %lf %lf %lf", &out.gram, &out.factor, &out.inverse,
                  &out.weights, &out.total, &out.abs_sum, &out.cpu) != 7) {
    out.why_not = fmt::format("the SciPy script failed (exit {})", rc);
    return out;
  }
  out.ran = true;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t users = 6040, items = 3416, per_user = 165, reps = 3;
  int threads = 2;
  bool libtorch = true;
  recrun::bench::for_each_flag(argc, argv, "bench_ease [--users 6040] [--items 3416] [--per-user 165] [--threads 2] [--reps 3] [--libtorch 1]", [&](const std::string& k, const std::string& value) {
    const auto v = [&] { return std::stoll(value); };
    if (k == "--users") users = v();
    else if (k == "--items") items = v();
    else if (k == "--per-user") per_user = v();
    else if (k == "--threads") threads = static_cast<int>(v());
    else if (k == "--reps") reps = v();
    else if (k == "--libtorch") libtorch = v() != 0;
    else return false;
    return true;
  });
  recrun::core::seed_and_threads(1, threads);
  const recrun::Interactions train = synth(users, items, per_user);
  std::int64_t pairs = 0;
  for (std::int64_t u = 0; u < users; ++u) {
    const auto m = static_cast<std::int64_t>(train.items(u).size());
    pairs += m * (m + 1) / 2;
  }
  fmt::print("data: {} users, {} items, {} interactions ({:.2e} item pairs); {} threads\n", users,
             items, train.size(), static_cast<double>(pairs), threads);

  recrun::Registry registry;
  recrun::core::load_plugins(recrun::core::plugin_search_path({}), registry);
  const auto& info = registry.model("ease");
  const recrun::Dataset empty;
  recrun::TrainContext ctx(empty, train, 1, threads);
  const double lambda = 500.0;

  double best_plugin = 1e30, best_plugin_cpu = 1e30, best_sparse = 1e30, best_dense = 1e30, best_chol = 1e30,
         best_inv = 1e30;
  torch::Tensor b_plugin, b_inv;
  bool woodbury = false;
  bool gram_equal = true;
  for (std::int64_t r = 0; r < reps; ++r) {
    // 1. The plugin end to end (sparse Gram + in-place Cholesky solve + B).
    {
      auto params = recrun::resolve_params(info.params, {{"lambda", lambda}}, "ease");
      auto model = info.make(params, recrun::ModelEnv{empty, registry, 1});
      const double c = cpu_seconds();
      const auto t = Clock::now();
      model->fit_epoch(ctx);
      best_plugin = std::min(best_plugin, since(t));
      best_plugin_cpu = std::min(best_plugin_cpu, cpu_seconds() - c);
      recrun::Archive a;
      model->save(a);
      if (a.contains("weights")) {
        b_plugin = a.read("weights");
      } else {
        // Woodbury's factored B: the scores of the one-item histories are its rows.
        woodbury = true;
        std::vector<std::int32_t> ids(static_cast<std::size_t>(items));
        std::iota(ids.begin(), ids.end(), 0);
        std::vector<std::int64_t> us(ids.begin(), ids.end());
        std::vector<std::span<const std::int32_t>> hist;
        for (std::int64_t j = 0; j < items; ++j) hist.emplace_back(ids.data() + j, 1);
        torch::NoGradGuard ng;
        b_plugin = model->score(recrun::UserBatch(us, hist, items));
        b_plugin.diagonal().zero_();
      }
    }
    if (!libtorch) continue;
    // 2. The Gram matrix alone: sparse (the plugin's) and dense X^T X (the plugin's before).
    auto t = Clock::now();
    const torch::Tensor sparse = train.gram();
    best_sparse = std::min(best_sparse, since(t));
    std::vector<std::int64_t> all(users);
    std::iota(all.begin(), all.end(), 0);
    t = Clock::now();
    const auto x = train.dense_rows(all);
    auto g = x.t().mm(x);
    best_dense = std::min(best_dense, since(t));
    gram_equal = gram_equal && torch::equal(sparse, g);
    g.diagonal().add_(lambda);

    // 3. The solve both ways through LibTorch (copies): Cholesky and the plain inverse.
    t = Clock::now();
    auto p = torch::cholesky_inverse(torch::linalg_cholesky(g));
    auto b = p / p.diagonal().neg().unsqueeze(0);
    b.diagonal().zero_();
    best_chol = std::min(best_chol, since(t));

    t = Clock::now();
    auto pi = torch::inverse(g);
    b_inv = torch::eye(items) - pi / pi.diagonal().unsqueeze(0);
    b_inv.diagonal().zero_();
    best_inv = std::min(best_inv, since(t));
  }
  const Scipy scipy = run_scipy(train, lambda, reps, threads);

  fmt::print("recrun ease fit ({}): {:.3f} s (best of {}), {:.3f} CPU s\n",
             woodbury ? "Woodbury, m x m Cholesky, B factored" : "sparse Gram + in-place Cholesky",
             best_plugin, reps, best_plugin_cpu);
  if (scipy.ran) {
    fmt::print("SciPy fp32 Cholesky path:                          {:.3f} s (best of {}), {:.3f} CPU s\n",
               scipy.total, reps, scipy.cpu);
    fmt::print("  scipy.sparse X^T X + dense: {:.3f} s, spotrf {:.3f} s, spotri {:.3f} s, B {:.3f} s\n",
               scipy.gram, scipy.factor, scipy.inverse, scipy.weights);
    const double ours = b_plugin.abs().sum(torch::kFloat64).item<double>();
    fmt::print("  SciPy / recrun fit time ratio:      {:.2f}x wall, {:.2f}x CPU\n",
               scipy.total / best_plugin, scipy.cpu / best_plugin_cpu);
    fmt::print("  sum |B|: recrun {:.6g}, SciPy {:.6g} (relative difference {:.1e})\n", ours,
               scipy.abs_sum, std::abs(ours - scipy.abs_sum) / scipy.abs_sum);
  } else {
    fmt::print("SciPy fp32 Cholesky path: not run: {}\n", scipy.why_not);
  }
  if (!libtorch) {
    fmt::print("Gram and LibTorch solves: not run (--libtorch 0)\n");
    return 0;
  }
  fmt::print("Gram X^T X, sparse (the plugin's):      {:.3f} s\n", best_sparse);
  fmt::print("Gram X^T X, dense addmm:                {:.3f} s ({:.1f}x the sparse one; {})\n",
             best_dense, best_dense / best_sparse,
             gram_equal ? "bit-identical" : "DIFFERENT");
  fmt::print("LibTorch solve, Cholesky (potrf + potri): {:.3f} s\n", best_chol);
  fmt::print("LibTorch solve, plain inverse (getrf + getri): {:.3f} s ({:.2f}x the Cholesky one)\n",
             best_inv, best_inv / best_chol);
  fmt::print("max |B_plugin - B_inverse|: {:.2e}\n", (b_plugin - b_inv).abs().max().item<double>());
  return gram_equal ? 0 : 1;
}
