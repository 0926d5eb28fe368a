// A deliberate data race that .ci/run compiles with -fsanitize=thread and runs under CI's
// TSAN_OPTIONS: ThreadSanitizer must report it and stop the program with a non-zero status,
// proving that the TSan build of the tests would catch a race. Without an argument the
// threads are synchronised and the program is clean.
#include <cstring>
#include <mutex>
#include <thread>

int counter = 0;
std::mutex mutex;

int main(int argc, char** argv) {
  const bool race = argc > 1 && std::strcmp(argv[1], "race") == 0;
  auto work = [race] {
    for (int i = 0; i < 1000; ++i) {
      if (race) {
        ++counter;  // unsynchronised read-modify-write from two threads
      } else {
        std::lock_guard<std::mutex> lock(mutex);
        ++counter;
      }
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  return counter > 0 ? 0 : 1;
}
