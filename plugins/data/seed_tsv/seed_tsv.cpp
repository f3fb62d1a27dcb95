// seed_tsv — the seed study's data layout.
//
//   train_ratings.csv     header + one interaction per row; columns user, item, time in any order
//                         (synonyms: user_id/userId, item_id/movieId, timestamp/ts); extra columns
//                         such as rating are ignored; ',' or tab separated
//   genres.tsv            item<TAB>genre, one row per value          -> categorical["genre"]
//   directors.tsv         item<TAB>director                          -> categorical["director"]
//   writers.tsv           item<TAB>writer                            -> categorical["writer"]
//   years.tsv             item<TAB>year                              -> numeric["year"]
//   titles.tsv            item<TAB>title text                        -> titles
//   title_embeddings.tsv  item<TAB>space-separated floats            -> dense["title"]
//
// Every metadata file is optional and may start with a header line ("item<TAB>genre"). Ids are
// integers. Errors name the file and line; rows that can be skipped safely (an item that has no
// interactions, an empty value, a repeated single-valued row) are counted as warnings instead.
#include <recrun/plugin.hpp>
#include <recrun/text.hpp>

#include <algorithm>
#include <cmath>

namespace {

namespace fs = std::filesystem;
namespace tx = recrun::text;

constexpr std::string_view kRatingsFile = "train_ratings.csv";
constexpr std::string_view kUserNames[] = {"user", "user_id", "userid", "uid"};
constexpr std::string_view kItemNames[] = {"item", "item_id", "itemid", "iid",
                                           "movie", "movie_id", "movieid"};
constexpr std::string_view kTimeNames[] = {"time", "timestamp", "ts", "unix_time"};

enum class MetaKind { categorical, numeric, title, dense };

struct MetaFile {
  std::string_view file;
  MetaKind kind;
  std::string_view feature;  // feature name in the Dataset
  std::string_view column;   // what the second column is called in messages
};

constexpr MetaFile kMetaFiles[] = {
    {"genres.tsv", MetaKind::categorical, "genre", "genre"},
    {"directors.tsv", MetaKind::categorical, "director", "director"},
    {"writers.tsv", MetaKind::categorical, "writer", "writer"},
    {"years.tsv", MetaKind::numeric, "year", "year"},
    {"titles.tsv", MetaKind::title, "title", "title"},
    {"title_embeddings.tsv", MetaKind::dense, "title", "embedding"},
};

bool is_blank(std::string_view line) { return tx::trim(line).empty(); }

class SeedTsv final : public recrun::DataSource {
 public:
  recrun::Dataset load(const fs::path& dir, const recrun::WarningSink& warn) override {
    if (!fs::is_directory(dir))
      throw recrun::DataError(fmt::format("data directory '{}' does not exist or is not a directory",
                                          tx::printable(dir.string())));
    recrun::DatasetBuilder builder;
    tx::Fingerprint fingerprint;
    tx::SkipReporter skips(warn);
    read_ratings(dir / kRatingsFile, builder, fingerprint);
    for (const MetaFile& meta : kMetaFiles) {
      const fs::path file = dir / meta.file;
      if (!fs::exists(file)) continue;
      read_meta(file, meta, builder, fingerprint, skips);
    }
    return builder.build(tx::directory_name(dir), dir, fingerprint.hex());
  }

  std::vector<fs::path> inputs(const fs::path& dir) override {
    std::vector<fs::path> out{dir / kRatingsFile};
    for (const MetaFile& meta : kMetaFiles)
      if (fs::exists(dir / meta.file)) out.push_back(dir / meta.file);
    return out;
  }

  bool detect(const fs::path& dir) override {
    std::error_code ec;
    return fs::is_regular_file(dir / kRatingsFile, ec);
  }

 private:
  static void read_ratings(const fs::path& file, recrun::DatasetBuilder& builder,
                           tx::Fingerprint& fingerprint) {
    const tx::FileBytes bytes(file);
    fingerprint.add(kRatingsFile, bytes.view());
    tx::LineReader lines(bytes.view(), file);
    std::string_view header;
    if (!lines.next(header) || is_blank(header))
      tx::Location{&file, 1}.fail(
          "the file is empty; expected a header line 'user,item,time' and one row per "
          "interaction");
    const tx::Location header_at = lines.at(file);
    const char delim =
        header.find('\t') != std::string_view::npos && header.find(',') == std::string_view::npos
            ? '\t'
            : ',';
    std::vector<std::string_view> fields;
    tx::split(header, delim, fields);
    tx::check_unique_columns(fields, header_at);
    const auto column = [&](std::span<const std::string_view> names, std::string_view role) {
      if (auto c = tx::find_column(fields, names, header_at)) return *c;
      std::vector<std::string> have;
      for (auto f : fields) have.emplace_back(tx::printable(tx::trim(f), 60));  // never raw header bytes
      header_at.fail(fmt::format(
          "missing column '{}' (the header has: {}); name it one of: {}", role,
          fmt::join(have, ", "), fmt::join(names, ", ")));
    };
    const std::size_t user_col = column(kUserNames, "user");
    const std::size_t item_col = column(kItemNames, "item");
    const std::size_t time_col = column(kTimeNames, "time");
    const std::size_t num_cols = fields.size();

    // One pass to count rows lets the builder allocate once instead of doubling through 5M rows.
    const auto text = bytes.view();
    builder.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    std::string user_buf, item_buf;
    std::int64_t rows = 0;
    for (std::string_view line; lines.next(line);) {
      if (line.empty() || is_blank(line)) continue;
      tx::split(line, delim, fields);
      const tx::Location at = lines.at(file);
      if (fields.size() != num_cols)
        at.fail(fmt::format("ragged row: {} field{} where the header has {} (a missing or extra "
                            "'{}'?)",
                            fields.size(), fields.size() == 1 ? "" : "s", num_cols,
                            delim == '\t' ? "\\t" : ","));
      const std::string_view user = tx::integer_id(fields[user_col], at, "user", user_buf);
      const std::string_view item = tx::integer_id(fields[item_col], at, "item", item_buf);
      const std::int64_t time = tx::parse_int(fields[time_col], at, "time");
      builder.add_interaction(user, item, time);
      ++rows;
    }
    if (rows == 0)
      tx::Location{&file, 1}.fail(
          "the file has a header but no interaction rows; add one 'user,item,time' row per "
          "interaction");
  }

  static void read_meta(const fs::path& file, const MetaFile& meta, recrun::DatasetBuilder& builder,
                        tx::Fingerprint& fingerprint, tx::SkipReporter& skips) {
    const tx::FileBytes bytes(file);
    fingerprint.add(meta.file, bytes.view());
    tx::LineReader lines(bytes.view(), file);
    const std::string feature(meta.feature);
    std::vector<std::string_view> fields;
    std::vector<float> vec;
    std::vector<std::uint8_t> seen;  // single-valued kinds: which items already have a row
    std::string id_buf;
    std::int64_t rows = 0, matched = 0, first_row_line = 0, dense_dim_line = 0;
    std::size_t dense_dim = 0;
    std::string first_unknown;
    bool first_content_line = true;

    for (std::string_view line; lines.next(line);) {
      if (is_blank(line)) continue;
      const tx::Location at = lines.at(file);
      // Free-text and vector files split once: a title may itself contain a tab.
      const bool single_split = meta.kind == MetaKind::title || meta.kind == MetaKind::dense;
      const std::size_t tab = line.find('\t');
      if (single_split) {
        fields.clear();
        fields.push_back(line.substr(0, tab));
        if (tab != std::string_view::npos) fields.push_back(line.substr(tab + 1));
      } else {
        tx::split(line, '\t', fields);
      }
      if (first_content_line) {
        first_content_line = false;
        // An optional header line: its first field names the item column instead of holding one.
        if (!tx::to_int(fields[0]) && tx::find_column(std::span(fields).first(1), kItemNames))
          continue;
      }
      if (fields.size() != 2)
        at.fail(fmt::format("ragged row: {} tab-separated field{}; expected 2 (item<TAB>{})",
                            fields.size(), fields.size() == 1 ? "" : "s", meta.column));
      ++rows;
      if (first_row_line == 0) first_row_line = at.line;
      const std::string_view id = tx::integer_id(fields[0], at, "item", id_buf);
      const std::string_view value = tx::trim(fields[1]);

      // Parse the value before looking the item up, so that a malformed value is reported even
      // on a row that would be skipped.
      float number = 0;
      if (meta.kind == MetaKind::numeric) {
        const double v = tx::parse_double(value, at, meta.column);
        if (!std::isfinite(v)) at.fail(fmt::format("column '{}' is not finite", meta.column));
        number = static_cast<float>(v);
      } else if (meta.kind == MetaKind::dense) {
        tx::parse_floats(value, at, meta.column, vec);
        if (vec.empty())
          at.fail("no vector values after the item id; expected space-separated floats");
        if (dense_dim == 0) {
          dense_dim = vec.size();
          dense_dim_line = at.line;
        } else if (vec.size() != dense_dim) {
          at.fail(fmt::format("vector of length {} where line {} had {}; every title embedding "
                              "must have the same length",
                              vec.size(), dense_dim_line, dense_dim));
        }
        for (float f : vec)
          if (!std::isfinite(f)) at.fail("the vector holds a value that is not finite");
      }

      const auto item = builder.item_id(id);
      if (!item) {
        if (first_unknown.empty()) first_unknown = std::string(id);
        skips.skip(at, fmt::format("item not in {}", kRatingsFile), fmt::format("item '{}'", id));
        continue;
      }
      ++matched;
      if (value.empty() && meta.kind != MetaKind::dense) {
        skips.skip(at, fmt::format("empty {}", meta.column), fmt::format("item '{}'", id));
        continue;
      }
      if (meta.kind != MetaKind::categorical) {
        if (seen.size() <= static_cast<std::size_t>(*item)) seen.resize(builder.num_items(), 0);
        if (seen[*item]) {
          skips.skip(at, "item listed again (the first row wins)", fmt::format("item '{}'", id));
          continue;
        }
        seen[*item] = 1;
      }
      switch (meta.kind) {
        case MetaKind::categorical: builder.add_category(feature, *item, value); break;
        case MetaKind::numeric: builder.set_numeric(feature, *item, number); break;
        case MetaKind::title: builder.set_title(*item, value); break;
        case MetaKind::dense: builder.set_dense(feature, *item, vec); break;
      }
    }
    if (rows == 0) {
      skips.note(file, fmt::format("the file has no rows; feature '{}' not loaded", meta.feature));
    } else if (matched == 0) {
      // Not one id in common: the file belongs to another data set (or another id space), and
      // silently loading no metadata would hide that.
      tx::Location{&file, first_row_line}.fail(fmt::format(
          "unknown item '{}': none of the {} row{} name an item of {}; is the file from another "
          "data set?",
          first_unknown, rows, rows == 1 ? "" : "s", kRatingsFile));
    }
  }
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_data_source(
      {.name = "seed_tsv",
       .summary = "the seed study's layout: train_ratings.csv (user,item,time) plus optional "
                  "genres/directors/writers/years/titles/title_embeddings .tsv",
       .make = [] { return std::make_unique<SeedTsv>(); }});
}
