// Tests for the SDK's text parsing helpers (recrun/text.hpp) that the data sources share.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
namespace tx = text;

std::vector<std::string> lines_of(std::string_view data) {
  std::vector<std::string> out;
  tx::LineReader r(data);
  for (std::string_view line; r.next(line);) out.emplace_back(line);
  return out;
}

TEST(Text, LineReaderHandlesEndingsBomAndLastLine) {
  EXPECT_EQ(lines_of(""), std::vector<std::string>{});
  EXPECT_EQ(lines_of("a"), std::vector<std::string>{"a"});
  EXPECT_EQ(lines_of("a\n"), std::vector<std::string>{"a"});
  EXPECT_EQ(lines_of("\xEF\xBB\xBF" "a\r\nb\n\nc"), (std::vector<std::string>{"a", "b", "", "c"}));
  tx::LineReader r("x\ny\n");
  std::string_view line;
  ASSERT_TRUE(r.next(line));
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(r.line_no(), 2);
  EXPECT_FALSE(r.next(line));
}

TEST(Text, SplitsOnCharactersAndStrings) {
  std::vector<std::string_view> f;
  EXPECT_EQ(tx::split("a,b,,c", ',', f), 4u);
  EXPECT_EQ(f[2], "");
  EXPECT_EQ(tx::split("", ',', f), 1u);
  EXPECT_EQ(tx::split("1::Toy Story::Comedy", "::", f), 3u);
  EXPECT_EQ(f[1], "Toy Story");
  EXPECT_EQ(tx::split("a::", "::", f), 2u);
}

TEST(Text, CsvSplitterUnquotes) {
  const fs::path file = "movies.csv";
  tx::CsvSplitter csv;
  const tx::Location at{&file, 4};
  auto f = csv.split(R"x(1,"Dr. Strangelove, or ""Bomb"" (1964)",Comedy|War)x", at);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[1], R"x(Dr. Strangelove, or "Bomb" (1964))x");
  EXPECT_EQ(f[2], "Comedy|War");
  f = csv.split(R"("",x,"")", at);
  EXPECT_EQ(f, (std::vector<std::string_view>{"", "x", ""}));
  f = csv.split("a,", at);
  EXPECT_EQ(f, (std::vector<std::string_view>{"a", ""}));
  try {
    csv.split(R"(1,"open,2)", at);
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(e.line(), 4);
    EXPECT_NE(std::string(e.what()).find("movies.csv:4: unterminated quoted field"), std::string::npos);
  }
}

TEST(Text, NumbersAreStrict) {
  EXPECT_EQ(tx::to_int("42"), 42);
  EXPECT_EQ(tx::to_int(" -7\r"), -7);
  EXPECT_EQ(tx::to_int("+3"), 3);
  EXPECT_FALSE(tx::to_int("4x"));
  EXPECT_FALSE(tx::to_int(""));
  EXPECT_FALSE(tx::to_int("99999999999999999999"));  // overflow is an error, not a wrap
  EXPECT_EQ(tx::to_double("2.5e3"), 2500.0);
  EXPECT_FALSE(tx::to_double("1.2.3"));
  const fs::path file = "x.tsv";
  EXPECT_THROW(tx::parse_int("1e3", {&file, 2}, "time"), DataError);
  try {
    tx::parse_double("", {&file, 9}, "year");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "x.tsv:9: column 'year' is empty; expected a number");
  }
  // An out-of-range timestamp says so (it was "is not an integer"), and raw binary bytes in a
  // field are escaped in the message instead of echoed.
  const auto message = [&](std::string_view field) {
    try {
      tx::parse_int(field, {&file, 3}, "timestamp");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("99999999999999999999").find("is out of range"), std::string::npos);
  const std::string binary = message(std::string("\x01\xff\xfe\x80z", 5));
  EXPECT_NE(binary.find("'\\x01\\xff\\xfe\\x80z' is not an integer"), std::string::npos) << binary;
  for (const char c : binary) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << binary;
  std::vector<float> v;
  tx::parse_floats(" 1 -2.5\t3e-1 ", {&file, 1}, "embedding", v);
  EXPECT_EQ(v, (std::vector<float>{1.0f, -2.5f, 0.3f}));
}

TEST(Text, IntegerIdsAreCanonical) {
  const fs::path file = "f";
  const tx::Location at{&file, 1};
  std::string buf;
  EXPECT_EQ(tx::integer_id("42", at, "item", buf), "42");
  EXPECT_EQ(tx::integer_id("007", at, "item", buf), "7");
  EXPECT_EQ(tx::integer_id("+5", at, "item", buf), "5");
  EXPECT_EQ(tx::integer_id("-0", at, "item", buf), "0");
  EXPECT_EQ(tx::integer_id("-012", at, "item", buf), "-12");
  EXPECT_EQ(tx::integer_id(" 000 ", at, "item", buf), "0");
  EXPECT_EQ(tx::integer_id("123456789012345678901234567890", at, "item", buf),
            "123456789012345678901234567890");  // ids need not fit in 64 bits
  for (const char* bad : {"", "-", "1.0", "1e5", "a1", "1 2"})
    EXPECT_THROW(tx::integer_id(bad, at, "item", buf), DataError) << bad;
}

TEST(Text, FindsColumnsCaseInsensitively) {
  const std::vector<std::string_view> header = {"UserId", " movieId ", "rating"};
  constexpr std::string_view item[] = {"item", "movieid"};
  constexpr std::string_view time[] = {"timestamp"};
  EXPECT_EQ(tx::find_column(header, item), 1u);
  EXPECT_FALSE(tx::find_column(header, time));
}

TEST(Text, Utf8AndLatin1) {
  EXPECT_TRUE(tx::is_utf8("plain"));
  EXPECT_TRUE(tx::is_utf8("Caf\xC3\xA9 \xE2\x80\x93"));
  EXPECT_FALSE(tx::is_utf8("Caf\xE9"));
  EXPECT_FALSE(tx::is_utf8("\xC0\xAF"));  // overlong
  EXPECT_FALSE(tx::is_utf8("\xED\xA0\x80"));  // surrogate
  EXPECT_EQ(tx::latin1_to_utf8("Caf\xE9 \xFF"), "Caf\xC3\xA9 \xC3\xBF");
}

TEST(Text, FingerprintIsStableAndSensitive) {
  // Pinned: fingerprints are part of trial keys stored with results, so they must never change
  // between builds or machines (format 2: XXH3-64; see docs/data.md).
  tx::Fingerprint a, b;
  a.add("ratings.csv", "1,2,3\n");
  b.add("ratings.csv", "1,2,3\n");
  EXPECT_EQ(a.hex(), b.hex());
  EXPECT_EQ(a.hex(), "b84cb76ed29d5c0c");
  b.add("genres.tsv", "");
  EXPECT_NE(a.hex(), b.hex());
  tx::Fingerprint c;
  c.add("ratings.csv", "1,2,4\n");
  EXPECT_NE(a.hex(), c.hex());
  // Name and contents do not run together.
  tx::Fingerprint d, e;
  d.add("ab", "c");
  e.add("a", "bc");
  EXPECT_NE(d.hex(), e.hex());
}

TEST(Text, FileBytesMapsAndReportsMissingFiles) {
  const auto dir = test::temp_dir("bytes");
  {
    std::ofstream(dir / "a.txt") << "hello\n";
    std::ofstream(dir / "empty.txt");
  }
  tx::FileBytes a(dir / "a.txt");
  EXPECT_EQ(a.view(), "hello\n");
  tx::FileBytes moved = std::move(a);
  EXPECT_EQ(moved.view(), "hello\n");
  EXPECT_EQ(tx::FileBytes(dir / "empty.txt").view(), "");
  try {
    tx::FileBytes missing(dir / "nope.csv");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.csv: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tx::directory_name("data/ml-latest-small/"), "ml-latest-small");
  EXPECT_EQ(tx::directory_name(dir / "x"), "x");
}

}  // namespace
}  // namespace recrun
