package dev.safepointkit.registry;

import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.Location;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.StatepointRecord;
import dev.safepointkit.stackmap.dwarf.CfiFormatException;
import dev.safepointkit.stackmap.dwarf.CfiRow;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.util.ArrayList;
import org.agrona.collections.IntArrayList;
import org.agrona.collections.LongArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Everything the registry knows about one registered object, decoded once into primitive arrays
 * so that lookups decode nothing: its functions sorted by address, its safepoints, and their
 * locations as ints. The registry's {@link SafepointTable} maps return addresses to them.
 *
 * <p>Immutable after construction but for the publication flag; shared by any number of reader
 * threads (readers reach it through the table's release-stored object slots).
 */
final class ObjectTable {
    /** Frame size of a function with no stack map record: the registry cannot say. */
    static final long FRAME_SIZE_UNKNOWN = -2;

    final long key;
    final String name;
    final long codeStart;
    final long codeEnd;

    // Functions, sorted by start.
    final long[] fnStart;
    final long[] fnSize;
    final long[] fnFrameSize;
    final String[] fnName;

    // Safepoints, by index.
    final long[] spAddress;
    final long[] spId;
    final int[] spFunction;
    final SafepointKind[] spKind;
    /** First location of the safepoint's decoded run in the loc* arrays. */
    final int[] spFirstLocation;
    final int[] spDeopt;
    final int[] spPairs;
    final int[] spAllocas;
    /** For STACKMAP safepoints: the number of live locations. */
    final int[] spLive;
    /** Each safepoint's {@link UnwindPlan}, or {@link UnwindPlan#NONE} for an object without {@code .eh_frame}. */
    final long[] spUnwind;

    // Locations.
    final byte[] locKind;
    final int[] locRegister;
    final int[] locOffset;
    final int[] locSize;
    /** The constants table, for CONSTANT_INDEX locations (locOffset holds the index). */
    final long[] constants;

    /**
     * Whether lookups may return this object's safepoints: set once all of them are in the
     * registry's table, cleared first thing on unregister. Volatile: the writer's store happens
     * before any reader that sees it reads the entries.
     */
    private volatile boolean published;

    private ObjectTable(long key, String name, long codeStart, long codeEnd, List<FunctionSpan> functions,
            long[] frameSizes, Decoded d, long[] unwind) {
        this.key = key;
        this.name = name;
        this.codeStart = codeStart;
        this.codeEnd = codeEnd;
        int n = functions.size();
        fnStart = new long[n];
        fnSize = new long[n];
        fnName = new String[n];
        for (int i = 0; i < n; i++) {
            fnStart[i] = functions.get(i).start();
            fnSize[i] = functions.get(i).size();
            fnName[i] = functions.get(i).name();
        }
        fnFrameSize = frameSizes;
        spAddress = d.address.toLongArray();
        spId = d.id.toLongArray();
        spFunction = d.function.toIntArray();
        spKind = d.kind.toArray(SafepointKind[]::new);
        spFirstLocation = d.firstLocation.toIntArray();
        spDeopt = d.deopt.toIntArray();
        spPairs = d.pairs.toIntArray();
        spAllocas = d.allocas.toIntArray();
        spLive = d.live.toIntArray();
        spUnwind = unwind;
        locKind = bytes(d.locKind);
        locRegister = d.locRegister.toIntArray();
        locOffset = d.locOffset.toIntArray();
        locSize = d.locSize.toIntArray();
        constants = d.constants;
    }

    /**
     * Decodes an object's stack maps, whose function addresses must be absolute (relocated).
     *
     * @param ehFrame the object's relocated {@code .eh_frame}, or null: then no safepoint has an
     *     unwind plan
     * @throws RegistryException if a record lies outside the code range, two records share a
     *     return address, a statepoint record is malformed, or (with {@code ehFrame}) the CFI at a
     *     safepoint cannot be evaluated into a plan or contradicts the stack map's frame size
     */
    static ObjectTable decode(long key, String name, long codeStart, long codeSize, StackMapSection stackMaps,
            List<FunctionSpan> spans, RecordClassifier classifier, EhFrame ehFrame) throws RegistryException {
        long codeEnd = codeStart + codeSize;
        List<FunctionSpan> functions = new ArrayList<>(spans);
        List<long[]> recordFunctions = new ArrayList<>();   // {address, stackSize}
        if (stackMaps != null) {
            for (StackMap map : stackMaps.stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    FunctionRecord fn = map.function(f);
                    recordFunctions.add(new long[] {fn.functionAddress(), fn.stackSize()});
                    final long address = fn.functionAddress();
                    if (functions.stream().noneMatch(s -> s.start() == address)) {
                        // A function known only from its stack map: its size is not known.
                        functions.add(new FunctionSpan(null, address, 0));
                    }
                }
            }
        }
        functions.sort(Comparator.comparingLong(FunctionSpan::start));
        long[] frameSizes = new long[functions.size()];
        Arrays.fill(frameSizes, FRAME_SIZE_UNKNOWN);
        for (long[] rf : recordFunctions) {
            frameSizes[indexOf(functions, rf[0])] = rf[1];
        }

        Decoded d = new Decoded();
        if (stackMaps != null) {
            d.constantsFrom(stackMaps);
            int constantBase = 0;
            for (StackMap map : stackMaps.stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    FunctionRecord fn = map.function(f);
                    int function = indexOf(functions, fn.functionAddress());
                    for (int r = 0; r < fn.recordCount(); r++) {
                        CallSiteRecord record = fn.record(r);
                        long address = fn.functionAddress() + record.instructionOffset();
                        if (Long.compareUnsigned(address - codeStart, codeSize) >= 0 && address != codeEnd) {
                            throw new RegistryException(name + ": stack map record " + Long.toUnsignedString(record.id())
                                    + " at 0x" + Long.toHexString(address) + " lies outside the code [0x"
                                    + Long.toHexString(codeStart) + ", 0x" + Long.toHexString(codeEnd) + ")");
                        }
                        d.add(record, address, function, classifier.classify(record), constantBase, name);
                    }
                }
                constantBase += map.constantCount();
            }
        }
        long[] unwind = new long[d.address.size()];
        if (ehFrame != null) {
            for (int i = 0; i < unwind.length; i++) {
                int fn = d.function.getInt(i);
                unwind[i] = plan(name, ehFrame, d.address.getLong(i), functions.get(fn), frameSizes[fn]);
            }
        }
        ObjectTable table = new ObjectTable(key, name, codeStart, codeEnd, functions, frameSizes, d, unwind);
        if (table.safepointCount() >= SafepointTable.MAX_SAFEPOINTS_PER_OBJECT) {
            throw new RegistryException(name + ": " + table.safepointCount() + " safepoints; at most "
                    + (SafepointTable.MAX_SAFEPOINTS_PER_OBJECT - 1) + " per object");
        }
        long[] sorted = table.spAddress.clone();
        Arrays.sort(sorted);
        for (int i = 1; i < sorted.length; i++) {
            if (sorted[i] == sorted[i - 1]) {
                throw new RegistryException(name + ": two stack map records share the return address 0x"
                        + Long.toHexString(sorted[i]));
            }
        }
        return table;
    }

    /**
     * The unwind plan at a safepoint: the CFI row of its call instruction (the byte before the
     * return address, as unwinders take it, so a call that ends its function still finds its FDE).
     */
    private static long plan(String object, EhFrame ehFrame, long returnAddress, FunctionSpan fn, long frameSize)
            throws RegistryException {
        long pc = returnAddress - 1;
        String where = object + ": the safepoint at 0x" + Long.toHexString(returnAddress) + " in "
                + (fn.name() != null ? fn.name() : "the function at 0x" + Long.toHexString(fn.start()));
        EhFrame.Fde fde = ehFrame.fdeFor(pc);
        if (fde == null) {
            throw new RegistryException(where + " has no FDE in the object's .eh_frame");
        }
        long plan;
        try {
            plan = UnwindPlan.encode(CfiRow.at(ehFrame, fde, pc));
        } catch (CfiFormatException | IllegalArgumentException e) {
            throw new RegistryException(where + ": its CFI cannot be planned: " + e.getMessage(), e);
        }
        if (UnwindPlan.cfaRegister(plan) == UnwindPlan.RSP && frameSize >= 0 && UnwindPlan.cfaOffset(plan) != frameSize + 8) {
            throw new RegistryException(where + ": its CFI says " + UnwindPlan.describe(plan) + ", but its stack map's frame size "
                    + frameSize + " puts the return address at SP+" + frameSize);
        }
        if (UnwindPlan.cfaRegister(plan) == UnwindPlan.RSP && frameSize == Frame.DYNAMIC_FRAME_SIZE) {
            throw new RegistryException(where + ": its stack map says the frame size is dynamic, but its CFI is SP-relative ("
                    + UnwindPlan.describe(plan) + ")");
        }
        return plan;
    }

    private static int indexOf(List<FunctionSpan> sorted, long start) {
        int lo = 0;
        int hi = sorted.size() - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            long s = sorted.get(mid).start();
            if (s < start) {
                lo = mid + 1;
            } else if (s > start) {
                hi = mid - 1;
            } else {
                return mid;
            }
        }
        throw new IllegalStateException("function at 0x" + Long.toHexString(start) + " was added above");
    }

    boolean isPublished() {
        return published;
    }

    void publish(boolean visible) {
        published = visible;
    }

    /** The function that contains {@code pc}: the last one starting at or before it, if it reaches pc. */
    int functionAt(long pc) {
        int lo = 0;
        int hi = fnStart.length - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (fnStart[mid] <= pc) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found < 0) {
            return -1;
        }
        // A function of unknown size (known only from its stack map) reaches the next function.
        long end = fnSize[found] > 0 ? fnStart[found] + fnSize[found]
                : found + 1 < fnStart.length ? fnStart[found + 1] : codeEnd;
        return pc < end ? found : -1;
    }

    int safepointCount() {
        return spAddress.length;
    }

    private static byte[] bytes(IntArrayList values) {
        byte[] b = new byte[values.size()];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) values.getInt(i);
        }
        return b;
    }


    /** Growing primitive columns while decoding (Agrona's lists: no boxing). */
    private static final class Decoded {
        final LongArrayList address = new LongArrayList();
        final LongArrayList id = new LongArrayList();
        final IntArrayList function = new IntArrayList();
        final List<SafepointKind> kind = new ArrayList<>();
        final IntArrayList firstLocation = new IntArrayList();
        final IntArrayList deopt = new IntArrayList();
        final IntArrayList pairs = new IntArrayList();
        final IntArrayList allocas = new IntArrayList();
        final IntArrayList live = new IntArrayList();
        final IntArrayList locKind = new IntArrayList();
        final IntArrayList locRegister = new IntArrayList();
        final IntArrayList locOffset = new IntArrayList();
        final IntArrayList locSize = new IntArrayList();
        long[] constants = new long[0];

        void constantsFrom(StackMapSection section) {
            LongArrayList all = new LongArrayList();
            for (StackMap map : section.stackMaps()) {
                for (int c = 0; c < map.constantCount(); c++) {
                    all.addLong(map.constant(c));
                }
            }
            constants = all.toLongArray();
        }

        void add(CallSiteRecord record, long returnAddress, int fn, SafepointKind k, int constantBase, String object)
                throws RegistryException {
            address.addLong(returnAddress);
            id.addLong(record.id());
            function.addInt(fn);
            kind.add(k);
            firstLocation.addInt(locKind.size());
            if (k == SafepointKind.STATEPOINT) {
                StatepointRecord sp;
                try {
                    sp = StatepointRecord.of(record);
                } catch (StackMapFormatException e) {
                    throw new RegistryException(object + ": " + e.getMessage(), e);
                }
                deopt.addInt(sp.deoptCount());
                pairs.addInt(sp.pairCount());
                allocas.addInt(sp.gcAllocaCount());
                live.addInt(0);
                for (int i = 0; i < sp.deoptCount(); i++) {
                    location(sp.deopt(i), constantBase);
                }
                for (int i = 0; i < sp.pairCount(); i++) {
                    location(sp.base(i), constantBase);
                    location(sp.derived(i), constantBase);
                }
                for (int i = 0; i < sp.gcAllocaCount(); i++) {
                    location(sp.gcAlloca(i), constantBase);
                }
            } else {
                deopt.addInt(0);
                pairs.addInt(0);
                allocas.addInt(0);
                live.addInt(record.locationCount());
                for (int i = 0; i < record.locationCount(); i++) {
                    location(record.location(i), constantBase);
                }
            }
        }

        private void location(Location loc, int constantBase) {
            locKind.addInt(loc.kind().code());
            locRegister.addInt(loc.dwarfRegNum());
            locOffset.addInt(loc.kind() == LocationKind.CONSTANT_INDEX ? constantBase + loc.constantIndex() : loc.offset());
            locSize.addInt(loc.sizeInBytes());
        }
    }

}
