package dev.safepointkit.registry;

import dev.safepointkit.stackmap.FunctionCursor;
import dev.safepointkit.stackmap.LocationCursor;
import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.RecordCursor;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.StatepointRecord;
import dev.safepointkit.stackmap.dwarf.CfiFormatException;
import dev.safepointkit.stackmap.dwarf.CfiRow;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Everything the registry knows about one registered object, decoded once into primitive arrays
 * so that lookups decode nothing: its functions sorted by address, its safepoints, and their
 * locations as ints. The registry's {@link SafepointTable} maps return addresses to them.
 *
 * <p>Immutable after construction but for {@link #slot}, which only the registry's writer reads
 * and writes; shared by any number of reader threads (readers reach it through the
 * release-published arrays of {@link ObjectSlots}).
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

    /**
     * The walker's per-safepoint plan, two longs per safepoint side by side so a frame reads one
     * cache line: [2i] how to reach the caller ({@link UnwindPlan#walkStep}), [2i + 1] its roots
     * ({@link RootPlan}), whose entries are in {@link #rootSlots}.
     */
    final long[] spWalk;
    /** The entries of the planned safepoints' root plans ({@link RootPlan}). */
    final int[] rootSlots;

    // Locations.
    final byte[] locKind;
    final int[] locRegister;
    final int[] locOffset;
    final int[] locSize;
    /** The constants table, for CONSTANT_INDEX locations (locOffset holds the index). */
    final long[] constants;

    /** Its slot in the registry's {@link ObjectSlots} while registered: writer only, under the registry's lock. */
    int slot = -1;

    private ObjectTable(long key, String name, long codeStart, long codeEnd, List<FunctionSpan> functions,
            long[] frameSizes, Columns c, long[] unwind) {
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
        spAddress = c.address;
        spId = c.id;
        spFunction = c.function;
        spKind = c.kind;
        spFirstLocation = c.firstLocation;
        spDeopt = c.deopt;
        spPairs = c.pairs;
        spAllocas = c.allocas;
        spLive = c.live;
        spUnwind = unwind;
        if (c.locations != c.locKind.length) {
            throw new IllegalStateException(name + ": " + c.locations + " locations decoded into arrays for " + c.locKind.length);
        }
        locKind = c.locKind;
        locRegister = c.locRegister;
        locOffset = c.locOffset;
        locSize = c.locSize;
        constants = c.constants;
        int safepoints = spAddress.length;
        spWalk = new long[2 * safepoints];
        for (int i = 0; i < safepoints; i++) {
            spWalk[2 * i] = UnwindPlan.walkStep(unwind[i], frameSizes[spFunction[i]]);
        }
        rootSlots = RootPlan.build(safepoints, spKind, spFirstLocation, spDeopt, spPairs, spAllocas, locKind, locRegister, locOffset,
                spWalk, 2, 1);
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
        FunctionCursor fn = new FunctionCursor();
        List<FunctionSpan> functions = functionsOf(spans, stackMaps, fn);
        long[] starts = startsOf(functions);
        long[] frameSizes = new long[functions.size()];
        Arrays.fill(frameSizes, FRAME_SIZE_UNKNOWN);
        int records = 0;
        if (stackMaps != null) {
            for (StackMap map : stackMaps.stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    map.function(f, fn);
                    frameSizes[indexOf(starts, fn.functionAddress())] = fn.stackSize();
                }
                records += map.recordCount();
            }
        }

        // First pass: each record's kind and statepoint layout, which say how many of its
        // locations the table keeps, so that the second pass fills arrays of the final size.
        RecordCursor record = new RecordCursor();
        LocationCursor location = new LocationCursor();
        long[] layouts = new long[records];
        int locations = 0;
        if (stackMaps != null) {
            int i = 0;
            for (StackMap map : stackMaps.stackMaps()) {
                for (int r = 0; r < map.recordCount(); r++) {
                    map.record(r, record);
                    long layout = layoutOf(map, record, location, classifier, name);
                    layouts[i++] = layout;
                    locations += record.locationCount()
                            - (layout == StatepointRecord.NOT_A_STATEPOINT ? 0 : StatepointRecord.LEADING_CONSTANTS);
                }
            }
        }

        // Second pass, in the same record order (a stack map's records are its functions' in turn):
        // each record's header and locations, read once.
        Columns c = new Columns(records, locations);
        if (stackMaps != null) {
            c.constantsFrom(stackMaps);
            int constantBase = 0;
            for (StackMap map : stackMaps.stackMaps()) {
                for (int f = 0; f < map.functionCount(); f++) {
                    map.function(f, fn);
                    int function = indexOf(starts, fn.functionAddress());
                    for (int r = 0; r < fn.recordCount(); r++) {
                        fn.record(r, record);
                        long address = fn.functionAddress() + record.instructionOffset();
                        if (Long.compareUnsigned(address - codeStart, codeSize) >= 0 && address != codeEnd) {
                            throw new RegistryException(name + ": stack map record " + Long.toUnsignedString(record.id())
                                    + " at 0x" + Long.toHexString(address) + " lies outside the code [0x"
                                    + Long.toHexString(codeStart) + ", 0x" + Long.toHexString(codeEnd) + ")");
                        }
                        int bad = c.add(record, location, address, function, layouts[c.safepoints], constantBase,
                                frameSizes[function]);
                        if (bad >= 0) {
                            throw rootSlotOutsideFrame(name, functions.get(function), frameSizes[function], c, bad);
                        }
                    }
                }
                constantBase += map.constantCount();
            }
        }
        long[] unwind = new long[records];
        if (ehFrame != null) {
            for (int i = 0; i < unwind.length; i++) {
                int f = c.function[i];
                unwind[i] = plan(name, ehFrame, c.address[i], functions.get(f), frameSizes[f]);
            }
        }
        ObjectTable table = new ObjectTable(key, name, codeStart, codeEnd, functions, frameSizes, c, unwind);
        if (table.safepointCount() >= SafepointTable.MAX_SAFEPOINTS_PER_OBJECT) {
            throw new RegistryException(name + ": " + table.safepointCount() + " safepoints; at most "
                    + (SafepointTable.MAX_SAFEPOINTS_PER_OBJECT - 1) + " per object");
        }
        long[] sorted = table.spAddress;
        if (!strictlyIncreasing(sorted)) {
            // LLVM emits a function's records in address order, so this sort is the rare case.
            sorted = sorted.clone();
            Arrays.sort(sorted);
        }
        for (int i = 1; i < sorted.length; i++) {
            if (sorted[i] == sorted[i - 1]) {
                throw new RegistryException(name + ": two stack map records share the return address 0x"
                        + Long.toHexString(sorted[i]));
            }
        }
        return table;
    }

    /**
     * The error for location {@code l} of the safepoint just added to {@code c}, which
     * {@link Columns#add} found to be an SP-relative root outside its static-size frame.
     */
    private static RegistryException rootSlotOutsideFrame(String name, FunctionSpan fn, long frameSize, Columns c, int l) {
        int i = c.safepoints - 1;
        int first = c.firstLocation[i] + c.deopt[i];
        boolean pair = l < first + 2 * c.pairs[i];
        long offset = c.locOffset[l];
        String why = offset < 0 ? "below the frame's SP, in its callee's area"
                : offset % 8 != 0 ? "not an 8-byte aligned slot"
                : "not inside the frame: SP + " + frameSize + " is its return address";
        return new RegistryException(name + ": function " + (fn.name() != null ? fn.name() + " " : "") + "at 0x"
                + Long.toHexString(fn.start()) + " (frame size " + frameSize + "), safepoint at return address 0x"
                + Long.toHexString(c.address[i]) + ": its root " + (pair
                ? (((l - first) & 1) == 0 ? "base" : "derived") + " pointer at [RSP + " + offset + "]"
                : "gc-live alloca at RSP + " + offset) + " is " + why);
    }

    /** {@code spans} and the functions known only from the stack maps (size 0), sorted by start. */
    private static List<FunctionSpan> functionsOf(List<FunctionSpan> spans, StackMapSection stackMaps, FunctionCursor fn) {
        List<FunctionSpan> functions = new ArrayList<>(spans);
        functions.sort(Comparator.comparingLong(FunctionSpan::start));
        if (stackMaps == null) {
            return functions;
        }
        int known = functions.size();
        long[] knownStarts = startsOf(functions);
        for (StackMap map : stackMaps.stackMaps()) {
            for (int f = 0; f < map.functionCount(); f++) {
                long address = map.function(f, fn).functionAddress();
                if (Sorted.indexOf(knownStarts, known, address) < 0 && !addedAfter(functions, known, address)) {
                    // A function known only from its stack map: its size is not known.
                    functions.add(new FunctionSpan(null, address, 0));
                }
            }
        }
        if (functions.size() > known) {
            functions.sort(Comparator.comparingLong(FunctionSpan::start));
        }
        return functions;
    }

    private static boolean addedAfter(List<FunctionSpan> functions, int known, long address) {
        for (int i = known; i < functions.size(); i++) {
            if (functions.get(i).start() == address) {
                return true;
            }
        }
        return false;
    }

    private static boolean strictlyIncreasing(long[] a) {
        for (int i = 1; i < a.length; i++) {
            if (a[i] <= a[i - 1]) {
                return false;
            }
        }
        return true;
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

    private static int indexOf(long[] starts, long start) {
        int i = Sorted.indexOf(starts, starts.length, start);
        if (i < 0) {
            throw new IllegalStateException("function at 0x" + Long.toHexString(start) + " was added above");
        }
        return i;
    }

    private static long[] startsOf(List<FunctionSpan> functions) {
        long[] starts = new long[functions.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = functions.get(i).start();
        }
        return starts;
    }

    /** The function that contains {@code pc}: the last one starting at or before it, if it reaches pc. */
    int functionAt(long pc) {
        int found = Sorted.lastAtOrBefore(fnStart, fnStart.length, pc);
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

    /**
     * A record's statepoint layout ({@link StatepointRecord#layout}), or
     * {@link StatepointRecord#NOT_A_STATEPOINT} for a record the classifier keeps as a stackmap.
     *
     * @throws RegistryException if the classifier calls a record a statepoint that has no
     *     statepoint layout
     */
    private static long layoutOf(StackMap map, RecordCursor record, LocationCursor location, RecordClassifier classifier,
            String object) throws RegistryException {
        if (classifier == RecordClassifier.BY_LAYOUT) {
            // The classifier's own test, done once: its layout is the one the second pass reads.
            return StatepointRecord.layout(record, location);
        }
        SafepointKind k = classifier == RecordClassifier.STATEPOINTS ? SafepointKind.STATEPOINT
                : classifier.classify(map.record(record.index()));
        if (k != SafepointKind.STATEPOINT) {
            return StatepointRecord.NOT_A_STATEPOINT;
        }
        long layout = StatepointRecord.layout(record, location);
        if (layout == StatepointRecord.NOT_A_STATEPOINT) {
            throw notAStatepoint(map, record, object);
        }
        return layout;
    }

    /** The parser's account of why a record the classifier called a statepoint is not one. */
    private static RegistryException notAStatepoint(StackMap map, RecordCursor record, String object) {
        try {
            StatepointRecord.of(map.record(record.index()));
        } catch (StackMapFormatException e) {
            return new RegistryException(object + ": " + e.getMessage(), e);
        }
        throw new IllegalStateException("StatepointRecord.of accepts record " + record.index() + ", its layout did not");
    }

    /**
     * The decoded columns while decoding, every array of its final size: per safepoint, and per
     * location the table keeps (a statepoint's three leading constants are its header, not kept).
     */
    private static final class Columns {
        final long[] address;
        final long[] id;
        final int[] function;
        final SafepointKind[] kind;
        final int[] firstLocation;
        final int[] deopt;
        final int[] pairs;
        final int[] allocas;
        final int[] live;
        int safepoints;
        final byte[] locKind;
        final int[] locRegister;
        final int[] locOffset;
        final int[] locSize;
        int locations;
        long[] constants = new long[0];

        Columns(int records, int locations) {
            address = new long[records];
            id = new long[records];
            function = new int[records];
            kind = new SafepointKind[records];
            firstLocation = new int[records];
            deopt = new int[records];
            pairs = new int[records];
            allocas = new int[records];
            live = new int[records];
            locKind = new byte[locations];
            locRegister = new int[locations];
            locOffset = new int[locations];
            locSize = new int[locations];
        }

        void constantsFrom(StackMapSection section) {
            int count = 0;
            for (StackMap map : section.stackMaps()) {
                count += map.constantCount();
            }
            constants = new long[count];
            int at = 0;
            for (StackMap map : section.stackMaps()) {
                for (int i = 0; i < map.constantCount(); i++) {
                    constants[at++] = map.constant(i);
                }
            }
        }

        /**
         * Adds the record under {@code record} with the layout the first pass found for it, and
         * checks a statepoint's SP-relative roots (Indirect [RSP + n] base and derived pointers,
         * gc-live allocas' Direct RSP + n) against its function's static frame size: each must be
         * an 8-byte aligned slot at or above SP and below the return address at SP + frame size.
         * A walker would relocate whatever word is there; LLVM's own spill slots are always inside
         * the frame. Frames of dynamic or unknown size (negative) are left to the walk, which checks
         * every slot against the frame it finds.
         *
         * @return the index of the first root location outside the frame, or -1
         */
        int add(RecordCursor record, LocationCursor location, long returnAddress, int fn, long layout, int constantBase,
                long frameSize) {
            int i = safepoints++;
            address[i] = returnAddress;
            id[i] = record.id();
            function[i] = fn;
            firstLocation[i] = locations;
            int n = record.locationCount();
            int from;
            // The record's locations from gcFirst on are roots, pairs before allocaFirst; none for a stackmap.
            int gcFirst = n;
            int allocaFirst = n;
            if (layout != StatepointRecord.NOT_A_STATEPOINT) {
                kind[i] = SafepointKind.STATEPOINT;
                deopt[i] = StatepointRecord.deoptCount(layout);
                pairs[i] = StatepointRecord.pairCount(layout);
                allocas[i] = StatepointRecord.gcAllocaCount(layout);
                from = StatepointRecord.LEADING_CONSTANTS;
                if (frameSize >= 0) {
                    gcFirst = from + deopt[i];
                    allocaFirst = gcFirst + 2 * pairs[i];
                }
            } else {
                kind[i] = SafepointKind.STACKMAP;
                live[i] = n;
                from = 0;
            }
            int outside = -1;
            for (int l = from; l < n; l++) {
                record.location(l, location);
                int at = locations++;
                int kindCode = location.kindCode();
                int register = location.dwarfRegNum();
                int offset = kindCode == LocationKind.CONSTANT_INDEX_CODE ? constantBase + location.constantIndex()
                        : location.offset();
                locKind[at] = (byte) kindCode;
                locRegister[at] = register;
                locOffset[at] = offset;
                locSize[at] = location.sizeInBytes();
                if (l >= gcFirst && register == RootPlan.RSP && outside < 0
                        && kindCode == (l < allocaFirst ? LocationKind.INDIRECT_CODE : LocationKind.DIRECT_CODE)
                        && (offset < 0 || (offset & 7) != 0 || offset + 8L > frameSize)) {
                    outside = at;
                }
            }
            return outside;
        }
    }
}
