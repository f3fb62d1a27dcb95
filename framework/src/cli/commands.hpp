// Subcommands of the recrun executable. Each takes the arguments after its name and returns the
// process exit code; user mistakes throw recrun::Error and main() prints them.
#pragma once

#include <string>
#include <vector>

namespace recrun {
class Registry;
}

namespace recrun::cli {

using Args = std::vector<std::string>;

int cmd_plugins(const Args& args);
int cmd_run(const Args& args);
int cmd_data(const Args& args);
int cmd_sweep(const Args& args);
int cmd_trial(const Args& args);
/// `recrun trial` with the plugins already loaded (a worker forked from the zygote).
int run_trial(const Args& args, Registry* preloaded);
/// Flushes stdio and ends the process without static destructors (they only deregister
/// LibTorch's operators, ~0.3 s). Commands have closed their files when they return.
[[noreturn]] void exit_now(int code);
/// The sweep's trial zygote (hidden): loads the plugins once, forks a worker per trial.
int cmd_zygote(const Args& args);
/// recrun predict: top-K lists from a finished run.
int cmd_predict(const Args& args);
int cmd_results(const Args& args);
int cmd_report(const Args& args);

}  // namespace recrun::cli
