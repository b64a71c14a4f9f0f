// The runtime that fixtures/jit/src/unwind.ll and catch.ll call, built by UnwindTest with the
// system g++ into a shared library: a C function that records a backtrace, a C++ function that
// throws, and a C++ catch below JIT frames. No exception may leave this library into its caller
// (the JVM): rt_catch_below catches everything.
#include <cstdint>
#include <execinfo.h>

namespace {
constexpr int kMaxFrames = 64;
void *frames[kMaxFrames];
int frame_count;
}  // namespace

extern "C" {

// Called by JIT code: records the current stack as glibc's backtrace() sees it, returns n.
__attribute__((noinline)) int64_t rt_backtrace(int64_t n) {
    frame_count = backtrace(frames, kMaxFrames);
    return n;
}

int rt_frame_count(void) { return frame_count; }

void *rt_frame(int i) { return i >= 0 && i < frame_count ? frames[i] : nullptr; }

// Called by JIT code: throws n (a long) unless it is 0.
__attribute__((noinline)) void rt_throw(int64_t n) {
    if (n != 0) {
        throw static_cast<long>(n);
    }
}

// Calls the JIT function fn(n) inside a C++ try. *outcome is 0 when fn returned (its result is
// returned), 1 when a long was caught (the long is returned), 2 when anything else was caught.
int64_t rt_catch_below(int64_t (*fn)(int64_t), int64_t n, int32_t *outcome) {
    try {
        *outcome = 0;
        return fn(n);
    } catch (long caught) {
        *outcome = 1;
        return caught;
    } catch (...) {
        *outcome = 2;
        return 0;
    }
}

}  // extern "C"
