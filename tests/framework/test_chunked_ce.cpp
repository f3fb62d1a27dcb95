// recrun/chunked_ce.hpp: the chunked full cross-entropy against LibTorch's unchunked
// cross_entropy (loss and every gradient, float64, float32 and bf16 autocast, any chunk size),
// its memory (no allocation of [positions, items]), the automatic chunk size, and bad input.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <atomic>

#include "recrun/chunked_ce.hpp"
#include "recrun/error.hpp"
#include "recrun/seq.hpp"

namespace recrun {
namespace {

namespace F = torch::nn::functional;

struct Problem {
  torch::Tensor h, w, b, targets;
};

Problem problem(std::int64_t m, std::int64_t n, std::int64_t width, torch::Dtype dtype,
                std::uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(dtype);
  Problem p;
  p.h = (torch::randn({m, width}, o) * 2).requires_grad_(true);
  p.w = torch::randn({n, width}, o).requires_grad_(true);
  p.b = torch::randn({n}, o).requires_grad_(true);
  p.targets = torch::randint(0, n, {m}, torch::kInt64);
  return p;
}

struct Result {
  torch::Tensor loss, gh, gw, gb;
};

/// Loss and gradients of `scale` x the loss (so backward's incoming gradient is not 1).
template <typename LossFn>
Result run(const Problem& p, bool with_bias, double scale, LossFn fn) {
  for (const auto* t : {&p.h, &p.w, &p.b})
    if (t->grad().defined()) t->mutable_grad() = torch::Tensor{};
  Result r;
  r.loss = fn();
  (r.loss * scale).backward();
  r.gh = p.h.grad().clone();
  r.gw = p.w.grad().clone();
  if (with_bias) r.gb = p.b.grad().clone();
  EXPECT_EQ(r.loss.scalar_type(), p.h.scalar_type() == torch::kDouble ? torch::kDouble
                                                                      : torch::kFloat);
  return r;
}

void expect_same(const Result& a, const Result& b, double tol, const std::string& what) {
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), tol) << what;
  EXPECT_TRUE(torch::allclose(a.gh, b.gh, tol, tol)) << what << ": d hidden differs by "
                                                     << (a.gh - b.gh).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(a.gw, b.gw, tol, tol)) << what << ": d weight differs by "
                                                     << (a.gw - b.gw).abs().max().item<double>();
  if (a.gb.defined()) {
    EXPECT_TRUE(torch::allclose(a.gb, b.gb, tol, tol)) << what << ": d bias differs";
  }
}

TEST(ChunkedCe, LossAndGradientsEqualTheUnchunkedLossForEveryChunkSize) {
  for (const auto dtype : {torch::kDouble, torch::kFloat}) {
    const double tol = dtype == torch::kDouble ? 1e-12 : 2e-6;
    const Problem p = problem(37, 53, 8, dtype, 11);
    for (const bool with_bias : {false, true}) {
      const auto bias = with_bias ? std::optional<torch::Tensor>(p.b) : std::nullopt;
      const Result reference = run(p, with_bias, 3.0, [&] {
        return F::cross_entropy(
            with_bias ? F::linear(p.h, p.w, p.b) : F::linear(p.h, p.w), p.targets);
      });
      // 0 is automatic (one chunk here); 1, 5 and 36 leave a short last chunk; 37 and 1000
      // cover everything at once.
      for (const std::int64_t chunk : {0, 1, 5, 36, 37, 1000}) {
        const Result chunked = run(p, with_bias, 3.0, [&] {
          return chunked_cross_entropy(p.h, p.w, bias, p.targets, chunk);
        });
        expect_same(chunked, reference, tol,
                    fmt::format("dtype {} bias {} chunk {}", c10::toString(dtype), with_bias,
                                chunk));
      }
    }
  }
}

TEST(ChunkedCe, GradientsReachATableThroughAViewAndOnlyWhereWanted) {
  // SASRec's output layer is a view (rows 1..N) of the embedding table; row 0 gets nothing.
  torch::manual_seed(4);
  const torch::Tensor table = torch::randn({21, 6}).requires_grad_(true);
  const torch::Tensor h = torch::randn({9, 6});  // no gradient wanted here
  const torch::Tensor targets = torch::randint(0, 20, {9}, torch::kInt64);
  chunked_cross_entropy(h, table.narrow(0, 1, 20), std::nullopt, targets, 2).backward();
  const torch::Tensor got = table.grad().clone();
  table.mutable_grad() = torch::Tensor{};
  F::cross_entropy(torch::mm(h, table.narrow(0, 1, 20).t()), targets).backward();
  EXPECT_TRUE(torch::allclose(got, table.grad(), 1e-6, 1e-6));
  EXPECT_TRUE(got[0].eq(0).all().item<bool>());
  EXPECT_FALSE(h.grad().defined());
  // Under no_grad the loss is the same and nothing is recorded.
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = chunked_cross_entropy(h, table.narrow(0, 1, 20), std::nullopt,
                                                   targets, 4);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss.item<double>(),
              F::cross_entropy(torch::mm(h, table.narrow(0, 1, 20).t()), targets).item<double>(),
              1e-6);
}

TEST(ChunkedCe, Bf16AutocastRunsTheProductsInBf16LikeTheUnchunkedLoss) {
  const Problem p = problem(64, 300, 16, torch::kFloat, 7);
  const auto unchunked = [&] {
    return F::cross_entropy(F::linear(p.h, p.w, p.b).to(torch::kFloat), p.targets);
  };
  const Result fp32 = run(p, true, 1.0, unchunked);
  Result reference, chunked;
  {
    const Bf16Autocast autocast(true);
    reference = run(p, true, 1.0, unchunked);
    chunked = run(p, true, 1.0, [&] {
      return chunked_cross_entropy(p.h, p.w, p.b, p.targets, 10);
    });
  }
  // Gradients keep their parameters' type; the loss is float32.
  EXPECT_EQ(chunked.gh.scalar_type(), torch::kFloat);
  EXPECT_EQ(chunked.gw.scalar_type(), torch::kFloat);
  // bf16 products: not the fp32 loss, but within bf16 rounding of the unchunked autocast loss
  // (whose bias is added in bf16, ours in fp32, hence the looser tolerance).
  EXPECT_NE(chunked.loss.item<double>(), fp32.loss.item<double>());
  expect_same(chunked, reference, 3e-2, "bf16 autocast");
  expect_same(chunked, fp32, 3e-2, "bf16 against fp32");
}

// Wraps LibTorch's CPU allocator and records the largest single allocation.
class LargestAllocation final : public c10::Allocator {
 public:
  LargestAllocation() : base_(c10::GetCPUAllocator()) { c10::SetCPUAllocator(this, kPriority); }
  ~LargestAllocation() override { c10::SetCPUAllocator(base_, kPriority); }
  c10::DataPtr allocate(std::size_t n) const override {
    std::size_t seen = largest_.load();
    while (n > seen && !largest_.compare_exchange_weak(seen, n)) {
    }
    return base_->allocate(n);
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_->raw_deleter(); }
  std::size_t largest() const { return largest_.load(); }

 private:
  static constexpr std::uint8_t kPriority = 200;
  c10::Allocator* base_;
  mutable std::atomic<std::size_t> largest_{0};
};

TEST(ChunkedCe, NoAllocationGrowsWithPositionsTimesItems) {
  constexpr std::int64_t kPositions = 2000, kItems = 50'000, kWidth = 16, kChunk = 25;
  const Problem p = problem(kPositions, kItems, kWidth, torch::kFloat, 3);
  std::size_t largest = 0;
  for (const bool bf16 : {false, true}) {
    LargestAllocation probe;
    {
      const Bf16Autocast autocast(bf16);
      chunked_cross_entropy(p.h, p.w, p.b, p.targets, kChunk).backward();
    }
    largest = std::max(largest, probe.largest());
  }
  const std::size_t chunk_logits = kChunk * kItems * sizeof(float);  // 5 MB
  const std::size_t table = kItems * kWidth * sizeof(float);          // 3.2 MB (its gradient)
  EXPECT_LE(largest, std::max(chunk_logits, table) + (64 << 10))
      << "full logits would be " << kPositions * kItems * sizeof(float) << " bytes";
}

TEST(ChunkedCe, AutomaticChunkKeepsTheWorkingSetWithinTheBudget) {
  EXPECT_EQ(ce_chunk_rows(27'000, 100), 100) << "an explicit chunk wins";
  for (const std::int64_t items : {1, 3'416, 27'000, 1'000'000, 100'000'000}) {
    const std::int64_t rows = ce_chunk_rows(items);
    EXPECT_GE(rows, 1);
    if (rows > 1) {
      EXPECT_LE(rows * items * kCeBytesPerLogit, kCeChunkBudgetBytes) << items;
    }
    EXPECT_GT((rows + 1) * items * kCeBytesPerLogit, kCeChunkBudgetBytes) << items;
  }
  // The working set: one chunk's logits plus the gradients of the hidden states and the table.
  EXPECT_EQ(ce_working_bytes(19'200, 27'000, 64, 600),
            600LL * 27'000 * 8 + 19'200LL * 64 * 4 + 27'000LL * 65 * 4);
  // Fewer positions than a chunk: only those.
  EXPECT_EQ(ce_working_bytes(10, 27'000, 64), 10LL * 27'000 * 8 + 10 * 64 * 4 + 27'000LL * 65 * 4);
}

TEST(ChunkedCe, BadInputIsRefusedWithWhatIsWrong) {
  const Problem p = problem(4, 5, 3, torch::kFloat, 1);
  const auto message = [&](const auto& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              chunked_cross_entropy(p.h, p.w, std::nullopt,
                                    torch::tensor({0, 1, 5, 2}, torch::kInt64));
            }).find("target 5 outside [0, 5)"),
            std::string::npos);
  EXPECT_NE(message([&] { chunked_cross_entropy(p.h, p.w.t(), std::nullopt, p.targets); })
                .find("weight [N, H]"),
            std::string::npos);
  EXPECT_NE(message([&] { chunked_cross_entropy(p.h, p.w, std::nullopt, p.targets, -1); })
                .find("ce_chunk must be >= 0"),
            std::string::npos);
  // No positions: NaN, like torch's mean over nothing.
  const torch::Tensor none = chunked_cross_entropy(p.h.narrow(0, 0, 0), p.w, std::nullopt,
                                                   p.targets.narrow(0, 0, 0));
  EXPECT_TRUE(std::isnan(none.item<double>()));
}

}  // namespace
}  // namespace recrun
