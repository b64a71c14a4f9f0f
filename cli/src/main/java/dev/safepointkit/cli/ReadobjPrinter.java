package dev.safepointkit.cli;

import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.FunctionRecord;
import dev.safepointkit.stackmap.LiveOut;
import dev.safepointkit.stackmap.Location;
import dev.safepointkit.stackmap.ObjectStackMaps;
import dev.safepointkit.stackmap.StackMap;
import dev.safepointkit.stackmap.StackMapObject;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import java.util.List;

/**
 * Prints stack maps in the text of {@code llvm-readobj --stackmap} (LLVM 19), for ELF, Mach-O and
 * COFF files alike: the file header lines, then each stack map. Numbers are printed as LLVM prints them: 64-bit fields unsigned,
 * register offsets signed, the Constant field as an unsigned 32-bit number.
 */
final class ReadobjPrinter {
    private ReadobjPrinter() {
    }

    static void print(String name, StackMapObject maps, boolean symbols, StringBuilder out) throws ElfFormatException {
        out.append('\n');
        out.append("File: ").append(name).append('\n');
        out.append("Format: ").append(maps.formatName()).append('\n');
        out.append("Arch: ").append(maps.archName()).append('\n');
        out.append("AddressSize: 64bit\n");
        // llvm-readobj prints a LoadName for ELF files only (DT_SONAME).
        if (maps instanceof ObjectStackMaps elf) {
            out.append("LoadName: ").append(elf.elf().soname().orElse("<Not found>")).append('\n');
        }
        List<StackMap> all = maps.stackMaps().stackMaps();
        for (int m = 0; m < all.size(); m++) {
            printStackMap(maps, m, all.get(m), symbols, out);
        }
    }

    private static void printStackMap(StackMapObject maps, int mapIndex, StackMap map, boolean symbols,
            StringBuilder out) {
        out.append("LLVM StackMap Version: ").append(map.version()).append('\n');
        out.append("Num Functions: ").append(map.functionCount()).append('\n');
        for (int f = 0; f < map.functionCount(); f++) {
            FunctionRecord fn = map.function(f);
            out.append("  Function address: ").append(Long.toUnsignedString(fn.functionAddress()))
                    .append(", stack size: ").append(Long.toUnsignedString(fn.stackSize()))
                    .append(", callsite record count: ").append(fn.recordCount());
            if (symbols) {
                out.append(", symbol: ").append(maps.functionName(mapIndex, f).orElse("<unknown>"));
            }
            out.append('\n');
        }
        out.append("Num Constants: ").append(map.constantCount()).append('\n');
        for (int c = 0; c < map.constantCount(); c++) {
            out.append("  #").append(c + 1).append(": ").append(Long.toUnsignedString(map.constant(c))).append('\n');
        }
        out.append("Num Records: ").append(map.recordCount()).append('\n');
        for (int r = 0; r < map.recordCount(); r++) {
            CallSiteRecord record = map.record(r);
            out.append("  Record ID: ").append(Long.toUnsignedString(record.id()))
                    .append(", instruction offset: ").append(record.instructionOffset()).append('\n');
            out.append("    ").append(record.locationCount()).append(" locations:\n");
            for (int l = 0; l < record.locationCount(); l++) {
                out.append("      #").append(l + 1).append(": ");
                printLocation(record.location(l), map, out);
                out.append('\n');
            }
            out.append("    ").append(record.liveOutCount()).append(" live-outs: [ ");
            for (int l = 0; l < record.liveOutCount(); l++) {
                LiveOut liveOut = record.liveOut(l);
                out.append("R#").append(liveOut.dwarfRegNum()).append(" (").append(liveOut.sizeInBytes()).append("-bytes) ");
            }
            out.append("]\n");
        }
    }

    private static void printLocation(Location loc, StackMap map, StringBuilder out) {
        switch (loc.kind()) {
            case REGISTER -> out.append("Register R#").append(loc.dwarfRegNum());
            case DIRECT -> out.append("Direct R#").append(loc.dwarfRegNum()).append(" + ").append(loc.offset());
            case INDIRECT -> out.append("Indirect [R#").append(loc.dwarfRegNum()).append(" + ").append(loc.offset()).append(']');
            case CONSTANT -> out.append("Constant ").append(loc.rawConstantField());
            case CONSTANT_INDEX -> out.append("ConstantIndex #").append(loc.constantIndex()).append(" (")
                    .append(Long.toUnsignedString(map.constant(loc.constantIndex()))).append(')');
        }
        out.append(", size: ").append(loc.sizeInBytes());
    }
}
