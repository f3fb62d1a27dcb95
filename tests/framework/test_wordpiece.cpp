// The WordPiece tokenizer of `embed-titles --encoder torchscript`, on hand-worked cases: BERT's
// clean-up, lower-casing and accent stripping, punctuation splitting, "##" subwords, [UNK],
// [CLS]/[SEP] with truncation, and reading vocab.txt.
#include <gtest/gtest.h>

#include <fstream>

#include "data/wordpiece.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
using data::CaseMode;
using data::WordPiece;
using Words = std::vector<std::string>;
using namespace std::string_literals;

// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, then the words in order.
Words test_vocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "toy", "story", "##s",  "un", "##aff",
          "##able", "amelie", "'",   ",",     ".",   "jump", "##ing", "a",   "##b", "##c", "é"};
}

WordPiece uncased(std::int64_t max_chars = 100) {
  return WordPiece(test_vocab(), CaseMode::lower, "test vocabulary", max_chars);
}

TEST(WordPiece, LowerCasesAndStripsAccentsForUncasedModels) {
  const auto wp = uncased();
  EXPECT_TRUE(wp.lower_case());
  // Precomposed é (U+00E9) and e + combining acute (U+0301) both become plain e.
  EXPECT_EQ(wp.basic_tokenize("Amélie"), Words{"amelie"});
  EXPECT_EQ(wp.basic_tokenize("Ame\xcc\x81lie"), Words{"amelie"});
  EXPECT_EQ(wp.basic_tokenize("NAÏVE ÉCOLE Ångström"), (Words{"naive", "ecole", "angstrom"}));
  // Full case mapping: capital I with dot above lower-cases to i + U+0307, whose mark goes.
  EXPECT_EQ(wp.basic_tokenize("\xc4\xb0stanbul"), Words{"istanbul"});
  // ß has no accent and no single-letter lower case change.
  EXPECT_EQ(wp.basic_tokenize("Straße"), Words{"straße"});
}

TEST(WordPiece, KeepsCaseAndAccentsForCasedModels) {
  const WordPiece wp(test_vocab(), CaseMode::keep, "test vocabulary");
  EXPECT_FALSE(wp.lower_case());
  EXPECT_EQ(wp.basic_tokenize("Amélie Toy"), (Words{"Amélie", "Toy"}));
  // "é" is an entry, "Am" is not: a cased word with no match is [UNK] as a whole.
  EXPECT_EQ(wp.tokenize("é Amélie"), (Words{"é", "[UNK]"}));
}

TEST(WordPiece, DetectsCasedVocabulariesFromUpperCaseEntries) {
  // Bracketed special tokens do not count; "Toy" does.
  EXPECT_TRUE(WordPiece(test_vocab(), CaseMode::detect, "v").lower_case());
  auto cased = test_vocab();
  cased.push_back("Toy");
  EXPECT_FALSE(WordPiece(cased, CaseMode::detect, "v").lower_case());
  EXPECT_EQ(data::parse_case_mode("auto", "--case"), CaseMode::detect);
  EXPECT_THROW(data::parse_case_mode("upper", "--case"), ParamError);
}

TEST(WordPiece, SplitsPunctuationIntoWordsOfTheirOwn) {
  const auto wp = uncased();
  EXPECT_EQ(wp.basic_tokenize("Amélie's Toy-Story!"),
            (Words{"amelie", "'", "s", "toy", "-", "story", "!"}));
  // ASCII symbols ($, +, ^, `) split like punctuation, as in BERT; digits do not.
  EXPECT_EQ(wp.basic_tokenize("$5+x^2`"), (Words{"$", "5", "+", "x", "^", "2", "`"}));
  // Unicode punctuation (category P): guillemets, em dash, inverted question mark.
  EXPECT_EQ(wp.basic_tokenize("\xc2\xab" "Heat\xc2\xbb\xe2\x80\x94\xc2\xbf" "a?"),
            (Words{"\xc2\xab", "heat", "\xc2\xbb", "\xe2\x80\x94", "\xc2\xbf", "a", "?"}));
  EXPECT_EQ(wp.basic_tokenize("a.b,,c"), (Words{"a", ".", "b", ",", ",", "c"}));
}

TEST(WordPiece, CleansWhitespaceAndControlCharacters) {
  const auto wp = uncased();
  // Tab, newline and no-break space (Zs) separate words; a zero-width space (Cf), BEL and NUL
  // are dropped without separating.
  EXPECT_EQ(wp.basic_tokenize("toy\tstory\nthe\xc2\xa0" "a\xe2\x80\x8b" "b\x07" "c\0d"s),
            (Words{"toy", "story", "the", "abcd"}));
  EXPECT_TRUE(wp.basic_tokenize(" \t\r\n ").empty());
  EXPECT_TRUE(wp.basic_tokenize("").empty());
  // CJK ideographs are words of their own; Hangul is not split.
  EXPECT_EQ(wp.basic_tokenize("東京 story"), (Words{"東", "京", "story"}));
  // (Uncased models decompose Hangul syllables to jamo with NFD, as the reference does.)
  EXPECT_EQ(WordPiece(test_vocab(), CaseMode::keep, "v").basic_tokenize("서울"), Words{"서울"});
}

TEST(WordPiece, InvalidUtf8IsReplacedAndDroppedWithoutCrashing) {
  const auto wp = uncased();
  // A stray continuation byte, an overlong form, a surrogate and a cut-off sequence.
  EXPECT_EQ(wp.basic_tokenize("toy\xff story"), (Words{"toy", "story"}));
  EXPECT_EQ(wp.basic_tokenize("a\xc0\xaf" "b"), Words{"ab"});
  EXPECT_EQ(wp.basic_tokenize("a\xed\xa0\x80" "b"), Words{"ab"});
  EXPECT_EQ(wp.basic_tokenize("toy \xe2\x82"), Words{"toy"});
  // Every byte value, in every position, tokenizes.
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t k = 0; k < 8; ++k) EXPECT_NO_THROW(wp.encode(all.substr(k), 512));
}

TEST(WordPiece, GreedyLongestMatchFirstSubwords) {
  const auto wp = uncased();
  EXPECT_EQ(wp.tokenize("unaffable"), (Words{"un", "##aff", "##able"}));
  EXPECT_EQ(wp.tokenize("Toys jumping"), (Words{"toy", "##s", "jump", "##ing"}));
  // "abc": "a" then "##b" then "##c"; "abd": no "##d", so the whole word is [UNK].
  EXPECT_EQ(wp.tokenize("abc abd"), (Words{"a", "##b", "##c", "[UNK]"}));
  // A piece that only exists as a word start is not used inside a word: "toytoy" -> [UNK].
  EXPECT_EQ(wp.tokenize("toytoy"), Words{"[UNK]"});
  EXPECT_EQ(wp.tokenize("Amélie's toy."), (Words{"amelie", "'", "[UNK]", "toy", "."}));
}

TEST(WordPiece, WordsOverTheCharacterLimitAreUnknown) {
  const auto wp = uncased(4);
  // Characters are code points: "toys" (4) is split, "story" (5) is [UNK]; so is "ééééé".
  EXPECT_EQ(wp.tokenize("toys story"), (Words{"toy", "##s", "[UNK]"}));
  const WordPiece cased(test_vocab(), CaseMode::keep, "v", 4);
  EXPECT_EQ(cased.tokenize("éééé ééééé"), (Words{"[UNK]", "[UNK]"}));  // "##é" is no entry
}

TEST(WordPiece, EncodeAddsClsAndSepAndTruncates) {
  const auto wp = uncased();
  using Ids = std::vector<std::int64_t>;
  // the=4 toy=5 story=6 ##s=7
  EXPECT_EQ(wp.encode("The toy story", 16), (Ids{2, 4, 5, 6, 3}));
  EXPECT_EQ(wp.encode("The toy story", 5), (Ids{2, 4, 5, 6, 3}));
  EXPECT_EQ(wp.encode("The toy story", 4), (Ids{2, 4, 5, 3}));
  // Truncation counts pieces, not words: "toys" is two.
  EXPECT_EQ(wp.encode("toys story", 3), (Ids{2, 5, 3}));
  EXPECT_EQ(wp.encode("toys story", 2), (Ids{2, 3}));
  EXPECT_EQ(wp.encode("", 8), (Ids{2, 3}));
  EXPECT_THROW(wp.encode("toy", 1), ParamError);
  // A long text stops being read once the limit is reached.
  std::string long_text;
  for (int i = 0; i < 100000; ++i) long_text += "toy ";
  EXPECT_EQ(wp.encode(long_text, 8).size(), 8u);
}

TEST(WordPiece, RequiresTheSpecialTokens) {
  Words v = test_vocab();
  v.erase(v.begin() + 1);  // [UNK]
  try {
    WordPiece(v, CaseMode::lower, "vocabulary file 'x.txt'");
    FAIL() << "a vocabulary without [UNK] was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary file 'x.txt' has no [UNK] entry"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(WordPiece({}, CaseMode::lower, "v"), Error);
}

TEST(WordPiece, ReadsVocabTxtWithIdsFromLineNumbers) {
  const fs::path dir = test::temp_dir("wordpiece");
  {
    // A byte-order mark and CRLF endings, as Windows editors write them.
    std::ofstream out(dir / "vocab.txt", std::ios::binary);
    out << "\xef\xbb\xbf[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\ntoy\r\n##s\r\n";
  }
  const auto wp = WordPiece::from_file(dir / "vocab.txt", CaseMode::detect);
  EXPECT_EQ(wp.size(), 6);
  EXPECT_EQ(wp.pad_id(), 0);
  EXPECT_EQ(wp.unk_id(), 1);
  EXPECT_EQ(wp.cls_id(), 2);
  EXPECT_EQ(wp.sep_id(), 3);
  EXPECT_EQ(wp.id("##s"), 5);
  EXPECT_EQ(wp.encode("Toys", 8), (std::vector<std::int64_t>{2, 4, 5, 3}));

  try {
    WordPiece::from_file(dir / "missing.txt", CaseMode::detect);
    FAIL() << "a missing vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
  {
    std::ofstream out(dir / "bad.txt", std::ios::binary);
    out << "[PAD]\n[UNK]\nto\xffy\n";
  }
  try {
    WordPiece::from_file(dir / "bad.txt", CaseMode::detect);
    FAIL() << "a vocabulary that is not UTF-8 was accepted";
  } catch (const DataError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("bad.txt"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "empty.txt", std::ios::binary).flush();
  EXPECT_THROW(WordPiece::from_file(dir / "empty.txt", CaseMode::detect), Error);
  EXPECT_THROW(WordPiece::from_file(dir, CaseMode::detect), Error);  // a folder
}

}  // namespace
}  // namespace recrun
