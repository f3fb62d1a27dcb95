// `recrun predict`: top-K lists from a finished run, with the data set's original ids.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/output_path.hpp"
#include "core/trainer.hpp"
#include "data/dataset_loader.hpp"
#include "predict/topk.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "results/query.hpp"
#include "results/results_store.hpp"
#include "sdk/shared_util.hpp"
#include "trial/layout.hpp"
#include "trial/members.hpp"

namespace recrun::cli {
namespace {

namespace fs = std::filesystem;

// --best EXPERIMENT[/GROUP]: the finished run with the highest validation monitor.
results::RunRow best_of(const results::ResultsStore& store, const std::string& what) {
  std::string experiment = what, group;
  if (const auto slash = what.find('/'); slash != std::string::npos) {
    experiment = what.substr(0, slash);
    group = what.substr(slash + 1);
  }
  const auto rows = store.runs(experiment);
  if (rows.empty())
    throw Error(fmt::format("--best {}: no experiment '{}' in {}", what, experiment,
                            store.path().string()));
  const results::RunRow* best = nullptr;
  double best_value = -std::numeric_limits<double>::infinity();
  std::string monitor;
  std::size_t finished = 0;
  for (const auto& r : rows) {
    if (r.status != results::RunStatus::finished) continue;
    if (!group.empty() && r.group_name != group) continue;
    ++finished;
    const std::string m = trial::Protocol::from_json(r.protocol_json).monitor;
    for (const auto& v : r.valid_metrics)
      if (v.name == m && std::isfinite(v.value) && (!best || v.value > best_value)) {
        best = &r;
        best_value = v.value;
        monitor = m;
      }
  }
  if (!best)
    throw Error(fmt::format(
        "--best {}: {} finished run(s){} and none has a validation metric to rank by{}", what,
        finished, group.empty() ? "" : fmt::format(" in group '{}'", group),
        finished ? " (runs with --split full have none: name one with --run KEY)" : ""));
  fmt::print(stderr, "predict: best run of {} by valid {}: {} ({} {:.4f})\n", what, monitor,
             best->trial_key, best->model, best_value);
  return *best;
}

std::vector<std::int64_t> read_users(const fs::path& file, const Dataset& dataset) {
  const text::FileBytes bytes(file);
  std::vector<std::int64_t> users;
  text::LineReader lines(bytes.view(), file);
  std::string_view line;
  while (lines.next(line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto u = dataset.find_user(line);
    if (!u)
      lines.at(file).fail(fmt::format("--users: user '{}' is not in the data set {}",
                                      text::printable(line, 60), dataset.source_dir.string()));
    users.push_back(*u);
  }
  if (users.empty()) throw DataError(fmt::format("--users {}: lists no user ids", file.string()));
  return users;
}

}  // namespace

int cmd_predict(const Args& args) {
  HostOptions host;
  std::string run_key, best, users_file, out_path, format_text, results_dir, data_dir;
  std::int64_t topk = 10, batch_size = 512;
  bool exclude_future = false, no_exclude_future = false, force = false;
  auto desc = host_options(host);
  desc.add_options()("run", po::value(&run_key), "a finished run: its trial key, a unique prefix of it, or id:N")(
      "best", po::value(&best),
      "EXPERIMENT[/GROUP]: its finished run with the best validation monitor")(
      "topk", po::value(&topk)->default_value(10), "items per user")(
      "users", po::value(&users_file), "file of original user ids, one per line (default: all)")(
      "out", po::value(&out_path)->default_value("-"), "output file, or - for stdout")(
      "force", po::bool_switch(&force), "replace an existing --out file")(
      "format", po::value(&format_text)->default_value("csv"), "csv or jsonl")(
      "exclude-future", po::bool_switch(&exclude_future),
      "drop items released after the year of the user's last interaction (the default when "
      "the data has release years and timestamps)")(
      "no-exclude-future", po::bool_switch(&no_exclude_future), "keep future items")(
      "data", po::value(&data_dir),
      "data directory, when the run's data has moved (must have the same fingerprint)")(
      "results", po::value(&results_dir)->default_value("results"), "results directory")(
      "batch-size", po::value(&batch_size)->default_value(512), "users per scoring call");
  const auto vm = parse(desc, args,
                        "recrun predict --run KEY | --best EXPERIMENT[/GROUP] [--topk 10] "
                        "[--users FILE] [--out FILE|-] [--format csv|jsonl]");
  if (vm.count("help")) return 0;
  if (run_key.empty() == best.empty())
    throw ParamError("name the run to predict with: give exactly one of --run KEY and --best "
                     "EXPERIMENT[/GROUP]");
  if (exclude_future && no_exclude_future)
    throw ParamError("--exclude-future and --no-exclude-future contradict each other");
  if (topk < 1) throw ParamError(fmt::format("--topk {}: must be >= 1", topk));
  if (batch_size < 1) throw ParamError(fmt::format("--batch-size {}: must be >= 1", batch_size));
  predict::Format format;
  if (format_text == "csv") format = predict::Format::csv;
  else if (format_text == "jsonl") format = predict::Format::jsonl;
  else throw ParamError(fmt::format("--format '{}': must be csv or jsonl", format_text));

  if (results_dir.empty())
    throw Error("--results is empty: name the results directory (default: results)");
  const trial::ResultsLayout layout{results_dir};
  std::error_code ec;
  if (!fs::is_regular_file(layout.db(), ec))
    throw Error(fmt::format("--results {}: there is no results.db there ({}); train a run first",
                            results_dir, layout.db().string()));
  results::StoreOptions read_only;
  read_only.read_only = true;  // it only reads: a read-only archive is fine
  const results::ResultsStore store(layout.db(), read_only);
  results::RunRow row;
  if (!run_key.empty()) {
    // The same forms as `results compare` and `results curve`: a full key, a unique prefix, id:N.
    const auto all = store.runs();
    try {
      row = results::resolve_run(run_key, all);
    } catch (const Error& e) {
      throw Error(fmt::format("--run {}: {} (in {})", run_key, e.what(), layout.db().string()));
    }
  } else {
    row = best_of(store, best);
  }
  if (row.status != results::RunStatus::finished)
    throw Error(fmt::format("run {} is {}, not finished: only a finished run can predict", row.trial_key,
                            results::to_string(row.status)));

  Registry registry;
  load_registry(host, registry, false);
  core::seed_and_threads(static_cast<std::uint64_t>(row.seed), host.threads);
  const std::string dir = data_dir.empty() ? row.data_path : data_dir;
  // --out may replace neither the archive, nor the data, nor the --users file, nor a device.
  core::OutputRequest target{"--out", out_path, force, true,
                             core::results_directory_paths(layout.root)};
  for (auto& p : dataset_input_paths(registry, dir,
                                     trial::Protocol::data_source_from_json(row.protocol_json)))
    target.protect.push_back(std::move(p));
  if (!users_file.empty()) target.protect.push_back(core::input_path(users_file, "the --users file"));
  core::check_output_path(target);
  if (out_path == "-" && stdout_was_closed())
    throw Error("--out -: standard output is closed (was the command run with >&- ?); redirect "
                "it to a file, or pass --out FILE");
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset dataset =
      data::load_dataset(registry, dir, trial::Protocol::data_source_from_json(row.protocol_json));
  if (dataset.fingerprint != row.data_fingerprint)
    throw DataError(fmt::format(
        "the data at {} is not what run {} was trained on (fingerprint {} now, {} then){}", dir,
        row.trial_key, dataset.fingerprint, row.data_fingerprint,
        data_dir.empty() ? "; if the original data is elsewhere, point --data at it" : ""));
  const trial::Protocol protocol = trial::Protocol::from_json(row.protocol_json);
  const trial::RunHost members(registry, dataset, nullptr, protocol, &store, host.threads);
  const auto model = trial::load_finished_model(registry, row, dataset, &members);

  std::vector<std::int64_t> users;
  if (users_file.empty()) {
    users.resize(static_cast<std::size_t>(dataset.num_users()));
    for (std::int64_t u = 0; u < dataset.num_users(); ++u) users[u] = u;
  } else {
    users = read_users(users_file, dataset);
  }
  predict::TopKOptions options;
  options.k = topk;
  options.batch_size = batch_size;
  options.exclude_future =
      no_exclude_future ? false : (exclude_future || predict::has_release_years(dataset));
  const auto t_score = std::chrono::steady_clock::now();
  const auto lists = predict::top_k(*model, dataset, users, options);
  const double score_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_score).count();

  // Written whole to a temporary file and renamed: an interrupted predict leaves no half file.
  FILE* info = out_path == "-" ? stderr : stdout;
  if (out_path == "-") {
    predict::write_lists(std::cout, dataset, lists, format);
    std::cout.flush();
    if (!std::cout)
      throw Error(fmt::format("--out -: writing the lists to standard output failed ({}); "
                              "redirect it to a file with enough space, or pass --out FILE",
                              std::strerror(errno)));
  } else {
    util::write_atomically(
        out_path, [&](std::ostream& file) { predict::write_lists(file, dataset, lists, format); },
        true);
  }
  fmt::print(info,
             "predict: run {} ({}), top {} for {} users{}: scored in {:.2f}s ({:.0f} users/s); "
             "data loaded in {:.2f}s{}\n",
             row.trial_key, row.model, topk, users.size(),
             options.exclude_future ? ", future items excluded" : "", score_s,
             score_s > 0 ? static_cast<double>(users.size()) / score_s : 0.0,
             std::chrono::duration<double>(t_score - t0).count(),
             out_path == "-" ? "" : fmt::format("; wrote {}", out_path));
  return 0;
}

}  // namespace recrun::cli
