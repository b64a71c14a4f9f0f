package dev.safepointkit.examples.consumer;

import dev.safepointkit.roots.JitStackWalker;
import dev.safepointkit.roots.RootRelocator;
import dev.safepointkit.roots.StackWalkException;
import dev.safepointkit.roots.StoppedWorld;
import dev.safepointkit.roots.WorldAction;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The smallest moving collector: two semispaces of boxes ({@code {i64 header, i64 value}}, no
 * pointer fields, so the stacks are the only roots). A collection copies every box a root refers
 * to into the other space, fixes the roots through {@link RootRelocator}, and fills the space it
 * left with poison, so a root the walk missed reads garbage and the program's result is wrong.
 *
 * <p>Not thread safe: allocation and collection run on the one mutator thread (collections at
 * its polls, as {@link WorldAction}).
 */
public final class TinyHeap implements WorldAction, AutoCloseable {
    static final long BOX = 0xB0B0_0000_0000_0010L;
    static final long FORWARDED = 0xF0F0_F0F0_F0F0_F0F0L;
    static final byte POISON = (byte) 0xDB;
    private static final long BOX_BYTES = 16;

    private final Arena arena = Arena.ofShared();   // owns both spaces
    private final JitStackWalker walker;
    private MemorySegment from;
    private MemorySegment to;
    private long top;        // bump pointer in from
    private long copyTop;    // bump pointer in to, during a collection
    private long collections;
    private long framesWalked;
    private long slotsRelocated;
    private long boxesCopied;

    public TinyHeap(JitStackWalker walker, long semispaceBytes) {
        this.walker = walker;
        this.from = arena.allocate(semispaceBytes, 16);
        this.to = arena.allocate(semispaceBytes, 16);
    }

    /** Allocates a box holding {@code value}; returns its address. */
    public long allocate(long value) {
        if (top + BOX_BYTES > from.byteSize()) {
            throw new IllegalStateException("the tiny heap is full");
        }
        MemorySegment box = from.asSlice(top, BOX_BYTES);
        box.set(ValueLayout.JAVA_LONG, 0, BOX);
        box.set(ValueLayout.JAVA_LONG, 8, value);
        top += BOX_BYTES;
        return box.address();
    }

    /** A collection, while every mutator is stopped. */
    @Override
    public void run(StoppedWorld world) throws StackWalkException {
        copyTop = 0;
        RootRelocator relocator = new RootRelocator(this::forward);
        framesWalked += world.walkAll(walker, relocator);
        slotsRelocated += relocator.relocatedSlots();
        from.fill(POISON);
        MemorySegment left = from;
        from = to;
        to = left;
        top = copyTop;
        collections++;
    }

    /** Where the box at {@code old} lives after this collection: copied once, then forwarded. */
    private long forward(long old) {
        long offset = old - from.address();
        if (offset < 0 || offset + BOX_BYTES > from.byteSize() || offset % BOX_BYTES != 0) {
            throw new IllegalStateException("root 0x" + Long.toHexString(old) + " is not a box of this heap");
        }
        MemorySegment box = from.asSlice(offset, BOX_BYTES);
        if (box.get(ValueLayout.JAVA_LONG, 0) == FORWARDED) {
            return box.get(ValueLayout.JAVA_LONG, 8);
        }
        MemorySegment copy = to.asSlice(copyTop, BOX_BYTES);
        copyTop += BOX_BYTES;
        copy.copyFrom(box);
        box.set(ValueLayout.JAVA_LONG, 0, FORWARDED);
        box.set(ValueLayout.JAVA_LONG, 8, copy.address());
        boxesCopied++;
        return copy.address();
    }

    public long collections() {
        return collections;
    }

    public long framesWalked() {
        return framesWalked;
    }

    public long slotsRelocated() {
        return slotsRelocated;
    }

    public long boxesCopied() {
        return boxesCopied;
    }

    @Override
    public void close() {
        arena.close();
    }
}
