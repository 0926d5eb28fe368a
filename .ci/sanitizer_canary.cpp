// Deliberate bugs, one per argument, that .ci/run compiles with the sanitizer flags of
// METALEARN_SANITIZE=address,undefined and runs under CI's ASAN_OPTIONS/UBSAN_OPTIONS: each must
// be reported and must stop the program with a non-zero status, proving that the sanitizer
// build would catch the same bug in a test. Without an argument the program is clean.
#include <climits>
#include <cstdlib>
#include <cstring>

void* volatile leaked = nullptr;

int main(int argc, char** argv) {
  if (argc < 2) return 0;
  if (std::strcmp(argv[1], "heap-buffer-overflow") == 0) {
    int* p = new int[4]();
    const int x = p[argc + 2];  // p[4]: one past the end
    delete[] p;
    return x == 12345 ? 3 : 0;
  }
  if (std::strcmp(argv[1], "signed-integer-overflow") == 0) {
    volatile int big = INT_MAX;
    const int y = big + argc;  // UB
    return y == 0 ? 3 : 0;
  }
  if (std::strcmp(argv[1], "leak") == 0) {
    leaked = std::malloc(4096);
    leaked = nullptr;  // the block is now unreachable
    return 0;
  }
  return 2;
}
