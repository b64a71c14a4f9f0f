package dev.safepointkit.stackmap;

import java.util.List;
import java.util.Optional;

/**
 * What the Mach-O and COFF readers share: the parsed section and a name per function record.
 * Immutable once constructed.
 */
abstract sealed class NamedStackMaps implements StackMapObject permits MachOStackMaps, CoffStackMaps {
    private final StackMapSection stackMaps;
    /** Per stack map, per function record: the function's name, or null when nothing names it. */
    private final String[][] names;

    NamedStackMaps(StackMapSection stackMaps, String[][] names) {
        this.stackMaps = stackMaps;
        this.names = names;
    }

    @Override
    public final StackMapSection stackMaps() {
        return stackMaps;
    }

    @Override
    public final Optional<String> functionName(int mapIndex, int functionIndex) {
        return Optional.ofNullable(names[mapIndex][functionIndex]);
    }

    /** Every name, in stack map and function order, null where none was found. */
    final List<String> allFunctionNames() {
        return FunctionNames.flatten(names);
    }
}
