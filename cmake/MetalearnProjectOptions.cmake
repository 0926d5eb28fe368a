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

# metalearn_project_target(<target> [NATIVE])
#   Warnings (as errors when METALEARN_WERROR), sanitizers, and -march=native when asked.
function(metalearn_project_target target)
  cmake_parse_arguments(ARG "NATIVE" "" "" ${ARGN})
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
  if(METALEARN_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${METALEARN_SANITIZE}
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${METALEARN_SANITIZE})
  endif()
  if(ARG_NATIVE AND METALEARN_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
    # GCC 12 warns about _mm512_undefined_ps() inside its own AVX-512 headers when Eigen's
    # AVX-512 kernels are inlined (GCC PR 105593, fixed in GCC 13). The same sources are
    # also compiled without -march=native in the test build, with these warnings on.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()
