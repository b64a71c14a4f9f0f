package dev.safepointkit.stackmap;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** The per-function name table that the Mach-O and COFF readers fill. Stateless. */
final class FunctionNames {
    private FunctionNames() {
    }

    /** How one function record is named: from its view and the offset of its FunctionAddress field in the section. */
    @FunctionalInterface
    interface Namer {
        String name(FunctionRecord function, long fieldOffset) throws ObjectFormatException;
    }

    /** An empty table: one row per stack map, one slot per function record. */
    static String[][] perFunction(StackMapSection section) {
        String[][] names = new String[section.stackMaps().size()][];
        for (int m = 0; m < names.length; m++) {
            names[m] = new String[section.stackMaps().get(m).functionCount()];
        }
        return names;
    }

    static void fill(StackMapSection section, String[][] names, Namer namer) throws ObjectFormatException {
        for (int m = 0; m < names.length; m++) {
            StackMap map = section.stackMaps().get(m);
            for (int f = 0; f < names[m].length; f++) {
                FunctionRecord function = map.function(f);
                names[m][f] = namer.name(function, function.sectionOffset() + FunctionRecord.FUNCTION_ADDRESS);
            }
        }
    }

    static List<String> flatten(String[][] names) {
        List<String> all = new ArrayList<>();
        for (String[] row : names) {
            all.addAll(Arrays.asList(row));
        }
        return Collections.unmodifiableList(all);
    }
}
