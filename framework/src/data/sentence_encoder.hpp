// A Sentence-BERT style encoder exported as TorchScript, for `recrun data embed-titles --encoder
// torchscript`: texts -> WordPiece ids -> the model -> pooled, L2-normalised vectors.
//
// The model's convention (docs/data.md has the export recipe):
//   forward(input_ids: Tensor int64 [B, T], attention_mask: Tensor int64 [B, T])
//     -> Tensor float [B, T, H]   token embeddings (e.g. BERT's last_hidden_state), pooled here
//      | Tensor float [B, H]      sentence vectors, taken as they are
//   (a tuple whose first element is such a tensor is accepted too: HF models return tuples).
// attention_mask is 1 on real tokens ([CLS] and [SEP] included) and 0 on [PAD].
// Pooling of [B, T, H]: the mean over the tokens the mask keeps, or the [CLS] token's vector.
// Texts are run in batches of similar token length (sorted by length, stable), so padding
// costs little; the vectors come back in the texts' order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/wordpiece.hpp"

namespace recrun::data {

enum class Pooling { mean, cls };

/// Parses "mean" / "cls"; throws ParamError naming `flag` otherwise.
Pooling parse_pooling(std::string_view text, std::string_view flag);

struct SentenceEncoderOptions {
  std::filesystem::path model;  // TorchScript file (torch.jit.save / ScriptModule.save)
  std::filesystem::path vocab;  // the model's vocab.txt
  CaseMode case_mode = CaseMode::detect;
  std::int64_t max_tokens = 128;  // [CLS] and [SEP] included
  std::int64_t batch_size = 32;
  Pooling pooling = Pooling::mean;
};

/// One padded batch: ids and mask, both int64 [B, T] with T the longest sequence.
struct TokenBatch {
  torch::Tensor input_ids;
  torch::Tensor attention_mask;
};

/// Pads `seqs` with `pad_id` to their longest length (at least 1).
TokenBatch pad_batch(const std::vector<const std::vector<std::int64_t>*>& seqs, std::int64_t pad_id);

class SentenceEncoder {
 public:
  /// Reads the vocabulary, loads the model on the CPU and checks that its forward takes two
  /// tensors. Throws Error naming the file and what is wrong.
  explicit SentenceEncoder(const SentenceEncoderOptions& options);
  ~SentenceEncoder();
  SentenceEncoder(SentenceEncoder&&) noexcept;
  SentenceEncoder& operator=(SentenceEncoder&&) noexcept;

  /// Runs one batch and returns its pooled, L2-normalised vectors, float [B, H]. Throws Error
  /// when the model fails or returns anything but a float tensor [B, T, H] or [B, H] of finite
  /// values.
  torch::Tensor embed_batch(const TokenBatch& batch) const;

  /// Embeds every text: float [N, H], row i for texts[i]. `progress(done, total)` is called
  /// after each batch. Throws Error (naming the text) as embed_batch does.
  torch::Tensor embed(const std::vector<std::string>& texts,
                      const std::function<void(std::int64_t, std::int64_t)>& progress = {}) const;

  const WordPiece& tokenizer() const { return tokenizer_; }
  const SentenceEncoderOptions& options() const { return options_; }

 private:
  struct Model;
  SentenceEncoderOptions options_;
  WordPiece tokenizer_;
  std::unique_ptr<Model> model_;
};

}  // namespace recrun::data
