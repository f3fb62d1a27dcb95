# Every dependency comes from Debian 12 packages (see README.md).
find_package(Torch REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options filesystem)
find_package(fmt REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)
# libxxhash (Debian: libxxhash-dev) has no CMake package: XXH3 checksums of checkpoint records.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
