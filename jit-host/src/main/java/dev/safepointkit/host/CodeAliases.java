package dev.safepointkit.host;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * The writable aliases of one host's loaded code. Every object's code pages are mapped twice from
 * one memory file: read + execute where the code runs, read + write here, at another address.
 * Stores through an alias are seen by execution at once (the same physical pages); making another
 * thread run the new bytes safely is the writer's business (one aligned store, then a core
 * serializing barrier, or a stop).
 *
 * <p>Whoever writes code through these ({@link JitHost#codeAliases}) owns the rules for doing it
 * while threads run; in this project that is the code patcher's one writer. Each segment returned
 * is scoped to its object: once the host unloads the object, an access throws
 * IllegalStateException, never a write into freed memory.
 *
 * <p>Thread safe: lookups never block.
 */
public final class CodeAliases {
    private final JitHost host;

    CodeAliases(JitHost host) {
        this.host = host;
    }

    /**
     * The alias of {@code length} bytes of code at {@code address}: the segment's bytes are the
     * code's bytes, and writing them changes the code.
     *
     * @param address the first byte of code, an absolute address in the read + execute mapping
     * @param length the number of bytes, at least 0
     * @return empty if the range does not lie in the code of one object loaded now
     */
    public Optional<MemorySegment> writable(long address, long length) {
        return host.codeAlias(address, length);
    }
}
