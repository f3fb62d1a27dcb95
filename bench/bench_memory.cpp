// bench_memory — peak resident memory of SASRec and BERT4Rec training and scoring per catalogue
// size, beside the models' own estimates (recrun::MemoryEstimator).
//
//   build/bin/bench_memory [--threads 2] [--steps 2] [--sizes 3416,27000,100000,1000000]
//                          [--models sasrec,bert4rec] [--bf16 0|1]
//
// Every configuration runs in a process of its own (this executable again, with --one), so that
// peaks do not mix: it builds the network and its Adam optimizer, takes the resident size
// (VmRSS) and resets the peak (/proc/self/clear_refs 5), runs --steps training steps on batches
// of 128 random sequences of max_len (200) items — the longest batch a run can meet — and
// scores one evaluation batch of 512 users, then reads the peak (VmHWM). It prints the growth
// from the model's construction to the peak beside the estimate, and the whole process's peak.
// Configurations: SASRec (hidden 64, 1 head, 2 layers) with ce (chunked, automatic chunk) and
// sampled_softmax (256 negatives shared per sequence) at every size below 1M, and at 1M with
// the sampled losses (sampled_softmax and bce); BERT4Rec (hidden 256, 4 heads, 2 layers, mask
// 0.15) with its chunked cross-entropy below 1M.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "../plugins/models/bert4rec/bert4rec_net.hpp"
#include "../plugins/models/sasrec/sasrec_net.hpp"
#include "recrun/memory.hpp"
#include "recrun/optim.hpp"
#include "recrun/seq.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kBatch = 128, kMaxLen = 200, kScoreBatch = 512;

std::int64_t status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

std::vector<std::vector<std::int32_t>> random_histories(std::int64_t users, std::int64_t length,
                                                        std::int64_t items) {
  std::vector<std::vector<std::int32_t>> out(users);
  const torch::Tensor ids = torch::randint(0, items, {users, length}, torch::kInt32);
  for (std::int64_t u = 0; u < users; ++u)
    out[u].assign(ids[u].data_ptr<std::int32_t>(), ids[u].data_ptr<std::int32_t>() + length);
  return out;
}

std::vector<std::span<const std::int32_t>> spans(const std::vector<std::vector<std::int32_t>>& h) {
  return {h.begin(), h.end()};
}

struct Measured {
  std::int64_t estimate = 0, grown = 0, peak = 0;
  double seconds = 0;
};

// One configuration, in this process: "sasrec ce 27000" etc.
Measured measure(const std::string& model, const std::string& loss, std::int64_t items,
                 std::int64_t steps, bool bf16) {
  torch::manual_seed(1);
  Measured m;
  const recrun::OptimizerOptions optim;
  const auto t0 = Clock::now();
  const auto reset_peak = [] { std::ofstream("/proc/self/clear_refs") << "5"; };
  std::int64_t params = 0;
  if (model == "sasrec") {
    recrun::sasrec::NetOptions o;
    o.num_items = items;
    o.max_len = kMaxLen;
    recrun::sasrec::LossSpec spec;
    if (loss == "ce") {
      spec.loss = recrun::sasrec::Loss::ce;
    } else if (loss == "bce") {
      spec.loss = recrun::sasrec::Loss::bce;
      spec.negatives = 1;
      spec.sharing = recrun::sasrec::Sharing::position;
    } else {
      spec.loss = recrun::sasrec::Loss::sampled_softmax;
      spec.negatives = 256;
      spec.sharing = recrun::sasrec::Sharing::sequence;
    }
    recrun::sasrec::SasrecNet net(o);
    auto optimizer = recrun::make_optimizer(optim, net->parameters());
    for (const auto& p : net->parameters()) params += p.numel();
    // max_len + 1 items each: max_len input positions, all real.
    const auto train = random_histories(kBatch, kMaxLen + 1, items);
    const auto users = random_histories(kScoreBatch, kMaxLen, items);
    const recrun::sasrec::NegativeSampler sampler(items);
    m.estimate = recrun::sasrec::estimate_memory(o, params, kBatch, kMaxLen, spec, bf16,
                                                 kScoreBatch)
                     .peak();
    const std::int64_t before = status_kib("VmRSS") * 1024;
    reset_peak();
    net->train();
    for (std::int64_t s = 0; s < steps; ++s) {
      const auto batch = recrun::sasrec::next_item_batch(spans(train), o.max_len);
      torch::Tensor batch_loss;
      {
        const recrun::Bf16Autocast autocast(bf16);
        batch_loss = net->loss(batch, spec, sampler);
      }
      recrun::step(*optimizer, optim, batch_loss);
    }
    {
      torch::NoGradGuard no_grad;
      net->eval();
      const recrun::Bf16Autocast autocast(bf16);
      torch::Tensor out = torch::zeros({kScoreBatch, items});
      for (std::int64_t b = 0; b < kScoreBatch; b += kBatch) {
        const std::vector<std::vector<std::int32_t>> part(users.begin() + b,
                                                          users.begin() + b + kBatch);
        const auto packed = recrun::pack_sequences(spans(part), o.max_len);
        out.narrow(0, b, kBatch).copy_(
            net->logits(net->hidden_last(packed.tokens, packed.lengths)).to(torch::kFloat));
      }
    }
    m.grown = status_kib("VmHWM") * 1024 - before;
  } else {
    recrun::bert4rec::NetOptions o;
    o.num_items = items;
    o.max_len = kMaxLen;
    recrun::bert4rec::Bert4RecNet net(o);
    auto optimizer = recrun::make_optimizer(optim, net->parameters());
    for (const auto& p : net->parameters()) params += p.numel();
    const auto train = random_histories(kBatch, kMaxLen, items);
    const auto users = random_histories(kScoreBatch, kMaxLen - 1, items);
    m.estimate = recrun::bert4rec::estimate_memory(o, params, kBatch, kMaxLen, 0.15, 0.0, 0,
                                                   bf16, kScoreBatch);
    const std::int64_t before = status_kib("VmRSS") * 1024;
    reset_peak();
    net->train();
    for (std::int64_t s = 0; s < steps; ++s) {
      const auto packed = recrun::pack_sequences(spans(train), o.max_len);
      const auto cloze =
          recrun::bert4rec::cloze_mask(packed.tokens, packed.lengths, items, 0.15, 0.0);
      torch::Tensor batch_loss;
      {
        const recrun::Bf16Autocast autocast(bf16);
        batch_loss = net->cloze_loss(cloze, packed.lengths);
      }
      recrun::step(*optimizer, optim, batch_loss);
    }
    {
      torch::NoGradGuard no_grad;
      net->eval();
      const recrun::Bf16Autocast autocast(bf16);
      torch::Tensor out = torch::empty({kScoreBatch, items});
      for (std::int64_t b = 0; b < kScoreBatch; b += kBatch) {
        const std::vector<std::vector<std::int32_t>> part(users.begin() + b,
                                                          users.begin() + b + kBatch);
        const auto packed = recrun::pack_sequences(spans(part), o.max_len - 1, 1, 0,
                                                    net->mask_token());
        const torch::Tensor slot = (packed.lengths - 1).unsqueeze(1);
        out.narrow(0, b, kBatch).copy_(
            net->logits(net->hidden_at(packed.tokens, packed.lengths, slot).squeeze(1))
                .to(torch::kFloat));
      }
    }
    m.grown = status_kib("VmHWM") * 1024 - before;
  }
  m.peak = status_kib("VmHWM") * 1024;
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return m;
}

// Runs one configuration in a child (this executable with --one) and parses its line.
bool run_child(const std::string& self, const std::vector<std::string>& args, Measured& m) {
  std::string cmd = self;
  for (const auto& a : args) cmd += " " + a;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return false;
  char buf[512];
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fmt::print("  ({} ended: {})\n", cmd,
               WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                   : fmt::format("status {}", WEXITSTATUS(status)));
    return false;
  }
  return std::sscanf(out.c_str(), "%ld %ld %ld %lf", &m.estimate, &m.grown, &m.peak,
                     &m.seconds) == 4;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  std::int64_t steps = 2;
  bool bf16 = false;
  std::string sizes = "3416,27000,100000,1000000", models = "sasrec,bert4rec";
  std::vector<std::string> one;
  recrun::bench::for_each_flag(
      argc, argv,
      "bench_memory [--threads 2] [--steps 2] [--sizes 3416,27000,100000,1000000] "
      "[--models sasrec,bert4rec] [--bf16 0|1]",
      [&](const std::string& flag, const std::string& value) {
        if (flag == "--threads") threads = std::stoi(value);
        else if (flag == "--steps") steps = std::stoll(value);
        else if (flag == "--bf16") bf16 = value == "1";
        else if (flag == "--sizes") sizes = value;
        else if (flag == "--models") models = value;
        else if (flag == "--one") one = recrun::bench::split_list(value);  // a child's one run
        else return false;
        return true;
      });
  if (!one.empty()) {
    torch::set_num_threads(threads);
    const Measured m = measure(one.at(0), one.at(1), std::stoll(one.at(2)), steps, bf16);
    fmt::print("{} {} {} {:.3f}\n", m.estimate, m.grown, m.peak, m.seconds);
    return 0;
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string load;
  std::ifstream("/proc/loadavg") >> load;
  fmt::print("bench_memory: batch {} x max_len {}, scoring {} users, {} steps, {} threads, {}; "
             "load average at start {}\n",
             kBatch, kMaxLen, kScoreBatch, steps, threads, bf16 ? "bf16" : "fp32", load);
  fmt::print("{:<9} {:<16} {:>9} {:>11} {:>11} {:>9} {:>11} {:>8}\n", "model", "loss", "items",
             "estimate", "measured", "ratio", "peak RSS", "seconds");
  for (const auto& model : recrun::bench::split_list(models))
    for (const auto& size : recrun::bench::split_list(sizes)) {
      const std::int64_t items = std::stoll(size);
      std::vector<std::string> losses;
      if (model == "sasrec")
        losses = items >= 1'000'000 ? std::vector<std::string>{"sampled_softmax", "bce"}
                                    : std::vector<std::string>{"ce", "sampled_softmax"};
      else if (items < 1'000'000)
        losses = {"ce"};
      for (const auto& loss : losses) {
        Measured m;
        if (!run_child(self,
                       {"--one", fmt::format("{},{},{}", model, loss, items), "--steps",
                        std::to_string(steps), "--threads", std::to_string(threads), "--bf16",
                        bf16 ? "1" : "0"},
                       m))
          continue;
        fmt::print("{:<9} {:<16} {:>9} {:>7.0f} MiB {:>7.0f} MiB {:>9.2f} {:>7.0f} MiB {:>8.1f}\n",
                   model, loss, items, mib(m.estimate), mib(m.grown),
                   static_cast<double>(m.grown) / static_cast<double>(m.estimate), mib(m.peak),
                   m.seconds);
        std::fflush(stdout);
      }
    }
  std::ifstream("/proc/loadavg") >> load;
  fmt::print("load average at end {}\n", load);
  return 0;
}
