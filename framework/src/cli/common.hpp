// Options and set-up shared by the subcommands.
#pragma once

#include <boost/program_options.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/output_path.hpp"
#include "recrun/registry.hpp"

namespace recrun::cli {

namespace po = boost::program_options;

/// Options every subcommand that loads plugins accepts.
struct HostOptions {
  std::vector<std::string> plugin_dirs;
  int threads = 0;
};

/// Refuses a --threads value outside 0 (all cores) .. the machine's core count, naming the flag.
void check_threads(int threads);

/// The most worker processes a sweep may start: 4 x the machine's cores.
int max_workers();

/// Refuses a results directory the sweep cannot write (results.db, its WAL files, logs and
/// checkpoints go there), naming the directory or file and how to fix it.
void check_writable_results(const std::filesystem::path& root);

/// A description with --help, --plugin-dir and --threads bound to `host`.
po::options_description host_options(HostOptions& host);

/// Parses `args`; on --help prints `usage` and the options and leaves "help" in the map.
/// Unknown options throw recrun::Error naming them. `hidden` options are accepted but left out
/// of --help (internal flags a sweep passes to its workers).
po::variables_map parse(const po::options_description& desc, const Args& args,
                        const std::string& usage,
                        const po::positional_options_description* positional = nullptr,
                        const po::options_description* hidden = nullptr);

/// Loads plugins into `registry`, printing one warning line per refused library to stderr.
void load_registry(const HostOptions& host, Registry& registry, bool verbose);

/// Parses "key=value" items of --set against a model's schema plus the trainer's.
std::map<std::string, ParamValue> parse_sets(const std::vector<std::string>& sets,
                                             const std::vector<ParamSpec>& schema,
                                             const std::string& component);

/// After a run's process ended by a signal (SIGTERM, Ctrl-C): marks the rows whose owner
/// process is gone 'interrupted' in the results database at `db` (when there is one), as a
/// sweep does on its way out, rather than leaving them 'running' until a later writer reaps
/// them. Prints how many; never throws.
void mark_dead_runs_interrupted(const std::filesystem::path& db);

/// Opens /dev/null on whichever of the standard descriptors 0, 1, 2 is closed (so that no file
/// the command opens later takes its number and receives its output), remembering which.
void guard_standard_streams();
/// Standard output was closed when recrun started (`recrun predict >&-`).
bool stdout_was_closed();

/// The data set's input files in `dir` (as its data source names them) as paths no output may
/// replace; empty when the directory or its source cannot be told (the load says why later).
std::vector<core::ProtectedPath> dataset_input_paths(const Registry& registry,
                                                     const std::filesystem::path& dir,
                                                     const std::string& source);

/// Trainer parameters, for `recrun plugins`.
const std::vector<ParamSpec>& trainer_params_for_listing();

}  // namespace recrun::cli
