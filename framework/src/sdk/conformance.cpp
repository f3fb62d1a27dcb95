#include "recrun/conformance.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <set>

#include "recrun/archive.hpp"
#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "sdk/host_access.hpp"

namespace recrun::conformance {
namespace {

const char* const kChecks[] = {"shape", "finite", "repeatable", "batch_independence",
                               "round_trip", "resave"};

// Scores `users` of `data` with `model`, as the evaluator does (no gradients).
torch::Tensor score_users(Model& model, const Interactions& data,
                          const std::vector<std::int64_t>& users) {
  std::vector<std::span<const std::int32_t>> histories;
  histories.reserve(users.size());
  for (const auto u : users) histories.push_back(data.items(u));
  torch::NoGradGuard no_grad;
  return model.score(UserBatch(users, std::move(histories), data.num_items()));
}

// Why `scores` is not a float32 [batch, items] tensor, or nothing.
std::optional<std::string> shape_problem(const torch::Tensor& scores, std::int64_t batch,
                                         std::int64_t items) {
  if (!scores.defined()) return fmt::format("score() returned an undefined tensor for {} users", batch);
  std::string problem;
  if (scores.dim() != 2 || scores.size(0) != batch || scores.size(1) != items)
    problem = fmt::format("shape is {} for a batch of {} users; expected [{}, {}]",
                          fmt::join(scores.sizes(), "x"), batch, batch, items);
  if (scores.scalar_type() != torch::kFloat32)
    problem += fmt::format("{}dtype is {}; expected float32", problem.empty() ? "" : "; ",
                           std::string(c10::toString(scores.scalar_type())));
  if (problem.empty()) return std::nullopt;
  return problem;
}

// Compares `got` with `want` (both float32 [B, items], same shape) under the options'
// tolerance; NaNs at the same place count as equal (the "finite" check reports them).
// `row_user` names the user of each row. Returns a description of the worst mismatch.
std::optional<std::string> mismatch(const torch::Tensor& got, const torch::Tensor& want,
                                    const std::vector<std::int64_t>& row_user,
                                    const Options& options, std::string_view got_name,
                                    std::string_view want_name) {
  const torch::Tensor a = got.to(torch::kFloat64);
  const torch::Tensor b = want.to(torch::kFloat64);
  const torch::Tensor both_nan = torch::isnan(a) & torch::isnan(b);
  const torch::Tensor diff = (a - b).abs();
  const torch::Tensor allowed = options.bitwise ? torch::zeros_like(b) : options.atol + options.rtol * b.abs();
  const torch::Tensor ok = (a == b) | both_nan | (diff <= allowed);
  const std::int64_t bad = (~ok).sum().item<std::int64_t>();
  if (bad == 0) return std::nullopt;
  // The worst offender: largest excess over the tolerance (NaN against a number counts most).
  const torch::Tensor excess =
      torch::where(ok, torch::full_like(diff, -1.0),
                   torch::nan_to_num(diff - allowed, std::numeric_limits<double>::max(),
                                     std::numeric_limits<double>::max()));
  const std::int64_t flat = excess.argmax().item<std::int64_t>();
  const std::int64_t items = b.size(1);
  const std::int64_t row = flat / items, item = flat % items;
  const double va = a[row][item].item<double>(), vb = b[row][item].item<double>();
  return fmt::format(
      "{} of {} scores differ; worst: user {}, item {}: {:.9g} {} vs {:.9g} {} (|diff| {:.3g}, "
      "allowed {})",
      bad, b.numel(), row_user[row], item, va, got_name, vb, want_name, std::abs(va - vb),
      options.bitwise ? std::string("0: bitwise") : fmt::format("{:.3g}", allowed[row][item].item<double>()));
}

std::string what_of(const std::exception& e) { return e.what(); }

// A unique path for the round trip's checkpoint.
std::filesystem::path temp_checkpoint(const Options& options) {
  static std::atomic<std::uint64_t> counter{0};
  const auto dir = options.temp_dir.empty() ? std::filesystem::temp_directory_path() : options.temp_dir;
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  return dir / fmt::format("recrun-conformance-{}-{}-{}.ckpt", ::getpid(), counter++, stamp);
}

// Differences between two archives (keys, then tensors, then strings), or nothing.
std::optional<std::string> archive_difference(const Archive& saved, const Archive& resaved) {
  std::vector<std::string> problems;
  const auto keys = saved.keys(), again = resaved.keys();
  const std::set<std::string> a(keys.begin(), keys.end()), b(again.begin(), again.end());
  for (const auto& k : a)
    if (!b.count(k)) problems.push_back(fmt::format("tensor '{}' is not saved again after load()", k));
  for (const auto& k : b)
    if (!a.count(k)) problems.push_back(fmt::format("tensor '{}' appears only after load()", k));
  for (const auto& k : a) {
    if (!b.count(k)) continue;
    const torch::Tensor x = saved.read(k), y = resaved.read(k);
    if (x.sizes() != y.sizes() || x.scalar_type() != y.scalar_type()) {
      problems.push_back(fmt::format("tensor '{}' was {} {}, is {} {} after load()", k,
                                     std::string(c10::toString(x.scalar_type())),
                                     fmt::join(x.sizes(), "x"),
                                     std::string(c10::toString(y.scalar_type())),
                                     fmt::join(y.sizes(), "x")));
      continue;
    }
    const bool same = x.is_floating_point() || x.is_complex()
                          ? ((x == y) | (torch::isnan(x) & torch::isnan(y))).all().item<bool>()
                          : torch::equal(x, y);
    if (!same) problems.push_back(fmt::format("tensor '{}' has other values after load()", k));
  }
  const auto texts = saved.text_keys(), texts_again = resaved.text_keys();
  const std::set<std::string> ta(texts.begin(), texts.end()), tb(texts_again.begin(), texts_again.end());
  for (const auto& k : ta) {
    if (!tb.count(k)) {
      problems.push_back(fmt::format("string '{}' is not saved again after load()", k));
      continue;
    }
    // LibTorch's serialized archives (zip files: what Archive::write(key, optimizer) stores)
    // name each parameter's state by its address, so their bytes differ between two models in
    // the same state: only their presence is checked.
    const std::string& x = saved.read_text(k);
    const bool torch_archive = x.rfind("PK\x03\x04", 0) == 0;
    if (!torch_archive && x != resaved.read_text(k))
      problems.push_back(fmt::format("string '{}' has another value after load()", k));
  }
  for (const auto& k : tb)
    if (!ta.count(k)) problems.push_back(fmt::format("string '{}' appears only after load()", k));
  if (problems.empty()) return std::nullopt;
  const std::size_t shown = std::min<std::size_t>(problems.size(), 5);
  std::string out = fmt::format("{}", fmt::join(problems.begin(), problems.begin() + shown, "; "));
  if (problems.size() > shown) out += fmt::format("; and {} more", problems.size() - shown);
  return out;
}

class Checker {
 public:
  Checker(Report& report) : report_(report) {}
  void pass(const std::string& check) { report_.passed.push_back(check); }
  void fail(const std::string& check, std::string message) {
    report_.failures.push_back({check, std::move(message)});
  }
  void skip_rest(std::size_t from, const std::string& why) {
    for (std::size_t i = from; i < std::size(kChecks); ++i)
      report_.skipped.push_back(fmt::format("{}: {}", kChecks[i], why));
  }

 private:
  Report& report_;
};

}  // namespace

bool Report::ok() const { return failures.empty() && skipped.empty(); }

bool Report::failed(std::string_view check) const {
  return std::any_of(failures.begin(), failures.end(),
                     [&](const Failure& f) { return f.check == check; });
}

std::string Report::summary() const {
  std::string out;
  for (const auto& p : passed) out += fmt::format("PASS {}\n", p);
  for (const auto& f : failures) out += fmt::format("FAIL {}: {}\n", f.check, f.message);
  for (const auto& s : skipped) out += fmt::format("SKIP {}\n", s);
  return out;
}

void Report::require() const {
  if (ok()) return;
  throw Error(fmt::format("model conformance check failed ({} failed, {} skipped):\n{}",
                          failures.size(), skipped.size(), summary()));
}

Report check_trained(Model& trained, const ModelFactory& make, const Interactions& data,
                     const Options& options) {
  std::vector<std::int64_t> users;
  for (std::int64_t u = 0; u < data.num_users() && static_cast<std::int64_t>(users.size()) < options.max_users; ++u)
    if (!data.items(u).empty()) users.push_back(u);
  if (users.size() < 2)
    throw Error(fmt::format(
        "conformance check: the data has {} users with a history; at least 2 are needed "
        "(and max_users must be >= 2)",
        users.size()));
  const std::int64_t n = static_cast<std::int64_t>(users.size());
  const std::int64_t items = data.num_items();

  Report report;
  Checker c(report);

  // --- shape ---------------------------------------------------------------------------------
  torch::Tensor full;
  try {
    full = score_users(trained, data, users);
    std::optional<std::string> problem = shape_problem(full, n, items);
    if (!problem) {
      const torch::Tensor one = score_users(trained, data, {users[0]});
      problem = shape_problem(one, 1, items);
    }
    if (problem) {
      c.fail("shape", *problem);
      c.skip_rest(1, "needs float32 [B, num_items] scores");
      return report;
    }
  } catch (const std::exception& e) {
    c.fail("shape", "score() threw: " + what_of(e));
    c.skip_rest(1, "score() threw");
    return report;
  }
  full = full.detach().to(torch::kCPU).clone();
  c.pass("shape");

  // --- finite ----------------------------------------------------------------------------------
  {
    const torch::Tensor bad = ~torch::isfinite(full);
    const std::int64_t count = bad.sum().item<std::int64_t>();
    if (count == 0) {
      c.pass("finite");
    } else {
      const std::int64_t flat = bad.flatten().to(torch::kInt32).argmax().item<std::int64_t>();
      c.fail("finite", fmt::format("{} of {} scores are NaN or Inf; first: user {}, item {} = {}",
                                   count, full.numel(), users[flat / items], flat % items,
                                   full.flatten()[flat].item<float>()));
    }
  }

  // --- repeatable ------------------------------------------------------------------------------
  try {
    const torch::Tensor again = score_users(trained, data, users);
    if (auto m = mismatch(again, full, users, options, "the second time", "the first time"))
      c.fail("repeatable", "scoring the same batch twice: " + *m +
                               " (is dropout or sampling still on while scoring? switch modules "
                               "to eval mode in score())");
    else
      c.pass("repeatable");
  } catch (const std::exception& e) {
    c.fail("repeatable", "score() threw the second time: " + what_of(e));
  }

  // --- batch_independence ----------------------------------------------------------------------
  try {
    std::vector<std::string> problems;
    std::vector<std::int64_t> reversed(users.rbegin(), users.rend());
    const torch::Tensor rev = score_users(trained, data, reversed);
    if (auto s = shape_problem(rev, n, items)) {
      problems.push_back("reversed batch: " + *s);
    } else if (auto m = mismatch(rev.flip({0}), full, users, options, "in the reversed batch",
                                 "in the batch")) {
      problems.push_back(*m);
    }
    // Users spread over the batch (first, last and between) scored on their own.
    const std::int64_t k = std::clamp<std::int64_t>(options.singles, 1, n);
    std::set<std::int64_t> rows;
    for (std::int64_t j = 0; j < k; ++j) rows.insert(k == 1 ? 0 : j * (n - 1) / (k - 1));
    for (const auto row : rows) {
      const torch::Tensor alone = score_users(trained, data, {users[row]});
      if (auto s = shape_problem(alone, 1, items)) {
        problems.push_back(fmt::format("user {} alone: {}", users[row], *s));
      } else if (auto m = mismatch(alone, full.narrow(0, row, 1), {users[row]}, options,
                                   "alone", fmt::format("in a batch of {}", n))) {
        problems.push_back(*m);
      }
    }
    if (problems.empty())
      c.pass("batch_independence");
    else
      c.fail("batch_independence",
             fmt::format("a user's scores depend on the other users in the batch: {}",
                         fmt::join(problems, "; ")));
  } catch (const std::exception& e) {
    c.fail("batch_independence", "score() threw: " + what_of(e));
  }

  // --- round_trip ------------------------------------------------------------------------------
  Archive saved;
  std::unique_ptr<Model> fresh;
  try {
    trained.save(saved);
  } catch (const std::exception& e) {
    c.fail("round_trip", "save() threw: " + what_of(e));
    c.skip_rest(5, "save() threw");
    return report;
  }
  try {
    fresh = make();
    if (!fresh) throw Error("the factory returned a null model");
  } catch (const std::exception& e) {
    c.fail("build", "building a fresh model threw: " + what_of(e));
    c.skip_rest(4, "no fresh model to load the checkpoint into");
    return report;
  }
  const std::filesystem::path file = temp_checkpoint(options);
  Archive loaded;
  try {
    saved.save_file(file);
    loaded = Archive::load_file(file);
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
    c.fail("round_trip", fmt::format("writing or reading the checkpoint {} threw: {}",
                                     file.string(), what_of(e)));
    c.skip_rest(5, "no checkpoint");
    return report;
  }
  try {
    fresh->load(loaded);
  } catch (const std::exception& e) {
    c.fail("round_trip", "load() into a freshly built model threw: " + what_of(e));
    c.skip_rest(5, "load() threw");
    return report;
  }
  try {
    const torch::Tensor reloaded = score_users(*fresh, data, users);
    if (auto s = shape_problem(reloaded, n, items))
      c.fail("round_trip", "the reloaded model's " + *s);
    else if (auto m = mismatch(reloaded, full, users, options, "after save/load", "before"))
      c.fail("round_trip",
             "a freshly built model that loaded the checkpoint scores differently: " + *m +
                 " (does load() restore every tensor save() writes, and save() everything "
                 "score() uses?)");
    else
      c.pass("round_trip");
  } catch (const std::exception& e) {
    c.fail("round_trip", "the reloaded model's score() threw: " + what_of(e));
  }

  // --- resave ----------------------------------------------------------------------------------
  try {
    Archive resaved;
    fresh->save(resaved);
    if (auto d = archive_difference(saved, resaved))
      c.fail("resave", "saving the reloaded model does not write what was loaded: " + *d);
    else
      c.pass("resave");
  } catch (const std::exception& e) {
    c.fail("resave", "save() of the reloaded model threw: " + what_of(e));
  }
  return report;
}

Report check(const ModelFactory& make, const Dataset& dataset, const Options& options) {
  Report report;
  std::unique_ptr<Model> model;
  try {
    model = make();
    if (!model) throw Error("the factory returned a null model");
  } catch (const std::exception& e) {
    report.failures.push_back({"build", "building the model threw: " + what_of(e)});
    Checker(report).skip_rest(0, "no model");
    return report;
  }
  const Interactions train = all_interactions(dataset);
  try {
    fit(*model, dataset, train, options.epochs, options.seed);
  } catch (const std::exception& e) {
    report.failures.push_back({"fit", "fit_epoch() threw: " + what_of(e)});
    Checker(report).skip_rest(0, "the model did not train");
    return report;
  }
  return check_trained(*model, make, train, options);
}

Interactions all_interactions(const Dataset& dataset) {
  std::vector<std::int64_t> offsets = dataset.user_offsets;
  if (offsets.empty()) offsets.push_back(0);
  return Interactions(std::move(offsets), dataset.items, dataset.num_items());
}

EpochResult fit(Model& model, const Dataset& dataset, const Interactions& train,
                std::int64_t epochs, std::uint64_t seed) {
  if (epochs < 1) throw Error(fmt::format("conformance::fit: epochs must be >= 1, got {}", epochs));
  TrainContext ctx(dataset, train, seed, torch::get_num_threads());
  EpochResult result;
  for (std::int64_t e = 0; e < epochs; ++e) {
    sdk_internal::TrainContextAccess::begin_epoch(ctx, e);
    result = model.fit_epoch(ctx);
    if (result.converged) break;
  }
  return result;
}

Dataset tiny_dataset(const TinyDatasetSpec& spec) {
  if (spec.users < 2 || spec.items < 2 || spec.groups < 1 || spec.groups > spec.items ||
      spec.min_len < 1 || spec.max_len < spec.min_len || spec.max_len > spec.items)
    throw Error(fmt::format(
        "conformance::tiny_dataset: need users >= 2, items >= 2, 1 <= groups <= items and "
        "1 <= min_len <= max_len <= items (got users {}, items {}, groups {}, lengths {}..{})",
        spec.users, spec.items, spec.groups, spec.min_len, spec.max_len));
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<int> length(spec.min_len, spec.max_len);
  std::uniform_int_distribution<int> any_item(0, spec.items - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<std::vector<int>> histories(spec.users);
  std::vector<bool> used(spec.items, false);
  for (int u = 0; u < spec.users; ++u) {
    const int group = u % spec.groups;
    const int n = length(rng);
    std::vector<bool> taken(spec.items, false);
    auto& h = histories[u];
    while (static_cast<int>(h.size()) < n) {
      int item = any_item(rng);
      // Mostly the user's own group: items g, g + groups, g + 2 * groups, ...
      if (coin(rng) < 0.8) item = group + spec.groups * (item / spec.groups);
      if (item >= spec.items) item = group;
      if (taken[item]) {
        // Fall back to the first free item, so the loop always ends.
        item = static_cast<int>(std::find(taken.begin(), taken.end(), false) - taken.begin());
      }
      taken[item] = true;
      used[item] = true;
      h.push_back(item);
    }
  }
  // Every item occurs somewhere: nobody has an unused one, so any user can take it.
  for (int i = 0; i < spec.items; ++i) {
    if (!used[i]) histories[i % spec.users].push_back(i);
  }
  DatasetBuilder b;
  for (int u = 0; u < spec.users; ++u)
    for (std::size_t t = 0; t < histories[u].size(); ++t)
      b.add_interaction(fmt::format("u{}", u), fmt::format("i{}", histories[u][t]),
                        static_cast<std::int64_t>(t));
  for (int i = 0; i < spec.items; ++i) {
    const auto id = b.item_id(fmt::format("i{}", i));
    if (!id) continue;
    b.add_category("genre", *id, fmt::format("g{}", i % spec.groups));
    b.set_numeric("year", *id, static_cast<float>(1990 + i % 20));
  }
  return b.build("tiny", {}, fmt::format("tiny-{}-{}-{}-{}-{}-{}", spec.users, spec.items,
                                         spec.groups, spec.min_len, spec.max_len, spec.seed));
}

void begin_epoch(TrainContext& ctx, std::int64_t epoch) {
  sdk_internal::TrainContextAccess::begin_epoch(ctx, epoch);
}

void set_deadline(TrainContext& ctx, std::chrono::steady_clock::time_point deadline) {
  sdk_internal::TrainContextAccess::set_deadline(ctx, deadline);
}

Report check_plugin(const std::filesystem::path& library) {
  Report report;
  Registry scratch;
  try {
    sdk_internal::open_plugin_library(library, scratch);
  } catch (const std::exception& e) {
    report.failures.push_back({"registration", e.what()});
    return report;
  }
  report.passed.emplace_back("registration");
  for (const auto& [kind, name] : sdk_internal::RegistryAccess::attempted(scratch))
    report.passed.push_back(fmt::format("component {} {}", kind_name(kind), name));
  return report;
}

}  // namespace recrun::conformance
