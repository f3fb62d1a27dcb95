// sweep/members.hpp — an experiment whose models are built from other runs (an ensemble's
// `members`): which finished runs its references name now, and, for those that name none yet,
// which experiment file produces them. The dry run prints it; a sweep refuses to start trials
// whose members another experiment has not produced yet, instead of failing each of them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "sweep/experiment.hpp"
#include "sweep/scheduler.hpp"
#include "sweep/trials.hpp"

namespace recrun::sweep {

/// One member reference of the experiment's trials (a trial key or best:MODEL[@EXP[/GROUP]]).
struct MemberCheck {
  /// The reference as written.
  std::string ref;
  /// The groups whose trials use it.
  std::vector<std::string> groups;
  /// The finished run it names now, if any.
  std::optional<results::RunRow> run;
  /// Why it names none ("" when it does).
  std::string problem;
  /// Where the run comes from: an experiment file beside this one (with the command that runs
  /// it), a group of this experiment, or "" when it cannot be told.
  std::string produced_by;
  /// The run comes from this experiment's own groups (this sweep may produce it).
  bool from_this_experiment = false;
};

/// The experiment file beside `file` (same directory, .toml) whose [experiment] name is `name`.
std::optional<std::filesystem::path> experiment_file_named(const std::filesystem::path& file,
                                                           const std::string& name);

/// The member references (trial keys, best:...) in `t`'s parameters that refer to finished
/// runs, each once; inline members (train:...) are left out.
std::vector<std::string> member_refs(const Trial& t, const Registry& registry);

/// Checks the member references of `trials` against `store` (null: no results.db yet).
std::vector<MemberCheck> check_members(const std::vector<Trial>& trials, const Experiment& x,
                                       const Registry& registry,
                                       const results::ResultsStore* store);

/// An experiment this one depends on ([experiment] depends) and what of it the member
/// references of this sweep's trials need.
struct Dependency {
  /// Its [experiment] name.
  std::string name;
  /// Its file (beside this experiment's).
  std::filesystem::path file;
  /// `--only` alternatives that select what the references name: "group=G" or "model=M".
  std::vector<std::string> only;
};

/// The dependencies of `trials`: for each member reference best:MODEL@EXP[/GROUP] whose EXP is
/// in x.depends, the groups (or models) of EXP to run first. Throws ExperimentError (at
/// [experiment] depends) for a name that no .toml file beside x names, x's own name, or a name
/// in `chain` (the sweeps that are running their dependencies now: a cycle).
std::vector<Dependency> plan_dependencies(const std::vector<Trial>& trials, const Experiment& x,
                                          const Registry& registry,
                                          const std::vector<std::string>& chain);

/// How a sweep runs its dependencies: the flags its own sweep passes on.
struct DependencyRun {
  std::string results;                   ///< --results
  int jobs = 0;                          ///< --jobs (0: not given)
  int threads = 0;                       ///< --threads (0: not given)
  std::vector<std::string> plugin_dirs;  ///< --plugin-dir
  bool no_live = false;                  ///< --no-live
  bool no_zygote = false;                ///< --no-zygote
  bool only_print = false;               ///< print the commands instead (dry run, Slurm, --collect)
};

/// Runs, one after the other, `recrun sweep DEP --only ...` for each dependency that the member
/// references of `trials` need (none when no trial has member references), with the
/// environment variable RECRUN_DEPENDS_CHAIN naming the sweeps already doing so (for
/// plan_dependencies' cycle check). A dependency that fails is said and left: the trials it
/// would have fed wait. Returns 128 + N when signal N stopped one (the sweep then stops too), 0
/// otherwise.
int run_dependencies(const std::vector<Trial>& trials, const Experiment& x,
                     const Registry& registry, const DependencyRun& how);

/// The scheduler's readiness rule (SchedulerOptions::readiness) for the queue's trials built
/// from other runs: later while a trial of `queue` that makes one of their `best:MODEL@x`
/// members has not ended; waiting (with what is missing and what makes it, from `checks`) when
/// a member then names no finished run; nullptr when no queued trial has member references.
std::function<Readiness(const Trial&)> member_readiness(const std::vector<const Trial*>& queue,
                                                        const Experiment& x,
                                                        const Registry& registry,
                                                        const results::ResultsStore& store,
                                                        const std::vector<MemberCheck>& checks);

/// One line per check: "member 'best:ease@baselines' (groups zscore, rrf): run 3f2a... (ease,
/// valid NDCG@10 0.1234)" or "...: missing: <problem>; <produced_by>".
std::string describe(const MemberCheck& check, const std::string& monitor);

}  // namespace recrun::sweep
