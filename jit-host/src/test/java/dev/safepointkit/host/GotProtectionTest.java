package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The GOT the host makes for an object is written while linking and then made read-only, as
 * README.md says: a slot that code loads a target from through {@code GOTPCREL} must not be
 * writable once the object is loaded. The slot is found from the code itself, by decoding the
 * relocated rip-relative displacement of each GOT-relative call site.
 */
class GotProtectionTest {
    @Test
    void everyGotSlotHoldsItsTargetAndIsReadOnly() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitFixtures.loadCaller(host, arena);
            int slots = 0;
            // counter through caller.o's GOT (REX_GOTPCRELX), apply through it (GOTPCRELX), data.o's own
            // table through data.o's GOT (GOTPCREL).
            for (String symbol : List.of("counter", "apply", "table")) {
                SymbolInfo info = host.symbol(symbol).orElseThrow();
                long target = info.address();
                for (CallSite site : info.callSites()) {
                    if (site.type() != X86Relocations.R_X86_64_GOTPCREL && site.type() != X86Relocations.R_X86_64_GOTPCRELX
                            && site.type() != X86Relocations.R_X86_64_REX_GOTPCRELX) {
                        continue;
                    }
                    // disp32 = slot - 4 - field address (llc's addend is -4).
                    int disp = MemorySegment.ofAddress(site.address()).reinterpret(4)
                            .get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
                    long slot = site.address() + 4 + disp;
                    assertEquals(target, MemorySegment.ofAddress(slot).reinterpret(8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0),
                            symbol + "'s GOT slot at 0x" + Long.toHexString(slot));
                    String prot = JitFixtures.protectionAt(slot);
                    assertEquals("r--p", prot, symbol + "'s GOT slot at 0x" + Long.toHexString(slot) + " is " + prot);
                    slots++;
                }
            }
            assertEquals(3, slots, "GOT-relative call sites checked: " + slots);
        }
    }
}
