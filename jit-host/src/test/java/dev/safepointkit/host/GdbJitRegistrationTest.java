package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.JitListenerException;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The GDB JIT list as the host keeps it, and the symfiles it hands the debugger. */
class GdbJitRegistrationTest {

    /** The symfile addresses linked now, newest first. */
    private static List<Long> linked() throws JitLoadException {
        List<Long> addresses = new ArrayList<>();
        for (long[] e : GdbJitRegistration.entries()) {
            addresses.add(e[0]);
        }
        return addresses;
    }

    /** The symfile of the entry at the head of the list, parsed. */
    private static ElfFile head() throws Exception {
        long[] e = GdbJitRegistration.entries().getFirst();
        // The entry says how large its symfile is; it stays allocated while the object is loaded.
        return ElfFile.parse(MemorySegment.ofAddress(e[0]).reinterpret(e[1]));
    }

    @Test
    void entriesAreLinkedNewestFirstAndUnlinkedWhereverTheyAre() throws Exception {
        List<Long> before = linked();
        try (JitHost host = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            long mathSymfile = linked().getFirst();
            JitObject data = JitFixtures.load(host, "data");
            long dataSymfile = linked().getFirst();
            JitObject absolute = JitFixtures.load(host, "absolute");
            long absoluteSymfile = linked().getFirst();
            List<Long> three = new ArrayList<>(List.of(absoluteSymfile, dataSymfile, mathSymfile));
            three.addAll(before);
            assertEquals(three, linked());

            host.unload(data, false);   // the middle entry
            assertEquals(concat(List.of(absoluteSymfile, mathSymfile), before), linked());
            host.unload(absolute, false);   // the head
            assertEquals(concat(List.of(mathSymfile), before), linked());
            host.unload(math, false);   // the last one of this host
            assertEquals(before, linked());
        }
    }

    @Test
    void symfileHasEveryLoadedSectionAtItsLoadedAddressAndReadsBack() throws Exception {
        try (JitHost host = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            ElfFile symfile = head();
            ElfFile original = ElfFile.parse(JitFixtures.segment("math"));
            assertEquals(original.sections().size(), symfile.sections().size());
            LoadedObject loaded = math.loaded();
            int placed = 0;
            for (ElfSection s : symfile.sections()) {
                ElfSection o = original.section(s.index());
                assertEquals(o.name(), s.name());
                assertEquals(o.size(), s.size(), s.name());
                if ((s.flags() & ElfSection.SHF_ALLOC) != 0 && s.size() > 0) {
                    LoadedSection where = loaded.section(s.name()).orElseThrow();
                    assertEquals(where.address(), s.address(), s.name() + "'s sh_addr");
                    placed++;
                } else {
                    assertEquals(0, s.address(), s.name() + " is not loaded: sh_addr stays 0");
                }
                // Bytes are the object's own: the debugger relocates what the host did not place.
                assertEquals(-1, original.contents(o).mismatch(symfile.contents(s)), s.name() + "'s bytes");
            }
            assertTrue(placed >= 2, "math.o has .text and .eh_frame at least: " + placed);
            assertTrue(loaded.section(".eh_frame").isPresent());
            // Each function's section address plus its section-relative st_value is where it runs.
            int functions = 0;
            for (ElfSymbol sym : symfile.symbols()) {
                if (sym.isFunction() && !sym.isUndefined()) {
                    LoadedSymbol l = loaded.symbol(sym.name()).orElseThrow();
                    assertEquals(l.address(), symfile.section(sym.sectionIndex()).address() + sym.value(), sym.name());
                    functions++;
                }
            }
            assertTrue(loaded.symbol("fib").isPresent() && functions >= 3, "functions checked: " + functions);
        }
    }

    @Test
    void aLoadThatAListenerRefusesLeavesNoEntry() throws Exception {
        List<Long> before = linked();
        try (JitHost host = new JitHost()) {
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    throw new IllegalStateException("refused");
                }

                @Override
                public boolean required() {
                    return true;
                }
            });
            JitLoadException e = assertThrows(JitLoadException.class, () -> JitFixtures.load(host, "math"));
            assertTrue(e.getCause() instanceof JitListenerException, e.toString());
            assertEquals(before, linked());
            assertFalse(host.address("fib").isPresent());
        }
    }

    private static List<Long> concat(List<Long> a, List<Long> b) {
        List<Long> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }
}
