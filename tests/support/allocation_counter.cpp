#include <allocation_counter.hpp>

#include <cstdio>
#include <cstdlib>
#include <new>

std::atomic<std::int64_t>& mlt::operator_new_calls() {
  static std::atomic<std::int64_t> calls{0};
  return calls;
}

// All twenty replaceable allocation and deallocation functions are replaced, so that every
// form allocates with malloc/aligned_alloc and frees with free. Replacing only some of them
// would let the others come from the C++ runtime or, under AddressSanitizer, from ASan's own
// operator new/delete: memory from one family released by the other is an
// alloc-dealloc-mismatch report (e.g. ASan's aligned nothrow new freed by our aligned delete).
namespace {
void* counted(std::size_t size, std::size_t align) {
  mlt::operator_new_calls().fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (size + align - 1) / align * align)
                                              : std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return counted(size, 0); }
void* operator new[](std::size_t size) { return counted(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return counted(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try { return counted(size, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try { return counted(size, 0); } catch (...) { return nullptr; }
}
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return counted(size, static_cast<std::size_t>(a)); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return counted(size, static_cast<std::size_t>(a)); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

// Every executable that links this file relies on it to prove "no allocation": if another
// definition of operator new won (a sanitizer runtime, a library's replacement), the count
// would stay 0 and every such check would pass without proving anything. So the executable
// checks at start-up that a call of operator new lands here, and aborts if it does not. (The
// forms are checked one by one in tests/nn/allocation.test.cpp.)
namespace {
[[maybe_unused]] const bool replacement_in_use = [] {
  const std::int64_t before = mlt::operator_new_calls().load();
  void* p = ::operator new(1);  // a direct call: not elided like a new-expression may be
  const bool counted = mlt::operator_new_calls().load() == before + 1;
  ::operator delete(p);
  if (!counted) {
    std::fputs("allocation_counter.cpp: operator new is not the counting replacement; allocation checks "
               "would prove nothing\n", stderr);
    std::abort();
  }
  return counted;
}();
}  // namespace
