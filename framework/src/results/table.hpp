// Tables of `recrun results` and their formats: aligned text, CSV, Markdown and JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recrun::results {

/// One cell: its text, and for numbers the value (JSON writes it as a number; NaN as null).
struct Cell {
  std::string text;
  std::optional<double> number;
  static Cell of(std::string text) { return {std::move(text), std::nullopt}; }
  /// `digits` decimals in text; "-" for a missing value.
  static Cell of(std::optional<double> value, int digits = 4);
  static Cell of_int(long long value);
};

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<Cell>> rows;
};

enum class Format { table, csv, md, json };
/// "table", "csv", "md" or "json"; throws recrun::Error naming `flag` otherwise.
Format parse_format(std::string_view text, std::string_view flag = "--format");

/// The table as text in `format`: `table` pads columns (numbers right-aligned), `csv` quotes as
/// RFC 4180, `md` is a pipe table with | escaped, `json` an array of objects keyed by header.
std::string render(const Table& table, Format format);

}  // namespace recrun::results
