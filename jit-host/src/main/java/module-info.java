/**
 * Loads LLVM's ELF relocatable objects into executable memory, links them against each other,
 * the embedder's runtime symbols and the process, registers their unwind tables with the process
 * unwinder, and publishes them to JIT event listeners.
 * Exports {@code dev.safepointkit.host}; the linker itself stays internal.
 */
module dev.safepointkit.host {
    requires transitive dev.safepointkit.events;

    exports dev.safepointkit.host;
}
