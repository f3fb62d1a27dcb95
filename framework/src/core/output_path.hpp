// The one policy for files a user names for recrun to write (predict --out, report --out,
// data stats --html --out, data embed-titles --out, data synth --out, data convert --to): what
// is there may be replaced only when it is a regular file that is nobody's input, and only with
// --force. Checked with stat/lstat before anything is opened, so a FIFO or device never blocks.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace recrun::core {

/// A path no output may replace, and what it is ("the results database", "an input file of the
/// data set in 'data'"); with `tree`, nothing below it either.
struct ProtectedPath {
  std::filesystem::path path;
  std::string what;
  bool tree = false;
};

/// One output a command is about to write.
struct OutputRequest {
  std::string flag;            ///< the flag that named it ("--out"), for messages
  std::filesystem::path path;  ///< as given; "-" means standard output
  bool force = false;          ///< --force: an existing regular file may be replaced
  bool named_by_user = true;   ///< false for recrun's own default name (replaced without --force)
  std::vector<ProtectedPath> protect;
};

/// Throws recrun::Error naming the flag, the path and the fix when `request` would replace
/// something that is not a regular file (a directory, device, FIFO, socket), a protected path
/// (through any symlink or hard link), or an existing file without --force. Returns true when
/// the output is standard output ("-").
bool check_output_path(const OutputRequest& request);

/// What a results directory holds that no output may replace: results.db with its -wal, -shm
/// and -journal files, and everything under checkpoints/ and shards.
std::vector<ProtectedPath> results_directory_paths(const std::filesystem::path& results_root);

/// A file that is one of the command's inputs (`what` says which: "the --users file").
ProtectedPath input_path(const std::filesystem::path& file, std::string what);

}  // namespace recrun::core
