#include "trial/recorder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <type_traits>

#include "tensorboard/event_reader.hpp"

namespace recrun::trial {

namespace fs = std::filesystem;

// The wire line is "@K epoch a b c": three numbers whose meaning depends on the kind.
std::string format_progress(const ProgressEvent& e) {
  double a = 0, b = 0, c = 0;
  switch (e.kind) {
    case ProgressKind::start: a = static_cast<double>(e.max_epochs); break;
    case ProgressKind::epoch:
      a = e.loss, b = e.seconds, c = static_cast<double>(e.examples);
      break;
    case ProgressKind::validation: a = e.value, b = e.seconds, c = e.improved ? 1.0 : 0.0; break;
    case ProgressKind::test: a = e.value, b = e.seconds; break;
    case ProgressKind::resumed:
    case ProgressKind::converged: break;
  }
  return fmt::format("@{} {} {:.9g} {:.9g} {:.9g}", static_cast<char>(e.kind), e.epoch, a, b, c);
}

std::optional<ProgressEvent> parse_progress(std::string_view line) {
  if (line.size() < 3 || line[0] != '@') return std::nullopt;
  ProgressEvent e;
  if (std::string_view("SRECVT").find(line[1]) == std::string_view::npos) return std::nullopt;
  e.kind = static_cast<ProgressKind>(line[1]);
  std::string_view rest = line.substr(2);
  const auto next = [&](auto& out) -> bool {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) return false;
    const auto space = rest.find(' ');
    const std::string_view tok = rest.substr(0, space);
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space);
    if (tok == "nan") {
      if constexpr (std::is_floating_point_v<std::remove_reference_t<decltype(out)>>) {
        out = std::nan("");
        return true;
      }
      return false;
    }
    const auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), out);
    return ec == std::errc{} && p == tok.data() + tok.size();
  };
  double a = 0, b = 0, c = 0;
  if (!next(e.epoch) || !next(a) || !next(b) || !next(c)) return std::nullopt;
  switch (e.kind) {
    case ProgressKind::start: e.max_epochs = static_cast<std::int64_t>(a); break;
    case ProgressKind::epoch:
      e.loss = a, e.seconds = b, e.examples = static_cast<std::int64_t>(c);
      break;
    case ProgressKind::validation: e.value = a, e.seconds = b, e.improved = c > 0.5; break;
    case ProgressKind::test: e.value = a, e.seconds = b; break;
    case ProgressKind::resumed:
    case ProgressKind::converged: break;
  }
  return e;
}

std::map<std::string, tensorboard::HParamValue> hparams_of(const Params& params, const std::string& model,
                                                  const std::string& group, std::int64_t seed) {
  std::map<std::string, tensorboard::HParamValue> out;
  for (const auto& [k, v] : params.values()) {
    if (const auto* b = std::get_if<bool>(&v)) {
      out[k] = *b;
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out[k] = static_cast<double>(*i);
    } else if (const auto* d = std::get_if<double>(&v)) {
      out[k] = *d;
    } else {
      out[k] = to_string(v);
    }
  }
  out["model"] = model;
  out["group"] = group;
  out["seed"] = static_cast<double>(seed);
  return out;
}

std::vector<results::Metric> metrics_of(const std::map<std::string, double>& values,
                                        std::string_view prefix) {
  std::vector<results::Metric> out;
  for (const auto& [k, v] : values) out.push_back({fmt::format("{}{}", prefix, k), v});
  return out;
}

Recorder::Recorder(RecorderOptions options) : options_(std::move(options)) {}

Recorder::~Recorder() = default;

fs::path Recorder::event_file() const { return writer_ ? writer_->path() : fs::path{}; }

void Recorder::begin() {
  if (!options_.tensorboard_dir.empty()) {
    writer_ = std::make_unique<tensorboard::EventWriter>(options_.tensorboard_dir);
    if (!options_.hparams.empty())
      tensorboard::write_session_start(*writer_, options_.hparams, options_.hparams_group);
    writer_->flush();
  }
  if (options_.progress)
    options_.progress(format_progress(
        {.kind = ProgressKind::start, .epoch = -1, .max_epochs = options_.max_epochs}));
}

void Recorder::scalar(const std::string& tag, double value, std::int64_t step) {
  if (writer_ && std::isfinite(value)) writer_->add_scalar(tag, value, step);
}

namespace {

bool is_event_file(const fs::directory_entry& entry) {
  std::error_code ec;
  return entry.is_regular_file(ec) &&
         entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
}

// The event files an earlier attempt left in the run directory (not `own`), oldest name first.
std::vector<fs::path> earlier_event_files(const fs::path& dir, const fs::path& own) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (is_event_file(entry) && entry.path() != own) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Curve points a resumed run keeps from an earlier attempt: its scalars up to the checkpoint.
// The HParams session (start and end) and the test metrics belong to the attempt that ends the
// run, and it writes them itself.
bool keep_on_resume(const tensorboard::Event& e, std::int64_t epoch) {
  if (!e.has_summary || e.values.empty() || e.step > epoch) return false;
  for (const auto& v : e.values)
    if (v.tag.rfind("_hparams_/", 0) == 0 || v.tag.rfind("test/", 0) == 0 ||
        v.tag.rfind("best/", 0) == 0)
      return false;
  return true;
}

}  // namespace

// The first event of an attempt decides what happens to curves an earlier attempt stored: a
// resumed run keeps them up to its checkpoint (on_resume), a fresh one starts them over. Event
// files follow the store: a fresh attempt removes the earlier attempts' files (TensorBoard would
// draw both curves), a resumed one folds the points they hold up to its checkpoint into its own
// file, so that the run directory holds one file and every point once.
void Recorder::first_event() {
  if (started_) return;
  started_ = true;
  if (resumed_) return;
  if (options_.store) options_.store->truncate_epochs(options_.trial_key, -1);
  if (writer_) {
    std::error_code ec;
    for (const auto& old : earlier_event_files(options_.tensorboard_dir, writer_->path()))
      fs::remove(old, ec);
  }
}

void Recorder::adopt_earlier_events(std::int64_t epoch) {
  const auto earlier = earlier_event_files(options_.tensorboard_dir, writer_->path());
  if (earlier.empty()) return;
  // Each (tag, step) once: an attempt killed while folding may have left two files holding it.
  std::set<std::pair<std::string, std::int64_t>> seen;
  std::vector<fs::path> folded;
  for (const auto& file : earlier) {
    std::vector<std::string> records;
    try {
      // A writer killed with -9 may have left half a record at the end.
      records = tensorboard::read_records(file, {.allow_truncated_tail = true});
    } catch (const std::exception& e) {
      fmt::print(stderr, "warning: {}; the file is left as it is\n", e.what());
      continue;
    }
    folded.push_back(file);
    for (const auto& record : records) {
      tensorboard::Event e;
      try {
        e = tensorboard::decode_event(record);
      } catch (const std::exception&) {
        continue;
      }
      if (!keep_on_resume(e, epoch)) continue;
      bool fresh = false;
      for (const auto& v : e.values) fresh |= seen.emplace(v.tag, e.step).second;
      if (fresh) writer_->write_event(record);
    }
  }
  // Only once the points are safely in this attempt's file do the old files go.
  writer_->flush(/*sync_to_disk=*/true);
  std::error_code ec;
  for (const auto& file : folded) fs::remove(file, ec);
}

void Recorder::on_resume(std::int64_t epoch) {
  resumed_ = true;
  started_ = true;
  if (options_.store) options_.store->truncate_epochs(options_.trial_key, epoch);
  if (writer_) adopt_earlier_events(epoch);
  if (options_.progress) options_.progress(format_progress({.kind = ProgressKind::resumed, .epoch = epoch}));
  if (options_.console) fmt::print("resumed after epoch {} from the last checkpoint\n", epoch);
}

void Recorder::on_epoch(std::int64_t epoch, const EpochResult& r,
                        const std::map<std::string, double>& logged, double seconds) {
  first_event();
  const double throughput = seconds > 0 && r.examples > 0 ? r.examples / seconds : 0.0;
  std::vector<results::Metric> metrics;
  if (std::isfinite(r.loss)) {
    metrics.push_back({"loss", r.loss});
    scalar("train/loss", r.loss, epoch);
  }
  if (throughput > 0) {
    metrics.push_back({"throughput", throughput});
    scalar("train/throughput", throughput, epoch);
  }
  metrics.push_back({"epoch_seconds", seconds});
  scalar("train/epoch_seconds", seconds, epoch);
  for (const auto& [k, v] : logged) {
    metrics.push_back({k, v});
    scalar("train/" + k, v, epoch);
  }
  if (writer_) writer_->flush();
  if (options_.store)
    options_.store->log_epoch(options_.trial_key, epoch, results::SplitName::train, metrics);
  if (options_.progress)
    options_.progress(format_progress({.kind = ProgressKind::epoch,
                                      .epoch = epoch,
                                      .loss = r.loss,
                                      .seconds = seconds,
                                      .examples = r.examples}));
  if (options_.progress && r.converged) options_.progress(format_progress({.kind = ProgressKind::converged, .epoch = epoch}));
  if (options_.console && !r.converged)
    fmt::print("epoch {:>4}  loss {:.5f}  {:.1f}s  {:.0f} ex/s\n", epoch, r.loss, seconds,
               throughput);
}

void Recorder::on_validation(std::int64_t epoch, const core::EvalResult& r,
                             const std::map<std::string, double>& diagnostics, bool improved) {
  first_event();
  if (improved) best_epoch_ = epoch;
  std::vector<results::Metric> metrics = metrics_of(r.metrics);
  for (const auto& [k, v] : r.metrics) scalar("valid/" + k, v, epoch);
  for (const auto& [k, v] : diagnostics) {
    metrics.push_back({"val_" + k, v});
    scalar("val_" + k, v, epoch);
  }
  if (writer_) writer_->flush();
  if (options_.store)
    options_.store->log_epoch(options_.trial_key, epoch, results::SplitName::valid, metrics);
  const auto it = r.metrics.find(options_.monitor);
  const double value = it == r.metrics.end() ? std::nan("") : it->second;
  if (options_.progress)
    options_.progress(format_progress({.kind = ProgressKind::validation,
                                      .epoch = epoch,
                                      .value = value,
                                      .seconds = r.seconds,
                                      .improved = improved}));
  if (options_.console) {
    fmt::print("valid {:>4}  {} {:.4f}{}", epoch, options_.monitor, value, improved ? "  *" : "");
    for (const auto& [k, v] : diagnostics) fmt::print("  {} {:.3f}", k, v);
    fmt::print("\n");
  }
}

void Recorder::on_test(const core::EvalResult& r) {
  const std::int64_t step = std::max<std::int64_t>(best_epoch_, 0);
  for (const auto& [k, v] : r.metrics) scalar("test/" + k, v, step);
  if (writer_) writer_->flush();
  const auto it = r.metrics.find(options_.monitor);
  if (options_.progress)
    options_.progress(
        format_progress({.kind = ProgressKind::test,
                         .epoch = step,
                         .value = it == r.metrics.end() ? std::nan("") : it->second,
                         .seconds = r.seconds}));
}

void Recorder::end(const core::RunOutcome* outcome) {
  if (!writer_) return;
  // The HParams table shows the last value of each metric tag in a run. valid/<metric> ends at
  // the last evaluated epoch, which is not the one whose checkpoint was kept, so the values of
  // the best epoch (what results.db records) get their own tags, written once.
  if (outcome && outcome->best_epoch >= 0) {
    for (const auto& [k, v] : outcome->valid) scalar("best/valid/" + k, v, outcome->best_epoch);
    for (const auto& [k, v] : outcome->diagnostics) scalar("best/val_" + k, v, outcome->best_epoch);
  }
  tensorboard::write_session_end(*writer_,
                        outcome ? tensorboard::SessionStatus::success : tensorboard::SessionStatus::failure);
  // Survives a machine crash too: the run is over, and a sweep may be killed any moment now.
  writer_->flush(/*sync_to_disk=*/true);
}

void write_experiment_config(const fs::path& dir,
                             std::span<const std::map<std::string, tensorboard::HParamValue>> sessions,
                             std::span<const std::string> metric_names) {
  // Column domains from the values the trials take; numbers get the observed range.
  std::map<std::string, std::vector<tensorboard::HParamValue>> values;
  for (const auto& s : sessions)
    for (const auto& [k, v] : s) {
      auto& list = values[k];
      if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
    }
  std::vector<tensorboard::HParamSpec> hparams;
  for (auto& [name, list] : values) {
    tensorboard::HParamSpec spec;
    spec.name = name;
    const auto& first = list.front();
    if (std::holds_alternative<double>(first)) {
      spec.type = tensorboard::HParamType::float64;
      double lo = std::get<double>(first), hi = lo;
      bool all_numbers = true;
      for (const auto& v : list) {
        if (const auto* d = std::get_if<double>(&v)) {
          lo = std::min(lo, *d);
          hi = std::max(hi, *d);
        } else {
          all_numbers = false;
        }
      }
      if (all_numbers && list.size() > 1 && list.size() <= 20) {
        std::sort(list.begin(), list.end());
        spec.domain_discrete = list;
      } else if (all_numbers) {
        spec.domain_interval = std::make_pair(lo, hi);
      } else {
        spec.type = tensorboard::HParamType::unset;
      }
    } else if (std::holds_alternative<bool>(first)) {
      spec.type = tensorboard::HParamType::boolean;
      spec.domain_discrete = {false, true};
    } else {
      spec.type = tensorboard::HParamType::string;
      std::sort(list.begin(), list.end());
      spec.domain_discrete = list;
    }
    hparams.push_back(std::move(spec));
  }
  // Test metrics: TensorBoard's DatasetType has no test value (unknown, training, validation),
  // so they are typed unknown and named as test. Validation columns read the best epoch's
  // values (best/valid/<metric>, written when the run ends), as results.db records them.
  std::vector<tensorboard::MetricSpec> metrics;
  for (const auto& m : metric_names) {
    metrics.push_back({.tag = "test/" + m,
                       .display_name = "test " + m,
                       .description = "test " + m + " of the checkpoint of the best validation epoch",
                       .dataset_type = tensorboard::DatasetType::unknown});
  }
  for (const auto& m : metric_names) {
    metrics.push_back({.tag = "best/valid/" + m,
                       .display_name = "valid " + m,
                       .description = "validation " + m + " at the best epoch (the kept checkpoint)",
                       .dataset_type = tensorboard::DatasetType::validation});
  }
  // Replace rather than add: TensorBoard takes the first config it finds, and the grid may
  // have changed since an earlier sweep wrote one. Only files directly in the experiment
  // directory are configs; runs live in subdirectories.
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec) &&
          entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
        fs::remove(entry.path(), ec);
    }
  }
  tensorboard::EventWriter writer(dir);
  tensorboard::write_hparams_config(writer, hparams, metrics);
  writer.flush(true);
}

}  // namespace recrun::trial
