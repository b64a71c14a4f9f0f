package dev.safepointkit.examples.consumer;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.LlvmCompiler;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.roots.JitStackWalker;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.SafepointCoordinator;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Safepoint Kit end to end: compiles {@code boxes.ll} through libLLVM 19 with
 * {@code rewrite-statepoints-for-gc}, loads it into a {@link JitHost} whose safepoints a
 * {@link RegistryListener} registers, and runs {@code entry(ctx, x, y)} on a {@link Mutator}. Every
 * poll collects ({@link SafepointCoordinator#collectAtEveryPoll}): the {@link TinyHeap} walks the
 * stopped thread's JIT frames with a {@link JitStackWalker}, moves the boxes they refer to, and
 * fixes the frames' slots, so the code reads its values back through moved pointers.
 */
public final class BoxesExample {
    private static final FunctionDescriptor ENTRY = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);

    /** What one run computed, and what the collector did meanwhile. */
    public record Result(long value, long collections, long framesWalked, long slotsRelocated, long boxesCopied,
                         List<Throwable> failures) {
    }

    private BoxesExample() {
    }

    /** Runs {@code entry(ctx, x, y)}, which returns {@code 2 * x + y} when every root was fixed. */
    public static Result run(long x, long y) throws Throwable {
        byte[] object = LlvmCompiler.open().compile("boxes.ll", source("boxes.ll"),
                LlvmCompiler.Options.DEFAULT.withPasses("rewrite-statepoints-for-gc"));

        List<Throwable> failures = new CopyOnWriteArrayList<>();
        SafepointRegistry registry = new SafepointRegistry();
        SafepointCoordinator coordinator = new SafepointCoordinator(0);
        // Closed in reverse: the host (unloading the code) before the upcalls it calls and the heap.
        try (Arena upcalls = Arena.ofShared();
             TinyHeap heap = new TinyHeap(new JitStackWalker(registry), 4096);
             JitHost host = new JitHost()) {
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("spk_poll", coordinator.pollUpcall(failures::add),
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS), upcalls);
            MethodHandle allocate = MethodHandles.lookup().findVirtual(TinyHeap.class, "allocate",
                    MethodType.methodType(long.class, long.class)).bindTo(heap);
            host.defineUpcall("spk_alloc", MethodHandles.dropArguments(allocate, 0, MemorySegment.class),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), upcalls);
            host.load("boxes.o", MemorySegment.ofArray(object));
            MethodHandle entry = host.downcall("entry", ENTRY);

            coordinator.collectAtEveryPoll(heap);
            long value;
            try (Mutator mutator = coordinator.attach()) {
                try (var inJit = mutator.enter()) {
                    value = (long) entry.invokeExact(mutator.context(), x, y);
                }
            }
            return new Result(value, heap.collections(), heap.framesWalked(), heap.slotsRelocated(), heap.boxesCopied(),
                    List.copyOf(failures));
        }
    }

    private static String source(String name) throws IOException {
        try (InputStream in = BoxesExample.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("no resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** Prints one run; exits with status 1 if the result is wrong. */
    public static void main(String[] args) throws Throwable {
        Result r = run(20, 2);
        System.out.println(r);
        if (r.value() != 42 || !r.failures().isEmpty()) {
            System.exit(1);
        }
    }
}
