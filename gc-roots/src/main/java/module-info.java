/** Stack walking and GC roots for JIT frames, on top of the safepoint registry. */
module dev.safepointkit.roots {
    requires transitive dev.safepointkit.registry;

    exports dev.safepointkit.roots;
}
