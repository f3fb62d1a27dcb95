#include "core/dataset_loader.hpp"

#include <fmt/format.h>

#include <map>

#include "recrun/error.hpp"

namespace recrun::host {

std::string resolve_source(const Registry& registry, const std::filesystem::path& dir,
                           const std::string& source) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw DataError(fmt::format("data directory '{}' does not exist", dir.string()));
  if (!source.empty() && source != "auto") {
    registry.data_source(source);  // throws with the list of known sources
    return source;
  }
  std::vector<std::string> names;
  for (const auto& info : registry.data_sources()) {
    names.push_back(info.name);
    if (info.make()->detect(dir)) return info.name;
  }
  throw DataError(fmt::format(
      "cannot tell the format of '{}': no data source recognises it (known: {}); name one with "
      "--source or [data] source",
      dir.string(), names.empty() ? "none loaded" : fmt::format("{}", fmt::join(names, ", "))));
}

Dataset load_dataset(const Registry& registry, const std::filesystem::path& dir,
                     const std::string& source) {
  const std::string name = resolve_source(registry, dir, source);
  auto reader = registry.data_source(name).make();
  std::map<std::string, std::int64_t> warnings;
  Dataset d = reader->load(dir, [&](const std::string& w) { ++warnings[w]; });
  for (const auto& [w, n] : warnings)
    fmt::print(stderr, "warning: {}{}\n", w, n > 1 ? fmt::format(" ({} times)", n) : "");
  if (d.num_interactions() == 0)
    throw DataError(fmt::format("{}: no interactions were loaded", dir.string()));
  return d;
}

}  // namespace recrun::host
