package dev.safepointkit.stackmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import dev.safepointkit.stackmap.testing.Fixtures;
import dev.safepointkit.stackmap.testing.ReadobjListing;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The parser reads every committed fixture exactly as llvm-readobj-19 did. */
class FixtureAgreementTest {
    private static final Pattern REGISTER = Pattern.compile("Register R#(\\d+), size: (\\d+)");
    private static final Pattern DIRECT = Pattern.compile("Direct R#(\\d+) \\+ (-?\\d+), size: (\\d+)");
    private static final Pattern INDIRECT = Pattern.compile("Indirect \\[R#(\\d+) \\+ (-?\\d+)\\], size: (\\d+)");
    private static final Pattern CONSTANT = Pattern.compile("Constant (\\d+), size: (\\d+)");
    private static final Pattern CONSTANT_INDEX = Pattern.compile("ConstantIndex #(\\d+) \\((\\d+)\\), size: (\\d+)");

    static Stream<Path> objects() {
        return Fixtures.objects().stream();
    }

    @ParameterizedTest
    @MethodSource("objects")
    void firstStackMapAgreesFieldByFieldWithLlvmReadobj(Path object) throws Exception {
        ReadobjListing expected = ReadobjListing.parse(Fixtures.expectedListing(object));
        try (Arena arena = Arena.ofConfined()) {
            ElfFile elf = ElfFile.parse(Fixtures.map(Fixtures.stackMapFixtures().resolve(object), arena));
            assertEquals(expected.format(), elf.formatName());
            assertEquals(expected.arch(), elf.archName());
            assertEquals(expected.loadName(), elf.soname().orElse("<Not found>"));
            StackMap map = ObjectStackMaps.read(elf).orElseThrow().stackMaps().stackMaps().getFirst();
            assertEquals(expected.version(), map.version());

            assertEquals(expected.functions().size(), map.functionCount(), "functions");
            for (int f = 0; f < map.functionCount(); f++) {
                FunctionRecord fn = map.function(f);
                ReadobjListing.Function want = expected.functions().get(f);
                assertEquals(want.address(), Long.toUnsignedString(fn.functionAddress()), "function " + f + " address");
                assertEquals(want.stackSize(), Long.toUnsignedString(fn.stackSize()), "function " + f + " stack size");
                assertEquals(want.recordCount(), Integer.toString(fn.recordCount()), "function " + f + " records");
            }

            assertEquals(expected.constants().size(), map.constantCount(), "constants");
            for (int c = 0; c < map.constantCount(); c++) {
                assertEquals(expected.constants().get(c), Long.toUnsignedString(map.constant(c)), "constant " + c);
            }

            assertEquals(expected.records().size(), map.recordCount(), "records");
            for (int r = 0; r < map.recordCount(); r++) {
                CallSiteRecord record = map.record(r);
                ReadobjListing.Record want = expected.records().get(r);
                String where = object + " record " + r;
                assertEquals(want.id(), Long.toUnsignedString(record.id()), where + " id");
                assertEquals(want.instructionOffset(), Long.toString(record.instructionOffset()), where + " offset");
                assertEquals(want.locations().size(), record.locationCount(), where + " locations");
                for (int l = 0; l < record.locationCount(); l++) {
                    assertLocation(want.locations().get(l), record.location(l), map, where + " location " + l);
                }
                List<String> liveOuts = new ArrayList<>();
                for (int l = 0; l < record.liveOutCount(); l++) {
                    liveOuts.add(record.liveOut(l).dwarfRegNum() + ":" + record.liveOut(l).sizeInBytes());
                }
                assertEquals(want.liveOuts(), liveOuts, where + " live-outs");
            }
        }
    }

    private static void assertLocation(String listed, Location actual, StackMap map, String where) {
        Matcher m;
        if ((m = REGISTER.matcher(listed)).matches()) {
            assertEquals(LocationKind.REGISTER, actual.kind(), where);
            assertEquals(Integer.parseInt(m.group(1)), actual.dwarfRegNum(), where);
            assertEquals(Integer.parseInt(m.group(2)), actual.sizeInBytes(), where);
        } else if ((m = DIRECT.matcher(listed)).matches() || (m = INDIRECT.matcher(listed)).matches()) {
            assertEquals(listed.startsWith("Direct") ? LocationKind.DIRECT : LocationKind.INDIRECT, actual.kind(), where);
            assertEquals(Integer.parseInt(m.group(1)), actual.dwarfRegNum(), where);
            assertEquals(Integer.parseInt(m.group(2)), actual.offset(), where);
            assertEquals(Integer.parseInt(m.group(3)), actual.sizeInBytes(), where);
        } else if ((m = CONSTANT.matcher(listed)).matches()) {
            assertEquals(LocationKind.CONSTANT, actual.kind(), where);
            assertEquals(Long.parseLong(m.group(1)), actual.rawConstantField(), where);
            assertEquals((int) Long.parseLong(m.group(1)), (int) actual.constantValue(), where + " sign-extended value");
            assertEquals(Integer.parseInt(m.group(2)), actual.sizeInBytes(), where);
        } else if ((m = CONSTANT_INDEX.matcher(listed)).matches()) {
            assertEquals(LocationKind.CONSTANT_INDEX, actual.kind(), where);
            assertEquals(Integer.parseInt(m.group(1)), actual.constantIndex(), where);
            assertEquals(m.group(2), Long.toUnsignedString(actual.constantValue()), where);
            assertEquals(m.group(2), Long.toUnsignedString(map.constant(actual.constantIndex())), where);
            assertEquals(Integer.parseInt(m.group(3)), actual.sizeInBytes(), where);
        } else {
            throw new AssertionError(where + ": listing has an unknown location form: " + listed);
        }
    }

    @ParameterizedTest
    @MethodSource("objects")
    void functionRecordsNameTheSourceFunctionsInOrder(Path object) throws Exception {
        String name = object.getFileName().toString();
        List<String> expected = new ArrayList<>();
        if (name.equals("libpair.so")) {
            expected.addAll(Fixtures.definedFunctions("stackmaps.ll"));
            expected.addAll(Fixtures.definedFunctions("statepoints.ll"));
        } else {
            expected.addAll(Fixtures.definedFunctions(name.replaceFirst("(-gcregs)?\\.o$", ".ll")));
        }
        try (Arena arena = Arena.ofConfined()) {
            ObjectStackMaps maps = ObjectStackMaps.read(ElfFile.parse(
                    Fixtures.map(Fixtures.stackMapFixtures().resolve(object), arena))).orElseThrow();
            List<String> names = maps.functionSymbols().stream().map(ElfSymbol::name).toList();
            assertEquals(expected, names);
            assertTrue(maps.functionSymbols().stream().allMatch(ElfSymbol::isFunction));
        }
    }
}
