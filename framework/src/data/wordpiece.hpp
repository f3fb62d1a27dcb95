// The WordPiece tokenizer of BERT models, for `recrun data embed-titles --encoder torchscript`:
// a model's vocab.txt, BERT's basic tokenisation and greedy longest-match-first subwords, giving
// the token ids a TorchScript export of the model expects.
//
//   1. Text is decoded as UTF-8; an invalid byte sequence becomes U+FFFD, which step 2 drops.
//   2. Clean-up: NUL, U+FFFD and control/format/unassigned characters (general category C*,
//      except tab, CR and LF) are dropped; tab, CR, LF and space separators (Zs) become spaces.
//      CJK ideographs get a space on each side, so each is a word of its own.
//   3. Words are split at spaces. For an uncased model each word is lower-cased (full Unicode case
//      mapping, root locale), decomposed to NFD and stripped of its non-spacing marks (Mn), so
//      "Amélie" becomes "amelie". Unicode comes from ICU (libicu).
//   4. Punctuation (ASCII !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and general category P*) is split off:
//      each punctuation character is a word of its own.
//   5. Each word becomes the longest vocabulary entry it starts with, then the longest "##" entry
//      that continues it, and so on; a word with a piece that no entry matches, or of more than
//      max_chars_per_word code points, becomes [UNK] as a whole.
//   6. encode(): [CLS] pieces... [SEP], the pieces truncated so that the whole is at most
//      max_tokens long.
//
// These are the steps of the reference BertTokenizer (do_lower_case / strip_accents as for
// uncased models, tokenize_chinese_chars on); the Unicode tables are ICU's rather than Python's,
// which may differ for characters added in recent Unicode versions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recrun::data {

/// Whether to lower-case and strip accents: as an uncased model needs (`lower`), not at all
/// (`keep`, for cased models), or decided from the vocabulary (`detect`): a vocabulary with an
/// upper-case letter in any entry other than a bracketed special token ("[CLS]") is cased.
enum class CaseMode { detect, lower, keep };

/// Parses "auto" / "lower" / "keep"; throws ParamError naming `flag` otherwise.
CaseMode parse_case_mode(std::string_view text, std::string_view flag);

class WordPiece {
 public:
  /// The vocabulary in id order (the id of an entry is its index). An entry that appears twice
  /// keeps the id of its last appearance, as in the reference tokenizer. Throws Error when
  /// [CLS], [SEP], [PAD] or [UNK] is missing, naming `origin` (where the entries came from).
  WordPiece(std::vector<std::string> vocab, CaseMode mode, std::string origin,
            std::int64_t max_chars_per_word = 100);

  /// Reads vocab.txt: one entry per line (UTF-8; a byte-order mark and "\r" line endings are
  /// allowed), the line number minus one being its id. Throws DataError naming the file (and the
  /// line, for a line that is not UTF-8); a missing or non-regular file, one over 64 MiB or with
  /// no entries is an Error naming it.
  static WordPiece from_file(const std::filesystem::path& vocab, CaseMode mode);

  /// Steps 1-4: the words of `text`.
  std::vector<std::string> basic_tokenize(std::string_view text) const;
  /// Step 5 for one word of basic_tokenize, appended to `ids`.
  void word_pieces(std::string_view word, std::vector<std::int64_t>& ids) const;
  /// Steps 1-5 as entries ("toy", "##s"), for tests and --help-like output.
  std::vector<std::string> tokenize(std::string_view text) const;
  /// [CLS] + the text's pieces + [SEP], at most `max_tokens` ids (max_tokens >= 2).
  std::vector<std::int64_t> encode(std::string_view text, std::int64_t max_tokens) const;

  /// The id of an entry, or -1.
  std::int64_t id(std::string_view entry) const;
  const std::string& entry(std::int64_t id) const { return vocab_.at(static_cast<std::size_t>(id)); }
  std::int64_t size() const { return static_cast<std::int64_t>(vocab_.size()); }
  bool lower_case() const { return lower_; }
  std::int64_t cls_id() const { return cls_; }
  std::int64_t sep_id() const { return sep_; }
  std::int64_t pad_id() const { return pad_; }
  std::int64_t unk_id() const { return unk_; }

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int64_t> ids_;
  bool lower_ = true;
  std::int64_t max_chars_ = 100;
  std::int64_t cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace recrun::data
