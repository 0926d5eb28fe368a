# metalearn_find_eigen([PACKAGE])
#   Makes Eigen3::Eigen available: a target that already exists (the parent project's own
#   Eigen) is used as it is; otherwise Eigen's CMake package is found and its version checked
#   against what metalearn supports, 3.4 up to (not including) 6. No version goes to
#   find_package itself: Eigen 3.4's version file accepts only 3.x requests (it refuses a
#   range such as 3.4...<6), and Eigen 5's accepts a request for 3.4 as 3.4.x only.
#   CMakeLists.txt calls it plainly (a missing or unsupported Eigen is a configure error);
#   the installed metalearnConfig.cmake calls it with PACKAGE (a macro, so that on failure it
#   sets metalearn_FOUND to FALSE with a message and returns from the package file).
macro(metalearn_find_eigen)
  if(NOT TARGET Eigen3::Eigen)
    if("${ARGV0}" STREQUAL "PACKAGE")
      find_dependency(Eigen3 NO_MODULE)  # returns from the package file when Eigen is missing
    else()
      find_package(Eigen3 REQUIRED NO_MODULE)
    endif()
    if(DEFINED Eigen3_VERSION)
      set(_metalearn_eigen_version "${Eigen3_VERSION}")
    else()
      set(_metalearn_eigen_version "${EIGEN3_VERSION_STRING}")
    endif()
    if(_metalearn_eigen_version VERSION_LESS 3.4 OR _metalearn_eigen_version VERSION_GREATER_EQUAL 6)
      set(_metalearn_eigen_message "metalearn needs Eigen 3.4 up to (not including) 6, but found Eigen "
          "${_metalearn_eigen_version} in '${Eigen3_DIR}'; point Eigen3_DIR or CMAKE_PREFIX_PATH at a supported Eigen")
      string(CONCAT _metalearn_eigen_message ${_metalearn_eigen_message})
      if("${ARGV0}" STREQUAL "PACKAGE")
        set(metalearn_NOT_FOUND_MESSAGE "${_metalearn_eigen_message}")
        set(metalearn_FOUND FALSE)
        return()
      endif()
      message(FATAL_ERROR "${_metalearn_eigen_message}")
    endif()
    unset(_metalearn_eigen_version)
  endif()
endmacro()
