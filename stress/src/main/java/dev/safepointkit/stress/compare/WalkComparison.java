package dev.safepointkit.stress.compare;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.roots.JitStackWalker;
import dev.safepointkit.roots.SavedRegisters;
import dev.safepointkit.roots.ThreadStack;
import dev.safepointkit.stress.roots.DeepStack;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Walking the same live JIT stack with gc-roots and with libunwind. {@code deep_enter} recurses
 * DEPTH + 1 frames of {@code deep} (fixtures/jit/src/deep.ll, four roots per frame) and then
 * calls its poll hook, at the bottom of the live stack. Each walker first walks WALKS times
 * untimed (warm-up: the JIT compiler for gc-roots, the trace cache for libunwind), then WALKS
 * times timed:
 *
 * <ul>
 *   <li>gc-roots: the hook is a Java upcall that walks the stack from the poll's return-address
 *       slot to the entry, WALKS times, reading every root (JitStackWalker with the registry).</li>
 *   <li>libunwind: the hook is {@code unwind_at_bottom} (stress/src/main/native/unwind_at_bottom.c),
 *       which calls {@code unw_backtrace} WALKS times from there. It finds return addresses only: no
 *       roots. The JIT code registers no unwind tables; its frames keep frame pointers, which
 *       libunwind follows when it finds none.</li>
 * </ul>
 *
 * <p>{@code WalkComparison OBJECT LIBRARY DEPTH WALKS}: OBJECT is fixtures/jit/x86_64/deep-fp.o (or
 * deep.o for gc-roots alone: without frame pointers libunwind stops at the first JIT frame),
 * LIBRARY the built libunwind_at_bottom.so. Prints one line per walker: frames, roots, median, min
 * and max ns per walk.
 */
public final class WalkComparison {
    private static long entrySlot;
    private static JitStackWalker walker;
    private static long[] walkTimes;
    private static int framesWalked;
    private static long rootsRead;
    private static Throwable failure;

    private WalkComparison() {
    }

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    /** The gc-roots hook: walks the live stack below it. Never throws (an upcall). */
    static void walkAtBottom(MemorySegment slot) {
        try {
            long low = slot.address() - 8;
            MemorySegment memory = MemorySegment.ofAddress(low).reinterpret(entrySlot + 8 - low);
            ThreadStack stack = new ThreadStack(memory, slot.address(), entrySlot + 8, SavedRegisters.none());
            DeepStack.RootReader reader = new DeepStack.RootReader(memory);
            for (int i = 0; i < walkTimes.length; i++) {  // warm-up: the same walks, not timed
                walker.walk(stack, reader);
            }
            for (int i = 0; i < walkTimes.length; i++) {
                reader.roots = 0;
                long start = System.nanoTime();
                framesWalked = walker.walk(stack, reader);
                walkTimes[i] = System.nanoTime() - start;
            }
            rootsRead = reader.roots;
            if (reader.sum == 42) {
                System.out.print("");  // keeps the reads
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /** Loads OBJECT with the given hook, runs the recursion on a thread with room for it. */
    private static void run(Path object, int depth, MemorySegment hook, Arena arena) throws Throwable {
        SafepointRegistry registry = new SafepointRegistry();
        try (JitHost host = new JitHost()) {
            host.addListener(new RegistryListener(registry));
            walker = new JitStackWalker(registry);
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(WalkComparison.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineRuntimeSymbol("deep_poll_java", hook);
            host.load(object.getFileName().toString(), MemorySegment.ofArray(Files.readAllBytes(object)));
            DeepStack.recurse(host, depth, arena);
            if (failure != null) {
                throw failure;  // the walk at the bottom failed
            }
        }
    }

    private static String stats(String name, long frames, long roots, long[] times) {
        long[] sorted = times.clone();
        Arrays.sort(sorted);
        long median = sorted[sorted.length / 2];
        return String.format("%s frames=%d roots=%d median_ns=%d min_ns=%d max_ns=%d per_frame_ns=%.1f", name, frames, roots,
                median, sorted[0], sorted[sorted.length - 1], (double) median / frames);
    }

    public static void main(String[] args) throws Throwable {
        Path object = Path.of(args[0]);
        Path library = Path.of(args[1]);
        int depth = Integer.parseInt(args[2]);
        int walks = Integer.parseInt(args[3]);
        try (Arena arena = Arena.ofShared()) {
            // gc-roots, walked from Java at the bottom of the stack.
            walkTimes = new long[walks];
            MemorySegment javaHook = Linker.nativeLinker().upcallStub(MethodHandles.lookup().findStatic(WalkComparison.class,
                    "walkAtBottom", MethodType.methodType(void.class, MemorySegment.class)),
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            run(object, depth, javaHook, arena);
            if (framesWalked != depth + 2 || rootsRead != 4L * (depth + 2)) {
                throw new IllegalStateException("gc-roots walked " + framesWalked + " frames, " + rootsRead + " roots");
            }
            System.out.println(stats("gc-roots", framesWalked, rootsRead, walkTimes));

            // libunwind, called natively at the bottom of the same stack.
            SymbolLookup lib = SymbolLookup.libraryLookup(library, arena);
            MemorySegment times = arena.allocate(ValueLayout.JAVA_LONG, walks);
            int capacity = depth + 1000;
            MemorySegment buffer = arena.allocate(ValueLayout.ADDRESS, capacity);
            Linker linker = Linker.nativeLinker();
            MethodHandle setup = linker.downcallHandle(lib.findOrThrow("unwind_setup"), FunctionDescriptor.ofVoid(
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            MethodHandle found = linker.downcallHandle(lib.findOrThrow("unwind_frames"), FunctionDescriptor.of(ValueLayout.JAVA_INT));
            setup.invokeExact(walks, times, buffer, capacity);
            run(object, depth, lib.findOrThrow("unwind_at_bottom"), arena);
            int frames = (int) found.invokeExact();
            System.out.println(stats("libunwind", frames, 0, times.toArray(ValueLayout.JAVA_LONG)));
        }
    }
}
