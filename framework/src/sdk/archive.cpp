#include "recrun/archive.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "recrun/error.hpp"

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

void Archive::save_file(const std::filesystem::path& path) const {
  c10::Dict<std::string, at::Tensor> tensors;
  for (const auto& [k, v] : tensors_) tensors.insert(k, v);
  c10::Dict<std::string, std::string> texts;
  for (const auto& [k, v] : texts_) texts.insert(k, v);
  c10::impl::GenericList root(c10::AnyType::get());
  root.push_back(c10::IValue(std::string("recrun-archive-v1")));
  root.push_back(c10::IValue(tensors));
  root.push_back(c10::IValue(texts));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(root));

  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  // Write-then-rename: a crash mid-write leaves the previous checkpoint intact.
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write checkpoint {}", tmp.string()));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw Error(fmt::format("cannot write checkpoint {} (disk full?)", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

Archive Archive::load_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open checkpoint {}", path.string()));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Archive a;
  try {
    const c10::IValue root = torch::pickle_load(bytes);
    const auto list = root.toList();
    if (list.size() != 3 || list.get(0).toStringRef() != "recrun-archive-v1")
      throw Error("not a recrun checkpoint");
    for (const auto& e : list.get(1).toGenericDict())
      a.tensors_[e.key().toStringRef()] = e.value().toTensor();
    for (const auto& e : list.get(2).toGenericDict())
      a.texts_[e.key().toStringRef()] = e.value().toStringRef();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path.string(), e.what()));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: unreadable checkpoint ({})", path.string(), e.what()));
  }
  return a;
}

}  // namespace recrun
