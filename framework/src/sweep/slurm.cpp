#include "sweep/slurm.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>
#include <cctype>
#include <chrono>
#include <ctime>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>

#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "results/shards.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::sweep {

namespace fs = std::filesystem;
namespace bp = boost::process;

namespace {

// Single quotes for /bin/bash.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

struct ToolResult {
  int exit_code = -1;
  std::string out, err;
  bool timed_out = false;
};

// The signal that interrupted a Slurm call (0: none), set by the handlers run_tool installs.
volatile std::sig_atomic_t g_tool_signal = 0;
extern "C" void on_tool_signal(int sig) { g_tool_signal = sig; }

// SIGINT/SIGTERM/SIGHUP during a Slurm call stop the call (and its process group) instead of
// this process, so the caller can clean up what it prepared; restored afterwards.
class ToolSignals {
 public:
  ToolSignals() {
    g_tool_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_tool_signal;
    ::sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~ToolSignals() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  ToolSignals(const ToolSignals&) = delete;
  ToolSignals& operator=(const ToolSignals&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

// How long one Slurm command may take: RECRUN_SLURM_TIMEOUT seconds (default 60).
std::chrono::milliseconds tool_timeout() {
  const char* env = std::getenv("RECRUN_SLURM_TIMEOUT");
  if (!env || !*env) return std::chrono::seconds(60);
  const auto v = text::to_double(env);
  if (!v || !(*v > 0) || *v > 86400)
    throw Error(fmt::format("RECRUN_SLURM_TIMEOUT='{}': must be a number of seconds in (0, 86400]",
                            text::printable(env)));
  return std::chrono::milliseconds(static_cast<std::int64_t>(*v * 1000));
}

// Runs a Slurm command with its output captured (Boost.Process) and stdin closed, in a process
// group of its own that is killed when the command outlives tool_timeout() or a signal arrives.
ToolResult run_tool(const fs::path& exe, const std::vector<std::string>& args) {
  ToolResult r;
  const auto limit = tool_timeout();
  ToolSignals signals;
  boost::asio::io_context io;
  std::future<std::string> out, err;
  try {
    bp::group group;
    bp::child child(exe.string(), bp::args(args), bp::std_in.close(), bp::std_out > out,
                    bp::std_err > err, io, group);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!io.stopped() && std::chrono::steady_clock::now() < deadline && !g_tool_signal)
      io.run_for(std::chrono::milliseconds(50));
    if (!io.stopped()) {
      std::error_code ec;
      group.terminate(ec);  // SIGKILL to the whole group: a shell's children hold the pipes too
      io.run();
      child.wait(ec);
      if (g_tool_signal)
        throw Error(fmt::format("{} was stopped by {}", exe.filename().string(),
                                ::strsignal(g_tool_signal)));
      r.timed_out = true;
      r.err = fmt::format("no answer within {:.0f} s", std::chrono::duration<double>(limit).count());
      return r;
    }
    child.wait();
    r.exit_code = child.exit_code();
    r.out = out.get();
    r.err = err.get();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    r.err = e.what();
  }
  return r;
}

// What to tell a user whose Slurm command did not answer.
std::string no_answer(const std::string& tool) {
  return fmt::format("{} did not answer within {:.0f} s: the Slurm controller may be down or "
                     "unreachable (`scontrol ping` says which); set RECRUN_SLURM_TIMEOUT=SECONDS "
                     "to wait longer",
                     tool, std::chrono::duration<double>(tool_timeout()).count());
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (in) std::getline(in, line);
  return trim(line);
}

std::optional<fs::path> find_on_path(const std::string& name) {
  const auto found = bp::search_path(name);
  if (found.empty()) return std::nullopt;
  return fs::path(found.string());
}

// Array indices of "3", "2-5", "2-5%2", "1,4-6" (sacct's and scontrol's spellings).
std::vector<std::size_t> indices_of(std::string text) {
  if (const auto pct = text.find('%'); pct != std::string::npos) text.resize(pct);
  std::vector<std::size_t> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      const auto dash = part.find('-');
      if (dash == std::string::npos) {
        out.push_back(std::stoul(part));
      } else {
        const auto a = std::stoul(part.substr(0, dash)), b = std::stoul(part.substr(dash + 1));
        for (auto i = a; i <= b && out.size() < 1'000'000; ++i) out.push_back(i);
      }
    } catch (const std::exception&) {
      // Not an index (a step, a heterogeneous job): ignored.
    }
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------ options

bool valid_slurm_time(std::string_view text) {
  static const std::regex forms(
      "(\\d+)"                        // minutes
      "|(\\d+):([0-5]?\\d)"           // minutes:seconds
      "|(\\d+):([0-5]?\\d):([0-5]?\\d)"  // hours:minutes:seconds
      "|(\\d+)-(\\d+)"                 // days-hours
      "|(\\d+)-(\\d+):([0-5]?\\d)"     // days-hours:minutes
      "|(\\d+)-(\\d+):([0-5]?\\d):([0-5]?\\d)");  // days-hours:minutes:seconds
  std::string lower(text);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "unlimited" || lower == "infinite") return true;
  if (text.size() > 32) return false;
  return std::regex_match(std::string(text), forms);
}

void check_slurm_options(const SlurmOptions& o, bool array_limit_given) {
  if (!o.time.empty() && !valid_slurm_time(o.time))
    throw Error(fmt::format("--time '{}': not a Slurm time limit; use minutes (90), M:S, H:M:S "
                            "(2:00:00), D-H, D-H:M, D-H:M:S (1-12:00:00) or UNLIMITED",
                            o.time));
  if (o.cpus_per_task < 1 || o.cpus_per_task > 4096)
    throw Error(fmt::format("--cpus-per-task {}: must be 1..4096 (each trial runs with that many "
                            "threads)",
                            o.cpus_per_task));
  if (array_limit_given && o.array_limit < 1)
    throw Error(fmt::format("--array-limit {}: must be >= 1 (array tasks running at once; leave "
                            "it out for no limit)",
                            o.array_limit));
  static const std::regex partition("[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*");
  if (!o.partition.empty() && !std::regex_match(o.partition, partition))
    throw Error(fmt::format("--partition '{}': a partition name (letters, digits, '_', '-', '.'; "
                            "several separated by commas)",
                            o.partition));
}

fs::path slurm_tool(const std::string& name) {
  if (auto p = find_on_path(name)) return *p;
  throw Error(fmt::format("--executor slurm: '{}' is not on PATH; run on a Slurm login node (on "
                          "Debian: apt-get install slurm-client), or use the local executor",
                          name));
}

// ------------------------------------------------------------------------------ submissions

std::string new_submission_id() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return fmt::format("{}-{}", stamp, ::getpid());
}

std::vector<SubmissionPaths> submissions(const trial::ResultsLayout& layout,
                                         const std::string& experiment) {
  std::vector<SubmissionPaths> out;
  const fs::path root = layout.root / "slurm" / experiment;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory()) out.push_back({layout, experiment, e.path().filename().string()});
  std::sort(out.begin(), out.end(),
            [](const SubmissionPaths& a, const SubmissionPaths& b) { return a.id < b.id; });
  return out;
}

void write_trials_file(const fs::path& file, const std::vector<std::string>& keys) {
  fs::create_directories(file.parent_path());
  util::write_atomically(
      file, [&](std::ostream& out) { for (const auto& k : keys) out << k << '\n'; }, false);
}

std::vector<std::string> read_trials_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(fmt::format("cannot read {}", file.string()));
  static const std::regex key("[0-9a-f]{32}");
  std::vector<std::string> keys;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (!std::regex_match(line, key))
      throw Error(fmt::format("{}:{}: not a trial key (32 hex digits): '{}'", file.string(), no,
                              line.substr(0, 80)));
    keys.push_back(line);
  }
  return keys;
}

std::string read_job_id(const SubmissionPaths& paths) {
  std::ifstream in(paths.job_id_file());
  std::string id;
  if (in) std::getline(in, id);
  return trim(id);
}

std::string sbatch_script(const ScriptSpec& s) {
  const SubmissionPaths& p = s.paths;
  const fs::path dir = fs::absolute(p.dir());
  std::string out = "#!/bin/bash\n";
  out += fmt::format("#SBATCH --job-name=recrun-{}\n", p.experiment);
  out += fmt::format("#SBATCH --array=0-{}{}\n", s.tasks == 0 ? 0 : s.tasks - 1,
                     s.slurm.array_limit > 0 ? fmt::format("%{}", s.slurm.array_limit) : "");
  out += fmt::format("#SBATCH --cpus-per-task={}\n", s.slurm.cpus_per_task);
  out += "#SBATCH --ntasks=1\n";
  if (!s.slurm.partition.empty()) out += fmt::format("#SBATCH --partition={}\n", s.slurm.partition);
  if (!s.slurm.time.empty()) out += fmt::format("#SBATCH --time={}\n", s.slurm.time);
  out += fmt::format("#SBATCH --chdir={}\n", s.workdir.string());
  out += fmt::format("#SBATCH --output={}/slurm-%a.out\n", dir.string());
  out += "#SBATCH --open-mode=append\n";
  out += fmt::format(
      "# Generated by `recrun sweep --executor slurm`: submission {} of experiment '{}'.\n"
      "# Array task i runs the trial on line i + 1 of trials.txt into a shard of its own;\n"
      "# `recrun sweep FILE --collect` merges the shards into results.db.\n",
      p.id, p.experiment);
  std::string trial_args;
  for (const auto& d : s.plugin_dirs) trial_args += " --plugin-dir " + quote(d);
  const std::string results = quote(s.results_arg);
  out += fmt::format(
      R"SH(set -u
sub={sub}
index=${{SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}}
key=$(sed -n "$((index + 1))p" "$sub/trials.txt")
if [ -z "$key" ]; then
  echo "recrun: no trial for array index $index in $sub/trials.txt" >&2
  exit 2
fi
threads=${{SLURM_CPUS_PER_TASK:-1}}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
log={results}/logs/{experiment}/$key.log
mkdir -p "$(dirname "$log")" "$sub/status"
echo "==== recrun trial $key attempt started by Slurm job ${{SLURM_ARRAY_JOB_ID:-?}}_$index on $(hostname)" >>"$log"
record() {{ echo "$1" >"$sub/status/$index.tmp" && mv -f "$sub/status/$index.tmp" "$sub/status/$index"; }}
child=
on_term() {{
  record "signal TERM (the task was cancelled or ran out of time)"
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  exit 143
}}
trap on_term TERM
{exe} trial "$key" --results {results} --shard {results}/shards/"$key".{id}.db \
  --threads "$threads" --checkpoint-every {every} --checkpoints {checkpoints}{trial_args} >>"$log" 2>&1 &
child=$!
wait "$child"
code=$?
record "exit $code"
exit "$code"
)SH",
      fmt::arg("sub", quote(dir.string())), fmt::arg("results", results),
      fmt::arg("experiment", quote(p.experiment)), fmt::arg("exe", quote(s.executable.string())),
      fmt::arg("id", quote(p.id)), fmt::arg("every", s.checkpoint_every_s),
      fmt::arg("checkpoints", quote(s.checkpoints)), fmt::arg("trial_args", trial_args));
  return out;
}

std::string submit(const fs::path& script) {
  const fs::path sbatch = slurm_tool("sbatch");
  const ToolResult r = run_tool(sbatch, {"--parsable", script.string()});
  if (r.timed_out)
    throw Error(fmt::format("{}; nothing is left of this submission here (if the job did reach "
                            "Slurm, `squeue --me` lists it: scancel it)",
                            no_answer("sbatch")));
  if (r.exit_code != 0)
    throw Error(fmt::format("sbatch refused the job (exit {}): {}", r.exit_code, trim(r.err)));
  // --parsable: "JOBID" or "JOBID;CLUSTER".
  std::string id = trim(r.out);
  // (A site's sbatch may print notices before the id: the id is the last line.)
  if (const auto nl = id.rfind('\n'); nl != std::string::npos) id = trim(id.substr(nl + 1));
  if (const auto semi = id.find(';'); semi != std::string::npos) id.resize(semi);
  static const std::regex number("[0-9]+");
  if (!std::regex_match(id, number))
    throw Error(fmt::format("sbatch answered '{}' where a job id was expected", trim(r.out)));
  return id;
}

// -------------------------------------------------------------------------------- task state

bool TaskState::ended() const {
  static const std::set<std::string> live = {
      "PENDING",  "RUNNING",       "CONFIGURING", "COMPLETING",    "REQUEUED",
      "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",  "SUSPENDED",     "STOPPED",
      "SIGNALING", "STAGE_OUT",    "RESV_DEL_HOLD", "SPECIAL_EXIT", "POWER_UP_NODE"};
  return !live.contains(state);
}

std::map<std::size_t, TaskState> parse_scontrol(std::string_view text) {
  std::map<std::size_t, TaskState> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::map<std::string, std::string> fields;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq != std::string::npos) fields.emplace(word.substr(0, eq), word.substr(eq + 1));
    }
    const auto task = fields.find("ArrayTaskId");
    if (task == fields.end()) continue;
    TaskState st;
    st.state = fields["JobState"];
    st.exit_code = fields["ExitCode"];
    st.reason = fields["Reason"] == "None" ? std::string() : fields["Reason"];
    for (const auto i : indices_of(task->second)) out[i] = st;
  }
  return out;
}

std::map<std::size_t, TaskState> parse_sacct(std::string_view text, std::string_view job_id) {
  std::map<std::size_t, TaskState> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  const std::string prefix = std::string(job_id) + "_";
  while (std::getline(lines, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '|')) cols.push_back(col);
    if (cols.size() < 3 || !cols[0].starts_with(prefix)) continue;
    std::string index = cols[0].substr(prefix.size());
    if (index.find('.') != std::string::npos) continue;  // a step (12_3.batch)
    if (index.starts_with('[') && index.ends_with(']')) index = index.substr(1, index.size() - 2);
    TaskState st;
    const std::string state = trim(cols[1]);
    const auto space = state.find(' ');
    st.state = state.substr(0, space);
    if (space != std::string::npos) st.reason = state.substr(space + 1);  // "by 0"
    st.exit_code = trim(cols[2]);
    for (const auto i : indices_of(index)) out[i] = st;
  }
  return out;
}

std::optional<std::map<std::size_t, TaskState>> query_tasks(const std::string& job_id) {
  if (const auto sacct = find_on_path("sacct")) {
    const ToolResult r =
        run_tool(*sacct, {"-j", job_id, "-X", "-n", "-P", "-o", "JobID,State,ExitCode"});
    if (r.exit_code == 0) {
      auto parsed = parse_sacct(r.out, job_id);
      if (!parsed.empty()) return parsed;
    }
    // Disabled accounting ("Slurm accounting storage is disabled"), or the database has not
    // seen the job yet: ask the controller.
  }
  const auto scontrol = find_on_path("scontrol");
  if (!scontrol) return std::nullopt;
  const ToolResult r = run_tool(*scontrol, {"show", "job", job_id, "-o"});
  if (r.exit_code == 0) return parse_scontrol(r.out);
  if (r.err.find("Invalid job id") != std::string::npos)
    return std::map<std::size_t, TaskState>{};  // ended, and forgotten (MinJobAge)
  return std::nullopt;
}

std::string controller_status() {
  const auto scontrol = find_on_path("scontrol");
  if (!scontrol) return "scontrol is not on PATH";
  const ToolResult r = run_tool(*scontrol, {"ping"});
  if (r.timed_out) return fmt::format("`scontrol ping` got {}", r.err);
  const std::string said = trim(r.out.empty() ? r.err : r.out);
  return fmt::format("`scontrol ping`: {}", said.empty() ? "no answer" : text::printable(said, 300));
}

std::optional<std::map<std::string, std::size_t>> active_tasks(const std::string& job_id) {
  const auto tasks = query_tasks(job_id);
  if (!tasks) return std::nullopt;
  std::map<std::string, std::size_t> out;
  for (const auto& [i, st] : *tasks)
    if (!st.ended()) ++out[st.state];
  return out;
}

std::string slurm_failure(const std::string& job_id, std::size_t index, const TaskState& st) {
  std::string why = fmt::format("Slurm array task {}_{} {}", job_id, index, st.state);
  if (st.state == "TIMEOUT") why += " (it reached its --time limit)";
  else if (st.state == "OUT_OF_MEMORY") why += " (out of memory: the node's limit for the task)";
  else if (!st.reason.empty()) why += fmt::format(" ({})", st.reason);
  if (!st.exit_code.empty()) why += fmt::format(", exit code {}", st.exit_code);
  return why;
}

// ---------------------------------------------------------------------------------- collect

CollectReport collect(results::ResultsStore& main, const trial::ResultsLayout& layout,
                      const std::string& experiment) {
  if (!main.options().durable_commits)
    throw std::logic_error("collect() needs a results store with durable_commits: a shard is "
                           "moved aside once its merge is committed, and must not outlive it");
  CollectReport report;
  const fs::path merged_dir = SubmissionPaths::merged_dir(layout);
  for (const SubmissionPaths& sub : submissions(layout, experiment)) {
    std::vector<std::string> keys;
    try {
      keys = read_trials_file(sub.trials_file());
    } catch (const Error& e) {
      report.notes.push_back(fmt::format("submission {} skipped: {}", sub.id, e.what()));
      continue;
    }
    std::vector<std::size_t> open;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (fs::exists(sub.shard(keys[i]))) open.push_back(i);
    if (open.empty()) continue;
    const std::string job_id = read_job_id(sub);
    if (job_id.empty()) {
      report.notes.push_back(fmt::format(
          "submission {}: {} shard(s) but no job id (sbatch never accepted it); left alone",
          sub.id, open.size()));
      continue;
    }
    const auto states = query_tasks(job_id);
    for (const std::size_t i : open) {
      const std::string& key = keys[i];
      const fs::path shard = sub.shard(key);
      std::optional<TaskState> state;
      if (states) {
        if (const auto it = states->find(i); it != states->end()) state = it->second;
      }
      if (!states || (state && !state->ended())) {
        ++report.active;
        report.active_keys.insert(key);
        continue;
      }
      ++report.shards;
      results::ShardContent content;
      try {
        content = results::read_shard(shard, std::chrono::seconds(2));
      } catch (const results::StoreError& e) {
        if (!fs::exists(shard)) continue;  // another collector moved it meanwhile
        if ((e.sqlite_code() & 0xff) == 5 /* SQLITE_BUSY */) {
          // Its task still has it open (ended in Slurm's view, not yet exited).
          ++report.active;
          report.active_keys.insert(key);
          continue;
        }
        report.notes.push_back(fmt::format("shard {} unreadable, left alone: {}", shard.string(),
                                           e.what()));
        continue;
      }
      const std::string task = fmt::format("Slurm array task {}_{}", job_id, i);
      results::MergeOutcome merged = results::merge_shard(main, content, task);
      if (merged.result == results::MergeResult::not_done) {
        // The task ended without recording an outcome: killed, cancelled, out of time.
        std::string why;
        const std::string record = first_line(sub.status_file(i));
        if (state) {
          why = slurm_failure(job_id, i, *state);
        } else if (!states->empty() && content.row.status == results::RunStatus::pending) {
          // The controller still has the job but not this task, whose trial never started: a
          // pending array task that is cancelled is dropped without a record of its own (and
          // without accounting storage there is nobody else to ask).
          why = fmt::format("{} CANCELLED before it started (Slurm dropped the pending task; "
                            "without accounting storage it keeps no record of why)",
                            task);
        } else {
          why = fmt::format("{} ended without a result, and Slurm no longer has its record (no "
                            "accounting storage, and the controller forgets finished jobs "
                            "after MinJobAge)",
                            task);
        }
        if (!record.empty()) why += fmt::format("; the task script recorded: {}", record);
        if (!state && record.empty() && states->empty()) ++report.unknown;
        const std::string& filed_under =
            content.row.experiment.empty() ? experiment : content.row.experiment;
        why += fmt::format(" (log: {})", layout.log(filed_under, key).string());
        const bool recorded = main.fail(key, why);
        merged.result = recorded ? results::MergeResult::merged_failed
                                 : results::MergeResult::already_finished;
        if (recorded) report.notes.push_back(fmt::format("trial {} failed: {}", key, why));
      } else if (merged.result == results::MergeResult::merged_failed) {
        report.notes.push_back(fmt::format("trial {} failed: {}: {}", key, task, merged.error));
      }
      switch (merged.result) {
        case results::MergeResult::merged_finished: ++report.merged_finished; break;
        case results::MergeResult::merged_failed: ++report.merged_failed; break;
        case results::MergeResult::already_finished: ++report.already; break;
        case results::MergeResult::not_done: break;
      }
      // results.db's commit is durable (the collector's store syncs every commit): only now
      // does the shard leave shards/.
      results::move_shard_aside(shard, merged_dir);
    }
  }
  return report;
}

}  // namespace recrun::sweep
