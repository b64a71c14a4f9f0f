/**
 * The safepoint registry: return address to frame description, for stack walkers, while JIT
 * threads register and unregister code. Depends on the event-listener API only for the adapter
 * that drives it from JIT events; never on the host.
 */
module dev.safepointkit.registry {
    requires transitive dev.safepointkit.stackmap;
    requires transitive dev.safepointkit.events;
    requires org.agrona;

    exports dev.safepointkit.registry;
}
