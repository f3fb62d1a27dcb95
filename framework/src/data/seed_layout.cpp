#include "data/seed_layout.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include "recrun/error.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::data {
namespace fs = std::filesystem;

namespace {

// Buffers output in large blocks: train_ratings.csv of a 5M-row set is ~100 MB.
class BlockWriter {
 public:
  explicit BlockWriter(const fs::path& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    if (!file_)
      throw Error(fmt::format("cannot write '{}': {}; check that the folder is writable",
                              path.string(), std::strerror(errno)));
  }
  ~BlockWriter() {
    if (file_) std::fclose(file_);
  }
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  fmt::memory_buffer& buf() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= (1u << 20)) flush();
  }
  void close() {
    flush();
    const bool failed = std::fclose(file_) != 0;
    file_ = nullptr;
    if (failed) throw Error(fmt::format("cannot write '{}' (disk full?)", path_.string()));
  }

 private:
  void flush() {
    if (buf_.size() && std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size())
      throw Error(fmt::format("cannot write '{}' (disk full?)", path_.string()));
    buf_.clear();
  }
  fs::path path_;
  std::FILE* file_;
  fmt::memory_buffer buf_;
};

// Values are one field of a tab-separated line: separators inside them would shift columns.
void append_clean(fmt::memory_buffer& out, std::string_view s) {
  for (char c : s) out.push_back(c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
}

void write_title_embeddings_to(const std::vector<std::string>& item_ids, const DenseFeature& f,
                               const fs::path& path) {
  BlockWriter w(path);
  for (std::size_t i = 0; i < item_ids.size(); ++i) {
    if (!f.present[i]) continue;
    auto out = std::back_inserter(w.buf());
    fmt::format_to(out, "{}\t", item_ids[i]);
    for (std::int64_t k = 0; k < f.dim; ++k) {
      if (k) w.buf().push_back(' ');
      fmt::format_to(out, "{}", f.values[i * f.dim + k]);
    }
    w.buf().push_back('\n');
    w.maybe_flush();
  }
  w.close();
}

}  // namespace

void write_title_embeddings(const std::vector<std::string>& item_ids, const DenseFeature& f,
                            const fs::path& path) {
  // Written whole or not at all: a failed or interrupted write leaves the previous file (or
  // none) in place, never half a file that a load would take for vectors. A symlink is written
  // through (its target is replaced); a device or folder is refused, not renamed over.
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw Error(fmt::format("cannot write '{}': it exists and is not a regular file",
                            path.string()));
  util::write_atomically(path,
                         [&](const fs::path& tmp) { write_title_embeddings_to(item_ids, f, tmp); });
}

SeedLayoutReport write_seed_layout(const Dataset& d, const fs::path& dir) {
  SeedLayoutReport report;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));

  {
    const fs::path path = dir / "train_ratings.csv";
    BlockWriter w(path);
    auto out = std::back_inserter(w.buf());
    fmt::format_to(out, "user,item,time\n");
    for (std::int64_t u = 0; u < d.num_users(); ++u) {
      const auto items = d.user_items(u);
      const auto times = d.user_times(u);
      for (std::size_t k = 0; k < items.size(); ++k)
        fmt::format_to(out, "{},{},{}\n", d.user_ids[u], d.item_ids[items[k]], times[k]);
      w.maybe_flush();
    }
    w.close();
    report.files.push_back(path);
  }

  static constexpr std::pair<const char*, const char*> kCategorical[] = {
      {"genre", "genres.tsv"}, {"director", "directors.tsv"}, {"writer", "writers.tsv"}};
  for (const auto& [feature, file] : kCategorical) {
    const auto it = d.categorical.find(feature);
    if (it == d.categorical.end()) continue;
    const fs::path path = dir / file;
    BlockWriter w(path);
    for (std::int64_t i = 0; i < d.num_items(); ++i)
      for (std::int32_t v : it->second.of(i)) {
        fmt::format_to(std::back_inserter(w.buf()), "{}\t", d.item_ids[i]);
        append_clean(w.buf(), it->second.vocab[v]);
        w.buf().push_back('\n');
      }
    w.close();
    report.files.push_back(path);
  }
  for (const auto& [name, f] : d.categorical)
    if (name != "genre" && name != "director" && name != "writer")
      report.skipped_features.push_back(name);

  if (const auto it = d.numeric.find("year"); it != d.numeric.end()) {
    const fs::path path = dir / "years.tsv";
    BlockWriter w(path);
    for (std::int64_t i = 0; i < d.num_items(); ++i) {
      if (!it->second.present[i]) continue;
      const float y = it->second.values[i];
      if (y == std::floor(y) && std::fabs(y) < 1e9f)
        fmt::format_to(std::back_inserter(w.buf()), "{}\t{}\n", d.item_ids[i],
                       static_cast<std::int64_t>(y));
      else
        fmt::format_to(std::back_inserter(w.buf()), "{}\t{}\n", d.item_ids[i], y);
    }
    w.close();
    report.files.push_back(path);
  }
  for (const auto& [name, f] : d.numeric)
    if (name != "year") report.skipped_features.push_back(name);

  if (!d.titles.empty()) {
    const fs::path path = dir / "titles.tsv";
    BlockWriter w(path);
    for (std::int64_t i = 0; i < d.num_items(); ++i) {
      if (d.titles[i].empty()) continue;
      fmt::format_to(std::back_inserter(w.buf()), "{}\t", d.item_ids[i]);
      append_clean(w.buf(), d.titles[i]);
      w.buf().push_back('\n');
    }
    w.close();
    report.files.push_back(path);
  }

  if (const auto it = d.dense.find("title"); it != d.dense.end()) {
    const fs::path path = dir / "title_embeddings.tsv";
    write_title_embeddings(d.item_ids, it->second, path);
    report.files.push_back(path);
  }
  for (const auto& [name, f] : d.dense)
    if (name != "title") report.skipped_features.push_back(name);
  return report;
}

}  // namespace recrun::data
