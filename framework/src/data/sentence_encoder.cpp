#include "data/sentence_encoder.hpp"

#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "sdk/safe_file.hpp"
#include "recrun/error.hpp"

namespace recrun::data {
namespace {

// The first line of a LibTorch error, without the C++ backtrace that follows it.
std::string first_line(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) what = c10->what_without_backtrace();
  if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

std::string shape_of(const torch::Tensor& t) {
  std::vector<std::int64_t> s(t.sizes().begin(), t.sizes().end());
  return fmt::format("[{}]", fmt::join(s, ", "));
}

// A text as an error message quotes it: one line, at most 80 characters' worth of bytes.
std::string quoted(const std::string& text) {
  std::string s = text.substr(0, 80);
  // Do not cut a UTF-8 sequence in half.
  while (!s.empty() && s.size() < text.size() && (static_cast<unsigned char>(text[s.size()]) & 0xC0) == 0x80)
    s.pop_back();
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return fmt::format("'{}{}'", s, s.size() < text.size() ? "..." : "");
}

}  // namespace

struct SentenceEncoder::Model {
  torch::jit::Module module;
  std::string name;  // "TorchScript model 'FILE'"
};

Pooling parse_pooling(std::string_view text, std::string_view flag) {
  if (text == "mean") return Pooling::mean;
  if (text == "cls") return Pooling::cls;
  throw ParamError(fmt::format("{} must be mean or cls (got '{}')", flag, text));
}

TokenBatch pad_batch(const std::vector<const std::vector<std::int64_t>*>& seqs, std::int64_t pad_id) {
  std::size_t longest = 1;
  for (const auto* s : seqs) longest = std::max(longest, s->size());
  const auto b = static_cast<std::int64_t>(seqs.size()), t = static_cast<std::int64_t>(longest);
  TokenBatch out{torch::full({b, t}, pad_id, torch::kInt64), torch::zeros({b, t}, torch::kInt64)};
  auto ids = out.input_ids.accessor<std::int64_t, 2>();
  auto mask = out.attention_mask.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < b; ++i) {
    const auto& s = *seqs[static_cast<std::size_t>(i)];
    for (std::size_t k = 0; k < s.size(); ++k) {
      ids[i][static_cast<std::int64_t>(k)] = s[k];
      mask[i][static_cast<std::int64_t>(k)] = 1;
    }
  }
  return out;
}

SentenceEncoder::SentenceEncoder(const SentenceEncoderOptions& options)
    : options_(options),
      tokenizer_(WordPiece::from_file(options.vocab, options.case_mode)),
      model_(std::make_unique<Model>()) {
  if (options_.max_tokens < 2)
    throw ParamError(fmt::format("--max-tokens must be at least 2 ([CLS] and [SEP]; got {})",
                                 options_.max_tokens));
  if (options_.batch_size < 1)
    throw ParamError(fmt::format("--batch-size must be at least 1 (got {})", options_.batch_size));
  model_->name = fmt::format("TorchScript model '{}'", options_.model.string());
  util::check_regular_file(options_.model, "TorchScript model (--model)");
  try {
    model_->module = torch::jit::load(options_.model.string(), torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw Error(fmt::format("cannot load {}: {}; it must be a file written by torch.jit.save or "
                            "ScriptModule.save (docs/data.md shows how to export one)",
                            model_->name, first_line(e)));
  }
  model_->module.eval();
  const auto method = model_->module.find_method("forward");
  if (!method)
    throw Error(fmt::format("{} has no forward method; export the encoder module itself",
                            model_->name));
  const c10::FunctionSchema& schema = method->function().getSchema();
  std::ostringstream shown;
  shown << schema;
  const auto& args = schema.arguments();  // self first
  const std::string wanted =
      "forward(input_ids: Tensor, attention_mask: Tensor) returning a float tensor [B, T, H] or "
      "[B, H]";
  bool ok = args.size() >= 3;
  for (std::size_t i = 1; ok && i < args.size(); ++i) {
    if (i <= 2)
      ok = args[i].type()->kind() == c10::TypeKind::TensorType;
    else
      ok = args[i].default_value().has_value();  // later arguments must have defaults
  }
  if (!ok)
    throw Error(fmt::format("{} has {}; recrun calls {}", model_->name, shown.str(), wanted));
}

SentenceEncoder::~SentenceEncoder() = default;
SentenceEncoder::SentenceEncoder(SentenceEncoder&&) noexcept = default;
SentenceEncoder& SentenceEncoder::operator=(SentenceEncoder&&) noexcept = default;

torch::Tensor SentenceEncoder::embed_batch(const TokenBatch& batch) const {
  torch::NoGradGuard no_grad;
  const auto b = batch.input_ids.size(0), t = batch.input_ids.size(1);
  c10::IValue out;
  try {
    out = model_->module.forward({batch.input_ids, batch.attention_mask});
  } catch (const std::exception& e) {
    throw Error(fmt::format("{} failed on a batch of {} texts of {} tokens: {} (is --vocab the "
                            "model's own vocab.txt, with {} entries?)",
                            model_->name, b, t, first_line(e), tokenizer_.size()));
  }
  torch::Tensor h;
  if (out.isTensor()) {
    h = out.toTensor();
  } else if (out.isTuple() && !out.toTupleRef().elements().empty() &&
             out.toTupleRef().elements()[0].isTensor()) {
    h = out.toTupleRef().elements()[0].toTensor();
  } else {
    throw Error(fmt::format("{} returned a {}; recrun needs a float tensor [B, T, H] (token "
                            "embeddings) or [B, H] (sentence vectors)",
                            model_->name, out.tagKind()));
  }
  const std::string expected = fmt::format(
      "recrun needs float [B, T, H] (token embeddings) or [B, H] (sentence vectors), here B = {} "
      "and T = {}",
      b, t);
  if (!h.is_floating_point())
    throw Error(fmt::format("{} returned a {} tensor {}; {}", model_->name,
                            c10::toString(h.scalar_type()), shape_of(h), expected));
  const bool tokens = h.dim() == 3 && h.size(0) == b && h.size(1) == t && h.size(2) > 0;
  const bool sentences = h.dim() == 2 && h.size(0) == b && h.size(1) > 0;
  if (!tokens && !sentences)
    throw Error(fmt::format("{} returned a tensor of shape {} (rank {}); {}", model_->name,
                            shape_of(h), h.dim(), expected));
  h = h.to(torch::kCPU, torch::kFloat32);
  torch::Tensor v;
  if (sentences) {
    v = h;
  } else if (options_.pooling == Pooling::cls) {
    v = h.select(1, 0);
  } else {
    const auto keep = batch.attention_mask.unsqueeze(-1) > 0;  // [B, T, 1]
    const auto count = batch.attention_mask.sum(1, true).clamp_min(1).to(torch::kFloat32);
    v = torch::where(keep, h, torch::zeros({}, h.options())).sum(1) / count;
  }
  if (!torch::isfinite(v).all().item<bool>())
    throw Error(fmt::format("{} returned non-finite values (NaN or infinity)", model_->name));
  return (v / v.norm(2, {1}, true).clamp_min(1e-12)).contiguous();
}

torch::Tensor SentenceEncoder::embed(const std::vector<std::string>& texts,
                                     const std::function<void(std::int64_t, std::int64_t)>& progress) const {
  const auto n = static_cast<std::int64_t>(texts.size());
  std::vector<std::vector<std::int64_t>> ids(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) ids[i] = tokenizer_.encode(texts[i], options_.max_tokens);
  std::vector<std::size_t> order(texts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return ids[a].size() < ids[b].size(); });
  torch::Tensor result;
  std::vector<const std::vector<std::int64_t>*> seqs;
  for (std::int64_t start = 0; start < n; start += options_.batch_size) {
    const std::int64_t end = std::min(n, start + options_.batch_size);
    seqs.clear();
    for (std::int64_t k = start; k < end; ++k) seqs.push_back(&ids[order[static_cast<std::size_t>(k)]]);
    torch::Tensor v;
    try {
      v = embed_batch(pad_batch(seqs, tokenizer_.pad_id()));
    } catch (const Error& e) {
      throw Error(fmt::format("{} (batch with text {})", e.what(),
                              quoted(texts[order[static_cast<std::size_t>(start)]])));
    }
    if (!result.defined()) result = torch::zeros({n, v.size(1)}, torch::kFloat32);
    if (v.size(1) != result.size(1))
      throw Error(fmt::format("TorchScript model '{}' returned vectors of {} values, then of {}",
                              options_.model.string(), result.size(1), v.size(1)));
    std::vector<std::int64_t> rows;
    for (std::int64_t k = start; k < end; ++k)
      rows.push_back(static_cast<std::int64_t>(order[static_cast<std::size_t>(k)]));
    result.index_copy_(0, torch::tensor(rows, torch::kInt64), v);
    if (progress) progress(end, n);
  }
  if (!result.defined()) result = torch::zeros({0, 0}, torch::kFloat32);
  return result;
}

}  // namespace recrun::data
