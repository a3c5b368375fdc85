#include "common/heap/heap_release.h"

#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

// Sanitizers replace malloc: glibc's arenas are not where the test's blocks live.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define G4_SANITIZED_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define G4_SANITIZED_MALLOC 1
#endif
#if defined(__GLIBC__) && !defined(G4_SANITIZED_MALLOC)
constexpr bool kGlibcMalloc = true;
#else
constexpr bool kGlibcMalloc = false;
#endif

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// How many arenas malloc has made (malloc_info lists one <heap> per arena, the main one too).
int Arenas() {
#if defined(__GLIBC__)
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  if (out == nullptr) return -1;
  malloc_info(0, out);
  std::fclose(out);
  int heaps = 0;
  for (const char* p = text; (p = std::strstr(p, "<heap nr=")) != nullptr; ++p) ++heaps;
  std::free(text);
  return heaps;
#else
  return -1;
#endif
}

// First in this file (and ctest runs each test in a process of its own): no test before it has
// made threads, and arenas with them.
TEST(HeapReleaseTest, ArenasStayWithinTheCapEvenWithManyThreads) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator replaces glibc's malloc";
  unsetenv("MALLOC_ARENA_MAX");
  const int cap = LimitMallocArenas();
  ASSERT_GE(cap, 2);
  // Threads that all allocate while the others hold their blocks: without a cap glibc gives
  // contending threads arenas of their own, up to 8 per core.
  std::atomic<int> holding{0};
  std::vector<std::thread> threads;
  const int n = 4 * cap + 4;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      std::vector<void*> blocks;
      for (int j = 0; j < 64; ++j) blocks.push_back(std::malloc(256));
      holding.fetch_add(1);
      while (holding.load() < n) std::this_thread::yield();
      for (void* b : blocks) std::free(b);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(Arenas(), cap);
}

TEST(HeapReleaseTest, TheOperatorsArenaLimitIsKept) {
  setenv("MALLOC_ARENA_MAX", "7", 1);
  EXPECT_EQ(LimitMallocArenas(), 0);
  unsetenv("MALLOC_ARENA_MAX");
}

// The situation of a server's arenas: many small blocks freed below one that is still in use,
// so free() cannot give the space back from the top of the heap and it stays resident.
TEST(HeapReleaseTest, FreedMemoryBelowALiveBlockGoesBackToTheKernel) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator replaces glibc's malloc";
  constexpr size_t kBlock = 64 << 10;  // below glibc's mmap threshold: served by the arena
  constexpr int kBlocks = 512;         // 32 MiB
  std::vector<char*> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    char* b = static_cast<char*>(std::malloc(kBlock));
    ASSERT_NE(b, nullptr);
    std::memset(b, 1, kBlock);  // resident
    blocks.push_back(b);
  }
  char* pin = static_cast<char*>(std::malloc(kBlock));  // keeps the heap's top in use
  std::memset(pin, 1, kBlock);
  for (char* b : blocks) std::free(b);
  const int64_t before = ResidentBytes();

  ReleaseFreeHeap();

  const int64_t after = ResidentBytes();
  EXPECT_GT(before - after, int64_t{24} << 20) << "resident before " << before << ", after "
                                               << after;
  std::free(pin);
}

TEST(HeapReleaseTest, ReleaserRunsOnItsIntervalUntilDestroyed) {
  HeapReleaser releaser(absl::Milliseconds(5));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (releaser.releases() < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_GE(releaser.releases(), 3);
}

TEST(HeapReleaseTest, ZeroIntervalIsOff) {
  HeapReleaser releaser(absl::ZeroDuration());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(releaser.releases(), 0);
}

}  // namespace
}  // namespace g4
