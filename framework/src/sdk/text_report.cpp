// What a data source reports about its files (recrun/text.hpp): their fingerprint, the data set's
// name, and counted warnings for skipped rows.
#include "recrun/text.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <bit>

#include "recrun/error.hpp"

namespace recrun::text {

void Fingerprint::add(std::string_view name, std::string_view contents) {
  // Each file folds its name's hash, its size and its contents' hash into the state, which seeds
  // the next step: the order of files matters and no two (name, contents) pairs run together.
  // XXH3-64 (libxxhash) throughout; format version 2 (version 1 used a hand-written hash).
  const std::uint64_t parts[3] = {XXH3_64bits(name.data(), name.size()),
                                  static_cast<std::uint64_t>(contents.size()),
                                  XXH3_64bits(contents.data(), contents.size())};
  unsigned char bytes[sizeof parts];
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 8; ++k) bytes[i * 8 + k] = static_cast<unsigned char>(parts[i] >> (8 * k));
  state_ = XXH3_64bits_withSeed(bytes, sizeof bytes, state_);
}

std::string Fingerprint::hex() const { return fmt::format("{:016x}", state_); }

std::string directory_name(const std::filesystem::path& dir) {
  std::filesystem::path p = dir.lexically_normal();
  if (p.has_filename() && p.filename() != "." && p.filename() != "..") return p.filename().string();
  std::error_code ec;
  const auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(dir, ec), ec);
  if (!ec && abs.has_filename()) return abs.filename().string();
  p = p.parent_path();
  return p.has_filename() ? p.filename().string() : std::string("data");
}

void SkipReporter::skip(const Location& at, std::string_view what, std::string_view detail) {
  std::string key = fmt::format("{}\n{}", at.file ? at.file->string() : std::string{}, what);
  auto it = first_.find(key);
  if (it == first_.end()) {
    std::string message =
        at.file ? fmt::format("{}: {}; row skipped (first at line {}: {})", at.file->string(), what,
                              at.line, detail)
                : fmt::format("{}; row skipped ({})", what, detail);
    it = first_.emplace(std::move(key), std::move(message)).first;
  }
  sink_(it->second);
}

void SkipReporter::note(const std::filesystem::path& file, std::string_view what) {
  sink_(fmt::format("{}: {}", file.string(), what));
}

}  // namespace recrun::text
