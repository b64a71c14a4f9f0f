package dev.safepointkit.host;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.JitEventDispatcher;
import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.stackmap.CallSiteRecord;
import dev.safepointkit.stackmap.StackMap;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** What listeners hear when real objects are loaded and unloaded. */
class JitEventsTest {

    static void hostPoll() {
    }

    /** Records events in order, and reads each function's code while freeing. */
    static final class Recorder implements JitEventListener {
        final List<String> events = new ArrayList<>();
        final List<EmittedFunction> functions = new ArrayList<>();
        final List<byte[]> codeWhileFreeing = new ArrayList<>();

        @Override
        public void objectLoaded(LoadedObject object) {
            events.add("loaded " + object.name());
        }

        @Override
        public void functionEmitted(EmittedFunction function) {
            events.add("emitted " + function.name());
            functions.add(function);
        }

        @Override
        public void objectFreeing(LoadedObject object) {
            events.add("freeing " + object.name());
            for (EmittedFunction f : functions) {
                if (f.object().key() == object.key()) {
                    // Still mapped during this call: reading must not fault.
                    codeWhileFreeing.add(f.code().toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    private static JitObject loadSafepoints(JitHost host, Arena arena) throws Exception {
        host.defineUpcall("host_poll", MethodHandles.lookup().findStatic(JitEventsTest.class, "hostPoll",
                MethodType.methodType(void.class)), FunctionDescriptor.ofVoid(), arena);
        return JitFixtures.load(host, "safepoints");
    }

    @Test
    void listenersHearLoadedThenEachFunctionThenFreeing() throws Exception {
        Recorder recorder = new Recorder();
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            host.addListener(recorder);
            JitObject object = loadSafepoints(host, arena);
            host.unload(object, false);
            assertEquals(List.of("loaded safepoints.o", "emitted mapped", "emitted polls", "freeing safepoints.o"),
                    recorder.events);
            assertEquals(2, recorder.codeWhileFreeing.size());
            for (int i = 0; i < 2; i++) {
                assertEquals(recorder.functions.get(i).size(), recorder.codeWhileFreeing.get(i).length);
            }
        }
    }

    @Test
    void stackMapLabelsAreFunctionStartPlusInstructionOffset() throws Exception {
        try (JitHost host = new JitHost(); Arena arena = Arena.ofShared()) {
            JitObject object = loadSafepoints(host, arena);
            LoadedObject loaded = object.loaded();
            StackMap map = loaded.stackMaps().orElseThrow().stackMaps().getFirst();
            // The in-memory section was relocated: its function addresses are the functions' addresses.
            for (int f = 0; f < map.functionCount(); f++) {
                long address = map.function(f).functionAddress();
                assertTrue(object.functions().stream().anyMatch(fn -> fn.address() == address));
            }
            EmittedFunction mapped = object.functions().get(0);
            EmittedFunction polls = object.functions().get(1);
            assertEquals("mapped", mapped.name());
            assertEquals(List.of(100L, 101L), mapped.stackMapRecords().stream().map(CallSiteRecord::id).toList());
            assertEquals(mapped.address(), mapped.labels().get("mapped"));
            for (EmittedFunction fn : object.functions()) {
                for (int i = 0; i < fn.stackMapRecords().size(); i++) {
                    CallSiteRecord r = fn.stackMapRecords().get(i);
                    long label = fn.labels().get(EmittedFunction.stackMapLabel(i, r.id()));
                    assertEquals(fn.address() + r.instructionOffset(), label);
                    assertEquals(label, fn.stackMapAddress(i));
                    assertTrue(label > fn.address() && label <= fn.address() + fn.size());
                }
            }
            // The statepoint's label is the return address of its call: a call rel32 ends there,
            // and it leads (directly or through a host stub) to the host_poll upcall.
            long ret = polls.stackMapAddress(0);
            MemorySegment call = MemorySegment.ofAddress(ret - 5).reinterpret(5);
            assertEquals(0xE8, Byte.toUnsignedInt(call.get(ValueLayout.JAVA_BYTE, 0)));
            long target = ret + call.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 1);
            long poll = host.address("host_poll").orElseThrow();
            if (target != poll) {
                MemorySegment stub = MemorySegment.ofAddress(target).reinterpret(14);
                assertEquals(0xFF, Byte.toUnsignedInt(stub.get(ValueLayout.JAVA_BYTE, 0)));
                assertEquals(poll, stub.get(ValueLayout.JAVA_LONG_UNALIGNED, 6));
            }
        }
    }

    @Test
    void aThrowingListenerHarmsNeitherTheOthersNorTheHost() throws Throwable {
        AtomicInteger failures = new AtomicInteger();
        Recorder recorder = new Recorder();
        try (JitHost host = new JitHost()) {
            JitEventDispatcher dispatcher = host.listeners();
            JitEventListener broken = new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    throw new IllegalStateException("broken listener");
                }

                @Override
                public void functionEmitted(EmittedFunction function) {
                    throw new AssertionError("also broken");
                }
            };
            // A dispatcher of our own, to count what the broken listener did.
            JitEventDispatcher counting = new JitEventDispatcher((l, event, t) -> failures.incrementAndGet());
            counting.add(broken);
            counting.add(recorder);
            dispatcher.add(counting);
            JitFixtures.load(host, "math");
            assertEquals(5L, (long) host.downcall("add", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG)).invokeExact(2L, 3L));
            int functions = host.objects().getFirst().functions().size();
            assertEquals(1 + functions, failures.get());
            assertEquals(1 + functions, recorder.events.size());
            assertTrue(dispatcher.remove(counting));
        }
    }

    @Test
    void functionsCarryTheirCodeAndEverySymbolInside() throws Exception {
        try (JitHost host = new JitHost()) {
            JitObject math = JitFixtures.load(host, "math");
            Map<String, EmittedFunction> byName = new java.util.HashMap<>();
            math.functions().forEach(f -> byName.put(f.name(), f));
            assertTrue(byName.keySet().containsAll(List.of("add", "fib", "sum_array", "apply", "sub_wrapped")));
            EmittedFunction add = byName.get("add");
            assertEquals(add.size(), add.code().byteSize());
            assertArrayEquals(MemorySegment.ofAddress(add.address()).reinterpret(add.size()).toArray(ValueLayout.JAVA_BYTE),
                    add.code().toArray(ValueLayout.JAVA_BYTE));
            // A leaf add ends in ret.
            assertEquals(0xC3, Byte.toUnsignedInt(add.code().get(ValueLayout.JAVA_BYTE, add.size() - 1)));
        }
    }

    /** Records "loaded", "emitted NAME" and "freeing"; when required, refuses the function named {@code refuse}. */
    private static JitEventListener recorder(List<String> heard, boolean required, String refuse) {
        return new JitEventListener() {
            @Override
            public boolean required() {
                return required;
            }

            @Override
            public void objectLoaded(LoadedObject object) {
                heard.add("loaded " + object.name());
            }

            @Override
            public void functionEmitted(EmittedFunction function) {
                if (function.name().equals(refuse)) {
                    throw new IllegalStateException("no " + refuse);
                }
            }

            @Override
            public void objectFreeing(LoadedObject object) {
                heard.add("freeing " + object.name());
            }

            @Override
            public String toString() {
                return required ? "the refusing listener" : "an observer";
            }
        };
    }

    @Test
    void aRequiredListenerRefusingAFunctionFailsTheLoadAndEveryListenerForgetsTheObject() throws Exception {
        try (JitHost host = new JitHost()) {
            long mappings = JitHost.liveMappings();
            List<String> heard = new ArrayList<>();
            host.addListener(recorder(heard, false, ""));
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    // Nothing of the object can be found while its listeners decide.
                    heard.add("findable while loading: " + host.address("fib").isPresent() + ", objects " + host.objects().size());
                }
            });
            host.addListener(recorder(heard, true, "fib"));
            JitLoadException e = assertThrows(JitLoadException.class, () -> JitFixtures.load(host, "math"));
            assertEquals("math.o: not loaded, required listener the refusing listener failed in functionEmitted: no fib",
                    e.getMessage());
            assertEquals(mappings, JitHost.liveMappings(), "nothing left mapped");
            assertEquals(List.of(), host.objects());
            assertTrue(host.address("fib").isEmpty() && host.symbol("add").isEmpty(), "nothing published");
            assertEquals(List.of("loaded math.o", "findable while loading: false, objects 0", "loaded math.o",
                    "freeing math.o", "freeing math.o"), heard);
        }
    }

    @Test
    void noThreadFindsTheObjectUntilEveryListenerHasHeardEveryFunction() throws Exception {
        try (JitHost host = new JitHost()) {
            List<String> seen = new ArrayList<>();
            host.addListener(new JitEventListener() {
                @Override
                public void functionEmitted(EmittedFunction function) {
                    // Looked up from another thread, whose lookups take no lock.
                    java.util.concurrent.atomic.AtomicReference<Object> found = new java.util.concurrent.atomic.AtomicReference<>();
                    Thread other = new Thread(() -> {
                        try {
                            found.set(function.name() + ": address " + host.address(function.name()).isPresent()
                                    + ", symbol " + host.symbol(function.name()).isPresent() + ", objects " + host.objects().size());
                        } catch (Throwable t) {
                            found.set(t);
                        }
                    });
                    other.start();
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    seen.add(String.valueOf(found.get()));
                }
            });
            JitObject math = JitFixtures.load(host, "math");
            List<String> expected = new ArrayList<>();
            for (EmittedFunction f : math.functions()) {
                expected.add(f.name() + ": address false, symbol false, objects 0");
            }
            assertEquals(expected, seen, "up to the last function's event, nothing of math.o can be found");
            assertTrue(host.address(math.functions().getLast().name()).isPresent(), "published once the load returns");
        }
    }

    @Test
    void anErrorThrownByAListenerUndoesTheLoadAndIsPassedOn() throws Exception {
        try (JitHost host = new JitHost()) {
            long mappings = JitHost.liveMappings();
            List<String> heard = new ArrayList<>();
            host.addListener(recorder(heard, false, ""));
            host.addListener(new JitEventListener() {
                @Override
                public void objectLoaded(LoadedObject object) {
                    throw new StackOverflowError("deep");
                }
            });
            assertThrows(StackOverflowError.class, () -> JitFixtures.load(host, "math"));
            assertEquals(mappings, JitHost.liveMappings(), "nothing left mapped");
            assertEquals(List.of(), host.objects());
            assertEquals(List.of("loaded math.o", "freeing math.o"), heard, "the observer that heard of it forgets it");
        }
    }
}
