#include "results/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "recrun/error.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::results {

Cell Cell::of(std::optional<double> value, int digits) {
  if (!value) return {"-", std::nullopt};
  if (std::isnan(*value)) return {"nan", value};
  return {fmt::format("{:.{}f}", *value, digits), value};
}

Cell Cell::of_int(long long value) {
  return {fmt::format("{}", value), static_cast<double>(value), true};
}

Format parse_format(std::string_view text, std::string_view flag) {
  if (text == "table") return Format::table;
  if (text == "csv") return Format::csv;
  if (text == "md") return Format::md;
  if (text == "json") return Format::json;
  throw Error(fmt::format("{} '{}': must be table, csv, md or json", flag, text));
}

namespace {

std::string md_field(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

// Display width of UTF-8 text: its code points (the ± sign is one column, two bytes).
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::string render(const Table& t, Format format) {
  std::string out;
  switch (format) {
    case Format::csv: {
      std::vector<std::string> h;
      for (const auto& c : t.header) h.push_back(util::csv_field(c));
      out += fmt::format("{}\n", fmt::join(h, ","));
      for (const auto& row : t.rows) {
        std::vector<std::string> cells;
        for (const auto& c : row) cells.push_back(util::csv_field(!c.number && c.text == "-" ? "" : c.text));  // missing: empty
        out += fmt::format("{}\n", fmt::join(cells, ","));
      }
      return out;
    }
    case Format::md: {
      std::vector<std::string> h, rule;
      for (const auto& c : t.header) h.push_back(md_field(c)), rule.push_back("---");
      out += fmt::format("| {} |\n|{}|\n", fmt::join(h, " | "), fmt::join(rule, "|"));
      for (const auto& row : t.rows) {
        std::vector<std::string> cells;
        for (const auto& c : row) cells.push_back(md_field(c.text));
        out += fmt::format("| {} |\n", fmt::join(cells, " | "));
      }
      return out;
    }
    case Format::json: {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& row : t.rows) {
        nlohmann::json o = nlohmann::json::object();
        for (std::size_t i = 0; i < row.size() && i < t.header.size(); ++i) {
          const Cell& c = row[i];
          if (!c.json.empty())
            o[t.header[i]] = nlohmann::json::parse(c.json);
          else if (c.number && c.integer)
            o[t.header[i]] = static_cast<std::int64_t>(*c.number);
          else if (c.number)
            o[t.header[i]] = std::isfinite(*c.number) ? nlohmann::json(*c.number) : nlohmann::json();
          else if (c.text == "-" || c.text.empty())
            o[t.header[i]] = nullptr;
          else
            o[t.header[i]] = c.text;
        }
        rows.push_back(std::move(o));
      }
      // Replace: a run's error text may hold bytes that are not UTF-8.
      return rows.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    case Format::table: {
      std::vector<std::size_t> w(t.header.size(), 0);
      std::vector<bool> numeric(t.header.size(), true);
      for (std::size_t i = 0; i < t.header.size(); ++i) w[i] = width(t.header[i]);
      for (const auto& row : t.rows)
        for (std::size_t i = 0; i < row.size() && i < w.size(); ++i) {
          w[i] = std::max(w[i], width(row[i].text));
          if (!row[i].number && row[i].text != "-") numeric[i] = false;
        }
      const auto line = [&](const std::vector<std::string>& cells, bool header) {
        std::string l;
        for (std::size_t i = 0; i < cells.size() && i < w.size(); ++i) {
          const std::string pad(w[i] - std::min(w[i], width(cells[i])), ' ');
          if (i) l += "  ";
          l += numeric[i] ? pad + cells[i] : cells[i] + pad;
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        return l + "\n";
      };
      out += line(t.header, true);
      std::size_t total = 0;
      for (const auto x : w) total += x + 2;
      out += std::string(total >= 2 ? total - 2 : 0, '-') + "\n";
      for (const auto& row : t.rows) {
        std::vector<std::string> cells;
        for (const auto& c : row) cells.push_back(c.text);
        out += line(cells, false);
      }
      if (t.rows.empty()) out += "(none)\n";
      return out;
    }
  }
  return out;
}

}  // namespace recrun::results
