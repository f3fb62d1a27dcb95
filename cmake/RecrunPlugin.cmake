# recrun_add_plugin(<name> <sources>...)
#
# Builds one plugin library, librecrun_<name>.so, against the recrun SDK. Works in the recrun
# tree (output goes to the build's plugins/ folder, which the host scans by default) and out of
# tree after find_package(recrun) (output goes to the caller's build folder, or
# RECRUN_PLUGIN_OUTPUT_DIR if set; point recrun at it with --plugin-dir or RECRUN_PLUGIN_PATH).
#
# Both ways get the same flags: C++20 without GNU extensions, hidden visibility, PIC,
# -Wl,--no-undefined and the project's warnings (recrun_warnings in the tree, recrun::warnings
# out of it). Out of tree, recrun's package config also defaults CMAKE_BUILD_TYPE to Release.
function(recrun_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "recrun_add_plugin(${name}): no source files given")
  endif()
  set(target recrun_plugin_${name})
  add_library(${target} MODULE ${ARGN})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME recrun_${name}
    PREFIX lib
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    CXX_EXTENSIONS OFF)
  if(DEFINED RECRUN_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${RECRUN_PLUGIN_OUTPUT_DIR}")
  endif()
  target_compile_features(${target} PRIVATE cxx_std_20)
  # Resolve everything at link time: a missing symbol is a build error, not a load-time one.
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  set_property(GLOBAL APPEND PROPERTY RECRUN_PLUGIN_TARGETS ${target})
  if(TARGET recrun_sdk)
    target_link_libraries(${target} PRIVATE recrun_sdk recrun_warnings)
    recrun_use_pch(${target})
    if(NOT RECRUN_PLUGIN_NO_INSTALL)
      install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/recrun/plugins)
    endif()
  else()
    target_link_libraries(${target} PRIVATE recrun::sdk recrun::warnings)
  endif()
endfunction()
