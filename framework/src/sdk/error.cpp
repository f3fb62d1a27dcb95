#include "recrun/error.hpp"

#include <fmt/format.h>

#include "recrun/abi.hpp"

namespace recrun {

DataError::DataError(const std::filesystem::path& file, std::int64_t line, const std::string& what)
    : Error(line > 0 ? fmt::format("{}:{}: {}", file.string(), line, what)
                     : fmt::format("{}: {}", file.string(), what)),
      file_(file),
      line_(line) {}

const char* host_abi_stamp() { return RECRUN_ABI_STAMP; }

}  // namespace recrun
