package dev.safepointkit.registry;

import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StatepointRecord;

/**
 * Tells statepoint records from stackmap and patchpoint records. The format does not say, so a
 * runtime that knows its IDs should supply its own; {@link #BY_LAYOUT} reads a record as a
 * statepoint when it has the statepoint layout (three leading constants, a deopt count that fits,
 * whole pairs before the trailing allocas).
 */
@FunctionalInterface
public interface RecordClassifier {

    /**
     * Says what made {@code record}. Called once per record while an object is registered, on the
     * registering thread (possibly several at once).
     *
     * @param record a call-site record of the object being registered
     * @return {@link SafepointKind#STATEPOINT} to read the record's locations as a statepoint's,
     *     {@link SafepointKind#STACKMAP} to keep them all as live values
     */
    SafepointKind classify(CallSiteRecord record);

    /**
     * A record is a statepoint when {@link StatepointRecord#of} accepts it. A stackmap or
     * patchpoint record that happens to have that layout is taken for a statepoint: supply a
     * classifier by ID when the runtime uses both.
     */
    RecordClassifier BY_LAYOUT = record -> {
        try {
            StatepointRecord.of(record);
            return SafepointKind.STATEPOINT;
        } catch (StackMapFormatException e) {
            return SafepointKind.STACKMAP;
        }
    };

    /** Every record is a statepoint: for code that uses gc.statepoint only. */
    RecordClassifier STATEPOINTS = record -> SafepointKind.STATEPOINT;
}
