// ensemble — combines the scores of other trained models.
//
// Members are finished runs of results.db (a trial key, or "best:MODEL[@EXPERIMENT[/GROUP]]")
// or models trained inline ("train:MODEL key=value ..."), parsed by the SDK
// (recrun/member_ref.hpp); `weights` gives each member's weight. The host loads and trains them
// (ModelEnv::host); this plugin never includes another plugin's code. Scores are combined per
// user as a weighted sum of normalised scores (z-score or min-max, the statistics taken over
// the items the user has not seen), or by reciprocal-rank fusion: sum_m w_m / (k + rank_m).
#include <fmt/format.h>
#include <recrun/plugin.hpp>

#include <cmath>
#include <limits>
#include <sstream>

namespace {

enum class Combine { zscore, minmax, rrf };

constexpr std::size_t kMaxMembers = 8;
constexpr std::size_t kLegacyWeights = 4;  // w1..w4

struct EnsembleOptions {
  /// Member references, in order.
  std::vector<std::string> members;
  /// One weight per member; empty: every member weighs 1 (or the deprecated w1..w4).
  std::vector<double> weights;
  /// Deprecated: the weights of members 1..4 before `weights` existed.
  double w1 = 1, w2 = 1, w3 = 1, w4 = 1;
  Combine combine = Combine::zscore;
  /// Reciprocal-rank fusion's k.
  double rrf_k = 60;

  double legacy_weight(std::size_t i) const {
    const double w[] = {w1, w2, w3, w4};
    return i < kLegacyWeights ? w[i] : 1.0;
  }
  double weight(std::size_t i) const { return weights.empty() ? legacy_weight(i) : weights[i]; }
};

void declare(recrun::Fields<EnsembleOptions>& f) {
  f.add("members", &EnsembleOptions::members,
        "up to 8 members: a trial key, best:MODEL[@EXPERIMENT[/GROUP]] (its best finished run "
        "by the validation monitor), or 'train:MODEL key=value ...' (trained inline)")
      .refers_to_members(recrun::ComponentKind::model)
      .length(0, kMaxMembers);
  f.add("weights", &EnsembleOptions::weights,
        "one weight per member, e.g. [1.0, 2.0]; empty = every member weighs 1")
      .at_least(0)
      .same_length_as("members");
  const std::string instead = "use weights = [w1, w2, ...]";
  f.add("w1", &EnsembleOptions::w1, "weight of member 1 (deprecated)").at_least(0).deprecated(instead);
  f.add("w2", &EnsembleOptions::w2, "weight of member 2 (deprecated)").at_least(0).deprecated(instead);
  f.add("w3", &EnsembleOptions::w3, "weight of member 3 (deprecated)").at_least(0).deprecated(instead);
  f.add("w4", &EnsembleOptions::w4, "weight of member 4 (deprecated)").at_least(0).deprecated(instead);
  f.choice("combine", &EnsembleOptions::combine,
           {{"zscore", Combine::zscore}, {"minmax", Combine::minmax}, {"rrf", Combine::rrf}},
           "weighted sum of per-user z-scored or min-max scaled scores, or reciprocal-rank "
           "fusion");
  f.add("rrf_k", &EnsembleOptions::rrf_k, "k of reciprocal-rank fusion: sum w / (k + rank)")
      .at_least(0);
}

// [B, N] true where the item is in the user's history.
torch::Tensor seen_mask(const recrun::UserBatch& users) {
  const std::int64_t b = users.size(), n = users.num_items();
  auto mask = torch::zeros({b, n}, torch::kBool);
  auto* m = mask.data_ptr<bool>();
  for (std::int64_t i = 0; i < b; ++i)
    for (const std::int32_t item : users.history(i)) m[i * n + item] = true;
  return mask;
}

/// Per-user normalisation of one member's scores [B, N] (float64). The statistics come from the
/// finite scores of unseen items; the transform applies to every item (a re-consumed target
/// stays rankable), and a non-finite score becomes the row's lowest normalised value.
torch::Tensor normalise(const torch::Tensor& scores, const torch::Tensor& seen, Combine how) {
  const auto s = scores.to(torch::kFloat64);
  const auto usable = s.isfinite().logical_and(seen.logical_not());
  const auto count = usable.sum(1, /*keepdim=*/true).clamp_min(1).to(torch::kFloat64);
  const auto zero = torch::zeros_like(s);
  const auto inf = std::numeric_limits<double>::infinity();
  torch::Tensor out;
  if (how == Combine::zscore) {
    const auto mean = torch::where(usable, s, zero).sum(1, true) / count;
    const auto dev = torch::where(usable, s - mean, zero);
    const auto std = (dev.pow(2).sum(1, true) / count).sqrt();
    out = (s - mean) / torch::where(std > 0, std, torch::ones_like(std));
  } else {
    const auto lo = torch::where(usable, s, torch::full_like(s, inf)).amin(1, true);
    const auto hi = torch::where(usable, s, torch::full_like(s, -inf)).amax(1, true);
    const auto range = hi - lo;
    const auto ok = range.isfinite().logical_and(range > 0);
    out = torch::where(ok, (s - lo) / torch::where(ok, range, torch::ones_like(range)),
                       torch::zeros_like(s));
  }
  // Rows without a usable score normalise to 0; non-finite scores sink to the row's minimum.
  const auto finite = out.isfinite();
  auto floor = torch::where(finite, out, torch::full_like(out, inf)).amin(1, true);
  floor = torch::where(floor.isfinite(), floor, torch::zeros_like(floor));
  return torch::where(finite, out, floor.expand_as(out));
}

/// 1-based rank of every item among the user's unseen items: 1 + the number of unseen items with
/// a strictly higher score (ties share a rank). Non-finite scores rank after every finite one.
torch::Tensor unseen_ranks(const torch::Tensor& scores, const torch::Tensor& seen) {
  auto s = scores.to(torch::kFloat64);
  const auto lowest = -std::numeric_limits<double>::infinity();
  s = torch::where(s.isfinite(), s, torch::full_like(s, lowest));
  const auto candidates = torch::where(seen, torch::full_like(s, lowest), s);
  // Ascending sort of the negated unseen scores: searchsorted(-x, left) counts the unseen
  // scores strictly above x.
  const auto sorted = std::get<0>(candidates.neg().sort(1));
  const auto above = torch::searchsorted(sorted, s.neg().contiguous(), /*out_int32=*/false,
                                   /*right=*/false);
  // Seen items were pushed to -inf (negated: +inf, sorted last): they are never "above".
  return (above + 1).to(torch::kFloat64);
}

struct Member {
  std::string ref;   // as given in `members`
  recrun::MemberRef parsed;
  double weight = 1;
  bool inline_spec = false;
  recrun::MemberModel loaded;
};

class Ensemble final : public recrun::Model {
 public:
  Ensemble(const EnsembleOptions& options, const recrun::ModelEnv& env)
      : options_(options), host_(env.host), seed_(env.seed) {
    if (options.members.empty())
      throw recrun::ParamError(
          "ensemble: parameter 'members' is empty; list up to 4 members (a trial key, "
          "best:MODEL[@EXPERIMENT[/GROUP]] or 'train:MODEL key=value ...')");
    if (options.members.size() > kMaxMembers)
      throw recrun::ParamError(fmt::format("ensemble: 'members' lists {} members; at most {}",
                                           options.members.size(), kMaxMembers));
    for (std::size_t i = 0; i < kLegacyWeights; ++i) {
      if (options.legacy_weight(i) == 1.0) continue;
      if (!options.weights.empty())
        throw recrun::ParamError(fmt::format(
            "ensemble: both weights and the deprecated w{} are set; give every weight in "
            "weights = [...] and drop w1..w4",
            i + 1));
      if (i >= options.members.size())
        throw recrun::ParamError(fmt::format(
            "ensemble: w{} = {} is set, but there are only {} members", i + 1,
            options.legacy_weight(i), options.members.size()));
    }
    double total = 0;
    for (std::size_t i = 0; i < options.members.size(); ++i) total += options.weight(i);
    if (!(total > 0))
      throw recrun::ParamError("ensemble: every member's weight is 0; give one a weight > 0");
    if (!host_)
      throw recrun::Error(
          "ensemble: this host offers no run catalogue (ModelEnv::host); run it with recrun "
          "run, recrun sweep or recrun predict");
    // Every member is resolved and loaded before training starts: a missing, unfinished or
    // mismatched one fails the run now, naming itself.
    for (std::size_t i = 0; i < options.members.size(); ++i) {
      Member m;
      m.ref = options.members[i];
      m.weight = options.weight(i);
      try {
        m.parsed = recrun::parse_member_ref(m.ref);
        m.inline_spec = m.parsed.kind == recrun::MemberRef::Kind::train;
        m.loaded = m.inline_spec ? host_->make_inline(m.parsed.inline_spec(), member_seed(i))
                                 : host_->load_run(m.parsed.text);
      } catch (const std::exception& e) {
        throw recrun::Error(fmt::format("ensemble member {} '{}': {}", i + 1, m.ref, e.what()));
      }
      members_.push_back(std::move(m));
    }
  }

  recrun::EpochResult fit_epoch(recrun::TrainContext& ctx) override {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      auto& m = members_[i];
      if (!m.inline_spec) continue;
      try {
        const double v =
            host_->train_inline(m.parsed.inline_spec(), *m.loaded.model_ptr, member_seed(i));
        ctx.log(fmt::format("member{}_valid", i + 1), v);
      } catch (const std::exception& e) {
        throw recrun::Error(fmt::format("ensemble member {} '{}': {}", i + 1, m.ref, e.what()));
      }
    }
    return recrun::EpochResult::done();
  }

  torch::Tensor score(const recrun::UserBatch& users) override {
    const auto seen = seen_mask(users);
    torch::Tensor total;
    for (const auto& m : members_) {
      if (m.weight == 0) continue;
      const torch::Tensor s = m.loaded.model_ptr->score(users);
      if (!s.defined() || s.dim() != 2 || s.size(0) != users.size() ||
          s.size(1) != users.num_items())
        throw recrun::Error(fmt::format("ensemble member '{}' returned scores of a wrong shape",
                                        m.ref));
      const torch::Tensor part =
          options_.combine == Combine::rrf
              ? 1.0 / (options_.rrf_k + unseen_ranks(s, seen))
              : normalise(s, seen, options_.combine);
      total = total.defined() ? total.add_(part, m.weight) : part.mul(m.weight);
    }
    return total.to(torch::kFloat32);
  }

  void save(recrun::Archive& out) const override {
    std::string keys;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const auto& m = members_[i];
      keys += fmt::format("{}\t{}\n", m.ref, m.loaded.key);
      if (!m.inline_spec) continue;
      // An inline member's weights live in the ensemble's checkpoint, under its own prefix.
      recrun::Archive sub;
      m.loaded.model_ptr->save(sub);
      const std::string prefix = fmt::format("member{}/", i + 1);
      for (const auto& k : sub.keys()) out.write(prefix + k, sub.read(k));
      for (const auto& k : sub.text_keys()) out.write_text(prefix + k, sub.read_text(k));
    }
    out.write_text("members", keys);
  }

  void load(const recrun::Archive& in) override {
    std::istringstream lines(in.read_text("members"));
    std::string line;
    std::size_t i = 0;
    while (std::getline(lines, line)) {
      if (i >= members_.size())
        throw recrun::Error("ensemble checkpoint lists more members than the run has");
      const auto tab = line.find('\t');
      const std::string ref = line.substr(0, tab);
      const std::string key = tab == std::string::npos ? "" : line.substr(tab + 1);
      auto& m = members_[i];
      if (ref != m.ref)
        throw recrun::Error(fmt::format(
            "ensemble checkpoint's member {} is '{}', but the run lists '{}'", i + 1, ref, m.ref));
      if (m.inline_spec) {
        const std::string prefix = fmt::format("member{}/", i + 1);
        recrun::Archive sub;
        for (const auto& k : in.keys())
          if (k.rfind(prefix, 0) == 0) sub.write(k.substr(prefix.size()), in.read(k));
        for (const auto& k : in.text_keys())
          if (k.rfind(prefix, 0) == 0) sub.write_text(k.substr(prefix.size()), in.read_text(k));
        m.loaded.model_ptr->load(sub);
      } else if (key != m.loaded.key) {
        // A query (best:...) may name a newer run today: the checkpoint's member is the one.
        try {
          m.loaded = host_->load_run(key);
        } catch (const std::exception& e) {
          throw recrun::Error(fmt::format("ensemble member {} '{}' (run {} when trained): {}",
                                          i + 1, m.ref, key, e.what()));
        }
      }
      ++i;
    }
    if (i != members_.size())
      throw recrun::Error(fmt::format("ensemble checkpoint lists {} members, the run {}", i,
                                      members_.size()));
  }

 private:
  std::uint64_t member_seed(std::size_t i) const { return seed_ + 1000003ULL * (i + 1); }

  EnsembleOptions options_;
  const recrun::HostServices* host_;
  std::uint64_t seed_;
  std::vector<Member> members_;
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_model<EnsembleOptions>(
      {.name = "ensemble",
       .summary = "weighted z-score/min-max or reciprocal-rank fusion of other models' scores"},
      declare, [](const EnsembleOptions& options, const recrun::ModelEnv& env) {
        return std::make_unique<Ensemble>(options, env);
      });
}
