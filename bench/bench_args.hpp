// Shared by the benches' command lines: list-valued flags ("--models sasrec,bert4rec").
#pragma once

#include <sstream>
#include <string>
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

}  // namespace recrun::bench
