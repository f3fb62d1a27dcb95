// The evaluation protocol: how the data is split and what is measured. One typed value, with
// one validator, used by run, sweep, trial, predict and results. Everything in it but
// eval_batch_size changes results, so its canonical text is part of every trial key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/error.hpp"

namespace recrun::core {

/// How users' histories are split.
enum class SplitMode {
  /// Last item = test target, second-to-last = validation target, the rest trains.
  leave_one_out,
  /// Everything trains; nothing is evaluated (final models).
  full,
};

/// "leave_one_out" or "full".
std::string_view to_string(SplitMode mode);
/// The mode a name stands for, or nothing.
std::optional<SplitMode> parse_split_mode(std::string_view text);

/// A protocol value that is wrong. field() is the protocol's key ("split", "min_interactions",
/// "metrics", "ks", "monitor", "eval_batch_size"), so that each caller can say where the value
/// came from (a TOML key with its line, a command-line flag); what() says what is wrong.
class ProtocolError : public ParamError {
 public:
  ProtocolError(std::string field, const std::string& what)
      : ParamError(what), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

/// What the protocol is used for: a sweep must evaluate (so `full` is refused there).
enum class ProtocolUse { run, sweep };

/// The evaluation protocol: every trial of an experiment shares one.
struct Protocol {
  SplitMode split = SplitMode::leave_one_out;
  /// Users with fewer interactions are dropped.
  std::int64_t min_interactions = 3;
  /// Metric families.
  std::vector<std::string> metrics{"Hit", "NDCG", "MRR", "Recall"};
  /// Cut-offs.
  std::vector<std::int64_t> ks{10};
  /// Validation metric that picks the best epoch.
  std::string monitor = "NDCG@10";
  /// Users per scoring call (results do not depend on it, so it is not part of trial keys).
  std::int64_t eval_batch_size = 512;

  /// The one validator: split and min_interactions, the metrics and cut-offs, the monitor
  /// (one of metrics x ks, with a did-you-mean) and the batch size. Throws ProtocolError naming
  /// the field; messages say "protocol.<field>" and each caller puts its place in front.
  void validate(ProtocolUse use) const;

  /// Canonical text of everything that changes results; part of every trial key.
  std::string canonical() const;
  /// JSON object for the results store (protocol column): the protocol, eval_batch_size and,
  /// when given, the data source that reads the data (so a worker can load it the same way).
  std::string to_json(std::string_view data_source = {}) const;
  /// Inverse of to_json(); throws Error on malformed text or a stored protocol that does not
  /// validate.
  static Protocol from_json(std::string_view json);
  /// The data source to_json() stored; "auto" when none.
  static std::string data_source_from_json(std::string_view json);
};

/// The split's own rule (make_split checks it too): min_interactions >= 3 for leave_one_out,
/// >= 1 for full. Throws ProtocolError("min_interactions").
void check_min_interactions(SplitMode mode, std::int64_t min_interactions);

/// The monitor is one of metrics x ks. Throws ProtocolError("monitor") with a did-you-mean.
void check_monitor(const std::vector<std::string>& metrics, const std::vector<std::int64_t>& ks,
                   const std::string& monitor);

}  // namespace recrun::core

namespace recrun::trial {
using core::Protocol;
}  // namespace recrun::trial
