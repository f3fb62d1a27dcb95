// recrun/seq.hpp: length-bucketed batches, packing, row indices, the transformer encoder and the
// item-bag encoder.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <set>

#include "recrun/seq.hpp"

namespace recrun {
namespace {

TEST(HashDropout, KeepsOneMinusPScalesAndBackpropagatesTheSameMask) {
  torch::manual_seed(1);
  const torch::Tensor x = (torch::rand({300, 1000}) + 0.5).requires_grad_(true);
  const torch::Tensor y = recrun::dropout(x, 0.2, /*train=*/true);
  const torch::Tensor kept = y.ne(0);
  EXPECT_NEAR(kept.to(torch::kDouble).mean().item<double>(), 0.8, 0.005);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / 0.8));
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), kept.to(torch::kFloat) / 0.8));
  // No structure along rows or columns (a weak hash would show stripes).
  const torch::Tensor rows = kept.to(torch::kDouble).mean(1), cols = kept.to(torch::kDouble).mean(0);
  EXPECT_LT((rows - 0.8).abs().max().item<double>(), 0.1);
  EXPECT_LT((cols - 0.8).abs().max().item<double>(), 0.1);
  // Reproducible from LibTorch's seed; different on the next call; identity when not training.
  torch::manual_seed(1);
  (void)torch::rand({300, 1000});
  EXPECT_TRUE(recrun::dropout(x.detach(), 0.2, true).equal(y.detach()));
  EXPECT_FALSE(recrun::dropout(x.detach(), 0.2, true).equal(y.detach()));
  EXPECT_TRUE(recrun::dropout(x, 0.2, false).equal(x));
}

// The kernel is compiled for several instruction sets and picked at load time: whichever runs,
// every element must be exactly what the specified hash decides (murmur3's finaliser of the
// element index and the generator's draw), in float32 and bfloat16, across parallel_for's chunks
// and in the tail that no vector fills.
TEST(HashDropout, EveryElementIsWhatTheHashDecidesInFloatAndBf16) {
  const auto mix32 = [](std::uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
  };
  const double p = 0.3;
  const std::int64_t n = (1 << 16) + 37;  // two chunks of parallel_for and an odd tail
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    torch::manual_seed(11);
    const torch::Tensor x = (torch::rand({n}) * 4 - 2).to(dtype);
    torch::manual_seed(5);
    const std::uint64_t seed = [] {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
    }();
    torch::manual_seed(5);
    const torch::Tensor y = recrun::dropout(x, p, /*train=*/true).to(torch::kFloat);
    const auto threshold = static_cast<std::uint32_t>(p * 4294967296.0);
    const auto scale = static_cast<float>(1.0 / (1.0 - p));
    const auto lo = static_cast<std::uint32_t>(seed), hi = static_cast<std::uint32_t>(seed >> 32);
    const torch::Tensor xf = x.to(torch::kFloat).contiguous();
    const float* xs = xf.data_ptr<float>();
    const torch::Tensor yc = y.contiguous();
    const float* ys = yc.data_ptr<float>();
    std::int64_t wrong = 0, kept = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::uint64_t>(i);
      const std::uint32_t h = mix32(mix32(static_cast<std::uint32_t>(k) * 0x9e3779b9u + lo) ^
                                    (hi + static_cast<std::uint32_t>(k >> 32)));
      float want = h >= threshold ? xs[i] * scale : 0.0f;
      if (dtype == torch::kBFloat16) want = static_cast<float>(static_cast<at::BFloat16>(want));
      kept += h >= threshold;
      wrong += ys[i] != want;
    }
    EXPECT_EQ(wrong, 0) << dtype;
    EXPECT_NEAR(static_cast<double>(kept) / static_cast<double>(n), 1 - p, 0.01) << dtype;
  }
}

TEST(LengthBucketedBatches, CoverEveryIdOnceAndGroupSimilarLengths) {
  std::vector<std::int64_t> ids, lengths;
  std::mt19937_64 gen(1);
  for (std::int64_t i = 0; i < 1000; ++i) {
    ids.push_back(i * 3);
    lengths.push_back(static_cast<std::int64_t>(gen() % 200) + 1);
  }
  std::mt19937_64 rng(2);
  const auto batches = length_bucketed_batches(ids, lengths, 64, &rng);
  ASSERT_EQ(batches.size(), 16u);
  std::multiset<std::int64_t> seen;
  std::int64_t padded = 0, real = 0;
  for (const auto& b : batches) {
    EXPECT_LE(b.size(), 64u);
    std::int64_t longest = 0;
    for (const auto id : b) {
      seen.insert(id);
      longest = std::max(longest, lengths[id / 3]);
      real += lengths[id / 3];
    }
    padded += longest * static_cast<std::int64_t>(b.size());
  }
  EXPECT_EQ(seen, std::multiset<std::int64_t>(ids.begin(), ids.end()));
  // Sorted buckets waste little: random batches of uniform lengths would pad ~2x.
  EXPECT_LT(static_cast<double>(padded) / real, 1.1);

  // The batch order is shuffled per call; without a generator it is deterministic.
  std::mt19937_64 rng2(3);
  EXPECT_NE(length_bucketed_batches(ids, lengths, 64, &rng2), batches);
  EXPECT_EQ(length_bucketed_batches(ids, lengths, 64), length_bucketed_batches(ids, lengths, 64));
}

TEST(PackSequences, RightPadsTheLastItemsAndAppendsAToken) {
  const std::vector<std::int32_t> a{5, 6, 7, 8}, b{9}, c{};
  const std::vector<std::span<const std::int32_t>> h{a, b, c};
  const PackedSequences p = pack_sequences(h, 3, 1, 0, 99);
  EXPECT_TRUE(p.tokens.equal(torch::tensor({{7, 8, 9, 99}, {10, 99, 0, 0}, {99, 0, 0, 0}},
                                           torch::kInt64)));
  EXPECT_TRUE(p.lengths.equal(torch::tensor({4, 2, 1}, torch::kInt64)));
  const PackedSequences q = pack_sequences(h, 10);
  EXPECT_EQ(q.tokens.size(1), 4);
  EXPECT_TRUE(q.lengths.equal(torch::tensor({4, 1, 0}, torch::kInt64)));
}

TEST(RowIndex, ListsTrueColumnsRowByRowInNonzeroOrder) {
  const torch::Tensor mask = torch::tensor({{0, 1, 0, 1}, {0, 0, 0, 0}, {1, 1, 1, 0}}).to(torch::kBool);
  const RowIndex r = row_index(mask);
  ASSERT_EQ(r.index.size(1), 3);
  EXPECT_TRUE(r.valid.equal(torch::tensor({{1, 1, 0}, {0, 0, 0}, {1, 1, 1}}).to(torch::kBool)));
  EXPECT_TRUE(r.index.masked_select(r.valid).equal(torch::tensor({1, 3, 0, 1, 2}, torch::kInt64)));
}

TEST(TransformerEncoder, PaddingNeverReceivesAttention) {
  torch::manual_seed(1);
  TransformerEncoder enc(TransformerOptions(16, 4).layers(2).dropout(0.1).attention_dropout(0.1));
  enc->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor valid =
      torch::tensor({{1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1}, {1, 0, 0, 0, 0, 0}}).to(torch::kBool);
  const torch::Tensor x = torch::randn({3, 6, 16});
  // Huge values at padding: any leak would show.
  const torch::Tensor noisy = torch::where(valid.unsqueeze(-1), x, torch::randn({3, 6, 16}) * 1e3);
  const torch::Tensor a = enc->forward(x, valid), b = enc->forward(noisy, valid);
  const torch::Tensor keep = valid.unsqueeze(-1).expand_as(a);
  EXPECT_TRUE(a.masked_select(keep).equal(b.masked_select(keep)));

  // Extra padding columns change nothing either.
  const torch::Tensor wider = torch::cat({x, torch::randn({3, 5, 16})}, 1);
  const torch::Tensor wider_valid = torch::cat({valid, torch::zeros({3, 5}, torch::kBool)}, 1);
  const torch::Tensor c = enc->forward(wider, wider_valid).narrow(1, 0, 6);
  EXPECT_TRUE(torch::allclose(a.masked_select(keep), c.masked_select(keep), 1e-6, 1e-6));
}

TEST(TransformerEncoder, ForwardAtMatchesForwardAtTheQueriedColumns) {
  torch::manual_seed(2);
  for (const bool causal : {false, true}) {
    for (const bool norm_first : {false, true}) {
      TransformerEncoder enc(
          TransformerOptions(16, 2).layers(3).causal(causal).norm_first(norm_first));
      enc->eval();
      torch::NoGradGuard no_grad;
      const torch::Tensor x = torch::randn({2, 7, 16});
      const torch::Tensor valid = torch::ones({2, 7}, torch::kBool);
      const torch::Tensor query = torch::tensor({{6, 2}, {0, 4}}, torch::kInt64);
      const torch::Tensor full = enc->forward(x, valid);
      const torch::Tensor at = enc->forward_at(x, valid, query);
      EXPECT_TRUE(torch::allclose(at, full.gather(1, query.unsqueeze(-1).expand({2, 2, 16})),
                                  1e-5, 1e-5))
          << "causal " << causal << " norm_first " << norm_first;
    }
  }
}

TEST(TransformerEncoder, CausalAttentionIgnoresTheFuture) {
  torch::manual_seed(3);
  TransformerEncoder enc(TransformerOptions(8, 2).layers(2).causal(true));
  enc->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({1, 5, 8});
  const torch::Tensor changed = x.clone();
  changed[0][4].normal_();
  const torch::Tensor valid = torch::ones({1, 5}, torch::kBool);
  EXPECT_TRUE(enc->forward(x, valid).narrow(1, 0, 4).equal(
      enc->forward(changed, valid).narrow(1, 0, 4)));
}

TEST(TransformerEncoder, GradientsFlowAndBertInitHasTheRightScale) {
  torch::manual_seed(4);
  TransformerEncoder enc(TransformerOptions(32, 4).layers(1));
  init_bert_weights(*enc, 0.02);
  for (const auto& p : enc->named_parameters()) {
    if (p.key().find("norm") != std::string::npos) continue;
    if (p.key().find("bias") != std::string::npos)
      EXPECT_TRUE(p.value().eq(0).all().item<bool>()) << p.key();
    else
      EXPECT_NEAR(p.value().std().item<double>(), 0.02, 0.004) << p.key();
  }
  const torch::Tensor x = torch::randn({2, 4, 32}, torch::requires_grad());
  enc->forward(x, torch::ones({2, 4}, torch::kBool)).sum().backward();
  for (const auto& p : enc->parameters()) EXPECT_TRUE(p.grad().defined());
}

TEST(ItemBagEncoder, MeanOfValuesWithALearnedMissingRow) {
  // item 0: {0, 2}; item 1: {}; item 2: {1}; item 3: {}
  const std::vector<std::int64_t> offsets{0, 2, 2, 3, 3};
  const std::vector<std::int32_t> values{0, 2, 1};
  ItemBagEncoder enc(offsets, values, 3, 4, 0.0);
  const torch::Tensor w = enc->named_parameters()["table.weight"];
  ASSERT_EQ(w.size(0), 4);  // 3 values + missing
  const torch::Tensor out = enc->forward(torch::tensor({{0, 1}, {2, 3}}, torch::kInt64));
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 2, 4}));
  EXPECT_TRUE(torch::allclose(out[0][0], (w[0] + w[2]) / 2));
  EXPECT_TRUE(out[0][1].equal(w[3]));
  EXPECT_TRUE(out[1][1].equal(w[3]));
  EXPECT_TRUE(torch::allclose(out[1][0], w[1]));
  out.sum().backward();
  EXPECT_TRUE(w.grad().defined());

  // Bags of one are a plain lookup.
  const std::vector<std::int64_t> single_offsets{0, 1, 1, 2};
  const std::vector<std::int32_t> single_values{1, 0};
  ItemBagEncoder lookup(single_offsets, single_values, 2, 4, 0.0);
  const torch::Tensor lw = lookup->named_parameters()["table.weight"];
  EXPECT_TRUE(lookup->forward(torch::tensor({2, 1, 0}, torch::kInt64))
                  .equal(torch::stack({lw[0], lw[2], lw[1]})));
}

}  // namespace
}  // namespace recrun
