// Headers of delimited files (recrun/text.hpp): finding a column by its names, refusing
// duplicated ones and CR-only line endings.
#include "recrun/text.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "recrun/error.hpp"

namespace recrun::text {

namespace {
// Header names compare without case and surrounding blanks.
bool iequal_trimmed(std::string_view a, std::string_view b) {
  a = trim(a);
  b = trim(b);
  if (a.size() != b.size()) return false;
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
}  // namespace

std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names) {
  for (std::size_t i = 0; i < header.size(); ++i)
    for (std::string_view n : names)
      if (iequal_trimmed(header[i], n)) return i;
  return std::nullopt;
}

std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names,
                                       const Location& at) {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < header.size(); ++i)
    for (std::string_view n : names)
      if (iequal_trimmed(header[i], n)) {
        if (found && *found != i)
          at.fail(fmt::format("columns {} '{}' and {} '{}' of the header name the same thing; keep "
                              "one of them",
                              *found + 1, trim(header[*found]), i + 1, trim(header[i])));
        found = i;
      }
  return found;
}

void check_unique_columns(std::span<const std::string_view> header, const Location& at) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    // A carriage return inside the first line: the file breaks lines with CR alone (classic
    // Mac), so the whole file reads as one line.
    if (trim(header[i]).find('\r') != std::string_view::npos)
      at.fail("the lines end with a carriage return alone (CR, old Mac line endings), so the file "
              "reads as one line; convert it to LF line endings, e.g. tr '\\r' '\\n' < FILE > "
              "NEW_FILE");
    if (trim(header[i]).empty()) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (iequal_trimmed(header[i], header[j]))
        at.fail(fmt::format("duplicated column '{}' in the header (columns {} and {}); every "
                            "column name must be unique",
                            printable(trim(header[i]), 60), j + 1, i + 1));
  }
}

}  // namespace recrun::text
