// Checkpoint files: exact round trips of tensors of every common type, texts and optimizer state;
// damaged files get an error naming the file; checkpoints written before format 2 still load.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "recrun/archive.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

Archive sample() {
  torch::manual_seed(3);
  Archive a;
  a.write("w.float", torch::randn({37, 5}));
  a.write("w.double", torch::randn({4}, torch::kFloat64));
  a.write("ids.long", torch::arange(0, 1000, torch::kInt64));
  a.write("mask.bool", torch::rand({3, 3}) > 0.5);
  a.write("scalar", torch::tensor(2.5f));
  a.write("empty", torch::empty({0, 8}));
  a.write("strided", torch::randn({6, 4}).t());  // not contiguous
  a.write_text("note", std::string("tab\there, a NUL \0 byte and UTF-8: \xc3\xa9", 40));
  a.write_text("empty text", "");
  return a;
}

void expect_same(const Archive& x, const Archive& y) {
  ASSERT_EQ(x.keys(), y.keys());
  for (const auto& k : x.keys()) {
    const auto a = x.read(k), b = y.read(k);
    EXPECT_EQ(a.scalar_type(), b.scalar_type()) << k;
    EXPECT_EQ(a.sizes(), b.sizes()) << k;
    EXPECT_TRUE(a.equal(b)) << k;
  }
  EXPECT_EQ(x.read_text("note"), y.read_text("note"));
  EXPECT_EQ(y.read_text("note").size(), 40u);
  EXPECT_EQ(y.read_text("empty text"), "");
}

TEST(Archive, FileRoundTripIsExactForEveryTypeShapeAndText) {
  const fs::path dir = test::temp_dir("archive");
  const Archive a = sample();
  a.save_file(dir / "sub" / "a.ckpt");  // creates the folder
  EXPECT_FALSE(fs::exists(dir / "sub" / "a.ckpt.tmp"));
  expect_same(a, Archive::load_file(dir / "sub" / "a.ckpt"));
}

TEST(Archive, OptimizerStateSurvivesTheFile) {
  torch::manual_seed(1);
  auto net = torch::nn::Linear(4, 2);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.01));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    net(torch::randn({8, 4})).pow(2).sum().backward();
    opt.step();
  }
  Archive a;
  a.write("net", *net);
  a.write("opt", opt);
  const fs::path file = test::temp_dir("archive-opt") / "o.ckpt";
  a.save_file(file);

  auto net2 = torch::nn::Linear(4, 2);
  torch::optim::Adam opt2(net2->parameters(), torch::optim::AdamOptions(0.01));
  const Archive b = Archive::load_file(file);
  b.read("net", *net2);
  b.read("opt", opt2);
  // One more identical step on both gives identical weights: the moments came back too.
  const auto x = torch::randn({8, 4});
  for (auto* pair : {&opt, &opt2}) pair->zero_grad();
  net(x).pow(2).sum().backward();
  net2(x).pow(2).sum().backward();
  opt.step();
  opt2.step();
  EXPECT_TRUE(net->weight.equal(net2->weight));
}

TEST(Archive, DamagedFilesGetAnErrorNamingTheFile) {
  const fs::path dir = test::temp_dir("archive-bad");
  sample().save_file(dir / "good.ckpt");
  const auto size = fs::file_size(dir / "good.ckpt");
  const auto expect_error = [&](const fs::path& file, const std::string& words) {
    try {
      Archive::load_file(file);
      ADD_FAILURE() << "no error for " << file;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  for (const std::uintmax_t cut : {size - 1, size / 2, std::uintmax_t{12}, std::uintmax_t{3}}) {
    fs::copy_file(dir / "good.ckpt", dir / "cut.ckpt", fs::copy_options::overwrite_existing);
    fs::resize_file(dir / "cut.ckpt", cut);
    expect_error(dir / "cut.ckpt", "checkpoint");
  }
  std::ofstream(dir / "text.ckpt") << "this is not a checkpoint at all\n";
  expect_error(dir / "text.ckpt", "checkpoint");
  expect_error(dir / "missing.ckpt", "cannot open");
  // A flipped byte in a tensor's shape is caught before anything is allocated.
  fs::copy_file(dir / "good.ckpt", dir / "flip.ckpt");
  {
    std::fstream f(dir / "flip.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8 + 16 + 8 + 5 + 8 + 7);  // magic, counts, key length, "empty", type+rank, size[0] high byte
    f.put('\x7f');
  }
  expect_error(dir / "flip.ckpt", "corrupt");
}

TEST(Archive, CheckpointsOfTheEarlierPickleFormatStillLoad) {
  // Format 1 was torch::pickle_save of ["recrun-archive-v1", {tensors}, {texts}].
  c10::Dict<std::string, at::Tensor> tensors;
  tensors.insert("w", torch::arange(6, torch::kFloat32).view({2, 3}));
  c10::Dict<std::string, std::string> texts;
  texts.insert("t", "hello");
  c10::impl::GenericList root(c10::AnyType::get());
  root.push_back(c10::IValue(std::string("recrun-archive-v1")));
  root.push_back(c10::IValue(tensors));
  root.push_back(c10::IValue(texts));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(root));
  const fs::path file = test::temp_dir("archive-v1") / "old.ckpt";
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const Archive a = Archive::load_file(file);
  EXPECT_TRUE(a.read("w").equal(torch::arange(6, torch::kFloat32).view({2, 3})));
  EXPECT_EQ(a.read_text("t"), "hello");
}

}  // namespace
}  // namespace recrun
