# Install rules: headers, the exported INTERFACE target, a CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

set(METALEARN_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/metalearn"
    CACHE STRING "Where metalearnConfig.cmake is installed, relative to the prefix")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/metalearn" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS metalearn EXPORT metalearnTargets)
install(EXPORT metalearnTargets NAMESPACE metalearn:: DESTINATION "${METALEARN_CMAKE_DIR}")
if(TARGET metalearn_zlib)  # metalearn::zlib, found by the package when the consumer has zlib
  install(TARGETS metalearn_zlib EXPORT metalearnZlibTargets)
  install(EXPORT metalearnZlibTargets NAMESPACE metalearn:: DESTINATION "${METALEARN_CMAKE_DIR}")
endif()
if(TARGET metalearn_mpi)  # metalearn::mpi, found by the package when the consumer has MPI
  install(TARGETS metalearn_mpi EXPORT metalearnMpiTargets)
  install(EXPORT metalearnMpiTargets NAMESPACE metalearn:: DESTINATION "${METALEARN_CMAKE_DIR}")
endif()

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/metalearnConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/metalearnConfig.cmake"
  INSTALL_DESTINATION "${METALEARN_CMAKE_DIR}")
# Before 1.0 every minor release may break the API (semantic versioning's 0.y.z), so a
# request for 0.1 accepts 0.1.z only; from 1.0 on, any later release of the same major.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_metalearn_compatibility SameMinorVersion)
else()
  set(_metalearn_compatibility SameMajorVersion)
endif()
write_basic_package_version_file("${PROJECT_BINARY_DIR}/metalearnConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${_metalearn_compatibility} ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/metalearnConfig.cmake" "${PROJECT_BINARY_DIR}/metalearnConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/MetalearnFindEigen.cmake"
        DESTINATION "${METALEARN_CMAKE_DIR}")

# pkg-config: header-only, so only Cflags; Eigen comes through Requires.
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(METALEARN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(METALEARN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/metalearn.pc.in" "${PROJECT_BINARY_DIR}/metalearn.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/metalearn.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
