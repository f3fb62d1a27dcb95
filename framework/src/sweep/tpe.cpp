// TPE: Parzen estimators over the good and bad configurations, and the suggestion that
// maximises l(x) / g(x) among candidates drawn from l.
#include "sweep/tpe.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace recrun::sweep {

std::int64_t default_startup_trials(std::int64_t trials) {
  return std::clamp<std::int64_t>(trials / 3, 3, 10);
}

namespace {

// A numeric dimension in the space TPE models it in: log space for log_uniform, and the
// integers of int_uniform widened by half a step either side.
struct Interval {
  double a = 0, b = 1;
};

Interval interval_of(const Dim& d) {
  switch (d.kind) {
    case DistKind::log_uniform: return {std::log(d.low), std::log(d.high)};
    case DistKind::int_uniform: return {d.low - 0.5, d.high + 0.5};
    default: return {d.low, d.high};
  }
}

std::optional<double> internal_value(const Dim& d, const ParamValue& v) {
  double x = 0;
  if (const auto* i = std::get_if<std::int64_t>(&v)) x = static_cast<double>(*i);
  else if (const auto* r = std::get_if<double>(&v)) x = *r;
  else return std::nullopt;
  if (d.kind == DistKind::log_uniform) {
    if (!(x > 0)) return std::nullopt;
    x = std::log(x);
  }
  return x;
}

ParamValue external_value(const Dim& d, double x) {
  if (d.kind == DistKind::log_uniform) x = std::exp(x);
  if (d.kind == DistKind::int_uniform) x = std::round(x);
  if (d.integer || d.kind == DistKind::int_uniform) {
    const double lo = std::ceil(d.low), hi = std::floor(d.high);
    const double r = std::clamp(std::round(x), lo, hi);
    if (d.integer) return static_cast<std::int64_t>(r);
    return r;
  }
  return std::clamp(x, d.low, d.high);
}

std::optional<std::size_t> choice_index(const Dim& d, const ParamValue& v) {
  const std::string text = recrun::to_string(v);
  for (std::size_t i = 0; i < d.choices.size(); ++i)
    if (recrun::to_string(d.choices[i]) == text) return i;
  return std::nullopt;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// A mixture of Gaussians truncated to [a, b]: one per observation plus a wide prior one.
class Parzen {
 public:
  Parzen(const std::vector<double>& points, Interval iv) : iv_(iv) {
    const double width = iv.b - iv.a;
    std::vector<double> mus = points;
    mus.push_back(0.5 * (iv.a + iv.b));  // the prior
    std::vector<std::size_t> order(mus.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto i, auto j) { return mus[i] < mus[j]; });
    const double min_sigma = width / std::min(100.0, 1.0 + static_cast<double>(mus.size()));
    sigmas_.assign(mus.size(), width);
    for (std::size_t r = 0; r < order.size(); ++r) {
      const std::size_t i = order[r];
      if (i == mus.size() - 1) continue;  // the prior keeps the whole width
      const double left = r == 0 ? mus[i] - iv.a : mus[i] - mus[order[r - 1]];
      const double right = r + 1 == order.size() ? iv.b - mus[i] : mus[order[r + 1]] - mus[i];
      sigmas_[i] = std::clamp(std::max(left, right), min_sigma, width);
    }
    mus_ = std::move(mus);
    for (std::size_t i = 0; i < mus_.size(); ++i) {
      const double mass =
          normal_cdf((iv.b - mus_[i]) / sigmas_[i]) - normal_cdf((iv.a - mus_[i]) / sigmas_[i]);
      mass_.push_back(std::max(mass, 1e-12));
    }
  }

  double sample(SearchRng& rng) const {
    const std::size_t k = rng.below(mus_.size());
    for (int tries = 0; tries < 64; ++tries) {
      const double x = mus_[k] + sigmas_[k] * rng.normal();
      if (x >= iv_.a && x <= iv_.b) return x;
    }
    return std::clamp(mus_[k], iv_.a, iv_.b);
  }

  double log_pdf(double x) const {
    double p = 0;
    for (std::size_t i = 0; i < mus_.size(); ++i) {
      const double z = (x - mus_[i]) / sigmas_[i];
      p += std::exp(-0.5 * z * z) / (sigmas_[i] * std::sqrt(2 * M_PI) * mass_[i]);
    }
    return std::log(std::max(p / static_cast<double>(mus_.size()), 1e-300));
  }

 private:
  Interval iv_;
  std::vector<double> mus_, sigmas_, mass_;
};

// A categorical density: counts plus one, normalised.
class Categorical {
 public:
  Categorical(const std::vector<std::size_t>& picks, std::size_t n) : weights_(n, 1.0) {
    for (const auto i : picks) weights_[i] += 1.0;
    total_ = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  }
  std::size_t sample(SearchRng& rng) const {
    double u = rng.uniform() * total_;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      if (u < weights_[i]) return i;
      u -= weights_[i];
    }
    return weights_.size() - 1;
  }
  double log_pdf(std::size_t i) const { return std::log(weights_[i] / total_); }

 private:
  std::vector<double> weights_;
  double total_ = 0;
};

}  // namespace

Point suggest_tpe(const std::vector<Dim>& space, const std::vector<Observation>& observations,
                  std::int64_t seed, std::int64_t index, const TpeOptions& options) {
  std::vector<const Observation*> done, pending;
  for (const auto& o : observations) (o.pending ? pending : done).push_back(&o);
  if (static_cast<std::int64_t>(done.size()) < std::max<std::int64_t>(options.startup, 2))
    return random_point(space, seed, index);

  // Best first: further is better than any value reached earlier; ties keep the given order.
  std::stable_sort(done.begin(), done.end(), [](const Observation* x, const Observation* y) {
    if (x->level != y->level) return x->level > y->level;
    return x->value > y->value;
  });
  const auto n_good = static_cast<std::size_t>(
      std::max(1.0, std::ceil(options.gamma * static_cast<double>(done.size()))));
  std::vector<const Observation*> good(done.begin(), done.begin() + static_cast<long>(n_good));
  std::vector<const Observation*> bad(done.begin() + static_cast<long>(n_good), done.end());
  bad.insert(bad.end(), pending.begin(), pending.end());  // the constant liar

  // A generator of its own for this suggestion: (seed, index) and nothing else.
  SearchRng rng(static_cast<std::uint64_t>(seed) ^ 0x7470655F73756767ULL,
                static_cast<std::uint64_t>(index));
  const auto n_cand = static_cast<std::size_t>(std::max(1, options.candidates));
  std::vector<Point> candidates(n_cand);
  std::vector<double> score(n_cand, 0.0);
  for (const Dim& d : space) {
    if (d.kind == DistKind::choice) {
      std::vector<std::size_t> g_picks, b_picks;
      for (const auto* o : good)
        if (auto it = o->point.find(d.key); it != o->point.end())
          if (auto i = choice_index(d, it->second)) g_picks.push_back(*i);
      for (const auto* o : bad)
        if (auto it = o->point.find(d.key); it != o->point.end())
          if (auto i = choice_index(d, it->second)) b_picks.push_back(*i);
      const Categorical l(g_picks, d.choices.size()), g(b_picks, d.choices.size());
      for (std::size_t c = 0; c < n_cand; ++c) {
        const std::size_t i = l.sample(rng);
        candidates[c][d.key] = d.choices[i];
        score[c] += l.log_pdf(i) - g.log_pdf(i);
      }
      continue;
    }
    const Interval iv = interval_of(d);
    std::vector<double> g_points, b_points;
    for (const auto* o : good)
      if (auto it = o->point.find(d.key); it != o->point.end())
        if (auto x = internal_value(d, it->second)) g_points.push_back(*x);
    for (const auto* o : bad)
      if (auto it = o->point.find(d.key); it != o->point.end())
        if (auto x = internal_value(d, it->second)) b_points.push_back(*x);
    const Parzen l(g_points, iv), g(b_points, iv);
    for (std::size_t c = 0; c < n_cand; ++c) {
      const double x = l.sample(rng);
      candidates[c][d.key] = external_value(d, x);
      score[c] += l.log_pdf(x) - g.log_pdf(x);
    }
  }
  const auto best = std::max_element(score.begin(), score.end()) - score.begin();
  return candidates[static_cast<std::size_t>(best)];
}

}  // namespace recrun::sweep
