#include "core/trainer.hpp"

#include "sdk/host_access.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <sstream>
#include <thread>

#include "recrun/distributed.hpp"
#include "recrun/error.hpp"
#include "recrun/fields.hpp"
#include "recrun/registry.hpp"
#include "recrun/text.hpp"

namespace recrun::core {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Trainer state lives in the checkpoint beside the model's tensors, under a reserved prefix; so
// do the best weights so far, so that one atomic file always holds a consistent resume point.
constexpr const char* kState = "__trainer__.";
constexpr const char* kBest = "__best__.";

void embed_best(Archive& into, const Archive& best) {
  for (const auto& k : best.keys()) into.write(kBest + k, best.read(k));
  for (const auto& k : best.text_keys()) into.write_text(kBest + k, best.read_text(k));
}

// The best weights embedded in `last`, if any (checkpoints of earlier versions have none).
std::optional<Archive> embedded_best(const Archive& last) {
  Archive best;
  bool any = false;
  const std::string prefix = kBest;
  for (const auto& k : last.keys())
    if (k.starts_with(prefix)) best.write(k.substr(prefix.size()), last.read(k)), any = true;
  for (const auto& k : last.text_keys())
    if (k.starts_with(prefix)) best.write_text(k.substr(prefix.size()), last.read_text(k)), any = true;
  if (!any) return std::nullopt;
  return best;
}

std::string encode_metrics(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("{}={:.17g}\n", k, v);
  return out;
}

std::map<std::string, double> decode_metrics(const std::string& text) {
  std::map<std::string, double> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = std::stod(line.substr(eq + 1));
  }
  return m;
}

struct LoopState {
  std::int64_t next_epoch = 0;
  std::int64_t best_epoch = -1;
  double best_value = -std::numeric_limits<double>::infinity();
  std::int64_t bad_evals = 0;
  std::map<std::string, double> best_valid;
  std::map<std::string, double> best_diagnostics;
  std::map<std::string, std::vector<double>> best_valid_per_user;
  double fit_seconds = 0;
  double eval_seconds = 0;
};

void write_state(Archive& a, const LoopState& s, const std::mt19937_64& rng) {
  a.write_text(std::string(kState) + "next_epoch", std::to_string(s.next_epoch));
  a.write_text(std::string(kState) + "best_epoch", std::to_string(s.best_epoch));
  a.write_text(std::string(kState) + "best_value", fmt::format("{:.17g}", s.best_value));
  a.write_text(std::string(kState) + "bad_evals", std::to_string(s.bad_evals));
  a.write_text(std::string(kState) + "best_valid", encode_metrics(s.best_valid));
  a.write_text(std::string(kState) + "best_diagnostics", encode_metrics(s.best_diagnostics));
  a.write_text(std::string(kState) + "fit_seconds", fmt::format("{:.17g}", s.fit_seconds));
  a.write_text(std::string(kState) + "eval_seconds", fmt::format("{:.17g}", s.eval_seconds));
  // Per-user validation values of the best epoch, one float64 tensor per metric.
  const std::string per_user = std::string(kState) + "best_valid_per_user.";
  for (const auto& [name, values] : s.best_valid_per_user)
    a.write(per_user + name,
            torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)));
  std::ostringstream r;
  r << rng;
  a.write_text(std::string(kState) + "rng", r.str());
  auto gen = at::detail::getDefaultCPUGenerator();
  a.write(std::string(kState) + "torch_rng", gen.get_state());
}

LoopState read_state(const Archive& a, std::mt19937_64& rng) {
  LoopState s;
  const auto text = [&](const char* k) { return a.read_text(std::string(kState) + k); };
  s.next_epoch = std::stoll(text("next_epoch"));
  s.best_epoch = std::stoll(text("best_epoch"));
  s.best_value = std::stod(text("best_value"));
  s.bad_evals = std::stoll(text("bad_evals"));
  s.best_valid = decode_metrics(text("best_valid"));
  s.best_diagnostics = decode_metrics(text("best_diagnostics"));
  s.fit_seconds = std::stod(text("fit_seconds"));
  s.eval_seconds = std::stod(text("eval_seconds"));
  const std::string per_user = std::string(kState) + "best_valid_per_user.";
  for (const auto& k : a.keys())
    if (k.starts_with(per_user)) {
      const torch::Tensor t = a.read(k).to(torch::kFloat64).contiguous();
      const double* p = t.data_ptr<double>();
      s.best_valid_per_user[k.substr(per_user.size())] = std::vector<double>(p, p + t.numel());
    }
  std::istringstream r(text("rng"));
  r >> rng;
  auto gen = at::detail::getDefaultCPUGenerator();
  gen.set_state(a.read(std::string(kState) + "torch_rng"));
  return s;
}

// The trial a last.ckpt belongs to. Resuming another trial's checkpoint (other parameters, data
// or seed) would record a mixture of two runs as this one; checkpoints written before the key was
// recorded carry none and are resumed as before.
constexpr const char* kTrialKey = "__trainer__.trial_key";

constexpr const char* kAttempt = "__trainer__.attempt";

// Trial key and attempt of a stamp: a staging key "<key>~attempt-<n>" is <key>'s attempt n.
std::pair<std::string, std::int64_t> split_stamp(const std::string& key, std::int64_t attempt) {
  const auto tilde = key.find("~attempt-");
  if (tilde == std::string::npos) return {key, attempt};
  const auto n = text::to_int(std::string_view(key).substr(tilde + 9));
  return {key.substr(0, tilde), n ? *n : attempt};
}

}  // namespace

void bind_checkpoint(Archive& archive, const std::string& key, std::int64_t attempt) {
  if (!key.empty()) archive.write_text(kTrialKey, key);
  if (attempt > 0) archive.write_text(kAttempt, std::to_string(attempt));
}

void check_checkpoint_binding(const Archive& archive, const std::string& key,
                              std::int64_t attempt, const std::filesystem::path& file) {
  if (key.empty() || !archive.contains(kTrialKey)) return;
  std::int64_t stamped_attempt = 0;
  if (archive.contains(kAttempt))
    stamped_attempt = text::to_int(archive.read_text(kAttempt)).value_or(0);
  const auto [stamped_key, stamped_n] = split_stamp(archive.read_text(kTrialKey), stamped_attempt);
  const auto [wanted_key, wanted_n] = split_stamp(key, attempt);
  const auto show = [](const std::string& k, std::int64_t n) {
    return n > 0 ? fmt::format("trial {} (attempt {})", k, n) : fmt::format("trial {}", k);
  };
  if (stamped_key != wanted_key || (stamped_n > 0 && wanted_n > 0 && stamped_n != wanted_n))
    throw Error(fmt::format(
        "{} belongs to {}, not to {}: it is another run's checkpoint (copied or left over), and "
        "loading it would give that run's results under this run's name; restore this run's own "
        "best.ckpt, or train the run again (recrun run ... --force)",
        text::printable(file.string()), show(text::printable(stamped_key), stamped_n),
        show(wanted_key, wanted_n)));
}

namespace {

void check_trial_key(const Archive& last, const std::string& key, const std::filesystem::path& file) {
  if (key.empty() || !last.contains(kTrialKey)) return;
  const std::string& recorded = last.read_text(kTrialKey);
  if (recorded == key) return;
  throw Error(fmt::format(
      "{} belongs to trial {}, not to this run (trial {}): it was written with other parameters, "
      "data or seed, so resuming it would record a mixture of two runs; give this run its own "
      "--checkpoint-dir, or delete that last.ckpt if trial {} need not be resumed",
      file.string(), recorded, key, recorded));
}

// LibTorch's seed for rank `rank` > 0 of a data-parallel run, from `epoch` on (splitmix64).
std::uint64_t rank_seed(std::uint64_t seed, int rank, std::int64_t epoch) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(rank) +
                    0xBF58476D1CE4E5B9ULL * static_cast<std::uint64_t>(epoch);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;
}

}  // namespace

namespace {
void declare_trainer_fields(Fields<TrainerOptions>& f) {
  f.add("epochs", &TrainerOptions::max_epochs,
        "maximum training epochs (closed-form models stop after one)")
      .at_least(1);
  f.add("eval_every", &TrainerOptions::eval_every, "validate every N epochs").at_least(1);
  f.add("patience", &TrainerOptions::patience,
        "validations without improvement before stopping; 0 = never")
      .at_least(0);
  f.add("time_budget", &TrainerOptions::time_budget_s,
        "wall-clock seconds for training; when spent, the best checkpoint is tested; 0 = no "
        "budget")
      .at_least(0);
}

const Fields<TrainerOptions>& trainer_fields() {
  static const TrainerOptions prototype{};
  static const Fields<TrainerOptions> fields = [] {
    Fields<TrainerOptions> f(prototype);
    declare_trainer_fields(f);
    return f;
  }();
  return fields;
}

// model.save() into `out`, refusing keys under the host's reserved prefix (trainer state and the
// best weights live there in last.ckpt).
void save_model(const Model& model, Archive& out) {
  model.save(out);
  for (const auto& keys : {out.keys(), out.text_keys()})
    for (const auto& k : keys)
      if (k.starts_with(kReservedCheckpointPrefix))
        throw Error(fmt::format("the model's save() wrote checkpoint key '{}', but keys starting "
                                "with '{}' belong to the host; rename it",
                                k, kReservedCheckpointPrefix));
}
}  // namespace

const std::vector<ParamSpec>& trainer_params() {
  static const std::vector<ParamSpec> params = trainer_fields().specs();
  return params;
}

void apply_trainer_params(const Params& params, TrainerOptions& options) {
  trainer_fields().assign(options, params);
}

void seed_and_threads(std::uint64_t seed, int threads) {
  torch::manual_seed(seed);
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

RunOutcome train_and_evaluate(Model& model, const Dataset& dataset, const Split& split,
                              const TrainerOptions& options, RunObserver& observer) {
  const bool full = split.options.mode == SplitMode::full;
  if (!full && split.eval_users.empty())
    throw DataError(fmt::format(
        "no user has at least {} interactions (protocol.min_interactions), so there is nothing "
        "to evaluate: a run with 0 evaluated users would report meaningless 0.0 metrics",
        split.options.min_interactions));
  if (!full) {
    validate(options.eval);
    check_monitor(options.eval.metrics, options.eval.ks, options.monitor);
  }
  // Every finished run stores its per-user values; ARP counts the training interactions.
  EvalOptions eval = options.eval;
  eval.keep_per_user = true;
  if (!full && std::find(eval.metrics.begin(), eval.metrics.end(), "ARP") != eval.metrics.end()) {
    auto popularity = std::make_shared<std::vector<double>>(split.train.num_items(), 0.0);
    for (const auto i : split.train.flat_items()) (*popularity)[i] += 1.0;
    eval.item_popularity = std::move(popularity);
  }
  seed_and_threads(options.seed, options.threads);
  // Data-parallel: the model's generator (batch order) is the same on every rank; LibTorch's
  // (dropout, sampled negatives) differs, or the ranks would draw the same dropout masks for
  // different examples. Rank 0 keeps the run's seed, so alone and rank 0 start alike. Only
  // rank 0 writes checkpoints; every rank resumes from them.
  const int rank = process_rank();
  const bool writer = rank == 0;
  if (rank > 0) torch::manual_seed(rank_seed(options.seed, rank, 0));
  TrainContext ctx(dataset, split.train, options.seed, at::get_num_threads());
  const auto start = Clock::now();
  if (options.time_budget_s > 0)
    sdk_internal::TrainContextAccess::set_deadline(ctx, start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options.time_budget_s)));

  RunOutcome out;
  LoopState state;
  Archive best;
  bool have_best = false;
  bool model_is_best = false;  // the model's weights are those in `best` (no training since)
  const auto ckpt = [&](const char* name) { return options.checkpoint_dir / name; };
  const bool on_disk = !options.checkpoint_dir.empty();

  if (on_disk) {
    // A directory (or a device) where a checkpoint belongs would read as a "truncated
    // checkpoint" or fail only when the first checkpoint is written: say what and where now.
    for (const char* name : {"last.ckpt", "best.ckpt"}) {
      std::error_code ec;
      const auto st = std::filesystem::status(ckpt(name), ec);
      if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st))
        throw Error(fmt::format(
            "{} is {}, not a checkpoint file: remove it (rm -r {}) so that the trial can write "
            "its checkpoints there, or pass another checkpoint directory",
            ckpt(name).string(),
            std::filesystem::is_directory(st) ? "a directory" : "not a regular file",
            ckpt(name).string()));
    }
  }
  if (on_disk && options.resume && std::filesystem::exists(ckpt("last.ckpt"))) {
    const Archive last = Archive::load_file(ckpt("last.ckpt"));
    check_trial_key(last, options.trial_key, ckpt("last.ckpt"));
    model.load(last);
    state = read_state(last, ctx.rng());
    if (auto embedded = embedded_best(last)) {
      best = std::move(*embedded);
      have_best = true;
    } else if (std::filesystem::exists(ckpt("best.ckpt"))) {
      best = Archive::load_file(ckpt("best.ckpt"));
      check_trial_key(best, options.trial_key, ckpt("best.ckpt"));
      have_best = true;
    }
    out.resumed = true;
    // last.ckpt holds rank 0's LibTorch generator: the other ranks draw from their own again.
    if (rank > 0) torch::manual_seed(rank_seed(options.seed, rank, state.next_epoch));
    observer.on_resume(state.next_epoch - 1);
  }

  double last_value = 0;
  const auto validate_now = [&](std::int64_t epoch) -> bool {
    model.diagnostics();  // drop whatever training-time scoring accumulated
    EvalResult r = evaluate(model, split.train, split.eval_users, split.valid_targets, eval);
    state.eval_seconds += r.seconds;
    const auto diagnostics = model.diagnostics();
    const double value = r.metrics.at(options.monitor);
    last_value = value;
    const bool improved = state.best_epoch < 0 || value > state.best_value;
    if (improved) {
      state.best_value = value;
      state.best_epoch = epoch;
      state.best_valid = r.metrics;
      state.best_diagnostics = diagnostics;
      state.best_valid_per_user = std::move(r.per_user);
      r.per_user.clear();
      state.bad_evals = 0;
      best = Archive{};
      save_model(model, best);
      have_best = true;
      model_is_best = true;
    } else {
      ++state.bad_evals;
    }
    observer.on_validation(epoch, r, diagnostics, improved);
    return improved;
  };

  // last.ckpt at most every checkpoint_every_s seconds: a MultiVAE's weights and Adam moments
  // are ~200 MB, and writing them after each sub-second epoch would double a trial's time.
  auto last_saved = Clock::now();
  std::int64_t epoch = state.next_epoch;
  bool converged = false;
  // A run resumed from a checkpoint written after a validation: that validation's rung decision
  // is recorded (it is taken before last.ckpt is written); a pruned run stops here, as it did.
  if (out.resumed && options.should_prune && epoch > 0 && epoch < options.max_epochs &&
      epoch % options.eval_every == 0 &&
      options.should_prune(epoch, std::numeric_limits<double>::quiet_NaN())) {
    out.stop_reason = "pruned";
    out.pruned = true;
  }
  for (; !out.pruned && epoch < options.max_epochs; ++epoch) {
    sdk_internal::TrainContextAccess::begin_epoch(ctx, epoch);
    const auto t0 = Clock::now();
    model_is_best = false;
    const EpochResult result = model.fit_epoch(ctx);
    const double secs = seconds_since(t0);
    state.fit_seconds += secs;
    // Models without a loss leave it NaN and report no examples; anyone else must be finite.
    if ((result.examples > 0 || std::isinf(result.loss)) && !std::isfinite(result.loss))
      throw Error(fmt::format("epoch {}: non-finite training loss ({}); the run diverged", epoch,
                              result.loss));
    observer.on_epoch(epoch, result, sdk_internal::TrainContextAccess::logged(ctx), secs);
    converged = result.converged;
    // Asked once per epoch: in a data-parallel run the answer is agreed between the ranks.
    const bool out_of_time = ctx.out_of_time();
    const bool last_epoch = converged || epoch + 1 == options.max_epochs || out_of_time;
    bool pruned = false;
    if (!full && ((epoch + 1) % options.eval_every == 0 || last_epoch)) {
      validate_now(epoch);
      // Before last.ckpt is written: a checkpoint past a rung implies its decision is recorded.
      pruned = options.should_prune && !last_epoch && options.should_prune(epoch + 1, last_value);
    }
    state.next_epoch = epoch + 1;
    if (on_disk && writer && !converged &&
        (options.checkpoint_every_s <= 0 || seconds_since(last_saved) >= options.checkpoint_every_s)) {
      Archive last;
      save_model(model, last);
      write_state(last, state, ctx.rng());
      bind_checkpoint(last, options.trial_key, options.attempt);
      if (have_best) embed_best(last, best);
      last.save_file(ckpt("last.ckpt"));
      last_saved = Clock::now();
    }
    if (pruned) {
      out.stop_reason = "pruned";
      out.pruned = true;
      ++epoch;
      break;
    }
    if (converged) {
      out.stop_reason = "converged";
      ++epoch;
      break;
    }
    if (!full && options.patience > 0 && state.bad_evals >= options.patience) {
      out.stop_reason = "early_stopping";
      ++epoch;
      break;
    }
    if (out_of_time) {
      out.stop_reason = "time_budget";
      ++epoch;
      break;
    }
  }
  if (out.stop_reason.empty()) out.stop_reason = "max_epochs";
  out.epochs_run = epoch;

  if (full) {
    out.stop_reason = converged ? "converged" : "full_data";
    out.best_epoch = epoch - 1;
    if (on_disk && writer) {
      Archive a;
      save_model(model, a);
      bind_checkpoint(a, options.trial_key, options.attempt);
      a.save_file(ckpt("best.ckpt"));
    }
  } else {
    if (!have_best) throw Error("no validation was run, so there is no best checkpoint to test");
    if (on_disk && writer) {
      bind_checkpoint(best, options.trial_key, options.attempt);
      best.save_file(ckpt("best.ckpt"));
    }
    // A pruned run stopped before its end: its best checkpoint is kept, but not tested.
    if (!out.pruned) {
      if (!model_is_best) model.load(best);  // a 380 MB EASE model need not be copied back
      model.diagnostics();
      EvalResult test =
          evaluate(model, split.train_valid, split.eval_users, split.test_targets, eval);
      state.eval_seconds += test.seconds;
      observer.on_test(test);
      out.test = test.metrics;
      out.test_per_user = std::move(test.per_user);
    }
    out.best_epoch = state.best_epoch;
    out.valid = state.best_valid;
    out.diagnostics = state.best_diagnostics;
    out.valid_per_user = std::move(state.best_valid_per_user);
  }
  out.fit_seconds = state.fit_seconds;
  out.eval_seconds = state.eval_seconds;
  return out;
}

}  // namespace recrun::core
