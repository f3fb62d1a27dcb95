# Every dependency comes from Debian 12 packages (see README.md).
find_package(Torch REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options filesystem)
find_package(fmt REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)
# CPU feature detection (bf16 support) for the sequential models' `precision = auto`.
find_package(CpuFeatures REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# Unicode case mapping, NFD and character classes for the WordPiece tokenizer (libicu-dev).
find_package(ICU REQUIRED COMPONENTS uc)
# libxxhash-dev ships a header, the library and libxxhash.pc, but no CMake package.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
if(NOT TARGET recrun_xxhash)
  add_library(recrun_xxhash INTERFACE)
  target_include_directories(recrun_xxhash SYSTEM INTERFACE ${XXHASH_INCLUDE_DIR})
  target_link_libraries(recrun_xxhash INTERFACE ${XXHASH_LIBRARY})
endif()
