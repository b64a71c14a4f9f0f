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

    SafepointKind classify(CallSiteRecord record);

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
