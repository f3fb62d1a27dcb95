// core/supervisor — a command's work in a child process watched by a small parent, so that a
// process the kernel kills (SIGKILL, usually the out-of-memory killer) still ends with a reason
// that is recorded and printed: a process cannot report its own SIGKILL.
//
// `recrun run` forks before it loads anything heavy: the child does the run as before; the
// parent holds no data, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to the child, and when the child
// ends returns how (wait status, peak resident memory, and the last line the child announced,
// e.g. the key of the row it writes), for the command to record. The child dies with the parent.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace recrun::core {

/// The reason given for a process ended by SIGKILL that nobody in recrun sent.
inline constexpr std::string_view kKilledByKernel =
    "killed by the kernel (SIGKILL: out of memory?)";

/// A wait status as a reason: kKilledByKernel for SIGKILL, "killed by signal N (name)[, core
/// dumped]" for other signals, "exited with status N".
std::string describe_wait_status(int status);

/// How the supervised child ended.
struct ChildEnd {
  /// waitpid's status.
  int status = 0;
  /// Peak resident set of the child (ru_maxrss), MiB.
  double peak_rss_mib = 0;
  /// The last line the child passed to announce(), empty if none.
  std::string announced;
  /// The exit code the command should return: the child's, or 128 + its signal.
  int exit_code() const;
};

/// Forks. Returns std::nullopt in the child, which goes on with the command; returns the
/// child's end in the parent. Returns std::nullopt without forking (nothing supervised) when
/// this process already runs threads (fork would copy only one of them) or fork fails.
std::optional<ChildEnd> supervise();

/// In a supervised child, hands `line` (no newline) to the parent, which keeps the last one; a
/// no-op elsewhere.
void announce(std::string_view line);

}  // namespace recrun::core
