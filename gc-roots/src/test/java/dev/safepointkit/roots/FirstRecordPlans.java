package dev.safepointkit.roots;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.StackMap;

/** For tests on real objects: the unwind plan the registry gave a function's first safepoint. */
final class FirstRecordPlans {
    private FirstRecordPlans() {
    }

    /**
     * The plan at the first stack map record of the function at {@code function} (a poll's: at its
     * call out), found through {@code object}'s stack maps and looked up in {@code registry}.
     *
     * @throws AssertionError if the function has no record, or the registry does not know it
     */
    static long planAtFirstRecord(SafepointRegistry registry, long function, LoadedObject object) {
        for (StackMap map : object.stackMaps().orElseThrow().stackMaps()) {
            for (int f = 0; f < map.functionCount(); f++) {
                FunctionRecord fn = map.function(f);
                if (fn.functionAddress() == function) {
                    Frame frame = new Frame();
                    assertTrue(registry.lookup(function + fn.record(0).instructionOffset(), frame),
                            "the first safepoint of the function at 0x" + Long.toHexString(function) + " is registered");
                    return frame.unwindPlan();
                }
            }
        }
        throw new AssertionError("the function at 0x" + Long.toHexString(function) + " has no stack map record");
    }
}
