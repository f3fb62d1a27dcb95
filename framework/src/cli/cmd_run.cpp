#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "sweep/trials.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "data/dataset_loader.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"
#include "results/results_store.hpp"
#include "trial/key.hpp"
#include "trial/layout.hpp"
#include "trial/runner.hpp"

namespace recrun::cli {
namespace {

std::vector<std::int64_t> parse_ks(const std::string& text) {
  std::vector<std::int64_t> ks;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      ks.push_back(std::stoll(part));
    } catch (const std::exception&) {
      throw ParamError(fmt::format("--ks: '{}' is not an integer", part));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ks;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    out.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int cmd_run(const Args& args) {
  HostOptions host;
  std::string model_name, data_dir, source, split_mode, ks_text, metrics_text, monitor, ckpt_dir;
  double checkpoint_every = 30;
  std::string results_dir;
  std::vector<std::string> sets;
  std::int64_t min_interactions = 3, eval_batch = 512;
  std::uint64_t seed = 42;
  std::string seed_text;
  auto desc = host_options(host);
  desc.add_options()("model,m", po::value(&model_name)->required(), "model plugin name")(
      "data,d", po::value(&data_dir)->required(), "data directory")(
      "source", po::value(&source)->default_value("auto"), "data source plugin (auto-detected)")(
      "set,s", po::value(&sets)->composing(), "parameter key=value (repeatable)")(
      "seed", po::value(&seed_text)->default_value("42"), "random seed (an integer >= 0)")(
      "split", po::value(&split_mode)->default_value("leave_one_out"), "leave_one_out or full")(
      "min-interactions", po::value(&min_interactions)->default_value(3),
      "drop users with fewer interactions")(
      "ks", po::value(&ks_text)->default_value("10"), "metric cut-offs, comma-separated")(
      "metrics", po::value(&metrics_text)->default_value("Hit,NDCG,MRR,Recall"),
      "metric families")("monitor", po::value(&monitor)->default_value("NDCG@10"),
                         "validation metric that picks the best epoch")(
      "eval-batch-size", po::value(&eval_batch)->default_value(512), "users per scoring call")(
      "checkpoint-every", po::value(&checkpoint_every)->default_value(30.0),
      "seconds between resumable checkpoints (last.ckpt); 0 = after every epoch")(
      "checkpoint-dir", po::value(&ckpt_dir),
      "write best.ckpt/last.ckpt here and resume from last.ckpt "
      "(default: RESULTS/checkpoints/runs/<trial>/, started afresh)")(
      "results", po::value(&results_dir)->default_value("results"),
      "results directory: the run is recorded in results.db, its curves under tensorboard/runs/");
  const auto vm = parse(desc, args, "recrun run --model NAME --data DIR [--set key=value ...]");
  if (vm.count("help")) return 0;

  Registry registry;
  load_registry(host, registry, false);
  const ModelInfo& info = registry.model(model_name);
  const std::string component = fmt::format("model '{}'", model_name);
  const auto schema = concat(info.params, core::trainer_params());
  const auto raw = parse_sets(sets, schema, component);
  for (const auto& [key, value] : raw)  // fusion=gat is refused here, not by a failed run
    sweep::check_component_param(key, value, registry, component);
  const Params params = resolve_params(schema, raw, component);

  trial::Protocol protocol;
  protocol.split = split_mode;
  protocol.min_interactions = min_interactions;
  protocol.ks = parse_ks(ks_text);
  protocol.metrics = split_list(metrics_text);
  protocol.monitor = monitor;
  protocol.eval_batch_size = eval_batch;
  // Every option is checked before the run claims its row: a bad flag never reaches the store.
  {
    core::EvalOptions eval;
    eval.ks = protocol.ks;
    eval.metrics = protocol.metrics;
    eval.batch_size = protocol.eval_batch_size;
    core::validate(eval);
    if (!(checkpoint_every >= 0) || !std::isfinite(checkpoint_every))
      throw ParamError(fmt::format(
          "--checkpoint-every {}: must be a finite number of seconds >= 0 (0 = after every epoch)",
          checkpoint_every));
    if (seed_text.find_first_not_of("0123456789") != std::string::npos || seed_text.empty() ||
        seed_text.size() > 18)
      throw ParamError(fmt::format("--seed '{}': must be an integer in [0, 10^18)", seed_text));
    seed = std::stoull(seed_text);
    if (split_mode != "leave_one_out" && split_mode != "full")
      throw ParamError(fmt::format("--split '{}': must be leave_one_out or full", split_mode));
    if (min_interactions < (split_mode == "full" ? 1 : 3))
      throw ParamError(fmt::format("--min-interactions {}: must be >= {} for --split {}",
                                   min_interactions, split_mode == "full" ? 1 : 3, split_mode));
    bool monitored = false;
    for (const auto& m : protocol.metrics)
      for (const auto k : protocol.ks) monitored |= monitor == fmt::format("{}@{}", m, k);
    if (!monitored)
      throw ParamError(fmt::format("--monitor '{}': must be one of the computed metrics "
                                   "(--metrics x --ks, e.g. NDCG@{})",
                                   monitor, protocol.ks.front()));
  }

  // The resolved configuration, before anything runs: every parameter and where it came from.
  {
    const std::string origin = registry.origin(ComponentKind::model, model_name);
    fmt::print("run: model {}{}, seed {}, data {}\n", model_name,
               origin.empty() ? "" : fmt::format(" ({})", origin), seed, data_dir);
    for (const auto& spec : schema)
      fmt::print("  {:<22} = {:<12} ({})\n", spec.name, to_string(params.at(spec.name)),
                 raw.count(spec.name) ? "--set" : "default");
    fmt::print("  protocol: split {}, min_interactions {}, metrics {} @ {}, monitor {}, "
               "eval_batch_size {}\n",
               protocol.split, protocol.min_interactions, fmt::join(protocol.metrics, ","),
               fmt::join(protocol.ks, ","), protocol.monitor, protocol.eval_batch_size);
  }

  const auto t0 = std::chrono::steady_clock::now();
  const std::string source_name = data::resolve_source(registry, data_dir, source);
  const Dataset dataset = data::load_dataset(registry, data_dir, source_name);
  const core::Split split = core::make_split(dataset, {split_mode, min_interactions});
  if (split_mode != "full" && split.eval_users.empty())
    throw DataError(fmt::format(
        "{}: no user has at least {} interactions (--min-interactions), so there is nothing to "
        "evaluate; lower --min-interactions",
        data_dir, min_interactions));
  fmt::print("data: {} users, {} items, {} interactions ({} users evaluated, {} dropped) in {:.2f}s\n",
             dataset.num_users(), dataset.num_items(), dataset.num_interactions(),
             split.eval_users.size(), split.dropped_users,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // The run is a trial like any other: same key, same row, same event files as in a sweep.
  const trial::ResultsLayout layout{results_dir};
  const auto seed_i = static_cast<std::int64_t>(seed);
  const std::string key =
      trial::make_key(model_name, params, dataset.fingerprint, protocol, seed_i);
  results::TrialSpec spec;
  spec.trial_key = key;
  spec.model = model_name;
  spec.data_path = std::filesystem::absolute(data_dir).lexically_normal().string();
  spec.data_fingerprint = dataset.fingerprint;
  spec.protocol_json = protocol.to_json(source_name);
  spec.seed = seed_i;
  spec.params = trial::store_params(params, schema);
  results::ResultsStore store(layout.db());
  auto claim = store.begin_trial(spec, /*retry_failed=*/true);
  bool rerun = false;
  if (claim == results::ClaimResult::already_finished) {
    // Asking for a run again means running it again; the row is replaced, not duplicated.
    store.reset_trial(key);
    claim = store.claim(key);
    rerun = true;
  }
  if (claim != results::ClaimResult::claimed)
    throw Error(fmt::format("run {} is being run by another process right now ({}); wait for it "
                            "or pick another seed",
                            key, results::to_string(claim)));

  trial::Job job;
  job.checkpoint_every_s = checkpoint_every;
  job.key = key;
  job.group = "";
  job.model = model_name;
  job.params = params;
  job.seed = seed_i;
  job.protocol = protocol;
  job.threads = host.threads;
  job.console = true;
  job.tensorboard_dir = layout.tensorboard(trial::kSingleRunExperiment, key);
  if (ckpt_dir.empty()) {
    job.checkpoint_dir = layout.checkpoints(trial::kSingleRunExperiment, key);
    // A fresh run; resuming is what `recrun trial` and sweeps do.
    std::error_code ec;
    std::filesystem::remove_all(job.checkpoint_dir, ec);
  } else {
    job.checkpoint_dir = ckpt_dir;
  }
  const trial::JobResult result = trial::execute(registry, dataset, split, job, store);
  if (!result.finished)
    throw Error(fmt::format("run {} failed: {} (recorded in {})", key, result.error,
                            layout.db().string()));
  const core::RunOutcome& out = result.outcome;

  fmt::print("\n{} (best epoch {}, {} epochs, stop: {}, fit {:.2f}s, eval {:.2f}s)\n", model_name,
             out.best_epoch, out.epochs_run, out.stop_reason, out.fit_seconds, out.eval_seconds);
  if (!out.valid.empty()) {
    fmt::print("  {:<12} {:>10} {:>10}\n", "metric", "valid", "test");
    for (const auto& [k, v] : out.valid)
      fmt::print("  {:<12} {:>10.4f} {:>10.4f}\n", k, v, out.test.count(k) ? out.test.at(k) : 0.0);
  }
  fmt::print("recorded as run {}{} in {}; events in {}\n", key, rerun ? " (replacing the earlier one)" : "",
             layout.db().string(), job.tensorboard_dir.string());
  return 0;
}

}  // namespace recrun::cli
