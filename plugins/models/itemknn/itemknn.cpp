// itemknn — item-based k-nearest-neighbour recommendation (Sarwar et al., WWW 2001) with cosine
// or asymmetric cosine similarity (Aiolli, RecSys 2013) and shrinkage.
//
// With c_ij the number of users who consumed both items and n_i the users of item i:
//
//   s(i, j) = ( c_ij / (n_i^alpha * n_j^(1 - alpha) + shrink) )^locality
//
// alpha = 0.5 is the cosine of the two items' 0/1 user columns (similarity = cosine fixes it);
// alpha = 1 is the conditional probability P(j | i) (i the item in the history, j the candidate);
// `shrink` pulls similarities built on few common users towards zero; `locality` is Aiolli's
// exponent q, which stresses the largest similarities. Each item keeps its `neighbors` most
// similar items, and a user's score for j is the sum of s(i, j) over the distinct items i of the
// user's history that keep j as a neighbour.
//
// Everything is sparse: the co-occurrence counts of item i come from walking the users of i and
// their items (sum over users of |I_u|^2 work in all), one item at a time with one counter array
// per thread (at::parallel_for), and only the top-k of each row is kept: memory is
// items x k x 8 bytes for the model, plus items x 4 bytes of counters per thread. No users x items
// or items x items matrix is ever formed.
#include <fmt/format.h>
#include <recrun/memory.hpp>
#include <recrun/plugin.hpp>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

enum class Similarity { cosine, asymmetric_cosine };

struct ItemKnnOptions {
  /// cosine, or asymmetric cosine with exponent alpha.
  Similarity similarity = Similarity::cosine;
  /// Aiolli's asymmetry: 0.5 = cosine, 1 = P(j | i).
  double alpha = 0.5;
  /// Added to the similarity's denominator.
  double shrink = 10.0;
  /// Aiolli's locality exponent q.
  double locality = 1.0;
  /// Neighbours kept per item.
  std::int64_t neighbors = 100;
};

void declare(recrun::Fields<ItemKnnOptions>& f) {
  f.choice("similarity", &ItemKnnOptions::similarity,
           {{"cosine", Similarity::cosine}, {"asymmetric_cosine", Similarity::asymmetric_cosine}},
           "cosine of the items' user sets, or Aiolli's asymmetric cosine (exponent alpha)");
  f.add("alpha", &ItemKnnOptions::alpha,
        "asymmetric cosine's exponent: c_ij / (n_i^alpha n_j^(1-alpha)); 0.5 = cosine, "
        "1 = P(candidate | history item); used with similarity = asymmetric_cosine")
      .range(0, 1);
  f.add("shrink", &ItemKnnOptions::shrink,
        "shrinkage added to the similarity's denominator (Dacrema et al. 2019 tune 0-1000)")
      .range(0, 1000);
  f.add("locality", &ItemKnnOptions::locality,
        "Aiolli's locality exponent q: similarities are raised to this power")
      .range(1, 10);
  f.add("neighbors", &ItemKnnOptions::neighbors,
        "most similar items kept per item (Sarwar et al.'s model size k; tuned 5-1000)")
      .range(1, 2000);
}

/// Per-user item lists with repeats removed (a re-consumed item counts once), and the transpose
/// (per-item user lists), both CSR.
struct Incidence {
  std::vector<std::int64_t> user_offsets{0};
  std::vector<std::int32_t> user_items;
  std::vector<std::int64_t> item_offsets;
  std::vector<std::int32_t> item_users;
};

Incidence incidence(const recrun::Interactions& train) {
  Incidence x;
  const std::int64_t n = train.num_items();
  std::vector<std::int32_t> row;
  for (std::int64_t u = 0; u < train.num_users(); ++u) {
    const auto items = train.items(u);
    row.assign(items.begin(), items.end());
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    x.user_items.insert(x.user_items.end(), row.begin(), row.end());
    x.user_offsets.push_back(static_cast<std::int64_t>(x.user_items.size()));
  }
  x.item_offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  for (const auto i : x.user_items) ++x.item_offsets[static_cast<std::size_t>(i) + 1];
  for (std::int64_t i = 0; i < n; ++i) x.item_offsets[i + 1] += x.item_offsets[i];
  x.item_users.resize(x.user_items.size());
  std::vector<std::int64_t> fill(x.item_offsets.begin(), x.item_offsets.end() - 1);
  const auto users = static_cast<std::int64_t>(x.user_offsets.size()) - 1;
  for (std::int64_t u = 0; u < users; ++u)
    for (std::int64_t p = x.user_offsets[u]; p < x.user_offsets[u + 1]; ++p)
      x.item_users[fill[x.user_items[p]]++] = static_cast<std::int32_t>(u);
  return x;
}

/// Each item's k nearest neighbours: indices [n, k] (int32, -1 where a row has fewer than k
/// items with a common user) and similarities [n, k], best first (ties: lower index first).
struct Neighbours {
  torch::Tensor index;
  torch::Tensor value;
};

Neighbours nearest(const recrun::Interactions& train, const ItemKnnOptions& o) {
  const std::int64_t n = train.num_items();
  const std::int64_t k = std::max<std::int64_t>(0, std::min(o.neighbors, n - 1));
  const Incidence x = incidence(train);
  const double alpha = o.similarity == Similarity::cosine ? 0.5 : o.alpha;
  std::vector<double> pow_a(static_cast<std::size_t>(n)), pow_b(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto users = static_cast<double>(x.item_offsets[i + 1] - x.item_offsets[i]);
    pow_a[i] = std::pow(users, alpha);
    pow_b[i] = std::pow(users, 1.0 - alpha);
  }
  torch::Tensor index = torch::full({n, k}, -1, torch::kInt32);
  torch::Tensor value = torch::zeros({n, k}, torch::kFloat32);
  std::int32_t* idx = index.data_ptr<std::int32_t>();
  float* val = value.data_ptr<float>();
  at::parallel_for(0, n, 16, [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int32_t> count(static_cast<std::size_t>(n), 0);
    std::vector<std::int32_t> touched;
    std::vector<std::pair<float, std::int32_t>> row;
    for (std::int64_t i = begin; i < end; ++i) {
      touched.clear();
      for (std::int64_t p = x.item_offsets[i]; p < x.item_offsets[i + 1]; ++p) {
        const std::int32_t u = x.item_users[p];
        for (std::int64_t q = x.user_offsets[u]; q < x.user_offsets[u + 1]; ++q) {
          const std::int32_t j = x.user_items[q];
          if (count[j]++ == 0) touched.push_back(j);
        }
      }
      row.clear();
      for (const std::int32_t j : touched) {
        if (j != i) {
          double s = count[j] / (pow_a[i] * pow_b[j] + o.shrink);
          if (o.locality != 1.0) s = std::pow(s, o.locality);
          row.emplace_back(static_cast<float>(s), j);
        }
        count[j] = 0;
      }
      const auto better = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
      const auto keep = std::min<std::int64_t>(k, static_cast<std::int64_t>(row.size()));
      std::partial_sort(row.begin(), row.begin() + keep, row.end(), better);
      for (std::int64_t m = 0; m < keep; ++m) {
        idx[i * k + m] = row[m].second;
        val[i * k + m] = row[m].first;
      }
    }
  });
  return {index, value};
}

/// Bytes the fit holds at its peak: the incidence lists (both ways), the neighbour table, and
/// per thread a counter array and the candidate list of one row.
std::int64_t fit_bytes(const recrun::Interactions& train, std::int64_t k) {
  const std::int64_t n = train.num_items(), m = train.num_users();
  const std::int64_t threads = std::max<std::int64_t>(1, at::get_num_threads());
  return 2 * train.size() * 4 + (m + n + 2) * 8 + n * k * 8 + threads * n * (4 + 4 + 8);
}

class ItemKnn final : public recrun::Model, public recrun::MemoryEstimator {
 public:
  explicit ItemKnn(ItemKnnOptions options) : options_(options) {}

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    Neighbours nb = nearest(ctx.train(), options_);
    index_ = std::move(nb.index);
    value_ = std::move(nb.value);
    return recrun::EpochResult::done();
  }

  // Sum of the neighbour rows of the user's distinct items; each row of the batch on its own.
  torch::Tensor score(const recrun::UserBatch& users) override {
    const std::int64_t b = users.size(), n = users.num_items();
    if (index_.size(0) != n)
      throw recrun::Error(fmt::format("itemknn: the model has {} items, the batch {}",
                                      index_.size(0), n));
    torch::Tensor out = torch::zeros({b, n});
    float* o = out.data_ptr<float>();
    const std::int32_t* idx = index_.data_ptr<std::int32_t>();
    const float* val = value_.data_ptr<float>();
    const std::int64_t k = index_.size(1);
    at::parallel_for(0, b, 8, [&](std::int64_t begin, std::int64_t end) {
      std::vector<std::int32_t> items;
      for (std::int64_t r = begin; r < end; ++r) {
        const auto h = users.history(r);
        items.assign(h.begin(), h.end());
        std::sort(items.begin(), items.end());
        items.erase(std::unique(items.begin(), items.end()), items.end());
        float* row = o + r * n;
        for (const std::int32_t i : items)
          for (std::int64_t m = 0; m < k && idx[i * k + m] >= 0; ++m)
            row[idx[i * k + m]] += val[i * k + m];
      }
    });
    return out;
  }

  // The fit's lists and table, or a batch of scores, whichever is larger.
  std::optional<recrun::MemoryEstimate> estimate_memory(
      const recrun::MemoryQuery& q) const override {
    const std::int64_t n = q.train->num_items();
    const std::int64_t fit = fit_bytes(*q.train, std::min(options_.neighbors, n));
    const std::int64_t scoring = q.score_batch * n * 4;
    return recrun::MemoryEstimate{
        .bytes = std::max(fit, scoring),
        .lowered_by = "neighbors (the table is items x neighbors x 8 bytes)",
        .detail = fmt::format("fit {}, scoring {}", recrun::format_bytes(fit),
                              recrun::format_bytes(scoring))};
  }

  void save(recrun::Archive& out) const override {
    out.write("neighbors", index_);
    out.write("similarity", value_);
  }
  void load(const recrun::Archive& in) override {
    index_ = in.read("neighbors").to(torch::kInt32).contiguous();
    value_ = in.read("similarity").to(torch::kFloat32).contiguous();
    if (index_.dim() != 2 || !index_.sizes().equals(value_.sizes()))
      throw recrun::Error("itemknn: checkpoint's neighbour and similarity tables differ in shape");
  }

 private:
  ItemKnnOptions options_;
  torch::Tensor index_;  // [n, k] int32, -1 = no neighbour
  torch::Tensor value_;  // [n, k] float
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<ItemKnnOptions>(
      {.name = "itemknn",
       .summary = "item-based kNN (Sarwar et al. 2001): cosine or asymmetric cosine (Aiolli 2013) "
                  "with shrinkage, k neighbours per item, sparse"},
      declare, [](const ItemKnnOptions& o, const recrun::ModelEnv&) {
        return std::make_unique<ItemKnn>(o);
      });
}
