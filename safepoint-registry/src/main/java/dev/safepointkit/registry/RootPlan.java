package dev.safepointkit.registry;

import dev.safepointkit.stackmap.LocationKind;
import java.util.Arrays;

/**
 * The codec of a safepoint's root plan, built once at registration so that a walk reads a frame's
 * roots as SP offsets with no decoding: its GC-pointer slots, each once, bases (base pointers,
 * then gc-live allocas) apart from derived pointers, each derived one with the index of its base,
 * in the order a walker that added the record's locations one by one would find them.
 *
 * <p>A plan is one {@code long} per safepoint plus its entries in a shared {@code int[]}:
 * <pre>
 *   bit  63      1: planned (0: the walker reads the record's locations itself)
 *   bits 0-31    the first entry in the object's root-slot array
 *   bits 32-46   the base count b: entries [first, first + b) are SP offsets
 *   bits 47-61   the derived count d: then d pairs (SP offset, base index)
 * </pre>
 * A safepoint is planned when every root of it is an SP-relative stack slot (Indirect [RSP + n],
 * gc-live allocas Direct RSP + n), so that equal offsets are equal slots and the deduplication done
 * here is the one the walk would do. Stackmap and patchpoint records are planned with no roots.
 * Anything else (register roots, RBP-relative roots, a pointer derived from a constant, a GC
 * pointer in another kind of location, a slot both base and derived, two bases for one derived
 * slot, more than 2^15 - 1 roots of a kind) stays unplanned: the walker's general path resolves
 * those at each walk, and reports the errors, naming the frame.
 *
 * <p>Stateless; any thread.
 */
final class RootPlan {
    static final long UNPLANNED = 0;
    private static final long PLANNED = 1L << 63;
    private static final int MAX_COUNT = (1 << 15) - 1;
    /** The DWARF number of RSP. */
    static final int RSP = 7;

    private RootPlan() {
    }

    static boolean planned(long plan) {
        return plan < 0;
    }

    static int first(long plan) {
        return (int) plan;
    }

    static int baseCount(long plan) {
        return (int) (plan >>> 32) & MAX_COUNT;
    }

    static int derivedCount(long plan) {
        return (int) (plan >>> 47) & MAX_COUNT;
    }

    /** Builds the plans of an object's safepoints into {@code plans[stride * i + at]} and returns the entries. */
    static int[] build(int safepoints, SafepointKind[] kind, int[] firstLocation, int[] deopt, int[] pairs, int[] allocas,
            byte[] locKind, int[] locRegister, int[] locOffset, long[] plans, int stride, int at) {
        int[] entries = new int[16];
        int used = 0;
        int[] bases = new int[16];
        int[] derived = new int[32];
        for (int i = 0; i < safepoints; i++) {
            int b = 0;
            int d = 0;
            boolean ok = true;
            if (kind[i] == SafepointKind.STATEPOINT) {
                int loc = firstLocation[i] + deopt[i];
                for (int p = 0; p < pairs[i] && ok; p++, loc += 2) {
                    int base = loc;
                    int der = loc + 1;
                    if (isConstant(locKind[base])) {
                        ok = isConstant(locKind[der]);
                        continue;  // a null or constant pointer: nothing to relocate
                    }
                    if (!spSlot(locKind, locRegister, base, LocationKind.INDIRECT)
                            || !spSlot(locKind, locRegister, der, LocationKind.INDIRECT)) {
                        ok = false;
                        break;
                    }
                    if (bases.length < b + 1) {
                        bases = Arrays.copyOf(bases, 2 * bases.length);
                    }
                    int bi = addBase(bases, b, derived, d, locOffset[base]);
                    if (bi == -2) {
                        ok = false;
                        break;
                    }
                    if (bi == b) {
                        b++;
                    } else if (bi < 0) {
                        throw new AssertionError();
                    }
                    if (locOffset[der] != locOffset[base]) {
                        if (derived.length < 2 * d + 2) {
                            derived = Arrays.copyOf(derived, 2 * derived.length);
                        }
                        int added = addDerived(bases, b, derived, d, locOffset[der], bi);
                        if (added < 0) {
                            ok = false;
                            break;
                        }
                        d += added;
                    }
                }
                int loc2 = firstLocation[i] + deopt[i] + 2 * pairs[i];
                for (int a = 0; a < allocas[i] && ok; a++) {
                    if (!spSlot(locKind, locRegister, loc2 + a, LocationKind.DIRECT)) {
                        ok = false;
                        break;
                    }
                    if (bases.length < b + 1) {
                        bases = Arrays.copyOf(bases, 2 * bases.length);
                    }
                    int bi = addBase(bases, b, derived, d, locOffset[loc2 + a]);
                    if (bi == -2) {
                        ok = false;
                    } else if (bi == b) {
                        b++;
                    }
                }
            }
            if (!ok || b > MAX_COUNT || d > MAX_COUNT) {
                plans[stride * i + at] = UNPLANNED;
                continue;
            }
            if (entries.length < used + b + 2 * d) {
                entries = Arrays.copyOf(entries, Math.max(2 * entries.length, used + b + 2 * d));
            }
            plans[stride * i + at] = PLANNED | (long) d << 47 | (long) b << 32 | used;
            System.arraycopy(bases, 0, entries, used, b);
            System.arraycopy(derived, 0, entries, used + b, 2 * d);
            used += b + 2 * d;
        }
        return Arrays.copyOf(entries, used);
    }

    private static boolean isConstant(byte kind) {
        return kind == LocationKind.CONSTANT.code() || kind == LocationKind.CONSTANT_INDEX.code();
    }

    /** Whether {@code location} is of kind {@code wanted} and addressed from RSP: a stack slot at SP + offset. */
    static boolean spSlot(byte[] locKind, int[] locRegister, int location, LocationKind wanted) {
        return locKind[location] == wanted.code() && locRegister[location] == RSP;
    }

    /** A base slot once: its index (b when new), or -2 when it is also a derived slot. */
    private static int addBase(int[] bases, int b, int[] derived, int d, int offset) {
        for (int k = 0; k < d; k++) {
            if (derived[2 * k] == offset) {
                return -2;
            }
        }
        for (int k = 0; k < b; k++) {
            if (bases[k] == offset) {
                return k;
            }
        }
        bases[b] = offset;
        return b;
    }

    /** A derived slot once: 1 when added, 0 when already there with the same base, -1 on a conflict. */
    private static int addDerived(int[] bases, int b, int[] derived, int d, int offset, int base) {
        for (int k = 0; k < b; k++) {
            if (bases[k] == offset) {
                return -1;
            }
        }
        for (int k = 0; k < d; k++) {
            if (derived[2 * k] == offset) {
                return derived[2 * k + 1] == base ? 0 : -1;
            }
        }
        derived[2 * d] = offset;
        derived[2 * d + 1] = base;
        return 1;
    }
}
