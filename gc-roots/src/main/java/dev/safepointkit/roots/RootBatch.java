package dev.safepointkit.roots;

import dev.safepointkit.registry.Frame;
import java.util.Arrays;

/**
 * The roots of one JIT frame, as a batch: every slot once, bases apart from derived pointers.
 * A visitor gets the same batch object for every frame of a walk (its arrays grow as needed and
 * are reused), so a walk allocates nothing once warm.
 *
 * <p>Base slots hold a pointer to the start of an object (or null); gc-live allocas and register
 * roots (at the slot where the poll saved the register) are base slots too. A derived slot holds
 * an interior pointer whose object is the one in {@link #derivedBase}: it must be rewritten as
 * new base + (old derived - old base), see {@link RootRelocator}.
 *
 * <p>Not thread safe: owned by the walk that fills it.
 */
public final class RootBatch {
    int depth;
    long sp;
    final Frame frame;
    /**
     * What {@link #baseSlots} and {@link #derivedSlots} are relative to: the frame's SP when they
     * hold a root plan's offsets ({@link #plan}, {@link #plannedAt}), 0 when they hold absolute
     * addresses ({@link #resetAbsolute}). A frame of the same planned safepoint as the frame before
     * it then costs one store.
     */
    long origin;
    long[] baseSlots = new long[16];
    int baseCount;
    long[] derivedSlots = new long[16];
    int[] derivedBase = new int[16];
    int derivedCount;
    /** With a plan: its highest offset + 8, where its slots end relative to SP (0 for none). */
    long planEnd;

    /**
     * An empty batch. Walkers make and reuse their own; a visitor only reads the one it is given.
     */
    public RootBatch() {
        this(new Frame());
    }

    /** A batch of the frames {@code frame} (the walker's cursor) points at. */
    RootBatch(Frame frame) {
        this.frame = frame;
    }

    /** Starts a frame: its depth and SP; the roots are set by {@link #plannedAt} or {@link #resetAbsolute}. */
    void at(int depth, long sp) {
        this.depth = depth;
        this.sp = sp;
    }

    /** Empties the roots, to be added as absolute slots ({@link #addBase}, {@link #addDerived}). */
    void resetAbsolute() {
        origin = 0;
        baseCount = 0;
        derivedCount = 0;
    }

    /**
     * Takes the root plan of {@code f}'s safepoint: its SP offsets, already each slot once. They
     * stay until the next {@link #plan} or {@link #resetAbsolute}; {@link #plannedAt} places them.
     */
    void plan(Frame f) throws StackWalkException {
        int b = f.plannedBaseCount();
        int d = f.plannedDerivedCount();
        if (b > baseSlots.length) {
            baseSlots = new long[Math.max(b, 2 * baseSlots.length)];
        }
        if (d > derivedSlots.length) {
            derivedSlots = new long[Math.max(d, 2 * derivedSlots.length)];
            derivedBase = new int[derivedSlots.length];
        }
        long[] bases = baseSlots;
        long min = 0;
        long max = -8;
        long bits = 0;
        for (int i = 0; i < b; i++) {
            long o = f.plannedBaseOffset(i);
            bases[i] = o;
            min = Math.min(min, o);
            max = Math.max(max, o);
            bits |= o;
        }
        long[] derived = derivedSlots;
        int[] derivedBases = derivedBase;
        for (int i = 0; i < d; i++) {
            long o = f.plannedDerivedOffset(i);
            derived[i] = o;
            derivedBases[i] = f.plannedDerivedBase(i);
            min = Math.min(min, o);
            max = Math.max(max, o);
            bits |= o;
        }
        baseCount = b;
        derivedCount = d;
        // Checked once per plan, so that a frame reusing it (recursion) pays one comparison:
        // every slot at or above SP, aligned, and below SP + planEnd.
        planEnd = max + 8;
        if (min < 0 || (bits & 7) != 0) {
            baseCount = 0;
            derivedCount = 0;
            planEnd = 0;
            throw new StackWalkException(describe() + ": its root plan has a slot at SP " + (min < 0 ? "- " + -min
                    + ", below its frame" : "+ an offset that is not a multiple of 8"));
        }
    }

    /** The roots of the last {@link #plan}, for the frame whose SP is {@code sp}. */
    void plannedAt(long sp) {
        origin = sp;
    }

    /** Adds a base slot once; returns its index. */
    int addBase(long slot) throws StackWalkException {
        for (int i = 0; i < derivedCount; i++) {
            if (derivedSlots[i] == slot) {
                throw new StackWalkException(describe() + ": slot 0x" + Long.toHexString(slot) + " is both a base and a derived pointer");
            }
        }
        for (int i = 0; i < baseCount; i++) {
            if (baseSlots[i] == slot) {
                return i;
            }
        }
        if (baseCount == baseSlots.length) {
            baseSlots = Arrays.copyOf(baseSlots, baseCount * 2);
        }
        baseSlots[baseCount] = slot;
        return baseCount++;
    }

    /** Adds a derived slot of base {@code base} once. */
    void addDerived(long slot, int base) throws StackWalkException {
        for (int i = 0; i < baseCount; i++) {
            if (baseSlots[i] == slot) {
                throw new StackWalkException(describe() + ": slot 0x" + Long.toHexString(slot) + " is both a base and a derived pointer");
            }
        }
        for (int i = 0; i < derivedCount; i++) {
            if (derivedSlots[i] == slot) {
                if (derivedBase[i] != base) {
                    throw new StackWalkException(describe() + ": derived slot 0x" + Long.toHexString(slot) + " has two bases");
                }
                return;
            }
        }
        if (derivedCount == derivedSlots.length) {
            derivedSlots = Arrays.copyOf(derivedSlots, derivedCount * 2);
            derivedBase = Arrays.copyOf(derivedBase, derivedCount * 2);
        }
        derivedSlots[derivedCount] = slot;
        derivedBase[derivedCount++] = base;
    }

    String describe() {
        return "frame " + depth + " (" + (frame.hasFunction() && frame.functionName() != null ? frame.functionName()
                : "function at 0x" + Long.toHexString(frame.functionStart())) + " in " + frame.objectName()
                + ", return address 0x" + Long.toHexString(frame.returnAddress()) + ")";
    }

    /**
     * 0 for the innermost frame (the one that polled), counting outwards.
     *
     * @return the frame's depth over the whole stack, all runs counted
     */
    public int depth() {
        return depth;
    }

    /**
     * The frame's stack pointer at the call: Indirect [RSP + offset] roots are relative to it.
     *
     * @return the absolute stack address just above the return-address slot
     */
    public long sp() {
        return sp;
    }

    /**
     * What the registry knows of the frame (function, safepoint ID, frame size).
     *
     * <p>Read it only: the walker steps later frames of the same safepoint from this cursor, so a
     * visitor that moved it (passed it to {@code SafepointRegistry.lookup} or {@code locate})
     * would walk those frames by another safepoint's plan. A visitor that looks up addresses
     * itself uses a {@code Frame} of its own.
     *
     * @return the walker's own cursor, overwritten for the next frame: copy what you keep
     */
    public Frame frame() {
        return frame;
    }

    /**
     * The number of base slots: base pointers, gc-live allocas and saved register roots, each
     * slot once however often the stack map names it.
     *
     * @return the count, at least 0
     */
    public int baseCount() {
        return baseCount;
    }

    /**
     * Stack address of base root {@code i}.
     *
     * @param i in {@code [0, baseCount())}; not checked against the count, so an index past it
     *     reads a stale entry of an earlier frame
     * @return the absolute address of the 8-byte slot holding an object pointer or null
     */
    public long baseSlot(int i) {
        return origin + baseSlots[i];
    }

    /**
     * The number of derived slots, each once.
     *
     * @return the count, at least 0
     */
    public int derivedCount() {
        return derivedCount;
    }

    /**
     * Stack address of derived root {@code i}.
     *
     * @param i in {@code [0, derivedCount())}; not checked against the count
     * @return the absolute address of the 8-byte slot holding an interior pointer
     */
    public long derivedSlot(int i) {
        return origin + derivedSlots[i];
    }

    /**
     * Index (for {@link #baseSlot}) of the base of derived root {@code i}.
     *
     * @param i in {@code [0, derivedCount())}; not checked against the count
     * @return an index in {@code [0, baseCount())}
     */
    public int derivedBaseIndex(int i) {
        return derivedBase[i];
    }
}
