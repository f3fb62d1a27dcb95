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
  /// An integer (an id, a count): JSON writes it without a fraction.
  bool integer = false;
  /// JSON text that `json` output writes as is (a run's parameters as a typed object).
  std::string json = {};
  static Cell of(std::string text) { return {std::move(text), std::nullopt}; }
  /// `text` in table, csv and md output; the value `json_text` in json output.
  static Cell of_json(std::string text, std::string json_text) {
    return {std::move(text), std::nullopt, false, std::move(json_text)};
  }
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
/// RFC 4180, `md` is a pipe table with | escaped, `json` an array of objects keyed by header
/// (integers as integers, a missing value or empty text as null, a cell's own JSON as itself).
std::string render(const Table& table, Format format);

}  // namespace recrun::results
