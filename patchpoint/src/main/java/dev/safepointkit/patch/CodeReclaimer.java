package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.roots.StoppedWorld;
import dev.safepointkit.roots.ThreadStack;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Retired code: objects nothing leads into any more that may still be running, and which of them
 * a stop shows to be free. An object stays tracked until it is unmapped, so an unload that fails
 * loses nothing.
 *
 * <p>Not thread safe: the patcher calls it under its lock.
 */
final class CodeReclaimer {
    private final JitHost host;
    private final List<JitObject> retired = new ArrayList<>();
    /** Retired objects being unloaded now, outside the patcher's lock. */
    private final List<JitObject> freeing = new ArrayList<>();

    CodeReclaimer(JitHost host) {
        this.host = host;
    }

    void retire(JitObject o) {
        if (o != null && !retired.contains(o)) {
            retired.add(o);
        }
    }

    /**
     * Takes {@code o} back from retirement: it holds a body again.
     *
     * @throws PatchException if a safepoint is unloading it right now
     */
    void revive(JitObject o) throws PatchException {
        if (freeing.contains(o)) {
            throw new PatchException(o.name() + " is being freed; load it again to use it as a body");
        }
        retired.remove(o);
    }

    boolean isRetired(JitObject o) {
        return retired.contains(o);
    }

    List<JitObject> retired() {
        return List.copyOf(retired);
    }

    /**
     * The retired objects no stopped stack refers into, now marked as being freed: the caller
     * unloads each and reports back with {@link #unloaded}.
     *
     * <p>The scan of a stopped stack starts at the slot its poll (or exit) recorded, so it cannot
     * see the frames below: the poll function's own, or a slow path's that called into Java. An
     * object whose code calls an upcall ({@link JitHost#isUpcall}) may hold such a function, so it
     * is freed only at a stop where no thread is stopped in JIT code at all.
     */
    List<JitObject> freeable(StoppedWorld world) {
        List<JitObject> free = new ArrayList<>();
        boolean anyStopped = !world.stacks().isEmpty();
        for (JitObject o : retired) {
            if (!freeing.contains(o) && !(anyStopped && callsIntoJava(o)) && !anyStackRefersInto(world, o)) {
                free.add(o);
            }
        }
        freeing.addAll(free);
        return free;
    }

    /** After an attempt to unload {@code o}: tracked no more once it is gone from the host. */
    void unloaded(JitObject o, boolean stillLoaded) {
        freeing.remove(o);
        if (!stillLoaded) {
            retired.remove(o);
        }
    }

    private boolean callsIntoJava(JitObject o) {
        for (String s : o.referencedSymbols()) {
            if (host.isUpcall(s)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether a word on a stopped thread's stack (a return address) lies in {@code o}'s code. A
     * conservative scan: a false match only delays the free. It covers each stack from the
     * return-address slot the poll or exit recorded upwards, not the frames below it.
     */
    private static boolean anyStackRefersInto(StoppedWorld world, JitObject o) {
        List<LoadedSection> code = o.loaded().sections().stream().filter(LoadedSection::executable).toList();
        for (ThreadStack t : world.stacks()) {
            MemorySegment m = t.memory();
            for (long at = 0; at + 8 <= m.byteSize(); at += 8) {
                long word = m.get(ValueLayout.JAVA_LONG_UNALIGNED, at);
                for (LoadedSection s : code) {
                    if (s.contains(word)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
