/**
 * Code patching for JIT code the host loaded: stubs for lazy compilation, relinking stub calls
 * into direct calls, rewriting patchpoint sleds, redefining and deleting functions, all while
 * other threads run the code.
 */
module dev.safepointkit.patch {
    requires transitive dev.safepointkit.host;
    requires transitive dev.safepointkit.roots;

    exports dev.safepointkit.patch;
}
