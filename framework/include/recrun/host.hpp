// recrun/host.hpp — services the host offers a model while it is built (ModelEnv::host).
//
// A model that combines other models (the ensemble) must not reach into their plugins' code or
// into results.db itself: it asks the host, which loads members through the same plugin,
// parameter and checkpoint code as every run, and refuses members that do not fit the run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "recrun/archive.hpp"
#include "recrun/model_interface.hpp"

namespace recrun {

/// A trained (or, from make_inline(), untrained) model handed to another model.
struct MemberModel {
  /// Trial key of the finished run it was loaded from; empty for an inline member.
  std::string key;
  /// Its model plugin's name.
  std::string model;
  /// How it was found, for messages: "run 3f2a... (ease, experiment baselines, valid NDCG@10 0.21)".
  std::string description;
  /// The model itself.
  std::shared_ptr<Model> model_ptr;
};

/// The host's services. Every method throws recrun::Error with a message naming the member
/// reference and the reason it was refused.
class HostServices {
 public:
  virtual ~HostServices() = default;

  /// Loads a finished run's model with its best checkpoint. `ref` is a member reference of kind
  /// run or best (recrun/member_ref.hpp): a trial key (as listed in results.db), or a query
  /// "best:MODEL", "best:MODEL@EXPERIMENT" or "best:MODEL@EXPERIMENT/GROUP": the finished run of that model with the highest validation
  /// value of the current run's monitor (ties: the earliest run). Refused when no such run
  /// exists, it is not finished, it kept no checkpoint, or it was trained on other data (data
  /// fingerprint) or under another split (split mode or min_interactions) than the current run.
  virtual MemberModel load_run(const std::string& ref) const = 0;

  /// Builds a member from a spec "MODEL key=value ..." (what follows "train:" in a member
  /// reference, MemberRef::inline_spec(): the model's parameters and the trainer's: epochs,
  /// patience, ...), untrained. Refused for an unknown model or a bad
  /// parameter, naming it.
  virtual MemberModel make_inline(const std::string& spec, std::uint64_t seed) const = 0;

  /// Trains a member made by make_inline(spec) under the host's trainer on the current run's
  /// split (validation picks its best epoch, with the spec's epochs/patience), leaving the
  /// model at its best state. Nothing is recorded. Returns the validation value of the monitor.
  virtual double train_inline(const std::string& spec, Model& model, std::uint64_t seed) const = 0;
};

}  // namespace recrun
