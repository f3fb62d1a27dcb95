// Runs commands for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace recrun::test {

/// Exit status and combined stdout+stderr of a shell command.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};

/// Runs `command` through /bin/sh, capturing stdout and stderr together.
CommandResult run_command(const std::string& command);

/// The path of the real recrun binary of this build, shell-quoted.
std::string recrun_bin();

/// Quotes a string for /bin/sh.
std::string shell_quote(const std::string& s);

/// The whole file, as bytes ("" when it cannot be read).
std::string read_file(const std::filesystem::path& path);

/// Starts the real recrun binary with `args` in `cwd` (empty: the current directory), its
/// stdout and stderr appended to `log`, with `env` ("NAME=value") added to its environment;
/// returns its pid without waiting, so that a test can kill it.
pid_t spawn_recrun(const std::vector<std::string>& args, const std::filesystem::path& log,
                   const std::filesystem::path& cwd = {}, const std::vector<std::string>& env = {});

/// Waits for `pid`: its exit code, or 128 + the signal that ended it.
int wait_exit(pid_t pid);

/// Exit code and output of one spawned command.
struct Outcome {
  int code = -1;
  std::string output;
};

/// spawn_recrun() and wait_exit(), the output through a numbered log file in `cwd`.
Outcome run_recrun(const std::vector<std::string>& args, const std::filesystem::path& cwd);

/// Live processes whose command line mentions `needle` (e.g. a test's unique results directory).
std::vector<pid_t> processes_mentioning(const std::string& needle);

/// A TCP port on 127.0.0.1 that no socket uses right now, chosen by the kernel (bind to port 0),
/// for a test that must name a port before the server opens it. A port made from the pid instead
/// can be another test's, or an ephemeral port of a connection when ctest runs tests side by side.
int free_tcp_port();

/// Polls `pred` every `every` until it holds or `timeout` passes; returns its last value.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(100)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

}  // namespace recrun::test
