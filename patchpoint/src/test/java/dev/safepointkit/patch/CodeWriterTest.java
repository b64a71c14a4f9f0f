package dev.safepointkit.patch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import org.junit.jupiter.api.Test;

/** The writer's batches of call sites, on lazy_caller.o linked straight to g_v1.o (no patcher). */
class CodeWriterTest {

    @Test
    void aSiteOfAnObjectBeingUnloadedIsLeftAloneAndOtherWritesThereAreRefused() throws Exception {
        try (JitHost host = new JitHost()) {
            PatchFixtures.load(host, "g_v1");
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            CodeWriter writer = new CodeWriter(host.codeAliases());
            writer.objectLoaded(caller.loaded());
            CallSite cs = host.symbol("g").orElseThrow().callSites().stream()
                    .filter(s -> s.objectKey() == caller.key() && s.isBranch() && s.address() % 4 == 0)
                    .findFirst().orElseThrow();
            byte opcode = PatchFixtures.read(cs.address() - 1, 1)[0];
            CodeWriter.BranchSite[] site = {new CodeWriter.BranchSite(cs.address(), caller.key(), opcode) {
                @Override
                public String describe(long target) {
                    return "test site to 0x" + Long.toHexString(target);
                }
            }};
            long g = PatchFixtures.branchTarget(cs.address());
            long other = host.address("g_static").orElseThrow();
            boolean[] unloading = new boolean[1];

            writer.writeBranches(site, new long[] {g}, new long[] {other}, 1, true, unloading);
            assertFalse(unloading[0]);
            assertEquals(other, PatchFixtures.branchTarget(cs.address()));
            assertTrue(writer.barrierOwed(), "a batch while threads run owes its barrier");
            assertEquals("test site to 0x" + Long.toHexString(other), writer.log().getLast().what());

            // The unload has begun: the host's listener told the writer, the code is still mapped.
            writer.objectFreeing(caller.loaded());
            assertFalse(writer.barrierOwed(), "paid before the code goes");
            writer.writeBranches(site, new long[] {other}, new long[] {g}, 1, true, unloading);
            assertTrue(unloading[0], "left alone: its object is being unloaded");
            assertEquals(other, PatchFixtures.branchTarget(cs.address()), "nothing written");
            byte[] now = PatchFixtures.read(cs.address() - 1, 5);
            assertThrows(PatchException.class, () -> writer.write(cs.address() - 1, now, now.clone(), false, "test"));
            assertThrows(PatchException.class, () -> writer.read(cs.address() - 1, 5));
            assertEquals(1, writer.patches());
        }
    }

    @Test
    void aBatchWithASiteThatHoldsOtherBytesWritesNone() throws Exception {
        try (JitHost host = new JitHost()) {
            PatchFixtures.load(host, "g_v1");
            JitObject caller = PatchFixtures.load(host, "lazy_caller");
            CodeWriter writer = new CodeWriter(host.codeAliases());
            writer.objectLoaded(caller.loaded());
            CodeWriter.BranchSite[] sites = host.symbol("g").orElseThrow().callSites().stream()
                    .filter(s -> s.objectKey() == caller.key() && s.isBranch())
                    .map(s -> new CodeWriter.BranchSite(s.address(), caller.key(), PatchFixtures.read(s.address() - 1, 1)[0]) {
                        @Override
                        public String describe(long target) {
                            return "site";
                        }
                    }).toArray(CodeWriter.BranchSite[]::new);
            assertEquals(5, sites.length);
            long g = PatchFixtures.branchTarget(sites[0].address);
            long other = host.address("g_static").orElseThrow();
            long[] from = {g, g, g, other, g};   // the fourth is not where it is said to be
            long[] to = {other, other, other, other, other};
            PatchException refused = assertThrows(PatchException.class,
                    () -> writer.writeBranches(sites, from, to, 5, false, new boolean[5]));
            assertTrue(refused.getMessage().contains("nothing written"), refused.getMessage());
            for (CodeWriter.BranchSite s : sites) {
                assertEquals(g, PatchFixtures.branchTarget(s.address), "no site written, not even the first three");
            }
            assertEquals(0, writer.patches());
            assertThrows(IllegalArgumentException.class,
                    () -> writer.writeBranches(sites, new long[] {g, g, g, g, g}, to, 5, true, new boolean[5]),
                    "an unaligned site while threads run");
        }
    }
}
