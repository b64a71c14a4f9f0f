package dev.safepointkit.stress.ttsp;

import java.lang.foreign.MemorySegment;

/** What a mutator thread of {@link TimeToSafepoint} runs in JIT code, once, inside its scope. */
@FunctionalInterface
interface Loop {
    void run(SpinLoops loops, MemorySegment context) throws Throwable;
}
