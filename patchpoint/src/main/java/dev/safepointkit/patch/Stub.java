package dev.safepointkit.patch;

import java.util.Optional;

/**
 * A declared function's stub: {@code jmp *slot(%rip)}. Its address is the function's address for
 * every object the host links (and for function pointers): it never changes, whichever body runs.
 * Until a body exists the slot points at the lazy entry, which compiles one on the first call.
 */
public interface Stub {

    /** {@return the declared function's name} */
    String name();

    /** {@return the stub's code, an absolute address: where callers that are not relinked call} */
    long address();

    /**
     * Where the stub jumps now: the lazy entry, or the current body. One volatile load of the
     * slot; any thread.
     *
     * @return the absolute address in the stub's slot
     * @throws IllegalStateException once the stubs are freed (after the patcher closed)
     */
    long target();

    /** {@return the current body's absolute address; empty while the function is not compiled} */
    Optional<Long> body();
}
