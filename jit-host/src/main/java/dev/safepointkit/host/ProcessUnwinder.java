package dev.safepointkit.host;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The process unwinder's view of a stopped stack: the frames libgcc's {@code _Unwind_Backtrace}
 * finds from a given frame, using each frame's own {@code .eh_frame} (a JIT object's as the host
 * registered it with {@code __register_frame}, a library's through the dynamic loader). A stack
 * walker's debug check compares its own frame list against this one: the cheapest way to catch a
 * wrong frame size.
 *
 * <p>The backtrace starts at a frame of any thread's stack, not at the caller: a small native
 * thunk ({@code src/main/c/process_backtrace.c}) calls {@code _Unwind_Backtrace} with CFI that
 * makes the stopped frame its caller, and the stopped frame's callee-saved registers its own.
 * libgcc only reads the stack, so the thread must stay stopped during the call; registers that
 * are not known are given as the address of a zeroed area, so that a frame that needs one ends
 * the backtrace (a return address of 0) instead of sending libgcc to wild memory.
 *
 * <p>Thread safe: any thread; each call uses memory of its own.
 */
public final class ProcessUnwinder {
    /** RBX, RBP, R12-R15, in this order in {@link #frames}' {@code calleeSaved}. */
    public static final int CALLEE_SAVED = 6;

    private static final String LIBRARY = "native/libsafepointkit-backtrace.so";
    private static final ProcessUnwinder INSTANCE;
    private static final String FAILURE;
    private static final long ZEROES = 64 * 1024;

    static {
        ProcessUnwinder u = null;
        String failure = null;
        try {
            u = load();
        } catch (IOException | RuntimeException e) {
            failure = e.toString();
        }
        INSTANCE = u;
        FAILURE = failure;
    }

    private final MethodHandle backtraceFrom;
    /** What unknown registers point into: read as zeroes wherever a frame's CFI sends the unwinder within 32 KiB. */
    private final long unknownRegister;

    private ProcessUnwinder(MethodHandle backtraceFrom, MemorySegment zeroes) {
        this.backtraceFrom = backtraceFrom;
        this.unknownRegister = zeroes.address() + zeroes.byteSize() / 2;
    }

    /**
     * The process unwinder, loaded once per process.
     *
     * @return the instance
     * @throws IllegalStateException when the native part cannot be loaded (not Linux x86-64, no
     *     libgcc_s, a {@code java.io.tmpdir} mounted noexec), with the reason
     */
    public static ProcessUnwinder get() {
        if (INSTANCE == null) {
            throw new IllegalStateException("the process unwinder is not available: " + FAILURE);
        }
        return INSTANCE;
    }

    /**
     * The frames the process unwinder finds from the frame whose return address is at
     * {@code returnAddressSlot}, outward, until it reaches a frame it has no unwind information
     * for (foreign code such as the JVM's own) or {@code out} is full.
     *
     * @param returnAddressSlot the absolute address of the slot holding the return address into
     *     the first frame (the stopped frame's SP at its call, minus 8)
     * @param calleeSaved that frame's RBX, RBP, R12-R15 at the call (what it sees when the call
     *     returns); only those {@code known} says are read
     * @param known bit {@code i} set when {@code calleeSaved[i]} is known
     * @param out receives, for frame {@code k} (0: the one the slot returns into), the return
     *     address into it at {@code out[2k]} and its SP at its call at {@code out[2k + 1]}
     * @return the number of frames written, at most {@code out.length / 2}
     * @throws IllegalStateException if libgcc fails otherwise than by running out of unwind
     *     information, or does not start where it was told to
     */
    public int frames(long returnAddressSlot, long[] calleeSaved, int known, long[] out) {
        int capacity = out.length / 2 + 1;   // and the thunk's own frame
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment registers = arena.allocate(8L * CALLEE_SAVED, 8);
            for (int i = 0; i < CALLEE_SAVED; i++) {
                registers.setAtIndex(ValueLayout.JAVA_LONG, i, (known & (1 << i)) != 0 ? calleeSaved[i] : unknownRegister);
            }
            MemorySegment pairs = arena.allocate(16L * capacity, 8);
            long n;
            try {
                n = (long) backtraceFrom.invokeExact(returnAddressSlot + 8, registers, pairs, (long) capacity);
            } catch (Throwable t) {
                throw new IllegalStateException("the process unwinder failed: " + t, t);
            }
            if (n < 0) {
                throw new IllegalStateException("_Unwind_Backtrace from the frame at slot 0x" + Long.toHexString(returnAddressSlot)
                        + " failed with _Unwind_Reason_Code " + (-1 - n));
            }
            // Frame 0 is the thunk; frame 1 must be the one the slot returns into.
            if (n >= 2 && pairs.getAtIndex(ValueLayout.JAVA_LONG, 3) != returnAddressSlot + 8) {
                throw new IllegalStateException("_Unwind_Backtrace did not start at the frame at slot 0x"
                        + Long.toHexString(returnAddressSlot) + " (its first frame has SP 0x"
                        + Long.toHexString(pairs.getAtIndex(ValueLayout.JAVA_LONG, 3)) + ")");
            }
            int frames = (int) Math.max(0, n - 1);
            MemorySegment.copy(pairs, ValueLayout.JAVA_LONG, 16, out, 0, 2 * frames);
            return frames;
        }
    }

    private static ProcessUnwinder load() throws IOException {
        SymbolLookup lib = BundledLibrary.load(LIBRARY, "safepointkit-backtrace-");
        MethodHandle backtraceFrom = Linker.nativeLinker().downcallHandle(lib.findOrThrow("safepointkit_backtrace_from"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG));
        MemorySegment zeroes = Arena.global().allocate(ZEROES, 4096);
        zeroes.fill((byte) 0);
        return new ProcessUnwinder(backtraceFrom, zeroes);
    }
}
