#include "recrun/archive.hpp"

#include <torch/torch.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <xxhash.h>

#include "recrun/error.hpp"
#include "shared_util.hpp"

namespace recrun {

void Archive::write(const std::string& key, const torch::Tensor& tensor) {
  tensors_[key] = tensor.detach().to(torch::kCPU).clone();
}

void Archive::write(const std::string& prefix, const torch::nn::Module& module) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) write(prefix + "." + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) write(prefix + "." + b.key(), b.value());
}

void Archive::write_text(const std::string& key, const std::string& text) { texts_[key] = text; }

torch::Tensor Archive::read(const std::string& key) const {
  const auto it = tensors_.find(key);
  if (it == tensors_.end())
    throw Error(fmt::format("checkpoint has no tensor '{}' (was it written by another model or "
                            "with other parameters?)",
                            key));
  return it->second;
}

void Archive::read(const std::string& prefix, torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  const auto copy = [&](const std::string& name, torch::Tensor& target) {
    const torch::Tensor src = read(prefix + "." + name);
    if (src.sizes() != target.sizes())
      throw Error(fmt::format("checkpoint tensor '{}.{}' has shape {} but the model expects {}",
                              prefix, name, fmt::format("{}", fmt::join(src.sizes(), "x")),
                              fmt::format("{}", fmt::join(target.sizes(), "x"))));
    target.copy_(src);
  };
  for (auto& p : module.named_parameters(true)) copy(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) copy(b.key(), b.value());
}

void Archive::write(const std::string& key, const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive out;
  optimizer.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  texts_[key] = bytes.str();
}

void Archive::read(const std::string& key, torch::optim::Optimizer& optimizer) const {
  std::istringstream bytes(read_text(key));
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  optimizer.load(in);
}

const std::string& Archive::read_text(const std::string& key) const {
  const auto it = texts_.find(key);
  if (it == texts_.end()) throw Error(fmt::format("checkpoint has no entry '{}'", key));
  return it->second;
}

bool Archive::contains(const std::string& key) const {
  return tensors_.count(key) > 0 || texts_.count(key) > 0;
}

std::vector<std::string> Archive::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : tensors_) out.push_back(k);
  return out;
}

// On disk (format 3): "RECRUNA3", then u64 counts of tensors and texts; each tensor as
// key, scalar type (i32), rank (i32), sizes (i64 each), byte count (u64), its raw bytes (native
// byte order) and a u64 XXH3-64 checksum of everything in the record before it; each text as key
// and value (u64 length + bytes) and the checksum of the two; then "RECRUNEND" and the total file
// size (u64), so a truncated file is caught. Format 2 ("RECRUNA2") is the same without the
// checksums. Tensors stream straight from and into their storage, in chunks that are hashed
// while still in cache: a 380 MB EASE checkpoint goes at disk speed, several times faster than
// torch::pickle_save/pickle_load, which copy everything through intermediate buffers.
namespace {

constexpr char kMagic3[8] = {'R', 'E', 'C', 'R', 'U', 'N', 'A', '3'};
constexpr char kMagic2[8] = {'R', 'E', 'C', 'R', 'U', 'N', 'A', '2'};
constexpr char kEnd[9] = {'R', 'E', 'C', 'R', 'U', 'N', 'E', 'N', 'D'};
// Bytes hashed and moved per call: small enough that the hash reads them from cache.
constexpr std::size_t kChunk = std::size_t{1} << 20;

class File {
 public:
  File(const std::filesystem::path& path, const char* mode)
      : path_(path), f_(std::fopen(path.c_str(), mode)), hash_(XXH3_createState()) {
    if (!hash_) {
      if (f_) std::fclose(f_);
      throw std::bad_alloc();
    }
  }
  ~File() {
    if (f_) std::fclose(f_);
    XXH3_freeState(hash_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  explicit operator bool() const { return f_ != nullptr; }

  // A record's checksum covers every byte put or got between begin_record() and the digest.
  void begin_record(bool hashing) {
    hashing_ = hashing;
    if (hashing_) XXH3_64bits_reset(hash_);
  }
  std::uint64_t digest() {
    hashing_ = false;
    return XXH3_64bits_digest(hash_);
  }

  void put(const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const std::size_t k = std::min(n, kChunk);
      if (hashing_) XXH3_64bits_update(hash_, p, k);
      if (std::fwrite(p, 1, k, f_) != k)
        throw Error(fmt::format("cannot write checkpoint {} (disk full?)", path_.string()));
      written_ += k;
      p += k;
      n -= k;
    }
  }
  template <class T>
  void put(T v) { put(&v, sizeof v); }
  void put_string(const std::string& v) {
    put<std::uint64_t>(v.size());
    put(v.data(), v.size());
  }
  void get(void* data, std::size_t n) {
    auto* p = static_cast<char*>(data);
    while (n > 0) {
      const std::size_t k = std::min(n, kChunk);
      if (std::fread(p, 1, k, f_) != k) throw Error("truncated checkpoint (ends early)");
      if (hashing_) XXH3_64bits_update(hash_, p, k);
      p += k;
      n -= k;
    }
  }
  template <class T>
  T get() {
    T v;
    get(&v, sizeof v);
    return v;
  }
  std::string get_string(std::uint64_t limit) {
    const auto n = get<std::uint64_t>();
    if (n > limit) throw Error(fmt::format("corrupt checkpoint (string of {} bytes)", n));
    std::string v(n, '\0');
    get(v.data(), n);
    return v;
  }
  void close() {
    const bool failed = std::fflush(f_) != 0 || std::fclose(f_) != 0;
    f_ = nullptr;
    if (failed) throw Error(fmt::format("cannot write checkpoint {} (disk full?)", path_.string()));
  }
  std::uint64_t written() const { return written_; }

 private:
  std::filesystem::path path_;
  std::FILE* f_;
  XXH3_state_t* hash_;
  bool hashing_ = false;
  std::uint64_t written_ = 0;
};

// Checkpoints written before format 2 (a pickled [tag, tensors, texts] list).
void load_pickled(const std::filesystem::path& path, std::map<std::string, torch::Tensor>& tensors,
                  std::map<std::string, std::string>& texts) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const c10::IValue root = torch::pickle_load(bytes);
  const auto list = root.toList();
  if (list.size() != 3 || list.get(0).toStringRef() != "recrun-archive-v1")
    throw Error("not a recrun checkpoint");
  for (const auto& e : list.get(1).toGenericDict()) tensors[e.key().toStringRef()] = e.value().toTensor();
  for (const auto& e : list.get(2).toGenericDict()) texts[e.key().toStringRef()] = e.value().toStringRef();
}

}  // namespace

std::vector<std::string> Archive::text_keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : texts_) out.push_back(k);
  return out;
}

void Archive::save_file(const std::filesystem::path& path) const { save_file(path, FileOptions{}); }

void Archive::save_file(const std::filesystem::path& path, const FileOptions& options) const {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const bool sums = options.checksums;
  // Written whole or not at all: a crash mid-write leaves the previous checkpoint intact.
  util::write_atomically(path, [&](const std::filesystem::path& tmp) {
    File out(tmp, "wb");
    if (!out) throw Error(fmt::format("cannot write checkpoint {}: {}", tmp.string(), std::strerror(errno)));
    out.put(sums ? kMagic3 : kMagic2, sizeof kMagic3);
    out.put<std::uint64_t>(tensors_.size());
    out.put<std::uint64_t>(texts_.size());
    for (const auto& [key, value] : tensors_) {
      const torch::Tensor t = value.contiguous();
      out.begin_record(sums);
      out.put_string(key);
      out.put<std::int32_t>(static_cast<std::int32_t>(t.scalar_type()));
      out.put<std::int32_t>(static_cast<std::int32_t>(t.dim()));
      for (const auto size : t.sizes()) out.put<std::int64_t>(size);
      const auto bytes = static_cast<std::uint64_t>(t.numel() * t.element_size());
      out.put<std::uint64_t>(bytes);
      out.put(t.data_ptr(), bytes);
      if (sums) out.put<std::uint64_t>(out.digest());
    }
    for (const auto& [key, value] : texts_) {
      out.begin_record(sums);
      out.put_string(key);
      out.put_string(value);
      if (sums) out.put<std::uint64_t>(out.digest());
    }
    out.put(kEnd, sizeof kEnd);
    out.put<std::uint64_t>(out.written() + sizeof(std::uint64_t));
    out.close();
  });
}

Archive Archive::load_file(const std::filesystem::path& path) { return load_file(path, FileOptions{}); }

Archive Archive::load_file(const std::filesystem::path& path, const FileOptions& options) {
  File in(path, "rb");
  if (!in) throw Error(fmt::format("cannot open checkpoint {}: {}", path.string(), std::strerror(errno)));
  Archive a;
  std::error_code ec;
  const auto file_size = static_cast<std::uint64_t>(std::filesystem::file_size(path, ec));
  try {
    char magic[sizeof kMagic3] = {};
    if (file_size < sizeof kMagic3) throw Error("not a recrun checkpoint (too short)");
    in.get(magic, sizeof magic);
    const bool v3 = std::memcmp(magic, kMagic3, sizeof kMagic3) == 0;
    if (!v3 && std::memcmp(magic, kMagic2, sizeof kMagic2) != 0) {
      load_pickled(path, a.tensors_, a.texts_);
      return a;
    }
    const bool verify = v3 && options.verify;
    // Checks a record's stored checksum against the bytes just read.
    const auto check = [&](const char* kind, const std::string& key) {
      if (!v3) return;
      const std::uint64_t computed = verify ? in.digest() : 0;
      const auto stored = in.get<std::uint64_t>();
      if (verify && stored != computed)
        throw Error(fmt::format("corrupt checkpoint: {} '{}' fails its checksum (stored {:016x}, "
                                "computed {:016x}); the file was damaged after it was written",
                                kind, key, stored, computed));
    };
    const auto n_tensors = in.get<std::uint64_t>();
    const auto n_texts = in.get<std::uint64_t>();
    if (n_tensors > file_size || n_texts > file_size) throw Error("corrupt checkpoint (entry counts)");
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      in.begin_record(verify);
      std::string key = in.get_string(file_size);
      const auto type = in.get<std::int32_t>();
      const auto rank = in.get<std::int32_t>();
      if (type < 0 || type >= static_cast<std::int32_t>(c10::ScalarType::NumOptions) || rank < 0 || rank > 64)
        throw Error(fmt::format("corrupt checkpoint (tensor '{}': type {}, rank {})", key, type, rank));
      const auto dtype = static_cast<c10::ScalarType>(type);
      std::vector<std::int64_t> sizes(static_cast<std::size_t>(rank));
      // The shape's byte count, checked against the file before anything is allocated.
      std::uint64_t expected = c10::elementSize(dtype);
      for (auto& size : sizes) {
        size = in.get<std::int64_t>();
        if (size < 0 || static_cast<std::uint64_t>(size) > file_size)
          throw Error(fmt::format("corrupt checkpoint (tensor '{}' has size {})", key, size));
        expected = size == 0 ? 0 : std::min<std::uint64_t>(expected * static_cast<std::uint64_t>(size), file_size + 1);
      }
      const auto bytes = in.get<std::uint64_t>();
      if (bytes != expected || bytes > file_size)
        throw Error(fmt::format("corrupt checkpoint (tensor '{}' holds {} bytes for shape {})", key,
                                bytes, fmt::join(sizes, "x")));
      torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(dtype));
      in.get(t.data_ptr(), bytes);
      check("tensor", key);
      a.tensors_[std::move(key)] = std::move(t);
    }
    for (std::uint64_t i = 0; i < n_texts; ++i) {
      in.begin_record(verify);
      std::string key = in.get_string(file_size);
      std::string value = in.get_string(file_size);
      check("text", key);
      a.texts_[std::move(key)] = std::move(value);
    }
    char end[sizeof kEnd] = {};
    in.get(end, sizeof end);
    if (std::memcmp(end, kEnd, sizeof kEnd) != 0 || in.get<std::uint64_t>() != file_size)
      throw Error("corrupt checkpoint (bad trailer)");
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path.string(), e.what()));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: unreadable checkpoint ({})", path.string(), e.what()));
  }
  return a;
}

}  // namespace recrun
