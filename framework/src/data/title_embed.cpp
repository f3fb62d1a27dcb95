#include "data/title_embed.hpp"

#include <fmt/format.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>
#include <unordered_map>

#include "core/hash.hpp"
#include "recrun/error.hpp"

namespace recrun::data {
namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

// "Toy Story (1995)" -> "Toy Story"; also "(1995-2001)" and "(2010– )" style ranges.
std::string_view strip_year(std::string_view t) {
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  if (t.empty() || t.back() != ')') return t;
  const auto open = t.rfind('(');
  if (open == std::string_view::npos) return t;
  const std::string_view inside = t.substr(open + 1, t.size() - open - 2);
  if (inside.size() < 4 || !std::all_of(inside.begin(), inside.begin() + 4, [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      }))
    return t;
  for (char c : inside.substr(4))
    if (std::isalpha(static_cast<unsigned char>(c))) return t;
  t = t.substr(0, open);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  return t;
}

// Makes each column's largest-magnitude entry positive: SVD signs are otherwise arbitrary and
// may differ between LAPACK builds.
void fix_signs(torch::Tensor& u) {
  const auto idx = u.abs().argmax(0);
  const auto pick = u.gather(0, idx.unsqueeze(0)).squeeze(0);
  u.mul_(torch::where(pick < 0, -1.0, 1.0).to(u.dtype()));
}

torch::Tensor orthonormal(const torch::Tensor& y) { return std::get<0>(torch::linalg_qr(y, "reduced")); }

}  // namespace

std::vector<std::string> title_terms(const std::string& title) {
  const std::string_view text = strip_year(title);
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
    if (is_word_byte(c)) {
      word.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  std::vector<std::string> terms;
  for (std::size_t i = 0; i < words.size(); ++i) {
    terms.push_back("w:" + words[i]);
    if (i + 1 < words.size()) terms.push_back("b:" + words[i] + " " + words[i + 1]);
    const std::string marked = "<" + words[i] + ">";
    for (std::size_t k = 0; k + 3 <= marked.size(); ++k) terms.push_back("c:" + marked.substr(k, 3));
  }
  return terms;
}

TitleEmbeddings embed_titles(const std::vector<std::string>& titles, const TitleEmbedOptions& o) {
  if (o.dim < 1) throw Error(fmt::format("title embedding dimension must be at least 1 (got {})", o.dim));
  if (o.buckets < 16) throw Error(fmt::format("title term buckets must be at least 16 (got {})", o.buckets));
  if (o.oversample < 0 || o.power_iterations < 0)
    throw Error("title embedding oversample and power iterations must not be negative");
  const auto n = static_cast<std::int64_t>(titles.size());

  // Sparse TF-IDF rows.
  std::vector<std::vector<std::pair<std::int64_t, double>>> rows(titles.size());
  std::vector<std::int64_t> df(static_cast<std::size_t>(o.buckets), 0);
  std::int64_t nonempty = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::unordered_map<std::int64_t, int> counts;
    for (const auto& term : title_terms(titles[i]))
      ++counts[static_cast<std::int64_t>(core::hash64(term) % static_cast<std::uint64_t>(o.buckets))];
    auto& row = rows[i];
    for (const auto& [bucket, count] : counts) row.emplace_back(bucket, 1.0 + std::log(count));
    std::sort(row.begin(), row.end());
    for (const auto& [bucket, tf] : row) ++df[bucket];
    if (!row.empty()) ++nonempty;
  }
  if (nonempty == 0) throw Error("no title has a word to embed (all titles are empty)");

  // CSR over the used buckets only, renumbered densely in bucket order.
  std::vector<std::int64_t> column(static_cast<std::size_t>(o.buckets), -1);
  std::int64_t m = 0;
  for (std::int64_t b = 0; b < o.buckets; ++b)
    if (df[b] > 0) column[b] = m++;
  std::vector<std::int64_t> offsets{0}, cols;
  std::vector<double> vals;
  for (std::int64_t i = 0; i < n; ++i) {
    auto& row = rows[i];
    double norm = 0;
    for (auto& [bucket, w] : row) {
      w *= std::log((1.0 + nonempty) / (1.0 + df[bucket])) + 1.0;
      norm += w * w;
    }
    norm = std::sqrt(norm);
    for (const auto& [bucket, w] : row) {
      cols.push_back(column[bucket]);
      vals.push_back(w / norm);
    }
    offsets.push_back(static_cast<std::int64_t>(cols.size()));
  }

  // Randomized range finder with subspace iteration, then the exact eigen-decomposition of the
  // small l x l Gram matrix of the projection (its eigenvalues are the squared singular values).
  const std::int64_t k = std::min({o.dim, nonempty, m});
  const std::int64_t l = std::min({k + o.oversample, n, m});
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // y = A x, x: [m, l] -> [n, l]
  const auto times_a = [&](const torch::Tensor& x_in) {
    const auto x = x_in.contiguous();  // LAPACK results are column-major
    auto y = torch::zeros({n, l}, f64);
    const double* xp = x.data_ptr<double>();
    double* yp = y.data_ptr<double>();
    at::parallel_for(0, n, 64, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i)
        for (std::int64_t p = offsets[i]; p < offsets[i + 1]; ++p) {
          const double w = vals[p];
          const double* xr = xp + cols[p] * l;
          double* yr = yp + i * l;
          for (std::int64_t c = 0; c < l; ++c) yr[c] += w * xr[c];
        }
    });
    return y;
  };
  // x = A^T y, y: [n, l] -> [m, l] (serial: rows scatter into shared columns)
  const auto times_at = [&](const torch::Tensor& y_in) {
    const auto y = y_in.contiguous();
    auto x = torch::zeros({m, l}, f64);
    const double* yp = y.data_ptr<double>();
    double* xp = x.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t p = offsets[i]; p < offsets[i + 1]; ++p) {
        const double w = vals[p];
        const double* yr = yp + i * l;
        double* xr = xp + cols[p] * l;
        for (std::int64_t c = 0; c < l; ++c) xr[c] += w * yr[c];
      }
    return x;
  };
  // A Rademacher (+-1) test matrix works as well as a Gaussian one and is cheap to draw.
  auto omega = torch::empty({m, l}, f64);
  {
    std::mt19937_64 rng(o.seed);
    double* w = omega.data_ptr<double>();
    for (std::int64_t i = 0; i < m * l; i += 64) {
      const std::uint64_t bits = rng();
      for (std::int64_t b = 0; b < 64 && i + b < m * l; ++b) w[i + b] = (bits >> b) & 1 ? 1.0 : -1.0;
    }
  }
  auto q = orthonormal(times_a(omega));
  // In float64, re-orthonormalising once per iteration (on the short side) is stable enough.
  for (std::int64_t it = 0; it < o.power_iterations; ++it) q = orthonormal(times_a(times_at(q)));
  const auto c = times_at(q);                                // [m, l] = A^T Q
  const auto eig = torch::linalg_eigh(torch::mm(c.t(), c));  // ascending eigenvalues
  const auto top = torch::arange(l - 1, l - 1 - k, -1, torch::kLong);
  const auto s = std::get<0>(eig).index_select(0, top).clamp_min(0).sqrt();
  auto u = torch::mm(q, std::get<1>(eig).index_select(1, top));  // [n, k]
  fix_signs(u);
  auto emb = u * s.unsqueeze(0);
  emb = emb / emb.norm(2, 1, true).clamp_min(1e-12);

  TitleEmbeddings out;
  out.explained = s.pow(2).sum().item<double>() / static_cast<double>(nonempty);
  DenseFeature& f = out.feature;
  f.dim = k;
  const auto f32 = emb.to(torch::kFloat32).contiguous();
  f.values.assign(f32.data_ptr<float>(), f32.data_ptr<float>() + n * k);
  f.present.resize(titles.size());
  for (std::int64_t i = 0; i < n; ++i) {
    f.present[i] = rows[i].empty() ? 0 : 1;
    if (rows[i].empty()) std::fill_n(f.values.begin() + i * k, k, 0.0f);
  }
  return out;
}

}  // namespace recrun::data
