package dev.safepointkit.stress.registry;

import dev.safepointkit.registry.Frame;
import dev.safepointkit.registry.FunctionSpan;
import dev.safepointkit.registry.RegistryException;
import dev.safepointkit.registry.SafepointRegistry;
import dev.safepointkit.stackmap.StackMapFormatException;
import dev.safepointkit.stackmap.StackMapSection;
import dev.safepointkit.stackmap.testing.StackMapBuilder;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Synthetic objects for the registry's stress tests: object {@code i} has code at
 * {@code BASE + i * STRIDE} and {@link #SAFEPOINTS} statepoints, each with one (base, derived)
 * pair at a known slot, so a reader can check every field it sees. Sections are built once and
 * shared: they are immutable.
 */
public final class RegistryFixture {
    public static final long BASE = 0x7000_0000_0000L;
    public static final long STRIDE = 0x1000;
    public static final int SAFEPOINTS = 4;
    /** Large enough for every variant's slots ({@link #slot} + {@link #VARIANT_SLOT}): registration refuses a root past the frame. */
    public static final long FRAME_SIZE = 1024;
    /** Added to the IDs and slots of an object's second version (other code at the same addresses). */
    static final int VARIANT_ID = 1_000_000;
    static final int VARIANT_SLOT = 512;
    private static final StackMapSection[] SECTIONS = new StackMapSection[64];
    private static final StackMapSection[] VARIANTS = new StackMapSection[64];

    static {
        for (int i = 0; i < SECTIONS.length; i++) {
            SECTIONS[i] = build(i, 0);
            VARIANTS[i] = build(i, 1);
        }
    }

    private RegistryFixture() {
    }

    private static StackMapSection build(int object, int variant) {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(codeStart(object), FRAME_SIZE, SAFEPOINTS);
        for (int s = 0; s < SAFEPOINTS; s++) {
            int slot = slot(object, s) + variant * VARIANT_SLOT;
            b.record(id(object, s) + variant * VARIANT_ID, offset(s)).constant(0).constant(0).constant(0).indirect(7, slot)
                    .indirect(7, slot + 8);
        }
        try {
            return StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN);
        } catch (StackMapFormatException e) {
            throw new IllegalStateException(e);
        }
    }

    public static long codeStart(int object) {
        return BASE + object * STRIDE;
    }

    static long offset(int safepoint) {
        return 0x10 + 0x20L * safepoint;
    }

    static long id(int object, int safepoint) {
        return object * 100L + safepoint;
    }

    static int slot(int object, int safepoint) {
        return 16 * (object % 8) + safepoint * 8;
    }

    /** The return address of safepoint {@code s} of object {@code object}. */
    public static long returnAddress(int object, int s) {
        return codeStart(object) + offset(s);
    }

    public static void register(SafepointRegistry registry, int object) {
        try {
            registry.register(object, "object-" + object, codeStart(object), STRIDE, SECTIONS[object],
                    List.of(new FunctionSpan("f" + object, codeStart(object), STRIDE)));
        } catch (RegistryException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Registers the second version of object {@code object}: new code at the same addresses
     * (other IDs and slots), under key {@code key}.
     */
    public static void registerVariant(SafepointRegistry registry, long key, int object) {
        try {
            registry.register(key, "variant-" + object, codeStart(object), STRIDE, VARIANTS[object],
                    List.of(new FunctionSpan("g" + object, codeStart(object), STRIDE)));
        } catch (RegistryException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Looks up safepoint {@code s} at object {@code object}'s addresses: 0 when not found, 1 for
     * the first version's fields, 3 for the second version's (key {@code variantKey}), 2 for
     * anything else.
     */
    public static int lookupEither(SafepointRegistry registry, Frame frame, int object, long variantKey, int s) {
        if (!registry.lookup(returnAddress(object, s), frame)) {
            return 0;
        }
        if (check(frame, object, s)) {
            return 1;
        }
        boolean variant = frame.objectKey() == variantKey
                && frame.safepointId() == id(object, s) + VARIANT_ID
                && frame.returnAddress() == returnAddress(object, s)
                && frame.frameSize() == FRAME_SIZE
                && frame.pairCount() == 1
                && frame.offset(frame.base(0)) == slot(object, s) + VARIANT_SLOT
                && frame.offset(frame.derived(0)) == slot(object, s) + VARIANT_SLOT + 8;
        return variant ? 3 : 2;
    }

    /** Registers object {@code object} with a code range that may overlap: returns whether it took. */
    public static boolean tryRegister(SafepointRegistry registry, int object, long start, long size) {
        try {
            registry.register(object, "object-" + object, start, size, null, List.of());
            return true;
        } catch (RegistryException refused) {
            return false;
        }
    }

    /**
     * Looks up safepoint {@code s} of {@code object}: 0 when not found, 1 when found with every
     * field as registered, 2 when found with any field wrong (a torn or half-published view).
     */
    public static int lookup(SafepointRegistry registry, Frame frame, int object, int s) {
        if (!registry.lookup(returnAddress(object, s), frame)) {
            return 0;
        }
        return check(frame, object, s) ? 1 : 2;
    }

    /** Whether the fields {@code frame} shows are those of safepoint {@code s} of {@code object}. */
    public static boolean check(Frame frame, int object, int s) {
        return frame.objectKey() == object
                && frame.functionStart() == codeStart(object)
                && frame.frameSize() == FRAME_SIZE
                && frame.safepointId() == id(object, s)
                && frame.returnAddress() == returnAddress(object, s)
                && frame.pairCount() == 1
                && frame.offset(frame.base(0)) == slot(object, s)
                && frame.offset(frame.derived(0)) == slot(object, s) + 8;
    }
}
