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
 * Prints what {@link ReadobjPrinter} prints as one JSON object per file, with the function
 * symbols always included and each location's fields named by its kind.
 */
final class JsonPrinter {
    private JsonPrinter() {
    }

    static String print(String name, StackMapObject maps) throws ElfFormatException {
        JsonWriter w = new JsonWriter().beginObject();
        w.name("file").value(name);
        w.name("format").value(maps.formatName());
        w.name("arch").value(maps.archName());
        w.name("addressSize").value(64);
        w.name("loadName").value(maps instanceof ObjectStackMaps elf ? elf.elf().soname().orElse(null) : null);
        w.name("stackMaps").beginArray();
        List<StackMap> all = maps.stackMaps().stackMaps();
        for (int m = 0; m < all.size(); m++) {
            printStackMap(maps, m, all.get(m), w);
        }
        w.endArray();
        return w.endObject().toString();
    }

    private static void printStackMap(StackMapObject maps, int mapIndex, StackMap map, JsonWriter w) {
        w.beginObject();
        w.name("sectionOffset").value(map.sectionOffset());
        w.name("version").value(map.version());
        w.name("functions").beginArray();
        for (int f = 0; f < map.functionCount(); f++) {
            FunctionRecord fn = map.function(f);
            w.beginObject();
            w.name("address").unsignedValue(fn.functionAddress());
            w.name("symbol").value(maps.functionName(mapIndex, f).orElse(null));
            w.name("stackSize").unsignedValue(fn.stackSize());
            w.name("dynamicStackSize").value(fn.hasDynamicStackSize());
            w.name("recordCount").value(fn.recordCount());
            w.endObject();
        }
        w.endArray();
        w.name("constants").beginArray();
        for (int c = 0; c < map.constantCount(); c++) {
            w.unsignedValue(map.constant(c));
        }
        w.endArray();
        w.name("records").beginArray();
        for (int r = 0; r < map.recordCount(); r++) {
            CallSiteRecord record = map.record(r);
            w.beginObject();
            w.name("id").unsignedValue(record.id());
            w.name("function").value(map.functionOfRecord(r));
            w.name("instructionOffset").value(record.instructionOffset());
            w.name("locations").beginArray();
            for (int l = 0; l < record.locationCount(); l++) {
                printLocation(record.location(l), map, w);
            }
            w.endArray();
            w.name("liveOuts").beginArray();
            for (int l = 0; l < record.liveOutCount(); l++) {
                LiveOut liveOut = record.liveOut(l);
                w.beginObject().name("dwarfReg").value(liveOut.dwarfRegNum()).name("size").value(liveOut.sizeInBytes()).endObject();
            }
            w.endArray();
            w.endObject();
        }
        w.endArray();
        w.endObject();
    }

    private static void printLocation(Location loc, StackMap map, JsonWriter w) {
        w.beginObject();
        switch (loc.kind()) {
            case REGISTER -> w.name("kind").value("Register").name("dwarfReg").value(loc.dwarfRegNum());
            case DIRECT -> w.name("kind").value("Direct").name("dwarfReg").value(loc.dwarfRegNum()).name("offset").value(loc.offset());
            case INDIRECT -> w.name("kind").value("Indirect").name("dwarfReg").value(loc.dwarfRegNum()).name("offset").value(loc.offset());
            case CONSTANT -> w.name("kind").value("Constant").name("value").value(loc.smallConstant());
            case CONSTANT_INDEX -> w.name("kind").value("ConstantIndex").name("index").value(loc.constantIndex())
                    .name("value").unsignedValue(map.constant(loc.constantIndex()));
        }
        w.name("size").value(loc.sizeInBytes());
        w.endObject();
    }
}
