// Runs commands for end-to-end tests.
#pragma once

#include <string>

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

}  // namespace recrun::test
