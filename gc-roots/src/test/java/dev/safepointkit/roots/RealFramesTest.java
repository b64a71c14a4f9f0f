package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitLoadException;
import dev.safepointkit.registry.RegistryListener;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.testing.Fixtures;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.util.List;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The walker on frames of real LLVM-compiled code (fixtures/jit/src/roots.ll, statepoints from
 * rewrite-statepoints-for-gc): at the poll, Java walks every JIT frame, copies every object it
 * finds a root for to new memory, fills the old memory with poison, and relocates the roots.
 * The JIT code then reads its objects again: a missed or stale root reads poison and the sum
 * comes out wrong.
 */
class RealFramesTest {
    private static final long POISON = 0xDEAD_BEEF_DEAD_BEEFL;
    private static final int OBJECT = 16;

    /** State of the one test running: the upcalls are static. */
    static long entrySlot;
    static SafepointRegistry registry;
    static MemorySegment fromSpace;
    static MemorySegment toSpace;
    static int framesWalked;
    static long rootsRelocated;
    static Throwable failure;

    static void recordEntry(MemorySegment slot) {
        entrySlot = slot.address();
    }

    /** What the poll does with the stopped thread's stack (from the poll's slot up to enter's). */
    interface PollAction {
        void run(long start, long end) throws Throwable;
    }

    static PollAction onPoll = RealFramesTest::walkMoveAndPoison;

    /** The poll. Upcalls must not throw, so failures are kept for the test. */
    static void gcPollJava(MemorySegment slot) {
        try {
            onPoll.run(slot.address(), entrySlot + 8);
        } catch (Throwable t) {
            failure = t;
        }
    }

    /** Walk, move, poison. */
    static void walkMoveAndPoison(long start, long end) throws Throwable {
        {
            // The thread's own stack between the poll's return-address slot and enter's: live,
            // mapped, and exactly end - start bytes.
            MemorySegment stackMemory = MemorySegment.ofAddress(start).reinterpret(end - start);
            Map<Long, Long> forwarded = new HashMap<>();
            long[] next = {toSpace.address()};
            RootRelocator relocator = new RootRelocator(old -> forwarded.computeIfAbsent(old, o -> {
                long fresh = next[0];
                next[0] += OBJECT;
                // The mover only sees object starts: each is 16 bytes in from-space.
                MemorySegment.copy(MemorySegment.ofAddress(o).reinterpret(OBJECT), 0,
                        MemorySegment.ofAddress(fresh).reinterpret(OBJECT), 0, OBJECT);
                return fresh;
            }));
            framesWalked = new JitStackWalker(registry).walk(
                    new ThreadStack(stackMemory, start, end, SavedRegisters.none()), relocator);
            rootsRelocated = relocator.relocatedSlots();
            for (long off = 0; off < fromSpace.byteSize(); off += 8) {
                fromSpace.set(ValueLayout.JAVA_LONG, off, POISON);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7, 300})
    void everyRootOfEveryFrameIsFoundAndRelocated(int depth) throws Throwable {
        onPoll = RealFramesTest::walkMoveAndPoison;
        long[] result = run("roots.o", null, depth);
        long sum = result[0];
        long expected = result[1];
        int objects = depth + 1;
        assertNull(failure, () -> "the poll failed: " + failure);
        assertEquals(objects + 1, framesWalked, "sum_down frames and enter");
        assertEquals(expected, sum, "every object was read from its new place");
        assertTrue(rootsRelocated >= objects, "at least one root per sum_down frame");
        assertEquals(POISON, firstWordAfterRun, "the old objects are poison");
    }

    /** Walks without writing anything; the error it ends with, or null. */
    private static String walkError(MemorySegment memory, long start, long end, SavedRegisters registers) {
        try {
            new JitStackWalker(registry).walk(new ThreadStack(memory, start, end, registers), (batch, stack) -> { });
            return null;
        } catch (StackWalkException e) {
            return e.getMessage();
        }
    }

    static String error;

    @Test
    void aReturnAddressInsideJitCodeThatIsNoSafepointIsAnError() throws Throwable {
        // The walk runs over a copy of the stopped stack whose innermost return address now points
        // one byte before the real one: inside sum_down, at no safepoint. The live stack is untouched.
        onPoll = (start, end) -> {
            MemorySegment copy = Arena.ofAuto().allocate(end - start, 16);
            MemorySegment.copy(MemorySegment.ofAddress(start).reinterpret(end - start), 0, copy, 0, end - start);
            copy.set(ValueLayout.JAVA_LONG, 0, copy.get(ValueLayout.JAVA_LONG, 0) - 1);
            error = walkError(copy, copy.address(), copy.address() + (end - start), SavedRegisters.none());
        };
        long[] result = run("roots.o", null, 5);
        assertNull(failure);
        assertEquals(result[1], result[0], "the program itself ran on");
        assertTrue(error != null && error.startsWith("frame 0: return address 0x") && error.contains("is inside JIT code (sum_down in roots.o) but is not a safepoint"),
                () -> String.valueOf(error));
    }

    @Test
    void aForeignFrameBelowTheEntryIsAnErrorNotTheEndOfTheWalk() throws Throwable {
        // The entry recorded 1,904 bytes above enter's own slot: between the two lie the JVM's
        // frames that called enter. The walk reaches enter, whose return address is foreign but
        // is not the entry, and must fail there instead of ending quietly.
        onPoll = (start, end) -> error = walkError(MemorySegment.ofAddress(start).reinterpret(end + 1904 - start), start,
                end + 1904, SavedRegisters.none());
        long[] result = run("roots.o", null, 5);
        assertNull(failure);
        assertEquals(result[1], result[0], "the program itself ran on");
        assertTrue(error != null && error.startsWith("frame 7 (run 0): return address 0x")
                && error.contains("is foreign code, but the run enters JIT code at slot 0x"), () -> String.valueOf(error));
    }

    @Test
    void aCorruptFrameSizeIsRefusedAtLoadByTheCfi() throws Throwable {
        // sum_down's StackSize in the object's stack map, made 4 KiB larger than the real frame:
        // its CFI says otherwise at every safepoint, so the object never loads (before, the walk
        // found it at a collection). The error names the function, the PC and both sizes.
        JitLoadException e = assertThrows(JitLoadException.class, () -> run("roots.o", RealFramesTest::growSumDownFrame, 5));
        assertTrue(e.getMessage().contains("roots.o: the safepoint at 0x") && e.getMessage().contains(" in sum_down: its CFI says CFA=RSP+")
                && e.getMessage().contains("but its stack map's frame size 4"), e.getMessage());
    }

    @Test
    void aRegisterRootWithNoSavedValueIsAnError() throws Throwable {
        // GC pointers in callee-saved registers: in the frames above the poll their values are
        // somewhere in the callees' register saves, which only unwind info would locate.
        onPoll = (start, end) -> error = walkError(MemorySegment.ofAddress(start).reinterpret(end - start), start, end,
                SavedRegisters.none());
        long[] result = run("roots-gcregs.o", null, 5);
        assertNull(failure);
        assertEquals(result[1], result[0]);
        assertTrue(error != null && error.contains("(sum_down in roots-gcregs.o") && error.contains(": a root in register R#")
                && error.contains("and no saved value for it"), () -> String.valueOf(error));
    }

    /** Adds 4096 to sum_down's StackSize in the object's .llvm_stackmaps. */
    private static void growSumDownFrame(byte[] elf) throws Exception {
        ElfFile file = ElfFile.parse(MemorySegment.ofArray(elf));
        ElfSection section = file.findSection(".llvm_stackmaps").orElseThrow();
        ElfSection rela = file.findSection(".rela.llvm_stackmaps").orElseThrow();
        List<ElfSymbol> symbols = file.symbols(file.symbolTableOf(rela));
        // The relocation against sum_down fills its StkSizeRecord's FunctionAddress; StackSize follows.
        ElfRelocation fill = file.relocationsFor(section).stream()
                .filter(r -> symbols.get(r.symbolIndex()).name().equals("sum_down")).findFirst().orElseThrow();
        int at = Math.toIntExact(section.offset() + fill.offset() + 8);
        ByteBuffer bytes = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(at, bytes.getLong(at) + 4096);
    }

    interface ObjectEdit {
        void apply(byte[] elf) throws Exception;
    }

    /** Runs enter(objects, depth) from the given fixture; returns {sum, expected sum}. */
    private static long[] run(String object, ObjectEdit edit, int depth) throws Throwable {
        failure = null;
        error = null;
        registry = new SafepointRegistry();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(new RegistryListener(registry));
            host.defineUpcall("record_entry", MethodHandles.lookup().findStatic(RealFramesTest.class, "recordEntry",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            host.defineUpcall("gc_poll_java", MethodHandles.lookup().findStatic(RealFramesTest.class, "gcPollJava",
                    MethodType.methodType(void.class, MemorySegment.class)), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), arena);
            byte[] elf = Files.readAllBytes(Fixtures.projectRoot().resolve("fixtures/jit/x86_64/" + object));
            if (edit != null) {
                edit.apply(elf);
            }
            host.load(object, MemorySegment.ofArray(elf));

            int objects = depth + 1;
            fromSpace = arena.allocate((long) OBJECT * objects, 16);
            toSpace = arena.allocate((long) OBJECT * objects, 16);
            long expected = fillObjects(fromSpace, objects);
            long sum = enter(host, fromSpace, depth);
            long poisonCheck = fromSpace.get(ValueLayout.JAVA_LONG, 0);
            firstWordAfterRun = poisonCheck;
            return new long[] {sum, expected};
        }
    }

    static long firstWordAfterRun;

    /** Fills {@code objects} objects {value, weight} into {@code space}; returns the sum of value * weight. */
    static long fillObjects(MemorySegment space, int objects) {
        long expected = 0;
        for (int i = 0; i < objects; i++) {
            long value = 1000 + 7L * i;
            long weight = 3 + i % 5;
            space.set(ValueLayout.JAVA_LONG, (long) OBJECT * i, value);
            space.set(ValueLayout.JAVA_LONG, (long) OBJECT * i + 8, weight);
            expected += value * weight;
        }
        return expected;
    }

    /** Calls the loaded object's {@code enter(objects, depth)}. */
    static long enter(JitHost host, MemorySegment objects, int depth) throws Throwable {
        MethodHandle enter = host.downcall("enter",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        return (long) enter.invokeExact(objects, (long) depth);
    }
}
