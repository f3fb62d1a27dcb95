// `recrun zygote` (hidden): the sweep's trial zygote. It loads the plugins once, then forks one
// worker per trial on the sweep's request (sweep/zygote.hpp). Not for use by hand.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "recrun/error.hpp"
#include "sweep/zygote.hpp"

namespace recrun::cli {

int cmd_zygote(const Args& args) {
  HostOptions host;
  int control_fd = -1;
  std::int64_t owner = 0;
  std::string results_dir;
  auto desc = host_options(host);
  desc.add_options()("control-fd", po::value(&control_fd)->required(),
                     "socket the sweep sends requests on")(
      "owner-pid", po::value(&owner)->required(), "the sweep's pid")(
      "results", po::value(&results_dir), "the sweep's results directory (names it in ps)");
  const auto vm = parse(desc, args, "recrun zygote --control-fd FD --owner-pid PID (started by recrun sweep)");
  if (vm.count("help")) return 0;
  if (control_fd < 0 || owner <= 0) throw Error("recrun zygote is started by `recrun sweep`");
  Registry registry;
  load_registry(host, registry, false);
  return sweep::serve_zygote(control_fd, static_cast<pid_t>(owner),
                             [&registry](const std::vector<std::string>& trial_args) {
                               return run_trial(trial_args, &registry);
                             });
}

}  // namespace recrun::cli
