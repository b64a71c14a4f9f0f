package dev.safepointkit.stress.compare;

import dev.safepointkit.stackmap.FunctionCursor;
import dev.safepointkit.stackmap.LiveOutArray;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.LocationVisitor;
import dev.safepointkit.stackmap.RecordCursor;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Safepoint Kit's parser doing exactly what stress/src/main/native/llvm_stackmap_sum.cpp does with
 * LLVM's: per pass, parse and validate the whole section, then read and sum every function,
 * constant, record, location and live-out. Same fields, same order of passes, same checksum.
 *
 * <p>{@code ParseComparison SECTION_FILE WARMUP_PASSES MEASURED_PASSES}
 */
public final class ParseComparison {
    private ParseComparison() {
    }

    /** Sums every location it is handed, as the C++ loop does. */
    private static final class LocationSum implements LocationVisitor {
        long sum;

        @Override
        public void location(int kindCode, int sizeInBytes, int dwarfRegNum, int offsetOrConstant) {
            sum += kindCode + sizeInBytes + dwarfRegNum;
            // On the Type byte, as the C++ switches on LLVM's LocationKind (an integer there).
            sum += switch (kindCode) {
                case LocationKind.DIRECT_CODE, LocationKind.INDIRECT_CODE -> offsetOrConstant;
                case LocationKind.CONSTANT_CODE, LocationKind.CONSTANT_INDEX_CODE -> Integer.toUnsignedLong(offsetOrConstant);
                default -> 0;
            };
        }
    }

    static long sumEverything(MemorySegment section) throws StackMapFormatException {
        StackMapSection parsed = StackMapSection.parse(section, ByteOrder.LITTLE_ENDIAN);
        // One set of cursors per pass, as a caller would keep them: nothing is allocated per record.
        FunctionCursor fn = new FunctionCursor();
        RecordCursor record = new RecordCursor();
        LocationSum locations = new LocationSum();
        LiveOutArray liveOuts = new LiveOutArray();
        long sum = 0;
        for (int m = 0; m < parsed.stackMaps().size(); m++) {
            StackMap map = parsed.stackMaps().get(m);
            sum += map.version() + map.functionCount() + map.constantCount() + map.recordCount();
            for (int f = 0; f < map.functionCount(); f++) {
                map.function(f, fn);
                sum += fn.functionAddress() + fn.stackSize() + fn.recordCount();
            }
            for (int c = 0; c < map.constantCount(); c++) {
                sum += map.constant(c);
            }
            for (int r = 0; r < map.recordCount(); r++) {
                map.record(r, record);
                sum += record.id() + record.instructionOffset() + record.locationCount() + record.liveOutCount();
                // Every location, straight from the section.
                record.forEachLocation(locations);
                // Only patchpoints have live-outs.
                if (record.liveOutCount() != 0) {
                    record.liveOuts(liveOuts);
                    for (int l = 0; l < liveOuts.count(); l++) {
                        sum += liveOuts.dwarfRegNum(l) + liveOuts.sizeInBytes(l);
                    }
                }
            }
        }
        return sum + locations.sum;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ParseComparison SECTION_FILE WARMUP_PASSES MEASURED_PASSES");
            System.exit(2);
        }
        byte[] bytes = Files.readAllBytes(Path.of(args[0]));
        int warmup = Integer.parseInt(args[1]);
        int passes = Integer.parseInt(args[2]);
        try (Arena arena = Arena.ofConfined()) {
            // Off-heap, as the C++ harness holds the section in its own memory.
            MemorySegment section = arena.allocate(bytes.length, 8);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, section, 0, bytes.length);
            long records = StackMapSection.parse(section, ByteOrder.LITTLE_ENDIAN).recordCount();
            long checksum = 0;
            for (int i = 0; i < warmup; i++) {
                checksum = sumEverything(section);
            }
            long[] times = new long[passes];
            for (int i = 0; i < passes; i++) {
                long start = System.nanoTime();
                long sum = sumEverything(section);
                times[i] = System.nanoTime() - start;
                if (sum != checksum) {
                    throw new IllegalStateException("checksum changed between passes");
                }
            }
            Arrays.sort(times);
            System.out.printf("safepointkit records=%d checksum=%s median_ns=%d min_ns=%d max_ns=%d%n", records,
                    Long.toUnsignedString(checksum), times[passes / 2], times[0], times[passes - 1]);
        }
    }
}
