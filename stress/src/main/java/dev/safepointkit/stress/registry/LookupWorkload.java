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
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import org.jctools.maps.NonBlockingHashMapLong;

/**
 * The same safepoints in the registry and in the two map baselines: objects of
 * {@link #PER_OBJECT} statepoints, one (base, derived) pair each, code objects laid out one after
 * the other. Keys for hits are return addresses; keys for misses are addresses inside the code
 * that are not return addresses (the registry finds the object, then misses in its table).
 */
public final class LookupWorkload {
    public static final int PER_OBJECT = 1000;
    static final long BASE = 0x5000_0000_0000L;
    static final long CODE_PER_OBJECT = 0x10000;
    static final long FRAME_SIZE = 56;

    /** What the map baselines store per safepoint: the same facts a Frame gives. */
    public record FrameInfo(long functionStart, long frameSize, long id, int[] slots) {
    }

    private LookupWorkload() {
    }

    public static long codeStart(int object) {
        return BASE + object * CODE_PER_OBJECT;
    }

    static long returnAddress(int object, int safepoint) {
        return codeStart(object) + 0x10 + 0x20L * safepoint;
    }

    public static StackMapSection section(int object) {
        StackMapBuilder b = new StackMapBuilder(ByteOrder.LITTLE_ENDIAN).function(codeStart(object), FRAME_SIZE, PER_OBJECT);
        for (int s = 0; s < PER_OBJECT; s++) {
            b.record((long) object * PER_OBJECT + s, 0x10 + 0x20L * s).constant(0).constant(0).constant(0)
                    .indirect(7, 8).indirect(7, 16);
        }
        try {
            return StackMapSection.parse(MemorySegment.ofArray(b.build()), ByteOrder.LITTLE_ENDIAN);
        } catch (StackMapFormatException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void register(SafepointRegistry registry, int object, StackMapSection section) {
        try {
            registry.register(object, "object-" + object, codeStart(object), CODE_PER_OBJECT, section,
                    List.of(new FunctionSpan("f" + object, codeStart(object), CODE_PER_OBJECT)));
        } catch (RegistryException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void put(Map<Long, FrameInfo> map, int object) {
        for (int s = 0; s < PER_OBJECT; s++) {
            map.put(returnAddress(object, s), info(object, s));
        }
    }

    public static void put(NonBlockingHashMapLong<FrameInfo> map, int object) {
        for (int s = 0; s < PER_OBJECT; s++) {
            map.put(returnAddress(object, s), info(object, s));
        }
    }

    public static void remove(Map<Long, FrameInfo> map, int object) {
        for (int s = 0; s < PER_OBJECT; s++) {
            map.remove(returnAddress(object, s));
        }
    }

    public static void remove(NonBlockingHashMapLong<FrameInfo> map, int object) {
        for (int s = 0; s < PER_OBJECT; s++) {
            map.remove(returnAddress(object, s));
        }
    }

    private static FrameInfo info(int object, int s) {
        return new FrameInfo(codeStart(object), FRAME_SIZE, (long) object * PER_OBJECT + s, new int[] {8, 16});
    }

    /** {@code count} keys over {@code objects} objects: return addresses, or, for misses, addresses next to them. */
    public static long[] keys(int objects, int count, boolean hits, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] keys = new long[count];
        for (int i = 0; i < count; i++) {
            long ra = returnAddress(random.nextInt(objects), random.nextInt(PER_OBJECT));
            keys[i] = hits ? ra : ra + 4;
        }
        return keys;
    }

    /** Builds the registry and both maps with {@code safepoints} safepoints (a multiple of {@link #PER_OBJECT}). */
    public static int objectsFor(int safepoints) {
        return Math.max(1, safepoints / PER_OBJECT);
    }

    public static SafepointRegistry registry(int objects) {
        SafepointRegistry registry = new SafepointRegistry();
        for (int o = 0; o < objects; o++) {
            register(registry, o, section(o));
        }
        return registry;
    }

    public static ConcurrentHashMap<Long, FrameInfo> chm(int objects) {
        ConcurrentHashMap<Long, FrameInfo> map = new ConcurrentHashMap<>();
        for (int o = 0; o < objects; o++) {
            put(map, o);
        }
        return map;
    }

    public static NonBlockingHashMapLong<FrameInfo> nbhml(int objects) {
        NonBlockingHashMapLong<FrameInfo> map = new NonBlockingHashMapLong<>();
        for (int o = 0; o < objects; o++) {
            put(map, o);
        }
        return map;
    }

    /** The lookup a stack walker does: the frame size for a return address, or -1. */
    public static long frameSize(SafepointRegistry registry, Frame frame, long key) {
        return registry.lookup(key, frame) ? frame.frameSize() : -1;
    }
}
