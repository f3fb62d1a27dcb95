// The Slurm executor: a sweep's pending trials as one `sbatch --array` job, each array task
// running one trial (`recrun trial KEY --shard ...`) into a shard of its own, and collecting the
// shards into results.db (results/shards.hpp).
//
// A submission is a folder results/slurm/<experiment>/<submission>/ holding
//   trials.txt   line i + 1 = the trial key array task i runs (the index -> trial mapping)
//   job.sbatch   the script given to sbatch (its #SBATCH lines carry the options)
//   job_id       the job id sbatch answered (written once sbatch accepted the job)
//   status/<i>   array task i's exit record, written by the script when the trial ends
//   slurm-<i>.out  array task i's Slurm output (the trial's own log is logs/<exp>/<key>.log)
// and the shard of task i is results/shards/<key>.<submission>.db until it is collected, then
// results/shards/merged/<key>.<submission>.db.
//
// Array tasks' states come from sacct when Slurm keeps accounting, else from the controller
// (`scontrol show job`, which remembers finished jobs for MinJobAge seconds), else from the
// task's exit record: docs/cluster.md says which tells what.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "results/results_store.hpp"
#include "trial/layout.hpp"

namespace recrun::sweep {

/// Options of `recrun sweep --executor slurm`.
struct SlurmOptions {
  std::string partition;  ///< --partition; empty: the cluster's default
  std::string time;       ///< --time (Slurm's formats); empty: the partition's default
  int cpus_per_task = 1;  ///< --cpus-per-task; also each trial's --threads
  int array_limit = 0;    ///< --array-limit: tasks running at once (`%K`); 0 = no limit
};

/// Checks the options, naming the flag in the error (recrun::Error): --time in one of Slurm's
/// formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or UNLIMITED), --cpus-per-task and
/// --array-limit >= 1, --partition a plain name.
void check_slurm_options(const SlurmOptions& options, bool array_limit_given);

/// Is `text` a time limit sbatch accepts (see check_slurm_options)?
bool valid_slurm_time(std::string_view text);

/// The absolute path of a Slurm command (sbatch, scontrol, sacct) on PATH, or an Error saying
/// that `--executor slurm` needs it.
std::filesystem::path slurm_tool(const std::string& name);

/// The folders and files of the submissions of one experiment.
struct SubmissionPaths {
  trial::ResultsLayout layout;
  std::string experiment;
  std::string id;  ///< the submission's name: UTC time and pid, e.g. 20261202T061500Z-4242

  std::filesystem::path dir() const {
    return layout.root / "slurm" / experiment / id;
  }
  std::filesystem::path trials_file() const { return dir() / "trials.txt"; }
  std::filesystem::path script() const { return dir() / "job.sbatch"; }
  std::filesystem::path job_id_file() const { return dir() / "job_id"; }
  std::filesystem::path status_file(std::size_t index) const {
    return dir() / "status" / std::to_string(index);
  }
  /// results/shards/<key>.<id>.db
  std::filesystem::path shard(const std::string& key) const {
    return shards_dir(layout) / (key + "." + id + ".db");
  }
  static std::filesystem::path shards_dir(const trial::ResultsLayout& layout) {
    return layout.root / "shards";
  }
  static std::filesystem::path merged_dir(const trial::ResultsLayout& layout) {
    return shards_dir(layout) / "merged";
  }
};

/// A new submission's name: the UTC time and this process's id.
std::string new_submission_id();

/// The submissions of `experiment` in `layout`, oldest first.
std::vector<SubmissionPaths> submissions(const trial::ResultsLayout& layout,
                                         const std::string& experiment);

/// Writes the array index -> trial mapping: line i + 1 is the key of array task i.
void write_trials_file(const std::filesystem::path& file, const std::vector<std::string>& keys);
/// Reads it back; throws recrun::Error naming file and line for anything but one trial key
/// (32 hex digits) per line.
std::vector<std::string> read_trials_file(const std::filesystem::path& file);

/// What the generated script runs.
struct ScriptSpec {
  SubmissionPaths paths;                  ///< where the submission lives
  std::filesystem::path executable;       ///< recrun (absolute; the nodes must see the same path)
  std::filesystem::path workdir;          ///< the tasks' working directory (the submitter's)
  std::string results_arg;                ///< --results as the sweep was given it
  std::size_t tasks = 0;                  ///< array tasks: indices 0 .. tasks - 1
  SlurmOptions slurm;                     ///< partition, time, cpus, array limit
  std::vector<std::string> plugin_dirs;   ///< --plugin-dir, passed on
  double checkpoint_every_s = 30;         ///< --checkpoint-every, passed on
  std::string checkpoints = "best";       ///< --checkpoints, passed on
};

/// The sbatch script: #SBATCH lines for the options, then the task body (look up the trial by
/// SLURM_ARRAY_TASK_ID in trials.txt, run it into its shard with its output appended to the
/// trial's log, record the exit in status/<index>).
std::string sbatch_script(const ScriptSpec& spec);

/// Submits the script with `sbatch --parsable`; returns the job id. Throws recrun::Error with
/// sbatch's message when it refuses.
std::string submit(const std::filesystem::path& script);

/// One array task as Slurm reports it.
struct TaskState {
  std::string state;      ///< PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  std::string exit_code;  ///< "code:signal", e.g. "143:0"; empty when unknown
  std::string reason;     ///< Slurm's reason or the "by UID" of a cancellation; may be empty
  /// Whether the task can no longer run (anything but pending, running and the like).
  bool ended() const;
};

/// Parses `scontrol show job JOBID -o` (one line per array task, or per range of pending
/// tasks: ArrayTaskId=2-5%2) into index -> state.
std::map<std::size_t, TaskState> parse_scontrol(std::string_view text);
/// Parses `sacct -j JOBID -X -n -P -o JobID,State,ExitCode` (JOBID_INDEX|STATE|EXIT, with
/// JOBID_[2-5%2] for pending ones) into index -> state.
std::map<std::size_t, TaskState> parse_sacct(std::string_view text, std::string_view job_id);

/// The array tasks' states: sacct when it has accounting, else scontrol. An empty map when
/// neither knows the job any more (it ended); nullopt when Slurm did not answer at all (the
/// controller is down), so that nothing is concluded from silence.
std::optional<std::map<std::size_t, TaskState>> query_tasks(const std::string& job_id);

/// The reason recorded for a trial whose array task ended without a result, e.g. "Slurm array
/// task 12_3 CANCELLED (by 0), exit code 0:15".
std::string slurm_failure(const std::string& job_id, std::size_t index, const TaskState& state);

/// What a collect pass found and did.
struct CollectReport {
  std::size_t shards = 0;            ///< shards looked at (not yet collected before)
  std::size_t merged_finished = 0;   ///< finished runs merged into results.db
  std::size_t merged_failed = 0;     ///< failures merged (the trial's own, or Slurm's reason)
  std::size_t already = 0;           ///< shards of trials results.db had finished already
  std::size_t active = 0;            ///< trials still pending or running in Slurm
  std::size_t unknown = 0;           ///< ended tasks Slurm no longer knows, without an exit record
  std::set<std::string> active_keys;  ///< their keys (not to be submitted again)
  std::vector<std::string> notes;    ///< one line per failure recorded or shard left alone
};

/// Collects every submission of `experiment`: merges each shard whose task ended into `main`
/// (results/shards.hpp), records as failed, with Slurm's reason, a trial whose task ended
/// without a result, and moves what it merged to shards/merged/. Leaves shards of tasks still
/// pending or running. Safe to repeat and to run in two processes at once.
CollectReport collect(results::ResultsStore& main, const trial::ResultsLayout& layout,
                      const std::string& experiment);

/// Array tasks of `job_id` not yet ended, by state (PENDING, RUNNING, ...); empty once the job
/// has ended; nullopt when Slurm did not answer. Used by --wait.
std::optional<std::map<std::string, std::size_t>> active_tasks(const std::string& job_id);

/// What the controller says of itself (`scontrol ping`, bounded by RECRUN_SLURM_TIMEOUT), for
/// messages when it does not answer.
std::string controller_status();

/// --wait gives up after this many polls in a row that got no answer from Slurm.
inline constexpr std::size_t kMaxFailedPolls = 10;

/// The job id a submission's job_id file holds; empty when sbatch never accepted it.
std::string read_job_id(const SubmissionPaths& paths);

}  // namespace recrun::sweep
