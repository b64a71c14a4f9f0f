package dev.safepointkit.roots;

import dev.safepointkit.registry.FunctionSpan;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * For tests that lay out JIT frames by hand: 4 KiB of off-heap memory standing for a stack, a
 * registry for the frames' stack maps, and the reads and writes of its words by address. A fresh
 * set for each test, on the test's thread.
 */
abstract class HandBuiltStack {
    static final long FOREIGN_RETURN = 0x7777_0000L;
    static final long P1 = 0x10_0000L;
    static final long MOVE = 0x100_0000L;

    Arena arena;
    MemorySegment memory;
    SafepointRegistry registry;

    @BeforeEach
    final void allocateStack() {
        arena = Arena.ofConfined();
        memory = arena.allocate(4096, 16);
        registry = new SafepointRegistry();
    }

    @AfterEach
    final void freeStack() {
        arena.close();
    }

    /** Registers {@code builder}'s stack map for 0x100 bytes of code at {@code code}, one function over all of it. */
    void register(long key, String name, long code, StackMapBuilder builder) throws Exception {
        StackMapSection section = StackMapSection.parse(MemorySegment.ofArray(builder.build()), ByteOrder.LITTLE_ENDIAN);
        registry.register(key, name, code, 0x100, section, List.of(new FunctionSpan(name.replace(".o", "_fn"), code, 0x100)));
    }

    long at(long offset) {
        return memory.address() + offset;
    }

    void put(long address, long value) {
        memory.set(ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address(), value);
    }

    long get(long address) {
        return memory.get(ValueLayout.JAVA_LONG_UNALIGNED, address - memory.address());
    }
}
