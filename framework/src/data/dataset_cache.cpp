#include "data/dataset_cache.hpp"

#include <xxhash.h>

#include <cstdio>

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <type_traits>

#include "core/hash.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::data {
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kFormatVersion = kCacheFormatVersion;
constexpr char kMagic[8] = {'R', 'E', 'C', 'R', 'U', 'N', 'D', 'S'};
// Written in native byte order; a cache moved to a machine of the other endianness is rejected
// (and rebuilt) instead of being misread.
constexpr std::uint32_t kByteOrderMark = 0x01020304;

class Writer {
 public:
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  template <class T>
  void pod(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    u64(v.size());
    // Arrays start 8-byte aligned, so the reader can copy them straight out of the mapping.
    while (out_.size() % 8) out_.push_back('\0');
    raw(v.data(), v.size() * sizeof(T));
  }
  void reserve(std::size_t n) { out_.reserve(n); }
  void strings(const std::vector<std::string>& v) {
    u64(v.size());
    std::vector<std::uint32_t> lengths(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) lengths[i] = static_cast<std::uint32_t>(v[i].size());
    raw(lengths.data(), lengths.size() * sizeof(std::uint32_t));
    for (const auto& s : v) raw(s.data(), s.size());
  }
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// Bounds-checked reads: corrupt input throws Corrupt, which the caller turns into a cache miss.
struct Corrupt {};

class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : begin_(bytes.data()), p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  std::uint32_t u32() { std::uint32_t v; raw(&v, sizeof v); return v; }
  std::uint64_t u64() { std::uint64_t v; raw(&v, sizeof v); return v; }
  std::string str() {
    const std::uint64_t n = u64();
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  template <class T>
  std::vector<T> pod() {
    const std::uint64_t n = u64();
    while ((p_ - begin_) % 8) {
      if (p_ == end_ || *p_ != '\0') throw Corrupt{};
      ++p_;
    }
    if (n > static_cast<std::uint64_t>(end_ - p_) / sizeof(T)) throw Corrupt{};
    std::vector<T> v;
    if (reinterpret_cast<std::uintptr_t>(p_) % alignof(T) == 0) {
      // One pass, no zero-fill: the bytes are a T array (written by pod() above, aligned).
      const T* first = reinterpret_cast<const T*>(p_);
      v.reserve(n);
      util::advise_huge_pages(v.data(), n * sizeof(T));
      v.assign(first, first + n);
      p_ += n * sizeof(T);
    } else {
      v.resize(n);
      raw(v.data(), n * sizeof(T));
    }
    return v;
  }
  std::vector<std::string> strings() {
    const std::uint64_t n = u64();
    if (n > static_cast<std::uint64_t>(end_ - p_) / sizeof(std::uint32_t)) throw Corrupt{};
    std::vector<std::uint32_t> lengths(n);
    raw(lengths.data(), n * sizeof(std::uint32_t));
    std::vector<std::string> v(n);
    for (std::size_t i = 0; i < n; ++i) {
      need(lengths[i]);
      v[i].assign(p_, lengths[i]);
      p_ += lengths[i];
    }
    return v;
  }
  void raw(void* dst, std::size_t n) {
    need(n);
    if (n) std::memcpy(dst, p_, n);
    p_ += n;
  }
  bool done() const { return p_ == end_; }

 private:
  void need(std::uint64_t n) const {
    if (n > static_cast<std::uint64_t>(end_ - p_)) throw Corrupt{};
  }
  const char* begin_;
  const char* p_;
  const char* end_;
};

bool valid_offsets(const std::vector<std::int64_t>& offsets, std::size_t rows, std::size_t total) {
  if (offsets.size() != rows + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<std::int64_t>(total))
    return false;
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
    if (offsets[i] > offsets[i + 1]) return false;
  return true;
}

// The checksum catches damage; these checks catch a well-formed file that would still break the
// invariants every consumer relies on (an index past the end would be a crash, not an error).
bool structurally_valid(const Dataset& d) {
  const std::size_t users = d.user_ids.size(), items = d.item_ids.size();
  if (!valid_offsets(d.user_offsets, users, d.items.size())) return false;
  if (d.timestamps.size() != d.items.size()) return false;
  for (std::int32_t i : d.items)
    if (i < 0 || static_cast<std::size_t>(i) >= items) return false;
  for (const auto& [name, f] : d.categorical) {
    if (!valid_offsets(f.offsets, items, f.values.size())) return false;
    for (std::int32_t v : f.values)
      if (v < 0 || static_cast<std::size_t>(v) >= f.vocab.size()) return false;
  }
  for (const auto& [name, f] : d.numeric)
    if (f.values.size() != items || f.present.size() != items) return false;
  for (const auto& [name, f] : d.dense)
    if (f.dim < 0 || f.values.size() != items * static_cast<std::size_t>(f.dim) ||
        f.present.size() != items)
      return false;
  return d.titles.empty() || d.titles.size() == items;
}

std::int64_t mtime_ns(const fs::path& p) {
  std::error_code ec;
  const auto t = fs::last_write_time(p, ec);
  if (ec) return -1;
  return static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

std::optional<std::uint64_t> file_content_hash(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) return std::nullopt;
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::vector<char> buffer(1 << 20);
  bool ok = true;
  for (;;) {
    const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f);
    if (n > 0) XXH3_64bits_update(state, buffer.data(), n);
    if (n < buffer.size()) {
      ok = std::ferror(f) == 0;
      break;
    }
  }
  const std::uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  std::fclose(f);
  if (!ok) return std::nullopt;
  return h;
}

std::string cache_key(const std::string& source, const fs::path& plugin_library,
                      const std::vector<fs::path>& inputs) {
  std::string key = fmt::format("recrun dataset cache v{}\nsource {}\n", kFormatVersion, source);
  std::error_code ec;
  // A rebuilt plugin may parse differently; its library's identity is part of the key.
  if (!plugin_library.empty() && fs::is_regular_file(plugin_library, ec))
    key += fmt::format("plugin {} {} {}\n", plugin_library.filename().string(),
                       fs::file_size(plugin_library, ec), mtime_ns(plugin_library));
  for (const auto& in : inputs) {
    // A missing input is the data source's to report (with its own advice); here it is just
    // another state of the directory.
    if (!fs::is_regular_file(in, ec)) {
      key += fmt::format("file {} missing\n", in.filename().string());
      continue;
    }
    // Size and mtime alone would serve stale data after a same-length edit whose mtime was
    // restored (rsync, tar, cp -p): the content hash decides. XXH3 streams at several GB/s.
    const auto content = file_content_hash(in);
    key += fmt::format("file {} {} {} {}\n", in.filename().string(), fs::file_size(in, ec),
                       mtime_ns(in),
                       content ? fmt::format("xxh3:{:016x}", *content) : std::string("unreadable"));
  }
  return key;
}

std::string encode_dataset(const Dataset& d, const WarningCounts& warnings, const std::string& key) {
  Writer w;
  std::size_t estimate = 4096 + key.size() + d.items.size() * 12 + d.user_offsets.size() * 8 +
                         (d.user_ids.size() + d.item_ids.size() + d.titles.size()) * 24;
  for (const auto& [name, f] : d.categorical) estimate += f.values.size() * 4 + f.offsets.size() * 8;
  for (const auto& [name, f] : d.dense) estimate += f.values.size() * 4 + f.present.size();
  w.reserve(estimate);
  util::advise_huge_pages(w.bytes().data(), estimate);
  w.raw(kMagic, sizeof kMagic);
  w.u32(kFormatVersion);
  w.u32(kByteOrderMark);
  w.str(key);
  w.str(d.name);
  w.str(d.source_dir.string());
  w.str(d.fingerprint);
  w.strings(d.user_ids);
  w.strings(d.item_ids);
  w.pod(d.user_offsets);
  w.pod(d.items);
  w.pod(d.timestamps);
  w.u64(d.categorical.size());
  for (const auto& [name, f] : d.categorical) {
    w.str(name);
    w.strings(f.vocab);
    w.pod(f.offsets);
    w.pod(f.values);
  }
  w.u64(d.numeric.size());
  for (const auto& [name, f] : d.numeric) {
    w.str(name);
    w.pod(f.values);
    w.pod(f.present);
  }
  w.u64(d.dense.size());
  for (const auto& [name, f] : d.dense) {
    w.str(name);
    w.u64(static_cast<std::uint64_t>(f.dim));
    w.pod(f.values);
    w.pod(f.present);
  }
  w.strings(d.titles);
  w.u64(warnings.size());
  for (const auto& [message, count] : warnings) {
    w.str(message);
    w.u64(static_cast<std::uint64_t>(count));
  }
  const std::uint64_t checksum = core::hash64(w.bytes(), kFormatVersion);
  w.u64(checksum);
  return std::move(w.bytes());
}

std::optional<CachedDataset> decode_dataset(std::string_view bytes, const std::string& key) {
  if (bytes.size() < sizeof kMagic + 8 + 8) return std::nullopt;
  const std::string_view body = bytes.substr(0, bytes.size() - 8);
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + body.size(), 8);
  try {
    Reader r(body);
    char magic[8];
    r.raw(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof magic) != 0) return std::nullopt;
    if (r.u32() != kFormatVersion || r.u32() != kByteOrderMark) return std::nullopt;
    // The key comes before the checksum test: a stale cache is the common case, and it is
    // recognised without hashing the whole file.
    if (r.str() != key) return std::nullopt;
    if (core::hash64(body, kFormatVersion) != stored) return std::nullopt;

    CachedDataset out;
    Dataset& d = out.dataset;
    d.name = r.str();
    d.source_dir = r.str();
    d.fingerprint = r.str();
    d.user_ids = r.strings();
    d.item_ids = r.strings();
    d.user_offsets = r.pod<std::int64_t>();
    d.items = r.pod<std::int32_t>();
    d.timestamps = r.pod<std::int64_t>();
    for (std::uint64_t n = r.u64(); n > 0; --n) {
      std::string name = r.str();
      CategoricalFeature f;
      f.vocab = r.strings();
      f.offsets = r.pod<std::int64_t>();
      f.values = r.pod<std::int32_t>();
      d.categorical.emplace(std::move(name), std::move(f));
    }
    for (std::uint64_t n = r.u64(); n > 0; --n) {
      std::string name = r.str();
      NumericFeature f;
      f.values = r.pod<float>();
      f.present = r.pod<std::uint8_t>();
      d.numeric.emplace(std::move(name), std::move(f));
    }
    for (std::uint64_t n = r.u64(); n > 0; --n) {
      std::string name = r.str();
      DenseFeature f;
      f.dim = static_cast<std::int64_t>(r.u64());
      f.values = r.pod<float>();
      f.present = r.pod<std::uint8_t>();
      d.dense.emplace(std::move(name), std::move(f));
    }
    d.titles = r.strings();
    for (std::uint64_t n = r.u64(); n > 0; --n) {
      std::string message = r.str();
      out.warnings.emplace_back(std::move(message), static_cast<std::int64_t>(r.u64()));
    }
    if (!r.done() || !structurally_valid(d)) return std::nullopt;
    return out;
  } catch (const Corrupt&) {
    return std::nullopt;
  } catch (const std::bad_alloc&) {  // a corrupt length that slipped past the bounds checks
    return std::nullopt;
  }
}

fs::path primary_cache_file(const fs::path& dir, const std::string& source) {
  return dir / ".recrun-cache" / (source + ".dataset");
}

fs::path fallback_cache_file(const fs::path& fallback_dir, const fs::path& dir,
                             const std::string& source) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec) abs = fs::absolute(dir);
  const std::string folder =
      fmt::format("{}-{:016x}", text::directory_name(dir), core::hash64(abs.string()));
  return fallback_dir / folder / (source + ".dataset");
}

std::optional<std::uint32_t> cache_format_of(std::string_view bytes) {
  if (bytes.size() < sizeof kMagic + 4 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return std::nullopt;
  std::uint32_t version = 0;
  std::memcpy(&version, bytes.data() + sizeof kMagic, 4);
  return version;
}

std::optional<CachedDataset> read_cache(const fs::path& file, const std::string& key,
                                        std::string* note) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  try {
    const text::FileBytes bytes(file);
    const auto version = cache_format_of(bytes.view());
    if (version && *version != kFormatVersion) {
      if (note)
        *note = fmt::format("{}: cache format {} (this recrun writes format {}{}); rebuilding it",
                            file.string(), *version, kFormatVersion,
                            *version < kFormatVersion ? ", with XXH3 checksums" : "");
      return std::nullopt;
    }
    return decode_dataset(bytes.view(), key);
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool write_cache(const fs::path& file, const std::string& bytes) {
  std::error_code ec;
  const fs::path folder = file.parent_path();
  if (!fs::is_directory(folder, ec)) {
    fs::create_directories(folder, ec);
    if (ec) return false;
    std::ofstream ignore(folder / ".gitignore");
    ignore << "# recrun's binary data set cache; safe to delete, never commit\n*\n";
  }
  try {
    util::write_atomically(file, bytes);
  } catch (const Error&) {
    return false;  // a cache that cannot be written is only a slower next load
  }
  return true;
}

}  // namespace recrun::data
