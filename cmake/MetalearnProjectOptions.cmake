# Settings for metalearn's own targets (tests, examples, benchmarks), applied target by
# target through metalearn_project_target(): nothing here reaches a consumer's targets. The
# compiler launcher (ccache) is set only when metalearn is the top-level project.

if(PROJECT_IS_TOP_LEVEL)
  find_program(METALEARN_CCACHE ccache)
  if(METALEARN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
    set(CMAKE_CXX_COMPILER_LAUNCHER "${METALEARN_CCACHE}")
  endif()
endif()

set(METALEARN_SANITIZE "" CACHE STRING
    "Sanitizers for metalearn's own targets, e.g. 'address,undefined' or 'thread'")
set(METALEARN_ARCH "native" CACHE STRING
    "The -march of metalearn's examples and benchmarks when METALEARN_NATIVE is on (e.g. x86-64-v3: AVX2, x86-64-v4: AVX-512)")

# An optional BLAS for the large products of metalearn's own executables (never for consumers,
# who need none): Eigen's EIGEN_USE_BLAS sends its blocked products, and metalearn's blocked path
# (core/gemm.hpp) with them, to the BLAS's sgemm_/dgemm_. The small products of meta-learning
# keep metalearn's kernels. bench/README.md has the measurements with and without it.
option(METALEARN_BLAS "Link metalearn's tests, examples and benchmarks with a BLAS (EIGEN_USE_BLAS), e.g. OpenBLAS" OFF)
if(METALEARN_BLAS)
  if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
  endif()
  find_package(BLAS REQUIRED)
endif()

# GCC's -Waggressive-loop-optimizations misfires in Eigen 3.4's row-major matrix-vector
# product when the depth is a compile-time multiple of the SIMD packet: it names a remainder
# loop that runs zero times (cmake/probes/gcc_gemv_loop_warning.cpp has the proof). The probe
# compiles that code with this build's compiler, flags and -march, and only where it raises
# the warning is the warning turned off, for the targets that declare such products
# (metalearn_project_target(... EIGEN_FIXED_GEMV)).
set(METALEARN_GCC_GEMV_FALSE_POSITIVE FALSE)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND METALEARN_NATIVE)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _metalearn_config)
  separate_arguments(_metalearn_probe_flags UNIX_COMMAND
    "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_metalearn_config}} -march=${METALEARN_ARCH} -Werror=aggressive-loop-optimizations")
  try_compile(_metalearn_probe_ok "${CMAKE_BINARY_DIR}/CMakeFiles/metalearn-probe-gemv"
    SOURCES "${PROJECT_SOURCE_DIR}/cmake/probes/gcc_gemv_loop_warning.cpp"
    COMPILE_DEFINITIONS ${_metalearn_probe_flags}
    LINK_LIBRARIES Eigen3::Eigen
    CXX_STANDARD 17
    OUTPUT_VARIABLE _metalearn_probe_log)
  if(NOT _metalearn_probe_ok)
    if(_metalearn_probe_log MATCHES "aggressive-loop-optimizations")
      set(METALEARN_GCC_GEMV_FALSE_POSITIVE TRUE)
      message(STATUS "metalearn: GCC ${CMAKE_CXX_COMPILER_VERSION} raises the known false -Waggressive-loop-optimizations "
                     "in Eigen's GEMV with -march=${METALEARN_ARCH}; off for the targets with fixed-size GEMVs")
    else()
      message(WARNING "metalearn: the GEMV warning probe failed to compile for another reason:\n${_metalearn_probe_log}")
    endif()
  endif()
endif()

# metalearn_project_target(<target> [NATIVE] [EIGEN_FIXED_GEMV])
#   Warnings (as errors when METALEARN_WERROR), sanitizers, and -march=${METALEARN_ARCH} when
#   asked. EIGEN_FIXED_GEMV: the target calls Eigen's products with compile-time depths (see
#   the probe above).
function(metalearn_project_target target)
  cmake_parse_arguments(ARG "NATIVE;EIGEN_FIXED_GEMV" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # GCC 12's new -Wuse-after-free reports false positives inside Eigen's aligned_free when
  # Eigen temporaries are inlined into the caller (e.g. spectra#141); GCC 13 fixed them.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
     AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-use-after-free)
  endif()
  if(METALEARN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(METALEARN_BLAS)  # changes Eigen's inline functions: every target of the build, alike
    target_compile_definitions(${target} PRIVATE EIGEN_USE_BLAS)
    target_link_libraries(${target} PRIVATE BLAS::BLAS)
  endif()
  if(METALEARN_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${METALEARN_SANITIZE}
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${METALEARN_SANITIZE})
  endif()
  if(ARG_NATIVE AND METALEARN_NATIVE)
    target_compile_options(${target} PRIVATE -march=${METALEARN_ARCH})
    if(ARG_EIGEN_FIXED_GEMV AND METALEARN_GCC_GEMV_FALSE_POSITIVE)
      target_compile_options(${target} PRIVATE -Wno-aggressive-loop-optimizations)
    endif()
    # GCC 12 warns about _mm512_undefined_ps() inside its own AVX-512 headers when Eigen's
    # AVX-512 kernels are inlined (GCC PR 105593, fixed in GCC 13). The same sources are
    # also compiled without -march=native in the test build, with these warnings on.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()
