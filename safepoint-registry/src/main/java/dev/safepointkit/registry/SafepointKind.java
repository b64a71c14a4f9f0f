package dev.safepointkit.registry;

/** What made a stack map record, which decides how its locations are read. */
public enum SafepointKind {
    /** {@code gc.statepoint}: deopt locations, (base, derived) pairs, gc-live allocas. */
    STATEPOINT,
    /** {@code stackmap} or {@code patchpoint}: every location is a live value. */
    STACKMAP
}
