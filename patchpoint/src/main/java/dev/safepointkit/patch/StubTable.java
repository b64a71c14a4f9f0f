package dev.safepointkit.patch;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The declared functions and the stub blocks that hold their stubs, by id (dense from 0, the
 * number a lazy entry passes to the resolver) and by name.
 *
 * <p>Threading: {@link #add}, {@link #publish} and {@link #removeLast} are called under the
 * patcher's lock; lookups are safe from any thread. An entry is findable by id from {@link #add}
 * on, before its name is defined in the host, so a call through a new stub always finds it; it
 * is findable by name only once the host has accepted the name ({@link #publish}), so nothing can
 * look up, compile into or relink an entry whose declare fails.
 */
final class StubTable {
    private final long resolver;
    private final List<StubBlock> blocks = new ArrayList<>();
    /**
     * Entries by id, the first {@link #count} of them. Appended under the patcher's lock: the
     * entry is stored (into a copy first when the array is full, published before it) and then
     * {@code count} is raised, so a reader that reads {@code count} and then the array finds every
     * entry below it. An entry's slot never changes while it is below {@code count} (a declare refused
     * by the host takes its entry back, lowering {@code count} first). Doubling the
     * array keeps a thousand declares linear, where a copy-on-write list copied it every time.
     */
    private volatile StubEntry[] byId = new StubEntry[16];
    private volatile int count;
    private final Map<String, StubEntry> byName = new ConcurrentHashMap<>();

    /** @param resolver the address of the resolver upcall every lazy entry calls */
    StubTable(long resolver) {
        this.resolver = resolver;
    }

    StubEntry add(String name, LazyCompiler compiler, long fallback) {
        int id = count;
        if (id % StubBlock.CAPACITY == 0 && blocks.size() * StubBlock.CAPACITY <= id) {
            blocks.add(new StubBlock(id, resolver));
        }
        StubEntry e = new StubEntry(id, name, compiler, fallback, blocks.get(id / StubBlock.CAPACITY), id % StubBlock.CAPACITY);
        // The slot may have been used by an entry whose declare failed: the new one starts lazy.
        e.setTarget(e.lazyEntry());
        StubEntry[] all = byId;
        if (id == all.length) {
            all = java.util.Arrays.copyOf(all, 2 * id);
            byId = all;
        }
        all[id] = e;
        count = id + 1;
        return e;
    }

    /** Makes {@code e}, which {@link #add} made, findable by name: the host accepted its name. */
    void publish(StubEntry e) {
        byName.put(e.name, e);
    }

    /** Takes back the entry {@link #add} just made (its name was refused); its stub stays unused. */
    void removeLast(StubEntry e) {
        int n = count;
        if (n == 0 || byId[n - 1] != e) {
            throw new IllegalStateException(e.name + " is not the newest stub entry");
        }
        // The slot keeps the entry until the next add overwrites it: a racing reader finds one or the other, never null.
        count = n - 1;
        byName.remove(e.name, e);
        e.setTarget(e.lazyEntry());
    }

    /** Whether {@code e} is a declared function now: added, named in the host, and not taken back. */
    boolean isPublished(StubEntry e) {
        int n = count;
        return byName.get(e.name) == e && e.id < n && byId[e.id] == e;
    }

    boolean contains(String name) {
        return byName.containsKey(name);
    }

    Optional<StubEntry> byName(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The entry of lazy entry {@code id}; fails if no function has that id. */
    StubEntry byId(long id) {
        int n = count;
        if (id < 0 || id >= n) {
            throw new IllegalStateException("stub " + id + " has no declared function");
        }
        return byId[(int) id];
    }

    /** Every entry, in id order: a snapshot. */
    List<StubEntry> all() {
        int n = count;
        return List.of(java.util.Arrays.copyOf(byId, n));
    }

    Set<String> names() {
        return byName.keySet();
    }

    /** Unmaps every block: no stub may be called after this. */
    void free() {
        for (StubBlock b : blocks) {
            b.free();
        }
    }
}
