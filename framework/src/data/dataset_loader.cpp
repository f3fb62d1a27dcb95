#include "data/dataset_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "data/title_embed.hpp"
#include "sdk/shared_util.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"

namespace recrun::data {

std::string resolve_source(const Registry& registry, const std::filesystem::path& dir,
                           const std::string& source) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    const auto st = std::filesystem::status(dir, ec);
    if (std::filesystem::exists(st))
      throw DataError(fmt::format("data directory '{}' is {}, not a directory; name the directory "
                                  "that holds the data files",
                                  text::printable(dir.string()), util::file_kind(st.type())));
    throw DataError(fmt::format("data directory '{}' does not exist", text::printable(dir.string())));
  }
  if (!source.empty() && source != "auto") {
    registry.data_source(source);  // throws with the list of known sources
    return source;
  }
  std::vector<std::string> names;
  for (const auto& info : registry.data_sources()) {
    names.push_back(info.name);
    if (info.make()->detect(dir)) return info.name;
  }
  // A data file that is there but cannot be read as one (a FIFO, a folder, a device, a symlink
  // loop) is the likely reason: name it rather than only the directory.
  std::string unreadable;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension();
    if (ext != ".csv" && ext != ".tsv" && ext != ".dat") continue;
    std::error_code fec;
    const auto st = std::filesystem::status(e.path(), fec);
    if (std::filesystem::is_regular_file(st)) continue;
    unreadable += fmt::format(
        "; '{}' is {}, not a regular file: replace it with the data file",
        text::printable(e.path().string()),
        fec == std::errc::too_many_symbolic_link_levels ? "a symbolic link loop"
        : fec                                           ? fmt::format("unreadable ({})", fec.message())
                                                        : util::file_kind(st.type()));
  }
  throw DataError(fmt::format(
      "cannot tell the format of '{}': no data source recognises it (known: {}){}; name one with "
      "--source or [data] source",
      text::printable(dir.string()),
      names.empty() ? "none loaded" : fmt::format("{}", fmt::join(names, ", ")), unreadable));
}

namespace {

// Warnings name files by the path the directory was reached by; the cache stores them relative
// to the directory so that a later load through another path ("./data" vs "/abs/data") names
// its own.
constexpr std::string_view kDirMark = "\x01";

WarningCounts relative_warnings(WarningCounts warnings, const std::filesystem::path& dir) {
  const std::string prefix = dir.string();
  for (auto& [w, n] : warnings)
    if (!prefix.empty() && w.starts_with(prefix)) w = std::string(kDirMark) + w.substr(prefix.size());
  return warnings;
}

void resolve_warnings(WarningCounts& warnings, const std::filesystem::path& dir) {
  for (auto& [w, n] : warnings)
    if (w.starts_with(kDirMark)) w = dir.string() + w.substr(kDirMark.size());
}

bool cache_disabled_by_env() {
  const char* v = std::getenv("RECRUN_NO_CACHE");
  return v && *v && std::string_view(v) != "0";
}

// A source with titles but no precomputed title vectors (MovieLens' movies.csv) gets them from
// the titles' text, so that the `title` feature works on it as it stands; the binary cache keeps
// them, so this runs once per data set.
void add_title_vectors(Dataset& d) {
  if (d.dense.count("title") || d.titles.empty()) return;
  if (std::none_of(d.titles.begin(), d.titles.end(), [](const auto& t) { return !t.empty(); }))
    return;
  try {
    d.dense["title"] = embed_titles(d.titles, TitleEmbedOptions{}).feature;
  } catch (const Error& e) {
    // Titles without a single usable term: the data set simply has no title feature.
    fmt::print(stderr, "note: no title vectors for {}: {}\n", d.name, e.what());
  }
}

}  // namespace

LoadResult load_dataset(const Registry& registry, const std::filesystem::path& dir,
                        const std::string& source, const LoadOptions& options) {
  LoadResult result;
  result.source = resolve_source(registry, dir, source);
  auto reader = registry.data_source(result.source).make();
  const bool cached = options.use_cache && options.derive_title_vectors && !cache_disabled_by_env();

  std::string key;
  std::filesystem::path primary, fallback;
  if (cached) {
    key = cache_key(result.source, registry.origin(ComponentKind::data_source, result.source),
                    reader->inputs(dir));
    primary = primary_cache_file(dir, result.source);
    fallback = fallback_cache_file(options.fallback_cache_dir, dir, result.source);
    for (const auto& file : {primary, fallback}) {
      std::string note;
      auto hit = read_cache(file, key, &note);
      if (!note.empty()) fmt::print(stderr, "note: {}\n", note);
      if (hit) {
        result.dataset = std::move(hit->dataset);
        // The directory may be reached by another path than when the cache was written.
        result.dataset.source_dir = dir;
        result.warnings = std::move(hit->warnings);
        resolve_warnings(result.warnings, dir);
        result.from_cache = true;
        result.cache_file = file;
        break;
      }
    }
  }

  if (!result.from_cache) {
    std::map<std::string, std::int64_t> counts;
    result.dataset = reader->load(dir, [&](const std::string& w) { ++counts[w]; });
    result.warnings.assign(counts.begin(), counts.end());
    if (result.dataset.num_interactions() == 0)
      throw DataError(fmt::format("{}: no interactions were loaded", dir.string()));
    if (options.derive_title_vectors) add_title_vectors(result.dataset);
    if (cached) {
      const std::string bytes =
          encode_dataset(result.dataset, relative_warnings(result.warnings, dir), key);
      // A read-only data directory (a shared mount, the installed examples) falls back to the
      // results folder; failing both only costs speed, so it is a note, not an error.
      if (write_cache(primary, bytes))
        result.cache_file = primary;
      else if (write_cache(fallback, bytes))
        result.cache_file = fallback;
      else
        fmt::print(stderr, "note: cannot write a data cache in '{}' or '{}'; loads stay uncached\n",
                   primary.parent_path().string(), fallback.parent_path().string());
    }
  }
  // Said once per data set: when its files are read. A load from the cache keeps them in its
  // record without repeating them (`recrun data stats` lists them).
  if (options.print_warnings && !result.from_cache)
    for (const auto& [w, n] : result.warnings)
      fmt::print(stderr, "warning: {}{}\n", text::terminal_safe(w), n > 1 ? fmt::format(" ({} times)", n) : "");
  return result;
}

Dataset load_dataset(const Registry& registry, const std::filesystem::path& dir,
                     const std::string& source) {
  return load_dataset(registry, dir, source, LoadOptions{}).dataset;
}

}  // namespace recrun::data
