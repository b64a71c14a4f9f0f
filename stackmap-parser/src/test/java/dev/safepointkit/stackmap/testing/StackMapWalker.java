package dev.safepointkit.stackmap.testing;

import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.FunctionCursor;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.LiveOutArray;
import dev.safepointkit.stackmap.LiveOutCursor;
import dev.safepointkit.stackmap.Location;
import dev.safepointkit.stackmap.LocationArray;
import dev.safepointkit.stackmap.LocationCursor;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.LocationVisitor;
import dev.safepointkit.stackmap.RecordCursor;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.StatepointRecord;

/**
 * Reads every field of every stack map in a section, and every record as a statepoint, and sums
 * them: what a consumer does, so that a fuzzer or benchmark exercises every accessor.
 */
public final class StackMapWalker {
    private StackMapWalker() {
    }

    /** Sums every field; fails only if the views do (they must not, once the section parsed). */
    public static long sumEverything(StackMapSection section) {
        long sum = 0;
        for (StackMap map : section.stackMaps()) {
            sum += map.version() + map.functionCount() + map.constantCount() + map.recordCount();
            for (int f = 0; f < map.functionCount(); f++) {
                FunctionRecord fn = map.function(f);
                sum += fn.functionAddress() + fn.stackSize() + fn.recordCount() + fn.firstRecordIndex();
            }
            for (int c = 0; c < map.constantCount(); c++) {
                sum += map.constant(c);
            }
            for (int r = 0; r < map.recordCount(); r++) {
                CallSiteRecord record = map.record(r);
                sum += record.id() + record.instructionOffset() + record.flags() + map.functionOfRecord(r);
                for (int l = 0; l < record.locationCount(); l++) {
                    Location loc = record.location(l);
                    sum += loc.kind().code() + loc.sizeInBytes() + loc.dwarfRegNum() + loc.offset();
                    if (loc.kind() == LocationKind.CONSTANT || loc.kind() == LocationKind.CONSTANT_INDEX) {
                        sum += loc.constantValue();
                    }
                }
                for (int l = 0; l < record.liveOutCount(); l++) {
                    sum += record.liveOut(l).dwarfRegNum() + record.liveOut(l).sizeInBytes();
                }
            }
        }
        return sum;
    }

    /** Reusable cursors for {@link #sumEverything(StackMapSection, Cursors)}: one set per thread. */
    public static final class Cursors {
        final FunctionCursor function = new FunctionCursor();
        final RecordCursor record = new RecordCursor();
        final LocationCursor location = new LocationCursor();
        final LiveOutCursor liveOut = new LiveOutCursor();
        final LocationArray locations = new LocationArray();
        final LiveOutArray liveOuts = new LiveOutArray();
    }

    /** The sum of a stack map's header counts, function records and constants, read through {@code fn}. */
    private static long headerFunctionsAndConstants(StackMap map, FunctionCursor fn) {
        long sum = map.version() + map.functionCount() + map.constantCount() + map.recordCount();
        for (int f = 0; f < map.functionCount(); f++) {
            map.function(f, fn);
            sum += fn.functionAddress() + fn.stackSize() + fn.recordCount() + fn.firstRecordIndex();
        }
        for (int c = 0; c < map.constantCount(); c++) {
            sum += map.constant(c);
        }
        return sum;
    }

    /**
     * The same sum as {@link #sumEverything(StackMapSection)}, read through {@code cursors}: it
     * allocates nothing.
     */
    public static long sumEverything(StackMapSection section, Cursors cursors) {
        long sum = 0;
        // By index: an iterator would be the one allocation left where escape analysis fails.
        for (int m = 0; m < section.stackMaps().size(); m++) {
            StackMap map = section.stackMaps().get(m);
            sum += headerFunctionsAndConstants(map, cursors.function);
            RecordCursor record = cursors.record;
            for (int r = 0; r < map.recordCount(); r++) {
                map.record(r, record);
                sum += record.id() + record.instructionOffset() + record.flags() + record.functionIndex();
                for (int l = 0; l < record.locationCount(); l++) {
                    LocationCursor loc = record.location(l, cursors.location);
                    sum += loc.kind().code() + loc.sizeInBytes() + loc.dwarfRegNum() + loc.offset();
                    if (loc.kind() == LocationKind.CONSTANT || loc.kind() == LocationKind.CONSTANT_INDEX) {
                        sum += loc.constantValue();
                    }
                }
                for (int l = 0; l < record.liveOutCount(); l++) {
                    LiveOutCursor liveOut = record.liveOut(l, cursors.liveOut);
                    sum += liveOut.dwarfRegNum() + liveOut.sizeInBytes();
                }
            }
        }
        return sum;
    }

    /**
     * The same sum again, each record's locations and live-outs read in bulk into the arrays of
     * {@code cursors}: it allocates nothing once they have grown.
     */
    public static long sumEverythingThroughArrays(StackMapSection section, Cursors cursors) {
        long sum = 0;
        for (int m = 0; m < section.stackMaps().size(); m++) {
            StackMap map = section.stackMaps().get(m);
            sum += headerFunctionsAndConstants(map, cursors.function);
            RecordCursor record = cursors.record;
            LocationArray locs = cursors.locations;
            LiveOutArray outs = cursors.liveOuts;
            for (int r = 0; r < map.recordCount(); r++) {
                map.record(r, record);
                sum += record.id() + record.instructionOffset() + record.flags() + record.functionIndex();
                record.locations(locs);
                for (int l = 0; l < locs.count(); l++) {
                    LocationKind kind = locs.kind(l);
                    sum += kind.code() + locs.sizeInBytes(l) + locs.dwarfRegNum(l) + locs.offset(l);
                    if (kind == LocationKind.CONSTANT) {
                        sum += locs.smallConstant(l);
                    } else if (kind == LocationKind.CONSTANT_INDEX) {
                        sum += map.constant(locs.constantIndex(l));
                    }
                }
                record.liveOuts(outs);
                for (int l = 0; l < outs.count(); l++) {
                    sum += outs.dwarfRegNum(l) + outs.sizeInBytes(l);
                }
            }
        }
        return sum;
    }

    /** Sums locations as the other reads do, for {@link #sumEverythingThroughVisitor}. */
    public static final class LocationSum implements LocationVisitor {
        StackMap map;
        long sum;

        @Override
        public void location(int kindCode, int sizeInBytes, int dwarfRegNum, int offsetOrConstant) {
            sum += kindCode + sizeInBytes + dwarfRegNum + offsetOrConstant;
            if (kindCode == LocationKind.CONSTANT_CODE) {
                sum += offsetOrConstant;
            } else if (kindCode == LocationKind.CONSTANT_INDEX_CODE) {
                sum += map.constant(offsetOrConstant);
            }
        }
    }

    /**
     * The same sum again, each record's locations handed to {@code visitor} by
     * {@link RecordCursor#forEachLocation}: it allocates nothing.
     */
    public static long sumEverythingThroughVisitor(StackMapSection section, Cursors cursors, LocationSum visitor) {
        long sum = 0;
        visitor.sum = 0;
        for (int m = 0; m < section.stackMaps().size(); m++) {
            StackMap map = section.stackMaps().get(m);
            sum += headerFunctionsAndConstants(map, cursors.function);
            RecordCursor record = cursors.record;
            LiveOutArray outs = cursors.liveOuts;
            visitor.map = map;
            for (int r = 0; r < map.recordCount(); r++) {
                map.record(r, record);
                sum += record.id() + record.instructionOffset() + record.flags() + record.functionIndex();
                record.forEachLocation(visitor);
                record.liveOuts(outs);
                for (int l = 0; l < outs.count(); l++) {
                    sum += outs.dwarfRegNum(l) + outs.sizeInBytes(l);
                }
            }
        }
        return sum + visitor.sum;
    }

    /** Reads each record as a statepoint where it has that layout; returns the pairs seen. */
    public static long sumStatepoints(StackMapSection section) {
        long pairs = 0;
        for (StackMap map : section.stackMaps()) {
            for (int r = 0; r < map.recordCount(); r++) {
                StatepointRecord sp;
                try {
                    sp = StatepointRecord.of(map.record(r));
                } catch (StackMapFormatException notAStatepoint) {
                    continue;
                }
                pairs += sp.pairCount() + sp.deoptCount() + sp.gcAllocaCount() + sp.flags() + sp.callingConvention();
                for (int i = 0; i < sp.pairCount(); i++) {
                    pairs += sp.base(i).offset() + sp.derived(i).offset();
                }
                for (int i = 0; i < sp.gcAllocaCount(); i++) {
                    pairs += sp.gcAlloca(i).offset();
                }
                for (int i = 0; i < sp.deoptCount(); i++) {
                    pairs += sp.deopt(i).sizeInBytes();
                }
            }
        }
        return pairs;
    }
}
