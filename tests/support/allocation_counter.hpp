#pragma once
// Counting heap allocations in a region: a replacement of the global operator new (defined in
// allocation_counter.cpp, linked into the allocation tests) counts every call on any thread,
// and Eigen's EIGEN_RUNTIME_NO_MALLOC (defined for those test executables) makes any
// Eigen heap allocation inside the region fail an assertion.
#include <Eigen/Core>

#include <atomic>
#include <cstdint>

#ifndef EIGEN_RUNTIME_NO_MALLOC
#error "allocation tests must be compiled with EIGEN_RUNTIME_NO_MALLOC"
#endif

namespace mlt {

std::atomic<std::int64_t>& operator_new_calls();

/// While alive: Eigen heap allocation is forbidden and operator new calls are counted.
class NoAllocationRegion {
 public:
  NoAllocationRegion() : start_(operator_new_calls().load()) { Eigen::internal::set_is_malloc_allowed(false); }
  ~NoAllocationRegion() { Eigen::internal::set_is_malloc_allowed(true); }
  NoAllocationRegion(const NoAllocationRegion&) = delete;
  NoAllocationRegion& operator=(const NoAllocationRegion&) = delete;
  /// operator new calls since the region began.
  std::int64_t allocations() const { return operator_new_calls().load() - start_; }

 private:
  std::int64_t start_;
};

}  // namespace mlt
