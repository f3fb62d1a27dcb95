// Reading files a user names (experiment files, event files, data files outside the SDK's
// FileBytes) without being led astray by them: only regular files, symlinks followed, never a
// device that never ends (/dev/zero) or a FIFO that blocks for ever, and never more than a bound.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace recrun::util {

/// The size of `path` if it is a regular file (after following symlinks); otherwise throws
/// recrun::Error naming `what` and the file: "experiment file 'x.toml' is not a regular file
/// (a FIFO (named pipe))". Opening never blocks, even on a FIFO.
std::uintmax_t check_regular_file(const std::filesystem::path& path, std::string_view what);

/// The whole contents of the regular file `path`, at most `max_bytes` of them: a larger file
/// (or one that grows past the bound while it is read) throws recrun::Error naming `what`, the
/// file, its size and the bound. Missing, unreadable and non-regular files throw as well.
std::string read_regular_file(const std::filesystem::path& path, std::uintmax_t max_bytes,
                              std::string_view what);

}  // namespace recrun::util
