package dev.safepointkit.events;

import dev.safepointkit.stackmap.CallSiteRecord;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;

/**
 * A function of a loaded object: where it is, every label inside it, and its stack map records.
 * Immutable.
 *
 * @param name the function's symbol name
 * @param address absolute address of its first instruction
 * @param size its size in bytes ({@code st_size})
 * @param labels every symbol of the object file that falls inside the function (the function's
 *     own name included) and one label per stack map record, named {@link #stackMapLabel}, each
 *     with its absolute address; a record's label is function start + instruction offset
 * @param stackMapRecords the records of this function, in the order of its stack map
 * @param code the function's bytes, readable while the object is loaded
 * @param object the loaded object the function belongs to
 * @param lines the rows of the object's {@code .debug_line} whose address falls inside the
 *     function, in address order; empty when the object has no line table, or one the host could
 *     not read ({@link LoadedObject#lineTableProblem()} then says why)
 */
public record EmittedFunction(String name, long address, long size, LoadedObject object, Map<String, Long> labels,
        List<CallSiteRecord> stackMapRecords, MemorySegment code, List<SourceLine> lines) {

    /** Copies {@code labels}, {@code stackMapRecords} and {@code lines} into unmodifiable collections. */
    public EmittedFunction {
        labels = Map.copyOf(labels);
        stackMapRecords = List.copyOf(stackMapRecords);
        lines = List.copyOf(lines);
    }

    /**
     * A function without source lines.
     *
     * @param name the function's symbol name
     * @param address absolute address of its first instruction
     * @param size its size in bytes
     * @param object the loaded object the function belongs to
     * @param labels see the record's components
     * @param stackMapRecords the records of this function
     * @param code the function's bytes
     */
    public EmittedFunction(String name, long address, long size, LoadedObject object, Map<String, Long> labels,
            List<CallSiteRecord> stackMapRecords, MemorySegment code) {
        this(name, address, size, object, labels, stackMapRecords, code, List.of());
    }

    /**
     * The label of the {@code index}-th stack map record of a function, for example
     * {@code "stackmap[0] id=100"}: the index keeps labels unique when IDs repeat.
     *
     * @param index the record's index among the function's records, from 0
     * @param id the record's ID, printed unsigned
     * @return the label, the key of the record's address in {@link #labels()}
     */
    public static String stackMapLabel(int index, long id) {
        return "stackmap[" + index + "] id=" + Long.toUnsignedString(id);
    }

    /**
     * The absolute address of this function's {@code index}-th stack map record: for a statepoint,
     * the return address of its call.
     *
     * @param index in {@code [0, stackMapRecords().size())}
     * @return {@link #address()} plus the record's instruction offset
     * @throws IndexOutOfBoundsException if {@code index} is out of range
     */
    public long stackMapAddress(int index) {
        return address + stackMapRecords.get(index).instructionOffset();
    }
}
