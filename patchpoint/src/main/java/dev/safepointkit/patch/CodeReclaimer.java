package dev.safepointkit.patch;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.StoppedWorld;
import dev.safepointkit.roots.ThreadStack;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.LongPredicate;

/**
 * Retired code: objects nothing leads into any more that may still be running, and which of them
 * a stop shows to be free. An object stays tracked until it is unmapped, so an unload that fails
 * loses nothing.
 *
 * <p>Not thread safe: the patcher calls it under its lock, except {@link #awaitsAStop}, which any
 * thread may call (the host's unload asks it through the patcher's listener, under the host's
 * lock only): it reads a concurrent set that each change under the patcher's lock updates.
 */
final class CodeReclaimer {
    private final JitHost host;
    private final List<JitObject> retired = new ArrayList<>();
    /** Retired objects being unloaded now, outside the patcher's lock. */
    private final List<JitObject> freeing = new ArrayList<>();
    /** Retired objects the host refused to unload, with the objects loaded at the time. */
    private final java.util.Map<JitObject, List<JitObject>> refusedByHost = new java.util.HashMap<>();
    /** Keys of the retired objects not being freed: they wait for a stop to show no stack runs them. */
    private final java.util.Set<Long> awaiting = java.util.concurrent.ConcurrentHashMap.newKeySet();

    CodeReclaimer(JitHost host) {
        this.host = host;
    }

    void retire(JitObject o) {
        if (o != null && !retired.contains(o)) {
            retired.add(o);
        }
        guard(o);
    }

    /**
     * Whether the object of {@code key} is retired and waits for a stop: a thread may still run
     * it, so only the patcher may unload it. Any thread.
     */
    boolean awaitsAStop(long key) {
        return awaiting.contains(key);
    }

    private void guard(JitObject o) {
        if (o == null) {
            return;
        }
        if (retired.contains(o) && !freeing.contains(o)) {
            awaiting.add(o.key());
        } else {
            awaiting.remove(o.key());
        }
    }

    /** @throws PatchException if a safepoint is unloading {@code o} right now */
    void checkNotFreeing(JitObject o) throws PatchException {
        if (freeing.contains(o)) {
            throw new PatchException(o.name() + " is being freed; load it again to use it as a body");
        }
    }

    /**
     * Takes {@code o} back from retirement: it holds a body again.
     *
     * @throws PatchException if a safepoint is unloading it right now
     */
    void revive(JitObject o) throws PatchException {
        checkNotFreeing(o);
        retired.remove(o);
        guard(o);
    }

    /**
     * Marks {@code o} as being unloaded now, outside the patcher's lock, without a stop: until
     * {@link #unloaded}, {@link #revive} refuses it.
     */
    void markFreeing(JitObject o) {
        if (!freeing.contains(o)) {
            freeing.add(o);
        }
        guard(o);
    }

    boolean isRetired(JitObject o) {
        return retired.contains(o);
    }

    List<JitObject> retired() {
        return List.copyOf(retired);
    }

    /**
     * The retired objects no stopped thread may be running, now marked as being freed: the caller
     * unloads each and reports back with {@link #unloaded}.
     *
     * <p>What a stopped thread may be running is found in two parts. Above the slot each run
     * recorded (its poll, slow path or exit), the stack is scanned for words that lie in the
     * object's code. Below the slot runs the function that recorded it: the poll function, slow
     * path or exit function the JIT frame called, with FFM's upcall frames and Java below that, or
     * (after an exit) the foreign call it makes. No scan can see that function reliably: a thread
     * in native may be running its instructions with no return address of its own on the stack.
     * So the call that the slot's return address follows is decoded instead: a {@code call rel32}
     * (or one through the host's far-call trampoline) that the host linked (so the five bytes are
     * known to be one instruction), whose target is the first byte of a function of a loaded
     * object, and whose site the patcher never rewrites. That function's object is
     * running. A call that is not such (an indirect call, a call through a stub or a relinked site,
     * whose target may have changed since the call was made, a call to a runtime symbol) cannot be
     * pinned to one object: then no retired object is freed at this stop.
     *
     * <p>Assumed, as the poll protocol states: the function that records a slot calls Java or
     * foreign code itself, and foreign code reached through an exit does not run a retired
     * object's code (it could reach one only through a raw address nothing tracks).
     *
     * <p>Not candidates: an object the host refused to unload while the same objects are loaded
     * ({@link #unloaded}), and one that holds an address in {@code pinned} (where a waiting call
     * site the stop could not rewrite leads).
     *
     * @param managedSite whether a call site (the address of its rel32) is one the patcher rewrites
     * @param pinned code addresses that must stay loaded
     */
    List<JitObject> freeable(StoppedWorld world, LongPredicate managedSite, List<Long> pinned) {
        List<JitObject> loaded = host.objects();
        // One the host unloaded by force is gone already: nothing left to free.
        for (JitObject o : List.copyOf(retired)) {
            if (!loaded.contains(o) && !freeing.contains(o)) {
                retired.remove(o);
                refusedByHost.remove(o);
                guard(o);
            }
        }
        List<JitObject> candidates = new ArrayList<>();
        for (JitObject o : retired) {
            List<JitObject> refusedAmong = refusedByHost.get(o);
            if (!freeing.contains(o) && (refusedAmong == null || !refusedAmong.equals(loaded)) && !holdsAny(o, pinned)) {
                candidates.add(o);
            }
        }
        if (candidates.isEmpty()) {
            return List.of();
        }
        for (ThreadStack t : world.stacks()) {
            for (ThreadStack.Run run : t.runs()) {
                JitObject below = calleeObject(t, run, loaded, managedSite);
                if (below == null) {
                    return List.of();   // the function below this slot is not known: keep everything
                }
                candidates.remove(below);
            }
        }
        List<JitObject> free = new ArrayList<>();
        for (JitObject o : candidates) {
            if (!anyStackRefersInto(world, o)) {
                free.add(o);
            }
        }
        freeing.addAll(free);
        free.forEach(this::guard);
        return free;
    }

    /**
     * The loaded object holding the function the call before {@code run}'s return address called,
     * or null if that call cannot be pinned to one (see {@link #freeable}).
     */
    private JitObject calleeObject(ThreadStack t, ThreadStack.Run run, List<JitObject> loaded, LongPredicate managedSite) {
        MemorySegment stack = t.memory();
        long slotOffset = run.returnAddressSlot() - stack.address();
        if (slotOffset < 0 || slotOffset + 8 > stack.byteSize()) {
            return null;
        }
        long returnAddress = stack.get(ValueLayout.JAVA_LONG_UNALIGNED, slotOffset);
        long call = returnAddress - CALL_SIZE;
        if (sectionHolding(loaded, call, CALL_SIZE) == null || managedSite.test(call + 1)) {
            return null;
        }
        // Its size is known: the five bytes lie in an executable section of a loaded object, which
        // stays mapped during the stop (only this stop's result is unloaded, after it).
        MemorySegment bytes = MemorySegment.ofAddress(call).reinterpret(CALL_SIZE);
        if (Byte.toUnsignedInt(bytes.get(ValueLayout.JAVA_BYTE, 0)) != X86Code.CALL_REL32) {
            return null;
        }
        long target = returnAddress + bytes.get(ValueLayout.JAVA_INT_UNALIGNED, 1);
        OptionalLong viaTrampoline = host.farCallTarget(target);
        if (viaTrampoline.isPresent()) {
            target = viaTrampoline.getAsLong();
        }
        for (JitObject o : loaded) {
            for (EmittedFunction f : o.functions()) {
                if (f.address() == target) {
                    // The five bytes are a call only if they start an instruction: known when the
                    // host linked a branch there (else they may end a longer instruction before a
                    // shorter call, an indirect one, that happens to look like this).
                    return recordedBranch(f.name(), call + 1) ? o : null;
                }
            }
        }
        return null;
    }

    /** Whether the host linked a call or jmp rel32 to {@code symbol} whose rel32 is at {@code rel32}. */
    private boolean recordedBranch(String symbol, long rel32) {
        return host.symbol(symbol).map(s -> s.callSites().stream().anyMatch(c -> c.address() == rel32 && c.isBranch()))
                .orElse(false);
    }

    private static final int CALL_SIZE = 5;

    private static LoadedSection sectionHolding(List<JitObject> loaded, long address, int length) {
        for (JitObject o : loaded) {
            for (LoadedSection s : o.loaded().sections()) {
                if (s.executable() && s.contains(address) && s.contains(address + length - 1)) {
                    return s;
                }
            }
        }
        return null;
    }

    /**
     * After an attempt to unload {@code o}: tracked no more once it is gone from the host. One the
     * host refused (other objects use its globals) is not tried again until the set of loaded
     * objects has changed: its users are unloaded first, and a stop in between does not fail again.
     */
    void unloaded(JitObject o, boolean stillLoaded, boolean hostRefused) {
        freeing.remove(o);
        if (!stillLoaded) {
            retired.remove(o);
            refusedByHost.remove(o);
        } else if (hostRefused) {
            refusedByHost.put(o, host.objects());
        }
        guard(o);
    }

    /** Whether an executable section of {@code o} holds one of {@code addresses}. */
    private static boolean holdsAny(JitObject o, List<Long> addresses) {
        for (long a : addresses) {
            for (LoadedSection s : o.loaded().sections()) {
                if (s.executable() && s.contains(a)) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * Whether a word on a stopped thread's stack lies in {@code o}: a return address into its code,
     * or a pointer into its data (a constant or a global a frame still uses). A conservative scan:
     * a false match only delays the free. It covers each stack from the return-address slot the
     * poll or exit recorded upwards; {@link #freeable} accounts for the function below it.
     */
    /**
     * How far below each run's slot the scan reaches: over the frames of the function that
     * recorded the slot (the poll or exit function) and of what it called (FFM's upcall stub, or
     * the foreign code), which hold the JIT frame's callee-saved registers wherever they saved
     * them. A poll plan ({@code SafepointCoordinator.pollSaves}) says exactly where; without one
     * nothing does, so the scan reads this much of the stack below the slot, conservatively: a
     * word that only looks like a pointer keeps an object one stop longer. The memory is the
     * thread's own stack above the JVM's shadow zone (Java code below the slot, or before the
     * downcall above it, banged every page of it), mapped and readable while the thread is stopped.
     */
    static final long BELOW_SLOT = 1024;

    private static boolean anyStackRefersInto(StoppedWorld world, JitObject o) {
        List<LoadedSection> mapped = o.loaded().sections().stream().filter(s -> s.size() > 0).toList();
        for (ThreadStack t : world.stacks()) {
            if (refersInto(t.memory(), mapped)) {
                return true;
            }
            for (ThreadStack.Run run : t.runs()) {
                long low = run.returnAddressSlot() - BELOW_SLOT;
                long high = Math.min(run.returnAddressSlot(), t.memory().address());
                if (high > low && refersInto(MemorySegment.ofAddress(low).reinterpret(high - low), mapped)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean refersInto(MemorySegment m, List<LoadedSection> mapped) {
        for (long at = 0; at + 8 <= m.byteSize(); at += 8) {
            long word = m.get(ValueLayout.JAVA_LONG_UNALIGNED, at);
            for (LoadedSection s : mapped) {
                if (s.contains(word)) {
                    return true;
                }
            }
        }
        return false;
    }
}
