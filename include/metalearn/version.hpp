#pragma once
/// @file
/// @brief Version of the metalearn headers (parsed by CMake; keep the three defines on their own lines).

#define METALEARN_VERSION_MAJOR 0
#define METALEARN_VERSION_MINOR 1
#define METALEARN_VERSION_PATCH 0

/// Version as a single comparable integer: major * 10000 + minor * 100 + patch.
#define METALEARN_VERSION \
  (METALEARN_VERSION_MAJOR * 10000 + METALEARN_VERSION_MINOR * 100 + METALEARN_VERSION_PATCH)

namespace metalearn {
/// Version string of the headers, "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";
}  // namespace metalearn
