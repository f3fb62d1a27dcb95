// `recrun data embed-titles --encoder torchscript`: tiny TorchScript encoders defined and saved
// here (a registered embedding parameter and a define()d forward), run through the tokenizer,
// pooled and normalised, against hand computations; and the model checks' errors.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>

#include "data/sentence_encoder.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
using data::Pooling;
using data::SentenceEncoder;
using data::SentenceEncoderOptions;

// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, toy 4, story 5, ##s 6.
const char* kVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\ntoy\nstory\n##s\n";

// One 2-d row per vocabulary entry. [PAD]'s row is large, so that any padding a pooling lets
// through shows.
torch::Tensor table() {
  return torch::tensor({100.f, 100.f,  // [PAD]
                        0.f, 5.f,      // [UNK]
                        1.f, 0.f,      // [CLS]
                        0.f, 1.f,      // [SEP]
                        3.f, 0.f,      // toy
                        0.f, 2.f,      // story
                        2.f, 2.f})     // ##s
      .view({7, 2});
}

// Token embeddings: each token's row of the table.
const char* kTokenForward = R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids)
)";

fs::path save_model(const fs::path& path, const std::string& forward,
                    const torch::Tensor& emb = table()) {
  torch::jit::Module m("TinyEncoder");
  m.register_parameter("emb", emb, false);
  m.define(forward);
  m.save(path.string());
  return path;
}

struct Fixture {
  fs::path dir;
  fs::path vocab;
  explicit Fixture(const std::string& tag) : dir(test::temp_dir(tag)), vocab(dir / "vocab.txt") {
    std::ofstream(vocab, std::ios::binary) << kVocab;
  }
  SentenceEncoderOptions options(const fs::path& model, Pooling pooling = Pooling::mean) const {
    SentenceEncoderOptions o;
    o.model = model;
    o.vocab = vocab;
    o.pooling = pooling;
    o.batch_size = 8;
    return o;
  }
};

void expect_row(const torch::Tensor& v, std::int64_t row, double x, double y) {
  const double n = std::sqrt(x * x + y * y);
  EXPECT_NEAR(v[row][0].item<float>(), x / n, 1e-6) << "row " << row;
  EXPECT_NEAR(v[row][1].item<float>(), y / n, 1e-6) << "row " << row;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SentenceEncoder, PadsBatchesWithTheMask) {
  const std::vector<std::int64_t> a{2, 4, 3}, b{2, 3};
  const auto batch = data::pad_batch({&a, &b}, 0);
  EXPECT_TRUE(batch.input_ids.equal(torch::tensor({2, 4, 3, 2, 3, 0}, torch::kInt64).view({2, 3})));
  EXPECT_TRUE(batch.attention_mask.equal(torch::tensor({1, 1, 1, 1, 1, 0}, torch::kInt64).view({2, 3})));
  EXPECT_EQ(batch.input_ids.scalar_type(), torch::kInt64);
}

TEST(SentenceEncoder, MeanPoolsTokenEmbeddingsOverTheMaskAndNormalises) {
  const Fixture fx("senc-mean");
  const SentenceEncoder enc(fx.options(save_model(fx.dir / "tok.pt", kTokenForward)));
  // One batch: "story" is padded to the length of the others with [PAD] = (100, 100).
  const auto v = enc.embed({"Toy Story", "toys", "story", "toy story 2"});
  ASSERT_EQ(v.sizes(), (std::vector<std::int64_t>{4, 2}));
  // [CLS] toy story [SEP]: (1,0)+(3,0)+(0,2)+(0,1) = (4,3), /4, normalised: (0.8, 0.6).
  expect_row(v, 0, 0.8, 0.6);
  // [CLS] toy ##s [SEP]: (1,0)+(3,0)+(2,2)+(0,1) = (6,3) -> (2,1)/sqrt(5).
  expect_row(v, 1, 2, 1);
  // [CLS] story [SEP] [PAD]: (1,0)+(0,2)+(0,1) = (1,3), the [PAD] left out.
  expect_row(v, 2, 1, 3);
  // [CLS] toy story [UNK] [SEP]: (1,0)+(3,0)+(0,2)+(0,5)+(0,1) = (4,8).
  expect_row(v, 3, 1, 2);
  // Any batch size gives the same vectors, in the texts' order.
  auto o = fx.options(fx.dir / "tok.pt");
  o.batch_size = 1;
  EXPECT_TRUE(torch::allclose(SentenceEncoder(o).embed({"Toy Story", "toys", "story", "toy story 2"}), v));
}

TEST(SentenceEncoder, TruncatesToMaxTokens) {
  const Fixture fx("senc-trunc");
  auto o = fx.options(save_model(fx.dir / "tok.pt", kTokenForward));
  o.max_tokens = 3;
  // [CLS] toy [SEP]: "story" is cut. (1,0)+(3,0)+(0,1) = (4,1).
  expect_row(SentenceEncoder(o).embed({"toy story"}), 0, 4, 1);
}

TEST(SentenceEncoder, ClsPoolingTakesTheFirstTokensVector) {
  const Fixture fx("senc-cls");
  // Each token's row plus the masked sum of the sentence's rows, so that [CLS]'s output depends
  // on the sentence and on the mask the encoder passes.
  const auto model = save_model(fx.dir / "ctx.pt", R"(
def forward(self, input_ids, attention_mask):
    e = torch.embedding(self.emb, input_ids)
    s = (e * attention_mask.unsqueeze(-1)).sum(1, keepdim=True)
    return e + s
)");
  const auto v = SentenceEncoder(fx.options(model, Pooling::cls)).embed({"toy story", "story"});
  // [CLS] + (4,3) = (5,3); "story", padded: [CLS] + (1,3) = (2,3).
  expect_row(v, 0, 5, 3);
  expect_row(v, 1, 2, 3);
}

TEST(SentenceEncoder, SentenceVectorsOfRankTwoAreTakenAsTheyAre) {
  const Fixture fx("senc-rank2");
  const auto model = save_model(fx.dir / "sum.pt", R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids).sum(1)
)");
  // Alone in its batch (no padding): the sum (4,3) of [CLS] toy story [SEP], normalised.
  expect_row(SentenceEncoder(fx.options(model)).embed({"toy story"}), 0, 4, 3);
}

TEST(SentenceEncoder, RefusesAForwardWithTheWrongSignature) {
  const Fixture fx("senc-sig");
  const auto one = save_model(fx.dir / "one.pt", R"(
def forward(self, input_ids):
    return torch.embedding(self.emb, input_ids)
)");
  std::string e = error_of([&] { SentenceEncoder(fx.options(one)); });
  EXPECT_NE(e.find("one.pt"), std::string::npos) << e;
  EXPECT_NE(e.find("Tensor input_ids) ->"), std::string::npos) << e;  // shows the model's
  EXPECT_NE(e.find("forward(input_ids: Tensor, attention_mask: Tensor)"), std::string::npos) << e;

  const auto ints = save_model(fx.dir / "ints.pt", R"(
def forward(self, input_ids: int, attention_mask: int):
    return self.emb
)");
  e = error_of([&] { SentenceEncoder(fx.options(ints)); });
  EXPECT_NE(e.find("int input_ids"), std::string::npos) << e;

  // A third argument is fine when it has a default.
  const auto extra = save_model(fx.dir / "extra.pt", R"(
def forward(self, input_ids, attention_mask, scale: float = 1.0):
    return torch.embedding(self.emb, input_ids) * scale
)");
  expect_row(SentenceEncoder(fx.options(extra)).embed({"toy story"}), 0, 0.8, 0.6);
}

TEST(SentenceEncoder, RefusesOutputsOfTheWrongRankShapeOrType) {
  const Fixture fx("senc-out");
  const auto run = [&](const char* name, const std::string& forward) {
    return error_of([&] {
      SentenceEncoder(fx.options(save_model(fx.dir / name, forward))).embed({"toy story", "story"});
    });
  };
  std::string e = run("rank4.pt", R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids).unsqueeze(0)
)");
  EXPECT_NE(e.find("shape [1, 2, 4, 2] (rank 4)"), std::string::npos) << e;
  EXPECT_NE(e.find("B = 2 and T = 4"), std::string::npos) << e;
  e = run("rank0.pt", R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids).sum()
)");
  EXPECT_NE(e.find("(rank 0)"), std::string::npos) << e;
  e = run("batch.pt", R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids)[0:1]
)");
  EXPECT_NE(e.find("shape [1, 4, 2]"), std::string::npos) << e;
  e = run("ids.pt", R"(
def forward(self, input_ids, attention_mask):
    return input_ids
)");
  EXPECT_NE(e.find("Long tensor"), std::string::npos) << e;
  e = run("int.pt", R"(
def forward(self, input_ids, attention_mask):
    return 3
)");
  EXPECT_NE(e.find("returned a Int"), std::string::npos) << e;
  e = run("nan.pt", R"(
def forward(self, input_ids, attention_mask):
    return torch.embedding(self.emb, input_ids) / 0.0 * 0.0
)");
  EXPECT_NE(e.find("non-finite"), std::string::npos) << e;
}

TEST(SentenceEncoder, ReportsAModelThatFailsOrCannotLoad) {
  const Fixture fx("senc-fail");
  // A vocabulary larger than the model's embedding table: the lookup fails in forward.
  std::ofstream(fx.dir / "big.txt", std::ios::binary) << kVocab << "jumanji\n";
  auto o = fx.options(save_model(fx.dir / "tok.pt", kTokenForward));
  o.vocab = fx.dir / "big.txt";
  std::string e = error_of([&] { SentenceEncoder(o).embed({"Jumanji"}); });
  EXPECT_NE(e.find("tok.pt' failed on a batch of 1 texts of 3 tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("8 entries"), std::string::npos) << e;
  EXPECT_NE(e.find("'Jumanji'"), std::string::npos) << e;

  std::ofstream(fx.dir / "junk.pt", std::ios::binary) << "not a model";
  e = error_of([&] { SentenceEncoder(fx.options(fx.dir / "junk.pt")); });
  EXPECT_NE(e.find("cannot load TorchScript model"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;  // one line, no LibTorch backtrace
  e = error_of([&] { SentenceEncoder(fx.options(fx.dir / "missing.pt")); });
  EXPECT_NE(e.find("missing.pt"), std::string::npos) << e;
  auto no_vocab = fx.options(fx.dir / "tok.pt");
  no_vocab.vocab = fx.dir / "missing-vocab.txt";
  e = error_of([&] { SentenceEncoder{no_vocab}; });
  EXPECT_NE(e.find("missing-vocab.txt"), std::string::npos) << e;
}

}  // namespace
}  // namespace recrun
