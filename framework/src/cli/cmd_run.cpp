#include <fmt/format.h>

#include <chrono>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/dataset_loader.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/error.hpp"
#include "recrun/optim.hpp"

namespace recrun::cli {
namespace {

// Prints one line per epoch and per validation.
class ConsoleObserver final : public host::RunObserver {
 public:
  explicit ConsoleObserver(std::string monitor) : monitor_(std::move(monitor)) {}
  void on_epoch(std::int64_t epoch, const EpochResult& r, const std::map<std::string, double>&,
                double seconds) override {
    if (r.converged) return;
    fmt::print("epoch {:>4}  loss {:.5f}  {:.1f}s  {:.0f} ex/s\n", epoch, r.loss, seconds,
               seconds > 0 ? r.examples / seconds : 0.0);
  }
  void on_validation(std::int64_t epoch, const host::EvalResult& r,
                     const std::map<std::string, double>& diagnostics, bool improved) override {
    fmt::print("valid {:>4}  {} {:.4f}{}", epoch, monitor_, r.metrics.at(monitor_),
               improved ? "  *" : "");
    for (const auto& [k, v] : diagnostics) fmt::print("  {} {:.3f}", k, v);
    fmt::print("\n");
  }

 private:
  std::string monitor_;
};

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
  std::vector<std::string> sets;
  std::int64_t min_interactions = 3, eval_batch = 512;
  std::uint64_t seed = 42;
  auto desc = host_options(host);
  desc.add_options()("model,m", po::value(&model_name)->required(), "model plugin name")(
      "data,d", po::value(&data_dir)->required(), "data directory")(
      "source", po::value(&source)->default_value("auto"), "data source plugin (auto-detected)")(
      "set,s", po::value(&sets)->composing(), "parameter key=value (repeatable)")(
      "seed", po::value(&seed)->default_value(42), "random seed")(
      "split", po::value(&split_mode)->default_value("leave_one_out"), "leave_one_out or full")(
      "min-interactions", po::value(&min_interactions)->default_value(3),
      "drop users with fewer interactions")(
      "ks", po::value(&ks_text)->default_value("10"), "metric cut-offs, comma-separated")(
      "metrics", po::value(&metrics_text)->default_value("Hit,NDCG,MRR,Recall"),
      "metric families")("monitor", po::value(&monitor)->default_value("NDCG@10"),
                         "validation metric that picks the best epoch")(
      "eval-batch-size", po::value(&eval_batch)->default_value(512), "users per scoring call")(
      "checkpoint-dir", po::value(&ckpt_dir), "write best.ckpt/last.ckpt here");
  const auto vm = parse(desc, args, "recrun run --model NAME --data DIR [--set key=value ...]");
  if (vm.count("help")) return 0;

  Registry registry;
  load_registry(host, registry, false);
  const ModelInfo& info = registry.model(model_name);
  const std::string component = fmt::format("model '{}'", model_name);
  const auto schema = concat(info.params, host::trainer_params());
  const Params params = resolve_params(schema, parse_sets(sets, schema, component), component);

  host::TrainerOptions options;
  apply_trainer_params(params, options);
  options.seed = seed;
  options.threads = host.threads;
  options.monitor = monitor;
  options.eval.ks = parse_ks(ks_text);
  options.eval.metrics = split_list(metrics_text);
  options.eval.batch_size = eval_batch;
  options.checkpoint_dir = ckpt_dir;
  host::validate(options.eval);

  const auto t0 = std::chrono::steady_clock::now();
  const Dataset dataset = host::load_dataset(registry, data_dir, source);
  const host::Split split = host::make_split(dataset, {split_mode, min_interactions});
  fmt::print("data: {} users, {} items, {} interactions ({} users evaluated, {} dropped) in {:.2f}s\n",
             dataset.num_users(), dataset.num_items(), dataset.num_interactions(),
             split.eval_users.size(), split.dropped_users,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  host::seed_and_threads(seed, host.threads);
  auto model = info.make(params, ModelEnv{dataset, registry, seed});
  ConsoleObserver console(monitor);
  const host::RunOutcome out = host::train_and_evaluate(*model, dataset, split, options, console);

  fmt::print("\n{} (best epoch {}, {} epochs, stop: {}, fit {:.2f}s, eval {:.2f}s)\n", model_name,
             out.best_epoch, out.epochs_run, out.stop_reason, out.fit_seconds, out.eval_seconds);
  if (!out.valid.empty()) {
    fmt::print("  {:<12} {:>10} {:>10}\n", "metric", "valid", "test");
    for (const auto& [k, v] : out.valid)
      fmt::print("  {:<12} {:>10.4f} {:>10.4f}\n", k, v, out.test.count(k) ? out.test.at(k) : 0.0);
  }
  return 0;
}

}  // namespace recrun::cli
