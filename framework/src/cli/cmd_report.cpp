// recrun report — one self-contained HTML page of an experiment's results (docs/report.md).
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/output_path.hpp"
#include "recrun/error.hpp"
#include "report/experiment_report.hpp"
#include "report/html.hpp"
#include "results/results_store.hpp"
#include "trial/layout.hpp"

namespace recrun::cli {

namespace fs = std::filesystem;

namespace {

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(std::chrono::system_clock::to_time_t(now)));
}

}  // namespace

int cmd_report(const Args& args) {
  std::string experiment, results_dir, out;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment)->required(), "experiment name (as in its [experiment] table)")(
      "results", po::value(&results_dir)->default_value("results"), "results directory (holds results.db)")(
      "out,o", po::value(&out), "HTML file to write (default: RESULTS/reports/EXPERIMENT.html)")(
      "force", "replace an existing --out file");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  const auto vm = parse(desc, args, "recrun report EXPERIMENT [--results DIR] [--out FILE [--force]]", &pos);
  if (vm.count("help")) return 0;
  if (experiment.empty()) throw Error("the experiment name is empty; name one, e.g. `recrun report quickstart`");
  if (results_dir.empty())
    throw Error("--results is empty: name the results directory (default: results)");
  const trial::ResultsLayout layout{results_dir};
  std::error_code ec;
  // Never create a results.db just to report that it is empty.
  if (!fs::exists(layout.db(), ec))
    throw Error(fmt::format("no results database at '{}': run the sweep first (`recrun sweep "
                            "FILE`), or pass --results DIR where it wrote its results",
                            layout.db().string()));
  const fs::path path =
      out.empty() ? layout.root / "reports" / (report::html::file_stem(experiment) + ".html") : fs::path(out);
  if (out == "-") throw Error("--out -: the report is an HTML page; name a file to write it to");
  core::check_output_path({"--out", path, vm.count("force") > 0, !out.empty(),
                           core::results_directory_paths(layout.root)});
  results::StoreOptions read_only;
  read_only.read_only = true;  // it only reads: a read-only archive is fine
  results::ResultsStore store(layout.db(), read_only);
  const report::ExperimentData data = report::gather_experiment(store, experiment);
  const std::string page = report::render_experiment_report(data, layout.db().string(), utc_now());
  report::html::write_file_atomically(path, page);
  fmt::print("report of '{}' ({} runs, {} configurations) -> {}\n", experiment, data.runs.size(),
             data.configurations.size(), path.string());
  return 0;
}

}  // namespace recrun::cli
