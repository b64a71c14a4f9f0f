/**
 * The plug-in API between a JIT host and the tools that want to know what it emitted:
 * {@code dev.safepointkit.events} (listener, event values, dispatcher) and
 * {@code dev.safepointkit.events.perf} (perf map and jitdump writers).
 */
module dev.safepointkit.events {
    requires transitive dev.safepointkit.stackmap;

    exports dev.safepointkit.events;
    exports dev.safepointkit.events.perf;
    // The libc binding is shared with the host and the code patcher, and with no one else.
    exports dev.safepointkit.events.internal to dev.safepointkit.host, dev.safepointkit.patch;
}
