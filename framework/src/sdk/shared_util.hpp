// Helpers that the SDK's implementation and the host share: writing a file whole or not at all,
// huge-page advice for large buffers, CSV field quoting. Not part of the plugin API (this header
// is not installed); the functions live in librecrun_sdk.so so that there is one copy of each.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace recrun::util {

/// Writes `path` whole or not at all. `fill` writes a temporary file that sits in the same
/// directory under a unique name (created exclusively, so two writers never share one); the
/// temporary file is then flushed to disk (fsync), renamed over `path`, and the directory is
/// synced. If `fill` throws or any step fails, the temporary file is removed and the error
/// propagates; a failed step throws recrun::Error naming `path` and the reason. A symlink at
/// `path` is written through (its target is replaced); what is at `path` is not otherwise
/// checked here (see core/output_path.hpp for the policy on user-named outputs).
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& temporary)>& fill);

/// write_atomically with an output stream on the temporary file; a stream left in a failed
/// state (a full disk) fails the write.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::ostream& out)>& fill, bool binary);

/// write_atomically of `bytes`.
void write_atomically(const std::filesystem::path& path, std::string_view bytes);

/// "a FIFO (named pipe)", "a directory", "a character device", ... for a file type, for
/// messages that refuse a path.
std::string file_kind(std::filesystem::file_type type);

/// Asks for transparent huge pages on a large buffer about to be filled: one fault per 2 MiB
/// instead of per 4 KiB (at 5M rows the loader spends more time in page faults than parsing).
/// Does nothing for buffers under 8 MiB.
void advise_huge_pages(const void* data, std::size_t bytes) noexcept;

/// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a
/// line break; as it is otherwise.
std::string csv_field(std::string_view s);

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters ("adma" -> "adam") each cost 1. Behind did_you_mean().
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace recrun::util
