#include "data/synth.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>

#include "recrun/error.hpp"

namespace recrun::data {

namespace {

// xoshiro256** seeded through splitmix64: small, fast, and specified bit for bit, unlike the
// standard distributions, whose output differs between standard libraries.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in [0, n).
  std::int64_t below(std::int64_t n) {
    return static_cast<std::int64_t>((static_cast<unsigned __int128>(next()) *
                                      static_cast<std::uint64_t>(n)) >> 64);
  }
  bool chance(double p) { return uniform() < p; }
  /// Approximately standard normal (Irwin-Hall): only additions, so identical everywhere.
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0;
  }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(static_cast<std::int64_t>(i))]);
  }

 private:
  std::uint64_t s_[4];
};

// Samples an index with probability proportional to its weight.
class Weighted {
 public:
  Weighted() = default;
  Weighted(std::vector<std::int32_t> ids, const std::vector<double>& weights) : ids_(std::move(ids)) {
    cumulative_.resize(weights.size());
    std::partial_sum(weights.begin(), weights.end(), cumulative_.begin());
  }
  bool empty() const { return ids_.empty(); }
  std::int32_t draw(Rng& rng) const {
    const double u = rng.uniform() * cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(it - cumulative_.begin()),
                                         ids_.size() - 1);
    return ids_[k];
  }

 private:
  std::vector<std::int32_t> ids_;
  std::vector<double> cumulative_;
};

constexpr const char* kGenreNames[] = {
    "Action",  "Adventure", "Animation", "Children", "Comedy",  "Crime",     "Documentary",
    "Drama",   "Fantasy",   "Film-Noir", "Horror",   "IMAX",    "Musical",   "Mystery",
    "Romance", "Sci-Fi",    "Thriller",  "War",      "Western", "Biography", "History",
    "Sport",   "Music",     "Family"};

constexpr const char* kOnsets[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p",
                                   "r", "s", "t", "v", "w", "z", "br", "cr", "dr", "st", "tr"};
constexpr const char* kVowels[] = {"a", "e", "i", "o", "u", "ai", "ou", "ea"};
constexpr const char* kCodas[] = {"", "", "n", "r", "s", "l", "th", "x", "nd", "st"};

std::string word(Rng& rng, int syllables) {
  std::string w;
  for (int s = 0; s < syllables; ++s) {
    w += kOnsets[rng.below(std::size(kOnsets))];
    w += kVowels[rng.below(std::size(kVowels))];
  }
  w += kCodas[rng.below(std::size(kCodas))];
  return w;
}

std::string capitalised(std::string w) {
  if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 32);
  return w;
}

std::string person(Rng& rng) {
  return capitalised(word(rng, 1 + static_cast<int>(rng.below(2)))) + " " +
         capitalised(word(rng, 2));
}

// Distinct names: generated words can collide, and two people with one name would merge into one
// categorical value.
std::vector<std::string> unique_names(Rng& rng, std::int64_t n, std::string (*make)(Rng&)) {
  std::vector<std::string> out;
  std::vector<std::string> sorted;
  while (static_cast<std::int64_t>(out.size()) < n) {
    std::string name = make(rng);
    const auto it = std::lower_bound(sorted.begin(), sorted.end(), name);
    if (it != sorted.end() && *it == name) continue;
    sorted.insert(it, name);
    out.push_back(std::move(name));
  }
  return out;
}

// Values of one multi-valued categorical feature: each drawn from the item's cluster's pool with
// probability `purity`, else from all values; no value twice for one item.
std::vector<std::int32_t> draw_values(Rng& rng, const std::vector<std::int32_t>& pool,
                                      std::int64_t num_values, int count, double purity) {
  std::vector<std::int32_t> out;
  for (int tries = 0; static_cast<int>(out.size()) < count && tries < 8 * count; ++tries) {
    const std::int32_t v = (!pool.empty() && rng.chance(purity))
                               ? pool[rng.below(static_cast<std::int64_t>(pool.size()))]
                               : static_cast<std::int32_t>(rng.below(num_values));
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

}  // namespace

void validate(const SynthOptions& o) {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ParamError("data synth: " + what);
  };
  need(o.users >= 1, fmt::format("--users must be at least 1 (got {})", o.users));
  need(o.items >= 2, fmt::format("--items must be at least 2 (got {})", o.items));
  need(o.clusters >= 1 && o.clusters <= o.items,
       fmt::format("--clusters must be in [1, items={}] (got {})", o.items, o.clusters));
  need(o.min_length >= 1, fmt::format("--min-length must be at least 1 (got {})", o.min_length));
  need(o.min_length < o.items,
       fmt::format("--min-length ({}) must be below --items ({}): users never repeat an item",
                   o.min_length, o.items));
  need(o.interactions_per_user >= static_cast<double>(o.min_length),
       fmt::format("--interactions-per-user ({}) must be at least --min-length ({})",
                   o.interactions_per_user, o.min_length));
  need(o.genres >= 1 && o.genres <= 1000, fmt::format("--genres must be in [1, 1000] (got {})", o.genres));
  need(o.directors >= 0, "--directors must be >= 0 (0: items / 4)");
  need(o.writers >= 0, "--writers must be >= 0 (0: items / 3)");
  need(o.title_dim >= 0 && o.title_dim <= 4096,
       fmt::format("--title-dim must be in [0, 4096] (got {})", o.title_dim));
  const std::vector<std::string> signals = {"item", "genre", "director", "writer", "none"};
  need(std::find(signals.begin(), signals.end(), o.signal) != signals.end(),
       fmt::format("--signal '{}' is not one of: {}", o.signal, fmt::join(signals, ", ")));
  for (const auto& [name, v] : {std::pair{"--sequential", o.sequential}, {"--affinity", o.affinity},
                                {"--purity", o.purity}, {"--tie-rate", o.tie_rate}})
    need(v >= 0.0 && v <= 1.0, fmt::format("{} must be a probability in [0, 1] (got {})", name, v));
  need(o.popularity >= 0.0 && o.popularity <= 4.0,
       fmt::format("--popularity must be in [0, 4] (got {})", o.popularity));
  // Sizes that cannot fit: item ids are 32-bit, and the whole data set is built in memory
  // (a bare std::bad_alloc half-way through helps nobody).
  constexpr std::int64_t max_id = std::numeric_limits<std::int32_t>::max();
  need(o.items <= max_id, fmt::format("--items must be at most {} (got {})", max_id, o.items));
  need(o.users <= max_id, fmt::format("--users must be at most {} (got {})", max_id, o.users));
  need(std::isfinite(o.interactions_per_user),
       fmt::format("--interactions-per-user must be a finite number (got {})", o.interactions_per_user));
  const double interactions = static_cast<double>(o.users) * o.interactions_per_user;
  // Bytes per interaction (ids, times, the builder's staging and the written rows), per user and
  // per item (features, titles, pools): a generous estimate, checked against physical memory.
  const double bytes = interactions * 64.0 + static_cast<double>(o.users) * 96.0 +
                       static_cast<double>(o.items) * (512.0 + 8.0 * static_cast<double>(o.title_dim));
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const double memory = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
  const auto gib = [](double b) { return b / static_cast<double>(1ULL << 30); };
  if (memory > 0 && bytes > memory) {
    const char* flag = o.users * o.interactions_per_user >= o.items * 512.0 ? "--users" : "--items";
    need(false, fmt::format("{} is too large: --users {} x --interactions-per-user {} is {:.3g} "
                            "interactions, about {:.3g} GiB in memory, and this machine has {:.1f} "
                            "GiB; lower {} (or --interactions-per-user)",
                            flag, o.users, o.interactions_per_user, interactions, gib(bytes),
                            gib(memory), flag));
  }
}

SynthResult synthesize(const SynthOptions& o) {
  validate(o);
  Rng rng(o.seed);
  const std::int64_t num_items = o.items;
  const auto K = static_cast<std::int32_t>(o.clusters);
  const std::int64_t num_directors = o.directors ? o.directors : std::max<std::int64_t>(K, num_items / 4);
  const std::int64_t num_writers = o.writers ? o.writers : std::max<std::int64_t>(K, num_items / 3);

  // --- catalogue -------------------------------------------------------------------------------
  // Items are spread evenly over the clusters, in random order.
  std::vector<std::int32_t> item_cluster(num_items);
  for (std::int64_t i = 0; i < num_items; ++i) item_cluster[i] = static_cast<std::int32_t>(i % K);
  rng.shuffle(item_cluster);
  std::vector<std::vector<std::int32_t>> cluster_items(K);
  for (std::int64_t i = 0; i < num_items; ++i)
    cluster_items[item_cluster[i]].push_back(static_cast<std::int32_t>(i));

  // Zipf popularity inside each cluster, by a random rank.
  std::vector<double> pop(num_items);
  std::vector<Weighted> cluster_pick(K);
  for (std::int32_t c = 0; c < K; ++c) {
    auto members = cluster_items[c];
    rng.shuffle(members);
    std::vector<double> w(members.size());
    for (std::size_t r = 0; r < members.size(); ++r) {
      w[r] = 1.0 / std::pow(static_cast<double>(r + 1), o.popularity);
      pop[members[r]] = w[r];
    }
    cluster_pick[c] = Weighted(members, w);
  }
  std::vector<std::int32_t> all_items(num_items);
  std::iota(all_items.begin(), all_items.end(), 0);
  const Weighted global_pick(all_items, pop);

  // Feature pools per cluster: two or three home genres, and directors and writers dealt out.
  const auto num_genres = o.genres;
  std::vector<std::vector<std::int32_t>> home_genres(K);
  {
    std::vector<std::int32_t> order(num_genres);
    std::iota(order.begin(), order.end(), 0);
    rng.shuffle(order);
    const std::int64_t per = std::min<std::int64_t>(num_genres, num_genres >= 3 * K ? 3 : 2);
    for (std::int32_t c = 0; c < K; ++c)
      for (std::int64_t k = 0; k < per; ++k)
        home_genres[c].push_back(order[(c * per + k) % num_genres]);
  }
  const auto deal = [&](std::int64_t n) {
    std::vector<std::vector<std::int32_t>> pools(K);
    std::vector<std::int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    rng.shuffle(order);
    for (std::int64_t v = 0; v < n; ++v) pools[v % K].push_back(order[v]);
    return pools;
  };
  const auto director_pool = deal(num_directors);
  const auto writer_pool = deal(num_writers);

  std::vector<std::vector<std::int32_t>> item_genres(num_items), item_writers(num_items);
  std::vector<std::int32_t> item_director(num_items);
  std::vector<int> item_year(num_items);
  std::vector<double> era(K);
  for (auto& e : era) e = 1950.0 + 65.0 * rng.uniform();
  for (std::int64_t i = 0; i < num_items; ++i) {
    const std::int32_t c = item_cluster[i];
    const int n_genres = 1 + (rng.chance(0.5) ? 1 : 0) + (rng.chance(0.2) ? 1 : 0);
    item_genres[i] = draw_values(rng, home_genres[c], num_genres, n_genres, o.purity);
    item_director[i] = draw_values(rng, director_pool[c], num_directors, 1, o.purity)[0];
    item_writers[i] = draw_values(rng, writer_pool[c], num_writers, rng.chance(0.3) ? 2 : 1, o.purity);
    item_year[i] = std::clamp(static_cast<int>(std::lround(era[c] + 6.0 * rng.normal())), 1920, 2023);
  }

  // Names and titles.
  std::vector<std::string> genre_names(num_genres);
  for (std::int64_t g = 0; g < num_genres; ++g)
    genre_names[g] = g < static_cast<std::int64_t>(std::size(kGenreNames))
                         ? kGenreNames[g]
                         : fmt::format("Genre {}", g + 1);
  const auto director_names = unique_names(rng, num_directors, person);
  const auto writer_names = unique_names(rng, num_writers, person);
  const auto common_words = unique_names(rng, 200, [](Rng& r) { return word(r, 1 + static_cast<int>(r.below(2))); });
  std::vector<std::vector<std::string>> theme_words(K);
  for (auto& t : theme_words) t = unique_names(rng, 12, [](Rng& r) { return word(r, 2); });
  std::vector<std::string> item_title(num_items);
  for (std::int64_t i = 0; i < num_items; ++i) {
    const int n_words = 1 + static_cast<int>(rng.below(4));
    std::string t;
    for (int k = 0; k < n_words; ++k) {
      const auto& pool = rng.chance(0.5) ? theme_words[item_cluster[i]] : common_words;
      if (k) t += ' ';
      t += capitalised(pool[rng.below(static_cast<std::int64_t>(pool.size()))]);
    }
    item_title[i] = std::move(t);
  }
  std::vector<float> embedding;
  if (o.title_dim > 0) {
    const std::int64_t D = o.title_dim;
    std::vector<double> centroid(K * D);
    for (auto& v : centroid) v = rng.normal();
    embedding.resize(num_items * D);
    for (std::int64_t i = 0; i < num_items; ++i)
      for (std::int64_t k = 0; k < D; ++k) {
        const double v = centroid[item_cluster[i] * D + k] + 0.5 * rng.normal();
        // Four decimals keep the file small; rounding happens here so the data set holds exactly
        // what the file will.
        embedding[i * D + k] = static_cast<float>(std::round(v * 1e4) / 1e4);
      }
  }

  // --- sequential structure ---------------------------------------------------------------------
  // Each item's successor is another item of its cluster; each genre is followed by another genre.
  std::vector<std::int32_t> successor(num_items, -1);
  for (std::int64_t i = 0; i < num_items; ++i) {
    const auto& members = cluster_items[item_cluster[i]];
    if (members.size() < 2) {
      successor[i] = static_cast<std::int32_t>((i + 1) % num_items);
      continue;
    }
    std::int32_t s;
    do s = members[rng.below(static_cast<std::int64_t>(members.size()))];
    while (s == i);
    successor[i] = s;
  }
  std::vector<std::int32_t> genre_next(num_genres);
  {
    std::vector<std::int32_t> order(num_genres);
    std::iota(order.begin(), order.end(), 0);
    rng.shuffle(order);  // a single cycle through all genres: no genre follows itself
    for (std::int64_t k = 0; k < num_genres; ++k) genre_next[order[k]] = order[(k + 1) % num_genres];
  }
  const auto invert = [&](const auto& per_item_values, std::int64_t n) {
    std::vector<std::vector<std::int32_t>> by_value(n);
    for (std::int64_t i = 0; i < num_items; ++i)
      for (std::int32_t v : per_item_values(i)) by_value[v].push_back(static_cast<std::int32_t>(i));
    return by_value;
  };
  const auto genre_items = invert([&](std::int64_t i) { return item_genres[i]; }, num_genres);
  const auto director_items =
      invert([&](std::int64_t i) { return std::vector<std::int32_t>{item_director[i]}; }, num_directors);
  const auto writer_items = invert([&](std::int64_t i) { return item_writers[i]; }, num_writers);
  const auto pick_from = [&](const std::vector<std::int32_t>& v) {
    return v.empty() ? -1 : v[rng.below(static_cast<std::int64_t>(v.size()))];
  };
  const auto sequential_step = [&](std::int32_t prev) -> std::int32_t {
    if (o.signal == "item") return successor[prev];
    if (o.signal == "genre") return pick_from(genre_items[genre_next[item_genres[prev][0]]]);
    if (o.signal == "director") return pick_from(director_items[item_director[prev]]);
    if (o.signal == "writer") return pick_from(writer_items[pick_from(item_writers[prev])]);
    return -1;
  };

  // --- users -----------------------------------------------------------------------------------
  // Lengths: a piecewise-uniform mix (60% short, 30% medium, 10% long) with the requested mean,
  // capped so that a user never needs more than 80% of the catalogue.
  const auto max_length = std::max<std::int64_t>(o.min_length, num_items * 4 / 5);
  const double base = std::max((o.interactions_per_user - 0.3 * o.min_length) / 1.1,
                               static_cast<double>(o.min_length));
  const auto draw_length = [&]() {
    const double u = rng.uniform(), v = rng.uniform();
    double len;
    if (u < 0.6) len = o.min_length + v * (base - o.min_length);
    else if (u < 0.9) len = base + v * base;
    else len = 2 * base + v * 3 * base;
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(len + 0.5), o.min_length, max_length);
  };

  DatasetBuilder builder;
  builder.reserve(static_cast<std::size_t>(o.users * o.interactions_per_user * 1.05));
  std::vector<std::int32_t> user_cluster(o.users);
  std::vector<std::int64_t> seen_by(num_items, -1);
  std::vector<std::int32_t> sequence;
  std::vector<std::string> item_names(num_items);
  for (std::int64_t i = 0; i < num_items; ++i) item_names[i] = fmt::format("{}", i + 1);
  std::string user_name;
  constexpr std::int64_t kEpoch = 946684800;  // 2000-01-01
  for (std::int64_t u = 0; u < o.users; ++u) {
    const auto c = static_cast<std::int32_t>(rng.below(K));
    user_cluster[u] = c;
    const std::int64_t length = draw_length();
    sequence.clear();
    std::int32_t prev = -1;
    for (std::int64_t step = 0; step < length; ++step) {
      std::int32_t next = -1;
      if (prev >= 0 && rng.chance(o.sequential)) next = sequential_step(prev);
      for (int tries = 0; next < 0 || seen_by[next] == u; ++tries) {
        if (tries >= 64) {  // the favourites are used up: take the first unseen item from a random start
          std::int64_t k = rng.below(num_items);
          while (seen_by[k] == u) k = (k + 1) % num_items;
          next = static_cast<std::int32_t>(k);
          break;
        }
        next = rng.chance(o.affinity) ? cluster_pick[c].draw(rng) : global_pick.draw(rng);
      }
      seen_by[next] = u;
      sequence.push_back(next);
      prev = next;
    }
    // Timestamps: a start within ten years, then gaps of a minute to two weeks (mostly short),
    // with occasional ties (several ratings in one second) to exercise the tie rule.
    std::int64_t t = kEpoch + rng.below(10LL * 365 * 86400);
    user_name = fmt::format("{}", u + 1);
    for (std::size_t k = 0; k < sequence.size(); ++k) {
      if (k > 0 && !rng.chance(o.tie_rate)) {
        const double x = rng.uniform();
        t += 60 + static_cast<std::int64_t>(x * x * x * 14 * 86400);
      }
      builder.add_interaction(user_name, item_names[sequence[k]], t);
    }
  }

  // --- metadata, in the order the seed_tsv writer emits and the reader reads it --------------------
  // Dense item ids follow first appearance; walking items by dense id reproduces the vocabulary
  // order that loading the written files gives, so the data set round-trips exactly.
  const std::int64_t present = builder.num_items();
  std::vector<std::int32_t> dense_to_raw(present);
  for (std::int64_t i = 0; i < num_items; ++i)
    if (const auto d = builder.item_id(item_names[i])) dense_to_raw[*d] = static_cast<std::int32_t>(i);
  for (std::int64_t d = 0; d < present; ++d)
    for (std::int32_t g : item_genres[dense_to_raw[d]])
      builder.add_category("genre", static_cast<std::int32_t>(d), genre_names[g]);
  for (std::int64_t d = 0; d < present; ++d)
    builder.add_category("director", static_cast<std::int32_t>(d), director_names[item_director[dense_to_raw[d]]]);
  for (std::int64_t d = 0; d < present; ++d)
    for (std::int32_t w : item_writers[dense_to_raw[d]])
      builder.add_category("writer", static_cast<std::int32_t>(d), writer_names[w]);
  for (std::int64_t d = 0; d < present; ++d)
    builder.set_numeric("year", static_cast<std::int32_t>(d), static_cast<float>(item_year[dense_to_raw[d]]));
  for (std::int64_t d = 0; d < present; ++d)
    builder.set_title(static_cast<std::int32_t>(d), item_title[dense_to_raw[d]]);
  if (o.title_dim > 0)
    for (std::int64_t d = 0; d < present; ++d)
      builder.set_dense("title", static_cast<std::int32_t>(d),
                        std::span<const float>(embedding.data() + dense_to_raw[d] * o.title_dim,
                                               static_cast<std::size_t>(o.title_dim)));

  SynthResult result;
  result.dataset = builder.build("synthetic", {}, fmt::format("synth-{:016x}", o.seed));

  // --- the truth, in dense ids ------------------------------------------------------------------
  SynthTruth& truth = result.truth;
  truth.user_cluster = std::move(user_cluster);  // users are added in order: dense id = index
  std::vector<std::int32_t> raw_to_dense(num_items, -1);
  for (std::int64_t d = 0; d < present; ++d) raw_to_dense[dense_to_raw[d]] = static_cast<std::int32_t>(d);
  truth.item_cluster.resize(present);
  truth.successor.resize(present);
  for (std::int64_t d = 0; d < present; ++d) {
    truth.item_cluster[d] = item_cluster[dense_to_raw[d]];
    truth.successor[d] = raw_to_dense[successor[dense_to_raw[d]]];
  }
  const auto& vocab = result.dataset.categorical.at("genre").vocab;
  const auto genre_id = [&](std::int32_t raw) {
    const auto it = std::find(vocab.begin(), vocab.end(), genre_names[raw]);
    return it == vocab.end() ? -1 : static_cast<std::int32_t>(it - vocab.begin());
  };
  truth.genre_successor.assign(vocab.size(), -1);
  for (std::int64_t g = 0; g < num_genres; ++g)
    if (const auto id = genre_id(static_cast<std::int32_t>(g)); id >= 0)
      truth.genre_successor[id] = genre_id(genre_next[g]);
  truth.cluster_genres.resize(K);
  for (std::int32_t c = 0; c < K; ++c)
    for (std::int32_t g : home_genres[c])
      if (const auto id = genre_id(g); id >= 0) truth.cluster_genres[c].push_back(id);
  return result;
}

std::string synth_readme(const SynthOptions& o) {
  return fmt::format(
      "Synthetic recommendation data written by `recrun data synth` (seed_tsv layout).\n"
      "\n"
      "Regenerate it, byte for byte, with:\n"
      "  recrun data synth --out DIR --users {} --items {} --interactions-per-user {} \\\n"
      "    --min-length {} --clusters {} --seed {} --genres {} --directors {} --writers {} \\\n"
      "    --title-dim {} --signal {} --sequential {} --affinity {} --purity {} \\\n"
      "    --popularity {} --tie-rate {}\n"
      "\n"
      "Planted structure: users and items belong to {} taste clusters; with probability {} the\n"
      "next item follows the '{}' signal (see docs/data.md), otherwise it is drawn from the\n"
      "user's cluster (probability {}) or from global popularity. Genres, directors and writers\n"
      "come from the item's cluster's pool with probability {}.\n",
      o.users, o.items, o.interactions_per_user, o.min_length, o.clusters, o.seed, o.genres,
      o.directors, o.writers, o.title_dim, o.signal, o.sequential, o.affinity, o.purity,
      o.popularity, o.tie_rate, o.clusters, o.sequential, o.signal, o.affinity, o.purity);
}

}  // namespace recrun::data
