// recrun/member_ref.hpp — how a model built from other models (an ensemble) names its members.
//
// One grammar, parsed here only, for experiment files, `--set`, the host's validation and the
// plugin itself:
//   3f2a...(32 hex digits)            a finished run, by its full trial key
//   best:MODEL                        the best finished run of MODEL (by the validation monitor)
//   best:MODEL@EXPERIMENT             ... among the runs of one experiment
//   best:MODEL@EXPERIMENT/GROUP       ... of one group of it
//   train:MODEL key=value ...         MODEL trained inline with these parameters (--set syntax)
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recrun {

/// A parsed member reference.
struct MemberRef {
  enum class Kind { run, best, train };
  /// Which form it is.
  Kind kind = Kind::run;
  /// The reference as written.
  std::string text;
  /// kind run: the trial key.
  std::string key;
  /// kind best and train: the model plugin's name.
  std::string model;
  /// kind best: the experiment and group it is restricted to ("" = any).
  std::string experiment;
  std::string group;
  /// kind train: the parameters, in order, as key and value text.
  std::vector<std::pair<std::string, std::string>> sets;

  /// kind train: "MODEL key=value ..." (what follows "train:").
  std::string inline_spec() const;
};

/// Parses a member reference. Throws ParamError saying which of the forms above was meant and
/// what is wrong (a key prefix instead of a full key, a missing model, a parameter without '=').
MemberRef parse_member_ref(std::string_view text);

}  // namespace recrun
