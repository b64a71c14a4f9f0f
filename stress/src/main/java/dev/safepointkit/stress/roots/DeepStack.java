package dev.safepointkit.stress.roots;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.roots.RootBatch;
import dev.safepointkit.roots.RootVisitor;
import dev.safepointkit.roots.ThreadStack;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The deep stack of fixtures/jit/src/deep.ll, for the walk benchmark and the walk comparison. */
public final class DeepStack {
    private DeepStack() {
    }

    /**
     * Calls {@code deep_enter} of the object loaded in {@code host}: {@code depth} + 1 frames of
     * {@code deep} over four one-word objects (1, 2, 3, 4), on a thread with room for the
     * recursion; its poll hook runs at the bottom. Checks the result.
     */
    public static void recurse(JitHost host, int depth, Arena arena) throws Throwable {
        MethodHandle enter = host.downcall("deep_enter", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        MemorySegment objects = arena.allocate(4 * 16, 16);
        for (int i = 0; i < 4; i++) {
            objects.set(ValueLayout.JAVA_LONG, 16L * i, i + 1);
        }
        long[] result = new long[1];
        Throwable[] failure = new Throwable[1];
        Thread t = new Thread(null, () -> {
            try {
                result[0] = (long) enter.invokeExact(objects, objects.asSlice(16), objects.asSlice(32), objects.asSlice(48),
                        (long) depth);
            } catch (Throwable e) {
                failure[0] = e;
            }
        }, "deep", 256L << 20);
        t.start();
        t.join();
        if (failure[0] != null) {
            throw failure[0];
        }
        if (result[0] != 10L * (depth + 1)) {
            throw new IllegalStateException("deep returned " + result[0]);
        }
    }

    /** Reads every root slot of every frame from {@code memory}, the walked stack. */
    public static final class RootReader implements RootVisitor {
        private final MemorySegment memory;
        public long sum;
        public long roots;

        public RootReader(MemorySegment memory) {
            this.memory = memory;
        }

        @Override
        public void visitFrame(RootBatch batch, ThreadStack stack) {
            for (int i = 0; i < batch.baseCount(); i++) {
                sum += memory.get(ValueLayout.JAVA_LONG, batch.baseSlot(i) - memory.address());
            }
            for (int i = 0; i < batch.derivedCount(); i++) {
                sum += memory.get(ValueLayout.JAVA_LONG, batch.derivedSlot(i) - memory.address());
            }
            roots += batch.baseCount() + batch.derivedCount();
        }
    }
}
