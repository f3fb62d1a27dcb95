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

# Which sources the PCH pays for. Loading the 600 MB LibTorch PCH costs a translation unit about
# 9 s, more than parsing all of a light one (a text or SQLite file: about 3 s) and less than
# parsing <torch/torch.h> (about 19 s). So a source gets the PCH only when its includes, followed
# through the project's own headers, reach a heavy LibTorch header; <torch/version.h> and the
# Tensor class alone (<ATen/core/Tensor.h>, c10/) are light. Measured on one TU each, quiet
# 2-core machine: text_numbers.cpp 11.3 s with the PCH, 2.7 s without; registry.cpp 14.0 s with,
# 28.0 s without.
set(RECRUN_INCLUDE_SCAN_ROOTS
    "${PROJECT_SOURCE_DIR}/framework/include" "${PROJECT_SOURCE_DIR}/framework/src"
    "${PROJECT_SOURCE_DIR}/tests" "${PROJECT_SOURCE_DIR}/plugins" "${PROJECT_SOURCE_DIR}")
set(RECRUN_LIGHT_TORCH_HEADERS "^(torch/version\\.h|ATen/core/Tensor\\.h|ATen/core/TensorBody\\.h|c10/.*)$")

# _recrun_reaches_torch(<file> <out-var>): ON when <file> includes a heavy LibTorch header,
# directly or through headers found beside it or under RECRUN_INCLUDE_SCAN_ROOTS. Memoised per
# file in global properties; a header met again while it is being scanned counts as light.
function(_recrun_reaches_torch file out)
  get_property(known GLOBAL PROPERTY "RECRUN_TORCH:${file}" SET)
  if(known)
    get_property(value GLOBAL PROPERTY "RECRUN_TORCH:${file}")
    set(${out} ${value} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY "RECRUN_TORCH:${file}" OFF)
  set(result OFF)
  if(EXISTS "${file}")
    file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    get_filename_component(dir "${file}" DIRECTORY)
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"].*" "\\1" name "${line}")
      if(name MATCHES "^(torch|ATen|c10)/")
        if(NOT name MATCHES "${RECRUN_LIGHT_TORCH_HEADERS}")
          set(result ON)
          break()
        endif()
        continue()
      endif()
      foreach(root IN ITEMS "${dir}" ${RECRUN_INCLUDE_SCAN_ROOTS})
        if(EXISTS "${root}/${name}" AND NOT IS_DIRECTORY "${root}/${name}")
          _recrun_reaches_torch("${root}/${name}" sub)
          if(sub)
            set(result ON)
          endif()
          break()
        endif()
      endforeach()
      if(result)
        break()
      endif()
    endforeach()
  endif()
  set_property(GLOBAL PROPERTY "RECRUN_TORCH:${file}" ${result})
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# recrun_use_pch(<target>): reuse the one LibTorch PCH for the target's sources that reach a
# heavy LibTorch header (see above); the others compile without it. Executables are compiled
# with -fPIC instead of -fPIE so that their flags match the PCH's.
function(recrun_use_pch target)
  if(NOT TARGET recrun_pch)
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(heavy 0)
  foreach(source IN LISTS sources)
    if(NOT source MATCHES "\\.(cpp|cc|cxx)$")
      continue()
    endif()
    if(NOT IS_ABSOLUTE "${source}")
      set(source "${source_dir}/${source}")
    endif()
    _recrun_reaches_torch("${source}" reaches)
    if(reaches)
      math(EXPR heavy "${heavy} + 1")
    else()
      set_source_files_properties("${source}" TARGET_DIRECTORY ${target}
                                  PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
  if(heavy GREATER 0)
    target_precompile_headers(${target} REUSE_FROM recrun_pch)
  endif()
endfunction()
