// `recrun data embed-titles --encoder torchscript` end to end: the real binary on a seed-layout
// copy of the bundled MovieLens latest-small, with a tiny TorchScript encoder saved here; the
// vectors the seed_tsv source then reads (through a cache the new file invalidates) against hand
// computations; and bad inputs, each a clear error that leaves the previous file as it was.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "data/dataset_loader.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A 2-d "encoder": each token's row of a fixed table ([PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3,
// toy 4, story 5, ##s 6).
void save_model(const fs::path& path, const std::string& forward) {
  torch::jit::Module m("TinyEncoder");
  m.register_parameter("emb",
                       torch::tensor({100.f, 100.f, 0.f, 5.f, 1.f, 0.f, 0.f, 1.f, 3.f, 0.f, 0.f,
                                      2.f, 2.f, 2.f})
                           .view({7, 2}),
                       false);
  m.define(forward);
  m.save(path.string());
}

class TitleEncoderE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("title-encoder-e2e");
    seed = dir / "seed";
    model = dir / "tiny.pt";
    vocab = dir / "vocab.txt";
    save_model(model, "def forward(self, input_ids, attention_mask):\n"
                      "    return torch.embedding(self.emb, input_ids)\n");
    std::ofstream(vocab, std::ios::binary) << "[PAD]\n[UNK]\n[CLS]\n[SEP]\ntoy\nstory\n##s\n";
    const auto conv = recrun(fmt::format("data convert --from {}/experiments/data/ml-latest-small "
                                         "--to {} --title-dim 0",
                                         RECRUN_SOURCE_DIR, test::shell_quote(seed.string())));
    ASSERT_EQ(conv.exit_code, 0) << conv.output;
    ASSERT_FALSE(fs::exists(seed / "title_embeddings.tsv"));
  }

  test::CommandResult recrun(const std::string& args) const {
    return test::run_command(fmt::format("{} {} --plugin-dir {} 2>&1", test::recrun_bin(), args,
                                         test::shell_quote(test::plugin_dir().string())));
  }

  std::string embed(const std::string& extra) const {
    return fmt::format("data embed-titles {} --encoder torchscript --model {} --vocab {} {}",
                       test::shell_quote(seed.string()), test::shell_quote(model.string()),
                       test::shell_quote(vocab.string()), extra);
  }

  fs::path dir, seed, model, vocab;
};

void expect_unit(const DenseFeature& f, std::int32_t item, double x, double y) {
  const double n = std::sqrt(x * x + y * y);
  EXPECT_NEAR(f.values[item * 2], x / n, 1e-6) << "item " << item;
  EXPECT_NEAR(f.values[item * 2 + 1], y / n, 1e-6) << "item " << item;
}

TEST_F(TitleEncoderE2E, WritesPooledNormalisedVectorsThatTheSeedSourceReads) {
  // A first load caches the data set with title vectors derived by TF-IDF (64 dimensions).
  const auto before = data::load_dataset(test::test_registry(), seed, "seed_tsv",
                                         data::LoadOptions{.print_warnings = false});
  ASSERT_TRUE(before.dataset.dense.count("title"));
  EXPECT_EQ(before.dataset.dense.at("title").dim, 64);

  // 9724 items after conversion (the clean ratings.csv), every one with a title.
  const auto r = recrun(embed(""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("title embeddings: 9724 of 9724 items, 2 dimensions (TorchScript "
                          "tiny.pt, mean pooling, uncased WordPiece of 7 entries"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("embedding titles: 9724/9724 (100%)"), std::string::npos) << r.output;

  const auto after = data::load_dataset(test::test_registry(), seed, "seed_tsv",
                                        data::LoadOptions{.print_warnings = false});
  EXPECT_FALSE(after.from_cache);  // the new file changed the cache key
  ASSERT_TRUE(after.dataset.dense.count("title"));
  const DenseFeature& f = after.dataset.dense.at("title");
  ASSERT_EQ(f.dim, 2);
  EXPECT_EQ(std::count(f.present.begin(), f.present.end(), std::uint8_t{1}), 9724);
  const auto toy = after.dataset.find_item("1"), jumanji = after.dataset.find_item("2"),
             toy2 = after.dataset.find_item("3114");
  ASSERT_TRUE(toy && jumanji && toy2);
  // "Toy Story": [CLS] toy story [SEP] = (1,0)+(3,0)+(0,2)+(0,1) = (4,3).
  expect_unit(f, *toy, 4, 3);
  // "Jumanji": [CLS] [UNK] [SEP] = (1,0)+(0,5)+(0,1) = (1,6).
  expect_unit(f, *jumanji, 1, 6);
  // "Toy Story 2": [CLS] toy story [UNK] [SEP] = (4,8).
  expect_unit(f, *toy2, 4, 8);

  // With the genres: "Toy Story. Genres: Adventure, Animation, Children, Comedy, Fantasy."
  // has 13 pieces after "toy story" that the vocabulary lacks (". genres : adventure ,
  // animation , children , comedy , fantasy ."): (1,0)+(3,0)+(0,2)+13*(0,5)+(0,1) = (4,68).
  const auto g = recrun(embed("--with-genres --force"));
  ASSERT_EQ(g.exit_code, 0) << g.output;
  EXPECT_NE(g.output.find("title and genres"), std::string::npos) << g.output;
  const auto genred = data::load_dataset(test::test_registry(), seed, "seed_tsv",
                                         data::LoadOptions{.print_warnings = false});
  expect_unit(genred.dataset.dense.at("title"), *genred.dataset.find_item("1"), 4, 68);
}

TEST_F(TitleEncoderE2E, BadInputsAreClearErrorsAndWriteNothing) {
  const fs::path out = seed / "title_embeddings.tsv";
  ASSERT_EQ(recrun(embed("")).exit_code, 0);
  const std::string written = slurp(out);
  ASSERT_FALSE(written.empty());
  const auto refused = [&](const std::string& args, const std::string& says) {
    const auto r = recrun(args);
    EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(slurp(out), written) << args;  // --force or not, the old vectors stay
  };

  const std::string base = fmt::format("data embed-titles {} --encoder torchscript --force ",
                                       test::shell_quote(seed.string()));
  refused(base + fmt::format("--model {} --vocab {}", test::shell_quote(model.string()),
                             test::shell_quote((dir / "no-vocab.txt").string())),
          "no-vocab.txt");
  refused(base + fmt::format("--model {}", test::shell_quote(model.string())),
          "--encoder torchscript needs --vocab");

  save_model(dir / "one_arg.pt", "def forward(self, input_ids):\n"
                                 "    return torch.embedding(self.emb, input_ids)\n");
  refused(base + fmt::format("--model {} --vocab {}", test::shell_quote((dir / "one_arg.pt").string()),
                             test::shell_quote(vocab.string())),
          "recrun calls forward(input_ids: Tensor, attention_mask: Tensor)");

  save_model(dir / "rank4.pt", "def forward(self, input_ids, attention_mask):\n"
                               "    return torch.embedding(self.emb, input_ids).unsqueeze(1)\n");
  refused(base + fmt::format("--model {} --vocab {}", test::shell_quote((dir / "rank4.pt").string()),
                             test::shell_quote(vocab.string())),
          "(rank 4)");
  // Nor is anything left beside the target.
  for (const auto& e : fs::directory_iterator(seed))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  // A new --out is not created either.
  const auto r = recrun(fmt::format("data embed-titles {} --encoder torchscript --model {} --vocab {} --out {}",
                                    test::shell_quote(seed.string()),
                                    test::shell_quote((dir / "rank4.pt").string()),
                                    test::shell_quote(vocab.string()),
                                    test::shell_quote((dir / "new.tsv").string())));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(dir / "new.tsv"));

  // Each encoder's flags belong to it.
  refused(embed("--dim 8 --force"), "--dim belongs to --encoder tfidf");
  refused(fmt::format("data embed-titles {} --pooling cls --force", test::shell_quote(seed.string())),
          "--pooling needs --encoder torchscript");
  refused(embed("--pooling max --force"), "--pooling must be mean or cls (got 'max')");
  refused(embed("--max-tokens 1 --force"), "--max-tokens must be at least 2");
  refused(fmt::format("data embed-titles {} --encoder bert --force", test::shell_quote(seed.string())),
          "--encoder must be tfidf or torchscript (got 'bert')");
}

}  // namespace
}  // namespace recrun
