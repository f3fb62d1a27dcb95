#include "sweep/progress.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace recrun::sweep {

using Clock = std::chrono::steady_clock;

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<std::int64_t>(std::llround(s));
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool live, int slots, std::size_t total,
                                 std::string monitor)
    : out_(out), live_(live), slots_(static_cast<std::size_t>(slots)), total_(total),
      monitor_(std::move(monitor)), begin_(Clock::now()) {}

ProgressDisplay::~ProgressDisplay() { close(); }

int ProgressDisplay::width() const {
  winsize ws{};
  if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 120;
}

void ProgressDisplay::plan(const std::map<std::string, std::size_t>& trials_per_model) {
  for (const auto& [model, n] : trials_per_model) models_[model].planned = n;
}

void ProgressDisplay::started(int slot, const std::string& key, const std::string& title,
                              bool resuming, const std::string& model) {
  Slot& s = slots_.at(static_cast<std::size_t>(slot));
  s = Slot{};
  s.model = model;
  s.busy = true;
  s.key = key;
  s.title = title;
  s.start = Clock::now();
  s.phase = resuming ? "resuming" : "loading";
  ++started_;
  if (!live_)
    log(fmt::format("[start {}/{}] {} {}{}", started_, total_, key, title,
                    resuming ? " (resuming from its last checkpoint)" : ""));
  dirty_ = true;
}

void ProgressDisplay::event(int slot, const trial::ProgressEvent& e) {
  Slot& s = slots_.at(static_cast<std::size_t>(slot));
  switch (e.kind) {
    case trial::ProgressKind::start:
      s.max_epochs = e.max_epochs;
      s.phase = "training";
      break;
    case trial::ProgressKind::resumed:
      s.epoch = e.epoch;
      break;
    case trial::ProgressKind::epoch:
      s.epoch = e.epoch;
      s.loss = e.loss;
      s.epoch_seconds_sum += e.seconds;
      ++s.epochs_timed;
      s.phase = "training";
      break;
    case trial::ProgressKind::validation:
      if (e.improved || std::isnan(s.best)) s.best = e.value;
      if (!live_)
        log(fmt::format("         {} epoch {:>3}  {}valid {} {:.4f}{}", s.key, e.epoch,
                        std::isfinite(s.loss) ? fmt::format("loss {:.4f}  ", s.loss) : "",
                        monitor_, e.value, e.improved ? " *" : ""));
      break;
    case trial::ProgressKind::converged:
      s.converged = true;
      s.phase = "fitted";
      break;
    case trial::ProgressKind::test:
      s.phase = "testing";
      break;
  }
  dirty_ = true;
}

void ProgressDisplay::ended(int slot, const std::string& status, const std::string& detail,
                            double seconds) {
  Slot& s = slots_.at(static_cast<std::size_t>(slot));
  ModelTimes& m = models_[s.model];
  if (status == "finished" || status == "pruned") {  // pruned: stopped at a rung, final
    ++done_;
    finished_seconds_sum_ += seconds;
    ++m.finished;
    m.finished_seconds += seconds;
  } else if (status == "failed") {
    ++failed_;
  }
  if (status != "interrupted") ++m.ended;
  const std::string line = fmt::format("[{}/{}] {:<8} {} {}  {}  ({})", done_ + failed_, total_,
                                       status, s.key, s.title, detail, format_duration(seconds));
  s.busy = false;
  log(line);
}

void ProgressDisplay::log(const std::string& line) {
  if (live_) erase_block();
  fmt::print(out_, "{}\n", line);
  if (live_) draw_block();
  std::fflush(out_);
}

void ProgressDisplay::history(const std::string& model, const std::vector<double>& seconds) {
  ModelTimes& m = models_[model];
  for (const double s : seconds)
    if (std::isfinite(s) && s > 0) {
      ++m.earlier;
      m.earlier_seconds += s;
    }
}

std::optional<double> ProgressDisplay::ModelTimes::mean() const {
  if (finished > 0) return finished_seconds / static_cast<double>(finished);
  if (earlier > 0) return earlier_seconds / static_cast<double>(earlier);
  return std::nullopt;
}

std::optional<double> ProgressDisplay::epoch_bound(const Slot& s) {
  if (s.converged || s.epochs_timed == 0 || s.max_epochs <= s.epoch + 1) return std::nullopt;
  return s.epoch_seconds_sum / static_cast<double>(s.epochs_timed) *
         static_cast<double>(s.max_epochs - s.epoch - 1);
}

std::optional<double> ProgressDisplay::remaining(const Slot& s, Clock::time_point now) const {
  if (const auto bound = epoch_bound(s)) return bound;
  const auto it = models_.find(s.model);
  if (it == models_.end()) return std::nullopt;
  const auto mean = it->second.mean();
  if (!mean) return std::nullopt;
  return std::max(0.0, *mean - std::chrono::duration<double>(now - s.start).count());
}

std::string ProgressDisplay::eta() const {
  // Work left, per model: its trials neither ended nor running times the mean wall time of its
  // finished ones (this sweep's, else those results.db holds from before: a 1-second EASE fit
  // says nothing about a BERT4Rec trial), plus what each running trial has left (its worker
  // line's bound); spread over the workers, and never less than the longest running trial's
  // rest, so that the header agrees with the worker lines.
  if (models_.empty()) return "?";
  const auto now = Clock::now();
  std::map<std::string, std::size_t> running;
  double work = 0, longest = 0;
  std::vector<std::string> unknown;
  for (const auto& s : slots_) {
    if (!s.busy) continue;
    ++running[s.model];
    const auto rest = remaining(s, now);
    if (!rest) {
      unknown.push_back(s.model.empty() ? std::string("trials") : s.model);
      continue;
    }
    work += *rest;
    longest = std::max(longest, *rest);
  }
  for (const auto& [model, m] : models_) {
    const std::size_t busy = running.count(model) ? running.at(model) : 0;
    const std::size_t left = m.planned > m.ended + busy ? m.planned - m.ended - busy : 0;
    if (left == 0) continue;
    const auto mean = m.mean();
    if (!mean) {
      unknown.push_back(model.empty() ? std::string("trials") : model);
      continue;
    }
    work += *mean * static_cast<double>(left);
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
    return fmt::format("? (no {} trial finished yet)", fmt::join(unknown, ", "));
  }
  return format_duration(
      std::max(longest, work / static_cast<double>(std::max<std::size_t>(1, slots_.size()))));
}

std::string ProgressDisplay::header_line() const {
  return fmt::format("sweep: {}/{} done, {} failed, elapsed {}, ETA {}", done_, total_, failed_,
                     format_duration(std::chrono::duration<double>(Clock::now() - begin_).count()),
                     eta());
}

std::string ProgressDisplay::slot_line(int index, const Slot& s) const {
  if (!s.busy) return fmt::format("  w{} idle", index + 1);
  const double elapsed = std::chrono::duration<double>(Clock::now() - s.start).count();
  std::string progress = s.phase;
  if (s.converged) {
    progress = s.phase;  // closed form: one fit, no epochs to count
  } else if (s.epoch >= 0) {
    progress = s.max_epochs > 0 ? fmt::format("ep {}/{}", s.epoch + 1, s.max_epochs)
                                : fmt::format("ep {}", s.epoch + 1);
    if (std::isfinite(s.loss)) progress += fmt::format("  loss {:.4f}", s.loss);
  }
  if (std::isfinite(s.best)) progress += fmt::format("  best {} {:.4f}", monitor_, s.best);
  // An upper bound: early stopping may end the trial sooner.
  std::string eta;
  if (const auto bound = epoch_bound(s)) eta = fmt::format("  ETA <={}", format_duration(*bound));
  return fmt::format("  w{} {} {}  {}  {}{}", index + 1, s.key.substr(0, 8), s.title, progress,
                     format_duration(elapsed), eta);
}

void ProgressDisplay::erase_block() {
  if (drawn_lines_ == 0) return;
  // Up to the block's first line, then clear to the end of the screen.
  fmt::print(out_, "\x1b[{}F\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void ProgressDisplay::draw_block() {
  const auto w = static_cast<std::size_t>(width() - 1);
  std::vector<std::string> lines{header_line()};
  for (std::size_t i = 0; i < slots_.size(); ++i)
    lines.push_back(slot_line(static_cast<int>(i), slots_[i]));
  for (auto& l : lines) {
    if (l.size() > w) l = l.substr(0, w);
    fmt::print(out_, "{}\n", l);
  }
  drawn_lines_ = static_cast<int>(lines.size());
  last_draw_ = Clock::now();
  dirty_ = false;
}

void ProgressDisplay::tick() {
  if (!live_) return;
  // Elapsed times change every second even without events.
  if (!dirty_ && Clock::now() - last_draw_ < std::chrono::seconds(1)) return;
  if (Clock::now() - last_draw_ < std::chrono::milliseconds(100)) return;
  erase_block();
  draw_block();
  std::fflush(out_);
}

void ProgressDisplay::close() {
  if (live_) {
    erase_block();
    std::fflush(out_);
    live_ = false;
  }
}

}  // namespace recrun::sweep
