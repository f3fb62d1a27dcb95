// The evaluation protocol of a trial: how the data is split and what is measured. Everything in
// it but eval_batch_size changes results, so its canonical text is part of every trial key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace recrun::trial {

/// The evaluation protocol: every trial of an experiment shares one.
struct Protocol {
  /// "leave_one_out" or "full".
  std::string split = "leave_one_out";
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

  /// Canonical text of everything that changes results; part of every trial key.
  std::string canonical() const;
  /// JSON object for the results store (protocol column): the protocol, eval_batch_size and,
  /// when given, the data source that reads the data (so a worker can load it the same way).
  std::string to_json(std::string_view data_source = {}) const;
  /// Inverse of to_json(); throws Error on malformed text.
  static Protocol from_json(std::string_view json);
  /// The data source to_json() stored; "auto" when none.
  static std::string data_source_from_json(std::string_view json);
};

}  // namespace recrun::trial
