# Installs the SDK and exports it, so that `find_package(recrun)` works for out-of-tree plugins.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# recrun::sdk (the library plugins link) and recrun::warnings (the project's warning flags).
install(TARGETS recrun_sdk recrun_warnings EXPORT recrunTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS recrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/framework/include/recrun
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT recrunTargets NAMESPACE recrun:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/recrun)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/recrunConfig.cmake.in
  ${CMAKE_BINARY_DIR}/recrunConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/recrun)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/recrunConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/recrunConfig.cmake ${CMAKE_BINARY_DIR}/recrunConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/RecrunPlugin.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/recrun)

# The build tree is a usable package too: find_package(recrun) with recrun_DIR=<build>.
export(EXPORT recrunTargets NAMESPACE recrun:: FILE ${CMAKE_BINARY_DIR}/recrunTargets.cmake)
file(COPY ${PROJECT_SOURCE_DIR}/cmake/RecrunPlugin.cmake DESTINATION ${CMAKE_BINARY_DIR})
