# Compiler warnings and build acceleration (ccache, the shared LibTorch precompiled header).

find_program(RECRUN_CCACHE ccache)
if(RECRUN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # PCH builds are only cacheable with these sloppiness settings, and they must reach ccache at
  # build time (an ENV set here would only last for the configure step). base_dir makes paths
  # relative, so that two checkouts of the tree share cache entries.
  set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
      "${RECRUN_CCACHE}")
endif()

# The project's warning set. Exported as recrun::warnings (RecrunInstall.cmake), so out-of-tree
# plugins and their tests compile with the same warnings as the tree; recrun_add_plugin links it.
add_library(recrun_warnings INTERFACE)
set_target_properties(recrun_warnings PROPERTIES EXPORT_NAME warnings)
target_compile_options(recrun_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)

# recrun_use_pch(<target>): reuse the one LibTorch PCH. Executables are compiled with -fPIC
# instead of -fPIE so that their flags match the PCH's.
function(recrun_use_pch target)
  if(NOT TARGET recrun_pch)
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
  target_precompile_headers(${target} REUSE_FROM recrun_pch)
endfunction()
