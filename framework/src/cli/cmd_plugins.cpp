#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace recrun::cli {

int cmd_plugins(const Args& args) {
  HostOptions host;
  bool show_params = true;
  auto desc = host_options(host);
  desc.add_options()("brief", "names and summaries only");
  const auto vm = parse(desc, args, "recrun plugins [--plugin-dir DIR] [--brief]");
  if (vm.count("help")) return 0;
  show_params = vm.count("brief") == 0;
  Registry registry;
  load_registry(host, registry, /*verbose=*/true);

  const auto print_params = [&](const std::vector<ParamSpec>& params) {
    if (!show_params) return;
    for (const auto& p : params) {
      std::string bounds;
      if (p.min || p.max)
        bounds = fmt::format(" [{}, {}]", p.min ? fmt::format("{}", *p.min) : "-inf",
                             p.max ? fmt::format("{}", *p.max) : "inf");
      if (!p.choices.empty()) bounds = fmt::format(" {{{}}}", fmt::join(p.choices, ", "));
      fmt::print("      {:<22} {:<6} = {:<10}{}  {}\n", p.name, type_name(p.type),
                 to_string(p.default_value), bounds, p.help);
    }
  };
  const auto origin = [&](ComponentKind k, const std::string& n) {
    const std::string o = registry.origin(k, n);
    return o.empty() ? std::string{} : fmt::format("  ({})", o);
  };
  fmt::print("models:\n");
  for (const auto& m : registry.models()) {
    fmt::print("  {:<14} {}{}\n", m.name, m.summary, origin(ComponentKind::model, m.name));
    print_params(m.params);
  }
  if (show_params) {
    fmt::print("trainer (accepted by every model; the framework's training loop):\n");
    print_params(trainer_params_for_listing());
  }
  fmt::print("features:\n");
  for (const auto& f : registry.features())
    fmt::print("  {:<14} {}{}\n", f.name, f.summary, origin(ComponentKind::feature, f.name));
  fmt::print("fusions:\n");
  for (const auto& f : registry.fusions())
    fmt::print("  {:<14} {}{}\n", f.name, f.summary, origin(ComponentKind::fusion, f.name));
  fmt::print("data sources:\n");
  for (const auto& d : registry.data_sources())
    fmt::print("  {:<14} {}{}\n", d.name, d.summary, origin(ComponentKind::data_source, d.name));
  // A refused library is an error here: this command exists to tell what is usable.
  if (!registry.refused().empty()) {
    fmt::print(stderr, "error: {} plugin librar{} refused (the warnings above say why)\n",
               registry.refused().size(), registry.refused().size() == 1 ? "y was" : "ies were");
    return 1;
  }
  return 0;
}

}  // namespace recrun::cli
