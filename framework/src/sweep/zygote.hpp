// The trial zygote: one process per sweep that has paid for exec, LibTorch's dynamic loading
// and the plugins once, and forks a fresh worker process for every trial.
//
// Crash isolation is the same as with exec: every trial is still its own process, in its own
// process group, a child of the sweep (which is a child subreaper: the zygote forks through a
// short-lived intermediate, so the worker is re-parented to the sweep, which waits for it,
// times it and kills it exactly as it does an exec'd worker). What the worker skips is exec,
// the loader's relocation of LibTorch's libraries and their static initialisers, and dlopen of
// every plugin.
//
// The zygote never runs a LibTorch operation and never starts a thread: fork() copies only
// the calling thread, so a process with a thread pool cannot be forked safely. It checks that
// it has exactly one thread before each fork and refuses (the sweep then execs) otherwise.
//
// Protocol, over a SOCK_SEQPACKET socketpair:
//   zygote -> sweep, once:      "ready" | "error <text>"
//   sweep -> zygote, per trial: the trial's arguments, NUL-separated, with two descriptors
//                               (SCM_RIGHTS): the progress pipe's write end and the log file
//   zygote -> sweep, per trial: "pid <n>" | "error <text>"
// End of file on the socket ends the zygote.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace recrun::sweep {

/// The sweep's end: starts the zygote and asks it for workers.
class ZygoteClient {
 public:
  struct Options {
    /// The recrun executable (`recrun zygote` is a hidden subcommand).
    std::filesystem::path executable;
    /// Arguments after `recrun zygote` (--plugin-dir ...).
    std::vector<std::string> args;
    /// Environment of the zygote and so of every worker (thread counts set).
    std::vector<std::string> env;
    /// The zygote's own stdout and stderr (plugin warnings) go here.
    std::filesystem::path log;
    /// "ready" is awaited by the zygote's state, not for a fixed time: while it runs and uses
    /// CPU (loading plugins on a loaded machine is slow but busy) it is waited for; it is given
    /// up when it exits, when it uses no CPU for this long (stuck), or after `ready_limit`.
    std::chrono::milliseconds ready_timeout{60000};
    /// The most a busy zygote is waited for.
    std::chrono::milliseconds ready_limit{600000};
  };

  /// Starts the zygote and waits for it to be ready. Throws std::runtime_error with the reason
  /// (and the zygote's log) when it cannot start.
  explicit ZygoteClient(const Options& options);
  /// Closes the socket (the zygote exits) and reaps the zygote.
  ~ZygoteClient();
  ZygoteClient(const ZygoteClient&) = delete;
  ZygoteClient& operator=(const ZygoteClient&) = delete;

  /// Forks a worker that runs `recrun trial <args...> --progress-fd <fd>` with stdout and stderr
  /// on `log_fd`. Returns its pid, a child of this process from the moment this returns, in a
  /// process group of its own. Throws std::runtime_error when the zygote refuses or is gone.
  pid_t spawn(const std::vector<std::string>& trial_args, int progress_fd, int log_fd);

  /// The zygote's pid (a child of this process).
  pid_t pid() const { return pid_; }
  /// Called when the scheduler reaped the zygote itself: later spawns fail at once.
  void exited(const std::string& how);
  /// False once the zygote has exited or failed.
  bool alive() const { return alive_; }
  /// True once exited() was called (its pid is no longer ours).
  bool reaped() const { return !exit_reason_.empty(); }

 private:
  std::string receive(std::chrono::milliseconds timeout);
  /// The zygote's first message, waited for while it runs and uses CPU (see Options).
  std::string await_ready(std::chrono::milliseconds stall, std::chrono::milliseconds limit);
  pid_t pid_ = -1;
  int socket_ = -1;
  bool alive_ = false;
  std::string exit_reason_;
  std::filesystem::path log_;
};

/// Makes this process a child subreaper, so that workers the zygote forks are re-parented to it.
/// Returns false (with errno) where the kernel refuses.
bool become_subreaper();

/// The zygote's end (`recrun zygote`): serves spawn requests on `control_fd` until end of file.
/// `run_trial` runs one trial in the forked worker and returns its exit code. `owner` is the
/// sweep's pid: a worker waits until it has been re-parented to it, then dies with it.
int serve_zygote(int control_fd, pid_t owner,
                 const std::function<int(const std::vector<std::string>&)>& run_trial);

/// Threads of this process (from /proc/self/task).
int thread_count();

}  // namespace recrun::sweep
