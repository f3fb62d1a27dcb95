# Compiler warnings and build acceleration (ccache, the shared LibTorch precompiled header).

find_program(RECRUN_CCACHE ccache)
if(RECRUN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${RECRUN_CCACHE}")
  # PCH builds are only cacheable with these sloppiness settings.
  set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
endif()

add_library(recrun_warnings INTERFACE)
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
