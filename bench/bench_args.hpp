// Shared by the benches' command lines: `--flag value` pairs, --help, and list-valued flags
// ("--models sasrec,bert4rec").
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace recrun::bench {

/// The non-empty parts of `text` between `sep`s.
inline std::vector<std::string> split_list(const std::string& text, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

/// Calls `on_flag(flag, value)` for each `--flag value` pair of the command line, in order.
/// `-h` or `--help` anywhere prints `usage` and exits 0, before anything runs. A flag without a
/// value, a flag `on_flag` does not know (it returns false) and a value it cannot read (it
/// throws) print what is wrong and `usage` to stderr and exit 2: a bench never starts minutes of
/// work on a command line it did not understand.
inline void for_each_flag(int argc, char** argv, std::string_view usage,
                          const std::function<bool(const std::string&, const std::string&)>& on_flag) {
  const std::string name = argc > 0 ? std::string(argv[0]) : std::string("bench");
  const std::string self = name.substr(name.find_last_of('/') + 1);
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      fmt::print("usage: {}\n", usage);
      std::exit(0);
    }
  const auto refuse = [&](const std::string& why) {
    fmt::print(stderr, "{}: {}\nusage: {}\n", self, why, usage);
    std::exit(2);
  };
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0) refuse(fmt::format("'{}' is not an option (--name value)", flag));
    if (i + 1 >= argc) refuse(fmt::format("{} needs a value", flag));
    const std::string value = argv[i + 1];
    bool known = false;
    try {
      known = on_flag(flag, value);
    } catch (const std::exception& e) {
      refuse(fmt::format("{} {}: not a valid value ({})", flag, value, e.what()));
    }
    if (!known) refuse(fmt::format("unknown option {}", flag));
  }
}

}  // namespace recrun::bench
