#include "data/wordpiece.hpp"

#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <limits>

#include "sdk/safe_file.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"

namespace recrun::data {
namespace {

constexpr UChar32 kReplacement = 0xFFFD;

// The CJK Unified Ideographs blocks (and their compatibility block) of the reference
// tokenizer; Hiragana, Katakana and Hangul are not among them, as there.
bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_space(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// General category C* (Cc, Cf, Cs, Co, Cn); tab, LF and CR count as spaces instead.
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return (U_GET_GC_MASK(c) & U_GC_C_MASK) != 0;
}

// ASCII symbols such as '$', '^' and '`' are not category P, but BERT splits them all the same.
bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  return u_ispunct(c) != 0;
}

void append_utf8(std::string& out, UChar32 c) {
  char buf[U8_MAX_LENGTH];
  std::int32_t n = 0;
  U8_APPEND_UNSAFE(buf, n, c);
  out.append(buf, static_cast<std::size_t>(n));
}

// Steps 1 and 2: code points, cleaned, with spaces around CJK ideographs.
std::vector<UChar32> cleaned_code_points(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw Error(fmt::format("text of {} bytes is too long to tokenize", text.size()));
  std::vector<UChar32> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const std::uint8_t*>(text.data());
  const auto n = static_cast<std::int32_t>(text.size());
  for (std::int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0) c = kReplacement;  // ill-formed UTF-8
    if (c == 0 || c == kReplacement || is_control(c)) continue;
    if (is_space(c)) {
      out.push_back(' ');
    } else if (is_cjk(c)) {
      out.push_back(' ');
      out.push_back(c);
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Step 3 for an uncased model: lower-case, NFD, drop non-spacing marks.
std::vector<UChar32> lower_and_strip_accents(const UChar32* begin, const UChar32* end) {
  icu::UnicodeString word;
  for (const UChar32* p = begin; p != end; ++p) word.append(*p);
  word.toLower(icu::Locale::getRoot());
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  icu::UnicodeString decomposed;
  if (U_SUCCESS(status)) decomposed = nfd->normalize(word, status);
  if (U_FAILURE(status))
    throw Error(fmt::format("ICU cannot decompose text to NFD: {}", u_errorName(status)));
  std::vector<UChar32> out;
  for (std::int32_t i = 0; i < decomposed.length();) {
    const UChar32 c = decomposed.char32At(i);
    i += U16_LENGTH(c);
    if (u_charType(c) != U_NON_SPACING_MARK) out.push_back(c);
  }
  return out;
}

}  // namespace

CaseMode parse_case_mode(std::string_view text, std::string_view flag) {
  if (text == "auto") return CaseMode::detect;
  if (text == "lower") return CaseMode::lower;
  if (text == "keep") return CaseMode::keep;
  throw ParamError(fmt::format("{} must be auto, lower or keep (got '{}')", flag, text));
}

WordPiece::WordPiece(std::vector<std::string> vocab, CaseMode mode, std::string origin,
                     std::int64_t max_chars_per_word)
    : vocab_(std::move(vocab)), max_chars_(max_chars_per_word) {
  if (vocab_.empty()) throw Error(fmt::format("{} has no entries", origin));
  ids_.reserve(vocab_.size());
  for (std::size_t i = 0; i < vocab_.size(); ++i) ids_[vocab_[i]] = static_cast<std::int64_t>(i);
  std::vector<std::string> missing;
  const auto need = [&](const char* token, std::int64_t& slot) {
    slot = id(token);
    if (slot < 0) missing.emplace_back(token);
  };
  need("[CLS]", cls_);
  need("[SEP]", sep_);
  need("[PAD]", pad_);
  need("[UNK]", unk_);
  if (!missing.empty())
    throw Error(fmt::format("{} has no {} entr{} (of {} entries); a BERT WordPiece vocab.txt "
                            "has [PAD], [UNK], [CLS] and [SEP] lines; is this the model's "
                            "vocab.txt?",
                            origin, fmt::join(missing, ", "), missing.size() == 1 ? "y" : "ies",
                            vocab_.size()));
  if (mode == CaseMode::detect) {
    lower_ = true;
    for (const std::string& e : vocab_) {
      if (e.size() >= 2 && e.front() == '[' && e.back() == ']') continue;
      const auto* s = reinterpret_cast<const std::uint8_t*>(e.data());
      const auto n = static_cast<std::int32_t>(e.size());
      for (std::int32_t i = 0; i < n && lower_;) {
        UChar32 c;
        U8_NEXT(s, i, n, c);
        if (c >= 0 && u_isupper(c)) lower_ = false;
      }
      if (!lower_) break;
    }
  } else {
    lower_ = mode == CaseMode::lower;
  }
}

WordPiece WordPiece::from_file(const std::filesystem::path& path, CaseMode mode) {
  const std::string bytes =
      util::read_regular_file(path, std::uintmax_t{64} << 20, "vocabulary file (--vocab)");
  std::vector<std::string> vocab;
  text::LineReader lines(bytes, path);
  std::string_view line;
  while (lines.next(line)) {
    if (!text::is_utf8(line))
      throw DataError(path, lines.line_no(),
                      "vocabulary entry is not valid UTF-8; vocab.txt holds one UTF-8 entry per line");
    vocab.emplace_back(line);
  }
  return WordPiece(std::move(vocab), mode, fmt::format("vocabulary file '{}'", path.string()));
}

std::int64_t WordPiece::id(std::string_view entry) const {
  const auto it = ids_.find(std::string(entry));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::string> WordPiece::basic_tokenize(std::string_view text) const {
  const std::vector<UChar32> cps = cleaned_code_points(text);
  std::vector<std::string> words;
  std::string current;
  const auto flush = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  for (std::size_t i = 0; i < cps.size();) {
    if (cps[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && cps[j] != ' ') ++j;
    std::vector<UChar32> word(cps.begin() + static_cast<std::ptrdiff_t>(i),
                              cps.begin() + static_cast<std::ptrdiff_t>(j));
    if (lower_) word = lower_and_strip_accents(word.data(), word.data() + word.size());
    for (const UChar32 c : word) {
      if (is_punctuation(c)) {
        flush();
        append_utf8(current, c);
        flush();
      } else {
        append_utf8(current, c);
      }
    }
    flush();
    i = j;
  }
  return words;
}

void WordPiece::word_pieces(std::string_view word, std::vector<std::int64_t>& ids) const {
  // Byte offsets of the word's code points (the word is valid UTF-8: basic_tokenize made it).
  std::vector<std::size_t> at;
  const auto* s = reinterpret_cast<const std::uint8_t*>(word.data());
  const auto n = static_cast<std::int32_t>(std::min<std::size_t>(
      word.size(), static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())));
  for (std::int32_t i = 0; i < n;) {
    at.push_back(static_cast<std::size_t>(i));
    if (static_cast<std::int64_t>(at.size()) > max_chars_) {
      ids.push_back(unk_);
      return;
    }
    U8_FWD_1(s, i, n);
  }
  if (at.empty()) return;
  at.push_back(word.size());
  const std::size_t chars = at.size() - 1;
  std::vector<std::int64_t> pieces;
  std::string key;
  for (std::size_t start = 0; start < chars;) {
    std::int64_t found = -1;
    std::size_t end = chars;
    for (; end > start; --end) {
      key.assign(start > 0 ? "##" : "");
      key.append(word.substr(at[start], at[end] - at[start]));
      if (const auto it = ids_.find(key); it != ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids.push_back(unk_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPiece::tokenize(std::string_view text) const {
  std::vector<std::int64_t> ids;
  for (const auto& w : basic_tokenize(text)) word_pieces(w, ids);
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto i : ids) out.push_back(entry(i));
  return out;
}

std::vector<std::int64_t> WordPiece::encode(std::string_view text, std::int64_t max_tokens) const {
  if (max_tokens < 2)
    throw ParamError(fmt::format("max_tokens must be at least 2 ([CLS] and [SEP]; got {})", max_tokens));
  const auto room = static_cast<std::size_t>(max_tokens - 1);
  std::vector<std::int64_t> ids{cls_};
  for (const auto& w : basic_tokenize(text)) {
    word_pieces(w, ids);
    if (ids.size() >= room) break;
  }
  if (ids.size() > room) ids.resize(room);
  ids.push_back(sep_);
  return ids;
}

}  // namespace recrun::data
