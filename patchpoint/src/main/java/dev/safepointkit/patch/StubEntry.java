package dev.safepointkit.patch;

import dev.safepointkit.host.JitObject;
import java.util.Optional;

/**
 * One declared function: its stub in a {@link StubBlock}, its compiler and fallback, and its body.
 * The body fields are written under the patcher's lock and read anywhere (volatile).
 */
final class StubEntry implements Stub {
    /** The number its lazy entry passes to the resolver: its index in the stub table. */
    final int id;
    final String name;
    final LazyCompiler compiler;
    final long fallback;
    final StubBlock block;
    final int index;
    volatile long body;
    volatile JitObject bodyObject;

    StubEntry(int id, String name, LazyCompiler compiler, long fallback, StubBlock block, int index) {
        this.id = id;
        this.name = name;
        this.compiler = compiler;
        this.fallback = fallback;
        this.block = block;
        this.index = index;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long address() {
        return block.stubAddress(index);
    }

    long lazyEntry() {
        return block.lazyEntry(index);
    }

    void setTarget(long target) {
        block.setTarget(index, target);
    }

    @Override
    public long target() {
        return block.target(index);
    }

    @Override
    public Optional<Long> body() {
        long b = body;
        return b == 0 ? Optional.empty() : Optional.of(b);
    }

    @Override
    public String toString() {
        return block.isFreed() ? String.format("Stub[%s at 0x%x, freed]", name, address())
                : String.format("Stub[%s at 0x%x -> 0x%x]", name, address(), target());
    }
}
