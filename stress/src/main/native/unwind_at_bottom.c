/*
 * libunwind at the bottom of a JIT stack: StackWalkComparison binds the JIT code's poll hook
 * (deep_poll_java in fixtures/jit/src/deep.ll) to unwind_at_bottom, so that at the deepest frame
 * unw_backtrace walks the live stack of 10,000 JIT frames, as a runtime without its own walker
 * would. The JIT code has no unwind tables registered; its frames keep frame pointers
 * (deep-fp.o), which is what libunwind falls back to when it finds no unwind information.
 *
 * Built by scripts/compare-walk.sh: gcc -O2 -shared -fPIC ... -lunwind.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <time.h>

static int iterations;
static int64_t *times;
static void **buffer;
static int capacity;
static int frames;

void unwind_setup(int count, int64_t *nanos, void **frames_buffer, int frames_capacity) {
  iterations = count;
  times = nanos;
  buffer = frames_buffer;
  capacity = frames_capacity;
}

int unwind_frames(void) { return frames; }

static int64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t) t.tv_sec * 1000000000 + t.tv_nsec;
}

void unwind_at_bottom(void *slot) {
  (void) slot;
  for (int i = 0; i < iterations; i++)  /* warm-up, not timed */
    frames = unw_backtrace(buffer, capacity);
  for (int i = 0; i < iterations; i++) {
    int64_t start = now();
    frames = unw_backtrace(buffer, capacity);
    times[i] = now() - start;
  }
}
