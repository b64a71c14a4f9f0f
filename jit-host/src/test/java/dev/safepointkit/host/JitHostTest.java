package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.LoadedSection;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Real machine code from the fixtures, loaded, linked and called from Java. */
class JitHostTest {
    private static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
    private static final FunctionDescriptor LONG_2 = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG);
    private static final FunctionDescriptor LONG_3 = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);


    @Test
    void callsFunctionsOfALoadedObject() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofConfined()) {
            JitFixtures.load(host, "math");
            assertEquals(5L, (long) host.downcall("add", LONG_2).invokeExact(2L, 3L));
            assertEquals(6765L, (long) host.downcall("fib", LONG_LONG).invokeExact(20L));
            MemorySegment values = arena.allocateFrom(ValueLayout.JAVA_LONG, 1, 2, 3, 4, 100);
            MethodHandle sum = host.downcall("sum_array",
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            assertEquals(110L, (long) sum.invokeExact(values, 5L));
            // apply calls through a table of function pointers (R_X86_64_64), one of them internal.
            MethodHandle apply = host.downcall("apply", LONG_3);
            assertEquals(12L, (long) apply.invokeExact(0L, 7L, 5L));
            assertEquals(2L, (long) apply.invokeExact(1L, 7L, 5L));
        }
    }

    @Test
    void linksAcrossObjectsToJavaToLibcAndThroughTheGot() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitFixtures.load(host, "math");
            JitObject data = JitFixtures.load(host, "data");
            JitFixtures.defineHostCallback(host, arena);
            JitFixtures.load(host, "caller");

            assertEquals(42L, (long) host.downcall("call_add", LONG_2).invokeExact(2L, 40L));
            long before = JitFixtures.CALLBACKS.get();
            assertEquals(55L + 10_000L, (long) host.downcall("fib_plus_callback", LONG_LONG).invokeExact(10L));
            assertEquals(before + 1, JitFixtures.CALLBACKS.get());
            // strlen from libc on a private string reached PC-relative.
            assertEquals("hello, perf!\n".length(),
                    (long) host.downcall("greeting_length", FunctionDescriptor.of(ValueLayout.JAVA_LONG)).invokeExact());
            // counter lives in data.o and is reached through caller.o's GOT (REX_GOTPCRELX).
            MethodHandle bump = host.downcall("bump_counter", LONG_LONG);
            assertEquals(42L, (long) bump.invokeExact(2L));
            assertEquals(45L, (long) bump.invokeExact(3L));
            long counter = host.address("counter").orElseThrow();
            assertEquals(data.loaded().symbol("counter").orElseThrow().address(), counter);
            assertEquals(45L, MemorySegment.ofAddress(counter).reinterpret(8).get(ValueLayout.JAVA_LONG, 0));
            // data.o reads its own table through a plain R_X86_64_GOTPCREL.
            assertEquals(5L, (long) host.downcall("read_table", LONG_LONG).invokeExact(2L));
            // caller.o calls apply through its GOT entry (R_X86_64_GOTPCRELX).
            assertEquals(3L, (long) host.downcall("apply_through_got", LONG_3).invokeExact(0L, 1L, 2L));
        }
    }

    @Test
    void placesObjectsWith32BitAbsoluteAddressesInTheLow2GiB() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitObject absolute = JitFixtures.load(host, "absolute");
            assertTrue(absolute.mapping().address() + absolute.mapping().byteSize() <= 1L << 31);
            assertEquals(25L, (long) host.downcall("square", LONG_LONG).invokeExact(5L));
            MemorySegment message = (MemorySegment) host.downcall("message_address",
                    FunctionDescriptor.of(ValueLayout.ADDRESS)).invokeExact();
            assertEquals("ok", message.reinterpret(3).getString(0));
            // strlen is in libc, far above 2 GiB: the call goes through a host-made stub.
            long strlen = host.address("strlen").orElseThrow();
            assertTrue(Math.abs(strlen - absolute.mapping().address()) > 1L << 31, "libc is out of rel32 range");
            assertEquals(2L, (long) host.downcall("message_length", FunctionDescriptor.of(ValueLayout.JAVA_LONG)).invokeExact());
            CallSite call = host.symbol("strlen").orElseThrow().callSites().stream()
                    .filter(s -> s.objectKey() == absolute.key()).findFirst().orElseThrow();
            assertTrue(call.viaTrampoline());
            long stub = call.address() + 4 + MemorySegment.ofAddress(call.address()).reinterpret(4)
                    .get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            MemorySegment jump = MemorySegment.ofAddress(stub).reinterpret(14);
            assertEquals(0xFF, Byte.toUnsignedInt(jump.get(ValueLayout.JAVA_BYTE, 0)), "jmp *0(%rip)");
            assertEquals(0x25, Byte.toUnsignedInt(jump.get(ValueLayout.JAVA_BYTE, 1)));
            assertEquals(strlen, jump.get(ValueLayout.JAVA_LONG_UNALIGNED, 6));
            assertEquals("r-xs", JitFixtures.protectionAt(stub), "far-call trampolines live with the code, in its memory file");
        }
    }

    @Test
    void codeIsNeverWritableAndDataNeverExecutable() throws Throwable {
        try (JitHost host = new JitHost()) {
            JitFixtures.load(host, "math");
            JitObject data = JitFixtures.load(host, "data");
            JitObject math = host.objects().getFirst();
            for (JitObject o : new JitObject[] {math, data}) {
                for (LoadedSection s : o.loaded().sections()) {
                    String prot = JitFixtures.protectionAt(s.address());
                    if (s.executable()) {
                        // Shared: the code's memory file, also mapped (read + write only) as its alias.
                        assertEquals("r-xs", prot, s.name());
                    } else if (s.writable()) {
                        assertEquals("rw-p", prot, s.name());
                    } else {
                        assertEquals("r--p", prot, s.name());
                    }
                }
            }
            for (String line : JitFixtures.mappings()) {
                long start = Long.parseUnsignedLong(line.split("-")[0], 16);
                if (start >= math.mapping().address() && start < math.mapping().address() + math.mapping().byteSize()) {
                    assertFalse(line.split("\\s+")[1].startsWith("rwx"), line);
                }
            }
        }
    }

    @Test
    void recordsCallSitesPerSymbol() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitObject caller = JitFixtures.loadCaller(host, arena);
            SymbolInfo add = host.symbol("add").orElseThrow();
            assertEquals(host.objects().getFirst().key(), add.definingObject());
            CallSite site = add.callSites().stream().filter(s -> s.objectKey() == caller.key()).findFirst().orElseThrow();
            assertEquals(".text", site.section());
            assertTrue(site.isBranch());
            // The relocated field is the rel32 of a call or tail jump: decode it.
            MemorySegment code = MemorySegment.ofAddress(site.address() - 1).reinterpret(5);
            int opcode = Byte.toUnsignedInt(code.get(ValueLayout.JAVA_BYTE, 0));
            assertTrue(opcode == 0xE8 || opcode == 0xE9, "call or jmp rel32, found 0x" + Integer.toHexString(opcode));
            long target = site.address() + 4 + code.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 1);
            if (site.viaTrampoline()) {
                // jmp *0(%rip) with the target in the next 8 bytes.
                target = MemorySegment.ofAddress(target + 6).reinterpret(8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            }
            assertEquals(add.address(), target);
            SymbolInfo counter = host.symbol("counter").orElseThrow();
            assertTrue(counter.callSites().stream().anyMatch(s -> s.type() == X86Relocations.R_X86_64_REX_GOTPCRELX));
        }
    }

    @Test
    void theSameCodeLoadedTwiceGetsTheSameBytesAtDifferentAddresses() throws Throwable {
        try (JitHost one = new JitHost(); JitHost two = new JitHost()) {
            JitObject a = JitFixtures.load(one, "math");
            JitObject b = JitFixtures.load(two, "math");
            assertFalse(a.mapping().address() == b.mapping().address());
            byte[] fa = a.functions().stream().filter(f -> f.name().equals("fib")).findFirst().orElseThrow().code()
                    .toArray(ValueLayout.JAVA_BYTE);
            byte[] fb = b.functions().stream().filter(f -> f.name().equals("fib")).findFirst().orElseThrow().code()
                    .toArray(ValueLayout.JAVA_BYTE);
            // fib only calls itself, PC-relative: position-independent bytes.
            assertArrayEquals(fa, fb);
        }
    }

    @Test
    void unloadIsRefusedWhileOthersUseTheObjectUnlessForced() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitObject math = JitFixtures.load(host, "math");
            JitObject data = JitFixtures.load(host, "data");
            JitFixtures.defineHostCallback(host, arena);
            JitObject caller = JitFixtures.load(host, "caller");
            JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(math, false));
            assertTrue(refused.getMessage().contains("caller.o uses 'add'"), refused.getMessage());
            assertTrue(host.address("add").isPresent());

            long liveBefore = JitHost.liveMappings();
            host.unload(caller, false);
            host.unload(math, false);
            // Two objects, each with its code mapped twice (in place, and the writable alias).
            assertEquals(liveBefore - 4, JitHost.liveMappings());
            assertFalse(JitFixtures.anyMappingOverlaps(math.mapping().address(), math.mapping().byteSize()),
                    "math.o's memory is unmapped");
            assertTrue(host.address("add").isEmpty());
            assertTrue(host.symbol("add").isEmpty());
            assertEquals(1, host.objects().size());
            assertThrows(JitLoadException.class, () -> host.unload(math, false), "already unloaded");
            host.unload(data, true);
            assertTrue(host.objects().isEmpty());
            // What listeners were given is scoped to the object: a late access fails cleanly.
            assertThrows(IllegalStateException.class, () -> math.functions().getFirst().code().get(ValueLayout.JAVA_BYTE, 0));
            assertThrows(IllegalStateException.class, () -> data.mapping().get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    /** An upcall that adds its two arguments, counting its calls in {@code calls}: a stand-in for a stub. */
    private static MemorySegment countingAddStub(AtomicLong calls, Arena arena) throws ReflectiveOperationException {
        MethodHandle target = MethodHandles.insertArguments(MethodHandles.lookup().findStatic(JitHostTest.class,
                "countingAdd", MethodType.methodType(long.class, AtomicLong.class, long.class, long.class)), 0, calls);
        return Linker.nativeLinker().upcallStub(target, LONG_2, arena);
    }

    @Test
    void anIndirectSymbolLinksCallersToItsStubWhileObjectsDefineBodies() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            // The "stub" of add is an upcall here: callers must reach it, never a loaded body.
            AtomicLong viaStub = new AtomicLong();
            MemorySegment stub = countingAddStub(viaStub, arena);
            host.defineIndirectSymbol("add", stub);
            assertTrue(host.isIndirect("add"));
            assertThrows(JitLoadException.class, () -> host.defineIndirectSymbol("add", stub), "defined twice");

            JitObject math = JitFixtures.load(host, "math");   // defines add: a body, not a clash
            assertEquals(stub.address(), host.address("add").orElseThrow());
            long body = math.loaded().symbol("add").orElseThrow().address();
            assertFalse(body == stub.address());

            JitFixtures.defineHostCallback(host, arena);
            JitFixtures.load(host, "data");
            JitFixtures.load(host, "caller");
            assertEquals(9L, (long) host.downcall("call_add", LONG_2).invokeExact(4L, 5L));
            assertEquals(1L, viaStub.get(), "the caller went through the stub");
            // References to an indirect symbol are not uses of the object that holds a body.
            JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(math, false));
            assertTrue(refused.getMessage().contains("caller.o uses 'fib'"), refused.getMessage());
            assertFalse(refused.getMessage().contains("'add'"), refused.getMessage());
        }
    }

    @Test
    void undefiningAnIndirectSymbolLetsLaterObjectsLinkToABodyAndRefusesAnyOtherName() throws Throwable {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            AtomicLong viaStub = new AtomicLong();
            MemorySegment stub = countingAddStub(viaStub, arena);
            host.defineIndirectSymbol("add", stub);
            JitFixtures.defineHostCallback(host, arena);
            long callback = host.address("host_callback").orElseThrow();

            IllegalArgumentException notIndirect = assertThrows(IllegalArgumentException.class,
                    () -> host.undefineIndirectSymbol("host_callback"), "a plain runtime symbol is not indirect");
            assertTrue(notIndirect.getMessage().contains("'host_callback'"), notIndirect.getMessage());
            assertEquals(callback, host.address("host_callback").orElseThrow(), "the refused call left the runtime symbol defined");

            host.undefineIndirectSymbol("add");
            assertFalse(host.isIndirect("add"));
            assertTrue(host.address("add").isEmpty(), "the stub is no longer what add resolves to");
            assertThrows(IllegalArgumentException.class, () -> host.undefineIndirectSymbol("add"), "undefined twice");

            JitObject math = JitFixtures.load(host, "math");   // add is an ordinary global again
            long body = math.loaded().symbol("add").orElseThrow().address();
            assertEquals(body, host.address("add").orElseThrow());
            JitFixtures.load(host, "data");
            JitObject caller = JitFixtures.load(host, "caller");
            assertEquals(9L, (long) host.downcall("call_add", LONG_2).invokeExact(4L, 5L));
            assertEquals(0L, viaStub.get(), "an object loaded after the undefine calls the body, not the stub");
            JitLoadException refused = assertThrows(JitLoadException.class, () -> host.unload(math, false));
            assertTrue(refused.getMessage().contains("caller.o uses 'add'"), refused.getMessage());
            host.unload(caller, false);
        }
    }

    @Test
    void whileLoadedRunsTheActionOnlyWhileTheObjectIsLoadedAndHoldsOffItsUnload() throws Throwable {
        try (JitHost host = new JitHost(); JitHost other = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            assertEquals("ran", host.whileLoaded(math, () -> "ran"));
            java.io.IOException own = new java.io.IOException("the action's own failure");
            assertSame(own, assertThrows(java.io.IOException.class, () -> host.whileLoaded(math, () -> {
                throw own;
            })), "the action's exception is passed on unchanged");
            AtomicLong ran = new AtomicLong();
            assertThrows(JitLoadException.class, () -> other.whileLoaded(math, ran::incrementAndGet),
                    "another host did not load it");

            // An unload from another thread waits until the action returns.
            java.util.concurrent.CountDownLatch unloadStarted = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.atomic.AtomicReference<Throwable> unloadFailure = new java.util.concurrent.atomic.AtomicReference<>();
            Thread unloader = new Thread(() -> {
                unloadStarted.countDown();
                try {
                    host.unload(math, false);
                } catch (Throwable t) {
                    unloadFailure.set(t);
                }
            });
            boolean stillLoadedAfterWaiting = host.whileLoaded(math, () -> {
                unloader.start();
                unloadStarted.await();
                unloader.join(300);
                return unloader.isAlive() && host.objects().contains(math) && host.address("add").isPresent();
            });
            unloader.join(10_000);
            assertFalse(unloader.isAlive(), "the unload finishes once the action returned");
            assertEquals(null, unloadFailure.get());
            assertTrue(stillLoadedAfterWaiting, "the object stayed loaded, and its unload waited, while the action ran");
            assertFalse(host.objects().contains(math));

            JitLoadException unloaded = assertThrows(JitLoadException.class, () -> host.whileLoaded(math, ran::incrementAndGet));
            assertTrue(unloaded.getMessage().contains("math.o"), unloaded.getMessage());
            assertEquals(0L, ran.get(), "the action never ran for an object that is not loaded");
        }
    }

    @Test
    void objectKeysAreNeverReusedByAHostNotEvenAfterAnUnloadOrAFailedLoad() throws Throwable {
        try (JitHost host = new JitHost()) {
            java.util.Set<Long> keys = new java.util.HashSet<>();
            JitObject math = JitFixtures.load(host, "math");
            JitObject data = JitFixtures.load(host, "data");
            assertTrue(keys.add(math.key()) && keys.add(data.key()));
            host.unload(math, false);
            assertThrows(JitLoadException.class, () -> host.load("cut.o", MemorySegment.ofArray(new byte[16])));
            JitObject again = JitFixtures.load(host, "math");
            assertTrue(again.key() >= 1);
            assertTrue(keys.add(again.key()), "math.o loaded again got key " + again.key() + ", one used before: " + keys);
            assertEquals(java.util.List.of(data, again), host.objects(), "oldest first, by key");
            assertThrows(JitLoadException.class, () -> host.unload(math, false), "the old handle is not the object loaded again");
            assertTrue(host.objects().contains(again));
        }
    }

    static long countingAdd(AtomicLong calls, long a, long b) {
        calls.incrementAndGet();
        return a + b;
    }
}
