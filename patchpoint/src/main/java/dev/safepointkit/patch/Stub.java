package dev.safepointkit.patch;

import java.util.Optional;

/**
 * A declared function's stub: {@code jmp *slot(%rip)}. Its address is the function's address for
 * every object the host links (and for function pointers): it never changes, whichever body runs.
 * Until a body exists the slot points at the lazy entry, which compiles one on the first call.
 */
public interface Stub {

    String name();

    /** The stub's code: where callers that are not relinked call. */
    long address();

    /**
     * Where the stub jumps now: the lazy entry, or the current body.
     *
     * @throws IllegalStateException once the stubs are freed (after the patcher closed)
     */
    long target();

    /** The current body's address, if the function is compiled. */
    Optional<Long> body();
}
