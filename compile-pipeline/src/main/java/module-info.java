/**
 * The compile pipeline: LLVM IR or bitcode to code a {@code JitHost} runs, with a runtime module
 * inlined into every compile, per-function modules compiled on their first call through the
 * patcher's stubs, inlining of already compiled functions with redefinition of their dependents,
 * and a persistent object cache. Exports {@code dev.safepointkit.compile}.
 */
module dev.safepointkit.compile {
    requires transitive dev.safepointkit.host;
    requires transitive dev.safepointkit.patch;

    exports dev.safepointkit.compile;
}
