#include "trial/members.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "core/trainer.hpp"
#include "sdk/shared_util.hpp"
#include "recrun/error.hpp"
#include "recrun/member_ref.hpp"
#include "recrun/text.hpp"
#include "trial/key.hpp"
#include "trial/param_input.hpp"

namespace recrun::trial {

namespace {

std::string metric_text(const results::RunRow& row, const std::string& name) {
  for (const auto& m : row.valid_metrics)
    if (m.name == name && std::isfinite(m.value)) return fmt::format("valid {} {:.4f}", name, m.value);
  return "no valid " + name;
}

std::string describe(const results::RunRow& row, const std::string& monitor) {
  return fmt::format("run {} ({}{}, {})", row.trial_key, row.model,
                     row.experiment.empty() ? std::string(", a single run")
                                            : fmt::format(", experiment {}/{}", row.experiment,
                                                          row.group_name),
                     metric_text(row, monitor));
}

// Quiet trainer for inline members: nothing is printed or recorded.
class SilentObserver final : public core::RunObserver {};

Params inline_params(const MemberRef& spec, const ModelInfo& info) {
  const auto schema = full_schema(info);
  const std::string component = fmt::format("model '{}'", spec.model);
  return resolve_params(schema, parse_settings(schema, spec.sets, component, ""), component);
}

bool has_model(const Registry& registry, const std::string& name) {
  for (const auto& m : registry.models())
    if (m.name == name) return true;
  return false;
}

// Guards the nesting of ensembles of ensembles (and a reference cycle, were one possible).
class DepthGuard {
 public:
  explicit DepthGuard(int& depth) : depth_(depth) {
    if (++depth_ > 4) {
      --depth_;
      throw Error("members nest more than 4 levels deep (an ensemble of ensembles of ...)");
    }
  }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

}  // namespace

std::unique_ptr<Model> load_finished_model(const Registry& registry, const results::RunRow& row,
                                           const Dataset& dataset, const HostServices* host) {
  const std::string& key = row.trial_key;
  if (row.status != results::RunStatus::finished)
    throw Error(fmt::format("run {} is {}, not finished{}", key, results::to_string(row.status),
                            row.error.empty() ? "" : fmt::format(" ({})", row.error)));
  if (row.checkpoint_path.empty())
    throw Error(fmt::format("run {} kept no checkpoint (it ran with checkpoints = none); run it "
                            "again with checkpoints = best",
                            key));
  std::error_code ec;
  const auto st = std::filesystem::status(row.checkpoint_path, ec);
  if (!std::filesystem::exists(st))
    throw Error(fmt::format("run {}: its checkpoint {} is missing; restore it, or train the run "
                            "again (recrun run ... --force)",
                            key, text::printable(row.checkpoint_path)));
  if (!std::filesystem::is_regular_file(st))
    throw Error(fmt::format("run {}: its checkpoint {} is {}, not a checkpoint file; move it "
                            "away and restore the run's best.ckpt, or train the run again "
                            "(recrun run ... --force)",
                            key, text::printable(row.checkpoint_path),
                            util::file_kind(st.type())));
  if (dataset.fingerprint != row.data_fingerprint)
    throw DataError(fmt::format(
        "run {} was trained on other data: data fingerprint {} then, {} now for {}", key,
        row.data_fingerprint, dataset.fingerprint, dataset.source_dir.string()));
  if (!has_model(registry, row.model))
    throw PluginError(fmt::format("run {}: its model plugin '{}' is not loaded (build it, or "
                                  "pass the directory that has it with --plugin-dir)",
                                  key, row.model));
  const ModelInfo& info = registry.model(row.model);
  const Params params = params_from_store(row.params, full_schema(info),
                                          fmt::format("run {} (model '{}')", key, row.model));
  auto model = info.make(params, ModelEnv{dataset, registry,
                                          static_cast<std::uint64_t>(row.seed), host});
  if (!model) throw PluginError(fmt::format("model '{}' returned no model", row.model));
  try {
    const Archive archive = Archive::load_file(row.checkpoint_path);
    core::check_checkpoint_binding(archive, key, row.attempts, row.checkpoint_path);
    model->load(archive);
  } catch (const std::exception& e) {
    throw Error(fmt::format("run {}: cannot restore its checkpoint: {}", key, e.what()));
  }
  return model;
}

results::RunRow resolve_run_ref(const results::ResultsStore& store, const std::string& ref,
                                const std::string& monitor) {
  // A staging key ("<key>~attempt-<n>") is an unfinished hidden attempt, never a member.
  const MemberRef parsed = parse_member_ref(ref);
  if (parsed.kind == MemberRef::Kind::train)
    throw ParamError(fmt::format("member '{}': an inline member is not a finished run", ref));
  if (parsed.kind == MemberRef::Kind::run) {
    auto row = store.find(parsed.key);
    if (!row)
      throw Error(fmt::format("no run with key '{}' in {}", parsed.key, store.path().string()));
    return *row;
  }
  const std::string& model = parsed.model;
  const std::string& experiment = parsed.experiment;
  const std::string& group = parsed.group;
  const auto rows = experiment.empty() ? store.runs() : store.runs(experiment);
  const results::RunRow* best = nullptr;
  double best_value = -std::numeric_limits<double>::infinity();
  for (const auto& r : rows) {
    if (r.model != model || r.status != results::RunStatus::finished) continue;
    if (!group.empty() && r.group_name != group) continue;
    for (const auto& m : r.valid_metrics) {
      if (m.name != monitor || !std::isfinite(m.value)) continue;
      if (!best || m.value > best_value) {
        best = &r;
        best_value = m.value;
      }
    }
  }
  if (!best)
    throw Error(fmt::format(
        "'{}': no finished {} run{}{} with a validation {} in {}", ref, model,
        experiment.empty() ? "" : fmt::format(" in experiment {}", experiment),
        group.empty() ? "" : fmt::format(" group {}", group), monitor, store.path().string()));
  return *best;
}

RunHost::RunHost(const Registry& registry, const Dataset& dataset, const core::Split* split,
                 Protocol protocol, const results::ResultsStore* store, int threads)
    : registry_(registry),
      dataset_(dataset),
      split_(split),
      protocol_(std::move(protocol)),
      store_(store),
      threads_(threads) {}

MemberModel RunHost::load_run(const std::string& ref) const {
  DepthGuard guard(depth_);
  if (!store_) throw Error(fmt::format("'{}': there is no results.db to load runs from", ref));
  const results::RunRow row = resolve_run_ref(*store_, ref, protocol_.monitor);
  // The same split of the same data, or the member has seen what the run is tested on.
  const Protocol theirs = Protocol::from_json(row.protocol_json);
  if (theirs.split != protocol_.split || theirs.min_interactions != protocol_.min_interactions)
    throw Error(fmt::format("{} was trained under another split (split {}, min_interactions {}; "
                            "this run has split {}, min_interactions {})",
                            describe(row, protocol_.monitor), core::to_string(theirs.split),
                            theirs.min_interactions, core::to_string(protocol_.split),
                            protocol_.min_interactions));
  if (row.data_fingerprint != dataset_.fingerprint)
    throw Error(fmt::format("{} was trained on other data (data fingerprint {}, this run's {})",
                            describe(row, protocol_.monitor), row.data_fingerprint,
                            dataset_.fingerprint));
  MemberModel member;
  member.key = row.trial_key;
  member.model = row.model;
  member.description = describe(row, protocol_.monitor);
  member.model_ptr = load_finished_model(registry_, row, dataset_, this);
  return member;
}

MemberModel RunHost::make_inline(const std::string& spec, std::uint64_t seed) const {
  DepthGuard guard(depth_);
  const MemberRef parsed = parse_member_ref("train:" + spec);
  if (!has_model(registry_, parsed.model))
    throw PluginError(fmt::format("'{}': no model plugin '{}' is loaded", spec, parsed.model));
  const ModelInfo& info = registry_.model(parsed.model);
  const Params params = inline_params(parsed, info);
  MemberModel member;
  member.model = parsed.model;
  member.description = fmt::format("inline {}", spec);
  member.model_ptr = info.make(params, ModelEnv{dataset_, registry_, seed, this});
  if (!member.model_ptr) throw PluginError(fmt::format("model '{}' returned no model", parsed.model));
  return member;
}

double RunHost::train_inline(const std::string& spec, Model& model, std::uint64_t seed) const {
  if (!split_)
    throw Error(fmt::format("inline member '{}' is not trained: this command only restores "
                            "trained members from a checkpoint",
                            spec));
  const MemberRef parsed = parse_member_ref("train:" + spec);
  const Params params = inline_params(parsed, registry_.model(parsed.model));
  core::TrainerOptions options;
  core::apply_trainer_params(params, options);
  options.seed = seed;
  options.threads = threads_;
  options.monitor = protocol_.monitor;
  options.eval.ks = protocol_.ks;
  options.eval.metrics = protocol_.metrics;
  options.eval.batch_size = protocol_.eval_batch_size;
  options.resume = false;
  SilentObserver observer;
  const core::RunOutcome out = core::train_and_evaluate(model, dataset_, *split_, options, observer);
  const auto it = out.valid.find(protocol_.monitor);
  return it == out.valid.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

}  // namespace recrun::trial
