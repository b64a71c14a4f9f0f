package dev.safepointkit.demo;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.roots.FrameUnwinder;
import dev.safepointkit.roots.JitStackWalker;
import dev.safepointkit.roots.Mutator;
import dev.safepointkit.roots.RootRelocator;
import dev.safepointkit.roots.RootVisitor;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.roots.StackWalkException;
import dev.safepointkit.roots.StoppedWorld;
import dev.safepointkit.roots.WorldAction;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.HdrHistogram.Histogram;

/**
 * A semispace copying collector over off-heap memory: the demo's client of gc-roots.
 *
 * <p>Objects: one header word, {@code pointerFields << 32 | sizeInBytes}, then the pointer fields,
 * then raw words. Threads bump-allocate in buffers (their context block's client area holds top
 * and end; the JIT code allocates inline); {@link #allocate} refills a buffer or, when the space
 * is full, collects. A collection stops every mutator, copies what the roots reach (every JIT
 * frame's roots through {@link JitStackWalker}, plus the handles), scans the copies Cheney style,
 * and fills the space it left with {@link #POISON}: a root the walk missed or left stale then reads
 * poison (a bad header, or a non-canonical address that faults) instead of plausible old data.
 *
 * <p>Thread safe: allocation is serialized by the heap's lock; collections run with the world stopped.
 */
public final class SemispaceHeap implements WorldAction, AutoCloseable {
    public static final long POISON = 0xA5A5_A5A5_A5A5_A5A5L;
    /** Offsets of the allocation buffer's top and end in a mutator's context block. */
    public static final long TOP = Mutator.CLIENT_AREA;
    public static final long END = Mutator.CLIENT_AREA + 8;
    public static final long CLIENT_BYTES = 16;

    private static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] spaces = new MemorySegment[2];
    private final long bufferBytes;
    private final MemorySegment handles;
    private final List<MemorySegment> contexts = new ArrayList<>();
    private final JitStackWalker walker;
    private final RootRelocator relocator = new RootRelocator(this::forward);
    private long registerRootsAbove;
    /** The relocator, counting the roots it is given in callee-saved registers above each stack's innermost frame. */
    private final RootVisitor visitor = (batch, stack) -> {
        if (batch.depth() > 0) {
            Frame f = batch.frame();
            for (int i = 0; i < f.pairCount(); i++) {
                if (f.kind(f.base(i)) == LocationKind.REGISTER) {
                    this.registerRootsAbove++;
                }
            }
        }
        relocator.visitFrame(batch, stack);
    };
    private final Histogram pauses = new Histogram(3_600_000_000_000L, 3);
    /** Tests set this to play a collector that misses every stack root; nothing else does. */
    volatile boolean ignoreStackRoots;
    private int current;
    private long bump;
    private MemorySegment from;
    private MemorySegment to;
    private long free;
    private long collections;
    private long framesWalked;
    private long handleRoots;
    private long bytesCopied;

    /**
     * @param semispaceBytes size of each of the two spaces
     * @param bufferBytes size of a thread's allocation buffer
     * @param handleCount number of handles (roots held outside JIT frames)
     */
    public SemispaceHeap(SafepointRegistry registry, long semispaceBytes, long bufferBytes, int handleCount) {
        this(registry, semispaceBytes, bufferBytes, handleCount, null);
    }

    /**
     * @param crossCheck with a walker debug check: every walk's frames are compared with what this
     *     unwinder finds (see {@link JitStackWalker}); null for none
     */
    public SemispaceHeap(SafepointRegistry registry, long semispaceBytes, long bufferBytes, int handleCount,
                         FrameUnwinder crossCheck) {
        if (semispaceBytes % 8 != 0 || bufferBytes % 8 != 0 || bufferBytes <= 0 || bufferBytes > semispaceBytes) {
            throw new IllegalArgumentException("space " + semispaceBytes + ", buffer " + bufferBytes);
        }
        spaces[0] = arena.allocate(semispaceBytes, 64);
        spaces[1] = arena.allocate(semispaceBytes, 64);
        spaces[1].fill((byte) 0xA5);
        this.bufferBytes = bufferBytes;
        this.handles = arena.allocate(8L * handleCount, 8);
        this.walker = new JitStackWalker(registry, crossCheck);
    }

    /** A mutator's allocation buffer lives in its context block; the heap resets it at each collection. */
    public synchronized void addMutator(Mutator m) {
        MemorySegment ctx = m.context();
        ctx.set(WORD, TOP, 0);
        ctx.set(WORD, END, 0);
        contexts.add(ctx);
    }

    public synchronized void removeMutator(Mutator m) {
        contexts.remove(m.context());
    }

    /** Handle {@code i}: an off-heap slot holding an object address (or 0) that the collector updates. */
    public MemorySegment handle(int i) {
        return handles.asSlice(8L * i, 8);
    }

    /**
     * Allocates {@code size} bytes with {@code header}, zeroed, for the mutator whose context block
     * is {@code ctx}: from its buffer (refilled here) or, for objects larger than half a buffer,
     * from the space. Returns 0 when the space is full: the caller collects and tries again.
     */
    public synchronized long allocate(MemorySegment ctx, long size, long header) {
        if (size < 8 || size % 8 != 0 || (header & 0xFFFF_FFFFL) != size || (header >>> 32) * 8 + 8 > size) {
            throw new IllegalArgumentException("object of " + size + " bytes with header 0x" + Long.toHexString(header));
        }
        MemorySegment space = spaces[current];
        long top = ctx.get(WORD, TOP);
        long end = ctx.get(WORD, END);
        long address;
        if (top != 0 && end - top >= size) {
            address = top;
            ctx.set(WORD, TOP, top + size);
        } else if (size > bufferBytes / 2) {
            if (space.byteSize() - bump < size) {
                return 0;
            }
            address = space.address() + bump;
            bump += size;
            space.asSlice(address - space.address(), size).fill((byte) 0);
        } else {
            long grant = Math.min(bufferBytes, space.byteSize() - bump);
            if (grant < size) {
                return 0;
            }
            address = space.address() + bump;
            bump += grant;
            space.asSlice(address - space.address(), grant).fill((byte) 0);
            ctx.set(WORD, TOP, address + size);
            ctx.set(WORD, END, address + grant);
        }
        space.set(WORD, address - space.address(), header);
        return address;
    }

    /** The collection, run by {@link dev.safepointkit.roots.SafepointCoordinator} with every mutator stopped. */
    @Override
    public synchronized void run(StoppedWorld world) throws StackWalkException {
        from = spaces[current];
        to = spaces[1 - current];
        free = 0;
        if (!ignoreStackRoots) {
            framesWalked += world.walkAll(walker, visitor);
        }
        for (long off = 0; off < handles.byteSize(); off += 8) {
            long value = handles.get(WORD, off);
            if (value != 0) {
                handles.set(WORD, off, forward(value));
                handleRoots++;
            }
        }
        // Cheney scan: the copies' pointer fields, in copy order, until no new copy appears.
        for (long scan = 0; scan < free; ) {
            long header = to.get(WORD, scan);
            long fields = header >>> 32;
            for (long f = 0; f < fields; f++) {
                long at = scan + 8 + 8 * f;
                long value = to.get(WORD, at);
                if (value != 0) {
                    to.set(WORD, at, forward(value));
                }
            }
            scan += header & 0xFFFF_FFFFL;
        }
        bytesCopied += free;
        from.asSlice(0, bump).fill((byte) 0xA5);
        current = 1 - current;
        bump = free;
        for (MemorySegment ctx : contexts) {
            ctx.set(WORD, TOP, 0);
            ctx.set(WORD, END, 0);
        }
        collections++;
        pauses.recordValue(System.nanoTime() - world.requestedNanos());
        from = null;
        to = null;
    }

    /** Where the object at {@code old} lives now: copied on first sight, its header left forwarding. */
    private long forward(long old) {
        long offset = old - from.address();
        if (offset < 0 || offset >= bump || (offset & 7) != 0) {
            throw new IllegalStateException("a root 0x" + Long.toHexString(old) + " points outside the allocated space [0x"
                    + Long.toHexString(from.address()) + ", 0x" + Long.toHexString(from.address() + bump) + ")");
        }
        long header = from.get(WORD, offset);
        if ((header & 1) != 0) {
            return header & ~1L;
        }
        long size = header & 0xFFFF_FFFFL;
        if (header == POISON || size < 8 || (size & 7) != 0 || offset + size > bump) {
            throw new IllegalStateException("a root 0x" + Long.toHexString(old) + " points at no object (header 0x"
                    + Long.toHexString(header) + (header == POISON ? ": poison, a stale root" : "") + ")");
        }
        long address = to.address() + free;
        MemorySegment.copy(from, offset, to, free, size);
        free += size;
        from.set(WORD, offset, address | 1);
        return address;
    }

    public synchronized long collections() {
        return collections;
    }

    public synchronized long framesWalked() {
        return framesWalked;
    }

    /** Root slots visited: stack slots (each once per collection) and non-null handles. */
    public synchronized long rootsVisited() {
        return relocator.relocatedSlots() + handleRoots;
    }

    /**
     * Base pointers found in a register (so in the save slot of the callee that saved it) in frames
     * above each stack's innermost one; 0 for code that spills every GC pointer at its calls.
     */
    public synchronized long registerRootsAbove() {
        return registerRootsAbove;
    }

    public synchronized long bytesCopied() {
        return bytesCopied;
    }

    /** Bytes allocated in the current space (live after the last collection, plus buffers since). */
    public synchronized long used() {
        return bump;
    }

    /** A copy of the pause times in nanoseconds, from each stop's request to the end of its collection. */
    public synchronized Histogram pauses() {
        return pauses.copy();
    }

    @Override
    public void close() {
        arena.close();
    }
}
