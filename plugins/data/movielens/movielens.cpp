// movielens — GroupLens MovieLens data in either of its two layouts.
//
//   ml-latest / ml-latest-small / ml-20m ...  ratings.csv  userId,movieId,rating,timestamp
//                                             movies.csv   movieId,title,genres   (real CSV: titles
//                                                          with commas are quoted)
//   ml-1m / ml-10m                            ratings.dat  UserID::MovieID::Rating::Timestamp
//                                             movies.dat   MovieID::Title::Genres (latin-1 in ml-1m)
//
// Every rating is one interaction (the score itself is ignored: recrun ranks, it does not predict
// scores). Genres are '|'-separated, "(no genres listed)" means none, and the release year is
// parsed from the title's trailing "(1995)", which is then dropped from the title text. Movies that
// nobody rated are not items; each is counted in a skipped-row warning.
#include <recrun/plugin.hpp>
#include <recrun/text.hpp>

#include <algorithm>

namespace {

namespace fs = std::filesystem;
namespace tx = recrun::text;

constexpr std::string_view kUserNames[] = {"userId", "user_id", "user"};
constexpr std::string_view kItemNames[] = {"movieId", "movie_id", "item_id", "item"};
constexpr std::string_view kTimeNames[] = {"timestamp", "time"};
constexpr std::string_view kTitleNames[] = {"title"};
constexpr std::string_view kGenreNames[] = {"genres", "genre"};

enum class Layout { csv, dat };

bool is_blank(std::string_view line) { return tx::trim(line).empty(); }

// "Toy Story (1995)" -> {"Toy Story", 1995}; also "(2006-2007)" and "(2006–2007)" ranges. Titles
// without a trailing year keep their text and get no year.
std::pair<std::string_view, std::optional<int>> split_year(std::string_view title) {
  title = tx::trim(title);
  if (title.size() < 6 || title.back() != ')') return {title, std::nullopt};
  const std::size_t open = title.rfind('(');
  if (open == std::string_view::npos) return {title, std::nullopt};
  const std::string_view inside = title.substr(open + 1, title.size() - open - 2);
  if (inside.size() < 4) return {title, std::nullopt};
  for (int k = 0; k < 4; ++k)
    if (inside[k] < '0' || inside[k] > '9') return {title, std::nullopt};
  const std::string_view rest = inside.substr(4);
  if (!rest.empty() && rest[0] != '-' && !rest.starts_with("\xE2\x80\x93")) return {title, std::nullopt};
  const int year = (inside[0] - '0') * 1000 + (inside[1] - '0') * 100 + (inside[2] - '0') * 10 +
                   (inside[3] - '0');
  const std::string_view text = tx::trim(title.substr(0, open));
  return {text.empty() ? title : text, year};
}

class MovieLens final : public recrun::DataSource {
 public:
  recrun::Dataset load(const fs::path& dir, const recrun::WarningSink& warn) override {
    if (!fs::is_directory(dir))
      throw recrun::DataError(fmt::format("data directory '{}' does not exist or is not a directory",
                                          tx::printable(dir.string())));
    const auto layout = layout_of(dir);
    if (!layout)
      throw recrun::DataError(fmt::format(
          "'{}' holds neither ratings.csv + movies.csv (ml-latest) nor ratings.dat + movies.dat "
          "(ml-1m); point --data at a MovieLens directory",
          dir.string()));
    recrun::DatasetBuilder builder;
    tx::Fingerprint fingerprint;
    tx::SkipReporter skips(warn);
    std::vector<std::uint8_t> described;  // items that have a row in the movies file
    std::vector<std::int64_t> first_line;  // per item: the ratings line that first names it
    const bool csv = *layout == Layout::csv;
    const fs::path ratings = dir / (csv ? "ratings.csv" : "ratings.dat");
    const fs::path movies = dir / (csv ? "movies.csv" : "movies.dat");
    if (csv) {
      read_ratings_csv(ratings, builder, fingerprint, first_line);
      read_movies_csv(movies, builder, fingerprint, skips, described);
    } else {
      read_ratings_dat(ratings, builder, fingerprint, first_line);
      read_movies_dat(movies, builder, fingerprint, skips, described);
    }
    recrun::Dataset d = builder.build(tx::directory_name(dir), dir, fingerprint.hex());
    // Rated movies without a movies row stay items (their ratings are real) but have no title,
    // year or genre; say so, since it usually means mismatched files.
    described.resize(d.item_ids.size(), 0);
    const auto missing = std::count(described.begin(), described.end(), std::uint8_t{0});
    if (missing > 0) {
      // The first such rating in file order (dense ids follow first appearance, so the first
      // undescribed id is also the earliest line).
      const auto first = std::find(described.begin(), described.end(), std::uint8_t{0});
      const auto item = first - described.begin();
      skips.note(ratings,
                 fmt::format("{} rated movie{} missing from {} (first: movie {} at line {}); no "
                             "title, year or genres for {}",
                             missing, missing == 1 ? " is" : "s are", movies.filename().string(),
                             d.item_ids[item], first_line.at(item), missing == 1 ? "it" : "them"));
    }
    return d;
  }

  std::vector<fs::path> inputs(const fs::path& dir) override {
    const auto layout = layout_of(dir);
    if (!layout) return {};
    if (*layout == Layout::csv) return {dir / "ratings.csv", dir / "movies.csv"};
    return {dir / "ratings.dat", dir / "movies.dat"};
  }

  bool detect(const fs::path& dir) override { return layout_of(dir).has_value(); }

 private:
  static std::optional<Layout> layout_of(const fs::path& dir) {
    std::error_code ec;
    const auto has = [&](const char* f) { return fs::is_regular_file(dir / f, ec); };
    if (has("ratings.csv") && has("movies.csv")) return Layout::csv;
    if (has("ratings.dat") && has("movies.dat")) return Layout::dat;
    return std::nullopt;
  }

  [[noreturn]] static void empty_file(const fs::path& file, std::string_view expected) {
    tx::Location{&file, 1}.fail(fmt::format("the file is empty; expected {}", expected));
  }

  [[noreturn]] static void ragged(const tx::Location& at, std::size_t got, std::size_t want,
                                  std::string_view sep) {
    at.fail(fmt::format("ragged row: {} field{} where {} are expected (a missing or extra '{}'?)",
                        got, got == 1 ? "" : "s", want, sep));
  }

  // The column of one role in a CSV header, or a DataError listing what the header has.
  static std::size_t column(std::span<const std::string_view> header,
                            std::span<const std::string_view> names, std::string_view role,
                            const tx::Location& at) {
    if (auto c = tx::find_column(header, names, at)) return *c;
    std::vector<std::string> have;
    for (auto f : header) have.emplace_back(tx::printable(tx::trim(f), 60));  // never raw header bytes
    at.fail(fmt::format("missing column '{}' (the header has: {}); name it one of: {}", role,
                        fmt::join(have, ", "), fmt::join(names, ", ")));
  }

  static void read_ratings_csv(const fs::path& file, recrun::DatasetBuilder& builder,
                               tx::Fingerprint& fingerprint, std::vector<std::int64_t>& first_line) {
    const tx::FileBytes bytes(file);
    fingerprint.add("ratings.csv", bytes.view());
    tx::LineReader lines(bytes.view(), file);
    std::string_view line;
    if (!lines.next(line) || is_blank(line))
      empty_file(file, "the header 'userId,movieId,rating,timestamp' and one row per rating");
    tx::CsvSplitter csv;
    const tx::Location header_at = lines.at(file);
    const auto& header = csv.split(line, header_at);
    tx::check_unique_columns(header, header_at);
    const std::size_t user_col = column(header, kUserNames, "userId", header_at);
    const std::size_t item_col = column(header, kItemNames, "movieId", header_at);
    const std::size_t time_col = column(header, kTimeNames, "timestamp", header_at);
    const std::size_t num_cols = header.size();
    const auto text = bytes.view();
    builder.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    std::string user_buf, item_buf;
    std::int64_t rows = 0;
    while (lines.next(line)) {
      if (is_blank(line)) continue;
      const tx::Location at = lines.at(file);
      const auto& f = csv.split(line, at);
      if (f.size() != num_cols) ragged(at, f.size(), num_cols, ",");
      builder.add_interaction(tx::integer_id(f[user_col], at, "userId", user_buf),
                              tx::integer_id(f[item_col], at, "movieId", item_buf),
                              tx::parse_int(f[time_col], at, "timestamp"));
      if (builder.num_items() > static_cast<std::int64_t>(first_line.size()))
        first_line.push_back(at.line);
      ++rows;
    }
    if (rows == 0) tx::Location{&file, 1}.fail("the file has a header but no rating rows");
  }

  static void read_ratings_dat(const fs::path& file, recrun::DatasetBuilder& builder,
                               tx::Fingerprint& fingerprint, std::vector<std::int64_t>& first_line) {
    const tx::FileBytes bytes(file);
    fingerprint.add("ratings.dat", bytes.view());
    const auto text = bytes.view();
    builder.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    tx::LineReader lines(text, file);
    std::vector<std::string_view> f;
    std::string user_buf, item_buf;
    std::int64_t rows = 0;
    for (std::string_view line; lines.next(line);) {
      if (is_blank(line)) continue;
      ++rows;
      const tx::Location at = lines.at(file);
      if (tx::split(line, "::", f) != 4) ragged(at, f.size(), 4, "::");
      builder.add_interaction(tx::integer_id(f[0], at, "UserID", user_buf),
                              tx::integer_id(f[1], at, "MovieID", item_buf),
                              tx::parse_int(f[3], at, "Timestamp"));
      if (builder.num_items() > static_cast<std::int64_t>(first_line.size()))
        first_line.push_back(at.line);
    }
    if (rows == 0) empty_file(file, "one 'UserID::MovieID::Rating::Timestamp' row per rating");
  }

  // Adds one movie's metadata; movies nobody rated are skipped with a warning.
  static void add_movie(recrun::DatasetBuilder& builder, tx::SkipReporter& skips,
                        const tx::Location& at, std::string_view id, std::string_view title,
                        std::string_view genres, std::vector<std::uint8_t>& seen) {
    // `seen` doubles as the record of which items have a movies row.
    const auto item = builder.item_id(id);
    if (!item) {
      skips.skip(at, "movie has no ratings, so it is not an item", fmt::format("movie {}", id));
      return;
    }
    if (seen.empty()) seen.assign(builder.num_items(), 0);
    if (seen[*item]) {
      skips.skip(at, "movie listed again (the first row wins)", fmt::format("movie {}", id));
      return;
    }
    seen[*item] = 1;
    const auto [text, year] = split_year(title);
    builder.set_title(*item, text);
    if (year) builder.set_numeric("year", *item, static_cast<float>(*year));
    genres = tx::trim(genres);
    if (genres.empty() || genres == "(no genres listed)") return;
    std::vector<std::string_view> parts;
    tx::split(genres, '|', parts);
    for (auto g : parts) {
      g = tx::trim(g);
      if (!g.empty()) builder.add_category("genre", *item, g);
    }
  }

  static void read_movies_csv(const fs::path& file, recrun::DatasetBuilder& builder,
                              tx::Fingerprint& fingerprint, tx::SkipReporter& skips,
                              std::vector<std::uint8_t>& seen) {
    const tx::FileBytes bytes(file);
    fingerprint.add("movies.csv", bytes.view());
    tx::LineReader lines(bytes.view(), file);
    std::string_view line;
    if (!lines.next(line) || is_blank(line))
      empty_file(file, "the header 'movieId,title,genres' and one row per movie");
    tx::CsvSplitter csv;
    const tx::Location header_at = lines.at(file);
    const auto& header = csv.split(line, header_at);
    tx::check_unique_columns(header, header_at);
    const std::size_t item_col = column(header, kItemNames, "movieId", header_at);
    const std::size_t title_col = column(header, kTitleNames, "title", header_at);
    const std::size_t genre_col = column(header, kGenreNames, "genres", header_at);
    const std::size_t num_cols = header.size();
    std::string id_buf;
    while (lines.next(line)) {
      if (is_blank(line)) continue;
      const tx::Location at = lines.at(file);
      const auto& f = csv.split(line, at);
      if (f.size() != num_cols) ragged(at, f.size(), num_cols, ",");
      add_movie(builder, skips, at, tx::integer_id(f[item_col], at, "movieId", id_buf),
                f[title_col], f[genre_col], seen);
    }
  }

  static void read_movies_dat(const fs::path& file, recrun::DatasetBuilder& builder,
                              tx::Fingerprint& fingerprint, tx::SkipReporter& skips,
                              std::vector<std::uint8_t>& seen) {
    const tx::FileBytes bytes(file);
    fingerprint.add("movies.dat", bytes.view());
    const auto text = bytes.view();
    // ml-1m ships latin-1 titles; a file that is already valid UTF-8 (a re-encoded copy) is kept
    // as it is, so converting never mangles it twice.
    const bool latin1 = !tx::is_utf8(text);
    tx::LineReader lines(text, file);
    std::string id_buf, title_buf;
    std::int64_t rows = 0;
    for (std::string_view line; lines.next(line);) {
      if (is_blank(line)) continue;
      ++rows;
      const tx::Location at = lines.at(file);
      // A title may contain "::" in principle, so the id ends at the first separator and the
      // genres start after the last one.
      const std::size_t a = line.find("::");
      const std::size_t b = line.rfind("::");
      if (a == std::string_view::npos || a == b) {
        std::vector<std::string_view> f;
        ragged(at, tx::split(line, "::", f), 3, "::");
      }
      const std::string_view id = tx::integer_id(line.substr(0, a), at, "MovieID", id_buf);
      std::string_view title = line.substr(a + 2, b - a - 2);
      if (latin1) {
        title_buf = tx::latin1_to_utf8(title);
        title = title_buf;
      }
      add_movie(builder, skips, at, id, title, line.substr(b + 2), seen);
    }
    if (rows == 0) empty_file(file, "one 'MovieID::Title::Genres' row per movie");
  }
};

}  // namespace

RECRUN_PLUGIN(registry) {
  registry.add_data_source(
      {.name = "movielens",
       .summary = "MovieLens: ratings.csv + movies.csv (ml-latest) or ratings.dat + movies.dat "
                  "(ml-1m); year parsed from titles",
       .make = [] { return std::make_unique<MovieLens>(); }});
}
