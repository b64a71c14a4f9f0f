package dev.safepointkit.stackmap.testing;

import dev.safepointkit.stackmap.LocationKind;
import dev.safepointkit.stackmap.StackMap;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes stack map sections by hand, in either byte order, for cases LLVM does not produce:
 * repeated pairs, bad counts, unknown kinds. The header counts follow what was added unless set.
 */
public final class StackMapBuilder {
    public record Loc(int kind, int size, int reg, int offset) {
    }

    public static final class Rec {
        final long id;
        final long instructionOffset;
        final List<Loc> locations = new ArrayList<>();
        final List<int[]> liveOuts = new ArrayList<>();
        public Integer numLocationsOverride;
        public Integer numLiveOutsOverride;

        Rec(long id, long instructionOffset) {
            this.id = id;
            this.instructionOffset = instructionOffset;
        }

        public Rec location(LocationKind kind, int size, int reg, int offset) {
            locations.add(new Loc(kind.code(), size, reg, offset));
            return this;
        }

        public Rec rawLocation(int kind, int size, int reg, int offset) {
            locations.add(new Loc(kind, size, reg, offset));
            return this;
        }

        public Rec constant(int value) {
            return location(LocationKind.CONSTANT, 8, 0, value);
        }

        public Rec indirect(int reg, int offset) {
            return location(LocationKind.INDIRECT, 8, reg, offset);
        }

        public Rec direct(int reg, int offset) {
            return location(LocationKind.DIRECT, 8, reg, offset);
        }

        public Rec liveOut(int reg, int size) {
            liveOuts.add(new int[] {reg, size});
            return this;
        }
    }

    private final ByteOrder order;
    private int version = StackMap.VERSION;
    private final List<long[]> functions = new ArrayList<>();
    private final List<Long> constants = new ArrayList<>();
    private final List<Rec> records = new ArrayList<>();
    private Long numFunctions;
    private Long numConstants;
    private Long numRecords;

    public StackMapBuilder(ByteOrder order) {
        this.order = order;
    }

    public StackMapBuilder version(int v) {
        this.version = v;
        return this;
    }

    public StackMapBuilder function(long address, long stackSize, long recordCount) {
        functions.add(new long[] {address, stackSize, recordCount});
        return this;
    }

    public StackMapBuilder constant(long value) {
        constants.add(value);
        return this;
    }

    public Rec record(long id, long instructionOffset) {
        Rec r = new Rec(id, instructionOffset);
        records.add(r);
        return r;
    }

    public StackMapBuilder numFunctions(long n) {
        numFunctions = n;
        return this;
    }

    public StackMapBuilder numConstants(long n) {
        numConstants = n;
        return this;
    }

    public StackMapBuilder numRecords(long n) {
        numRecords = n;
        return this;
    }

    public byte[] build() {
        int size = 16 + 24 * functions.size() + 8 * constants.size();
        for (Rec r : records) {
            size += 24 + 12 * r.locations.size() + 4 * r.liveOuts.size() + 16;
        }
        ByteBuffer b = ByteBuffer.allocate(size).order(order);
        b.put((byte) version).put((byte) 0).putShort((short) 0);
        b.putInt((int) (numFunctions != null ? numFunctions : functions.size()));
        b.putInt((int) (numConstants != null ? numConstants : constants.size()));
        b.putInt((int) (numRecords != null ? numRecords : records.size()));
        for (long[] f : functions) {
            b.putLong(f[0]).putLong(f[1]).putLong(f[2]);
        }
        for (long c : constants) {
            b.putLong(c);
        }
        for (Rec r : records) {
            b.putLong(r.id).putInt((int) r.instructionOffset).putShort((short) 0);
            b.putShort((short) (r.numLocationsOverride != null ? r.numLocationsOverride : r.locations.size()));
            for (Loc l : r.locations) {
                b.put((byte) l.kind()).put((byte) 0).putShort((short) l.size()).putShort((short) l.reg()).putShort((short) 0)
                        .putInt(l.offset());
            }
            pad(b);
            b.putShort((short) 0);
            b.putShort((short) (r.numLiveOutsOverride != null ? r.numLiveOutsOverride : r.liveOuts.size()));
            for (int[] lo : r.liveOuts) {
                b.putShort((short) lo[0]).put((byte) 0).put((byte) lo[1]);
            }
            pad(b);
        }
        byte[] out = new byte[b.position()];
        b.flip().get(out);
        return out;
    }

    private static void pad(ByteBuffer b) {
        while (b.position() % 8 != 0) {
            b.put((byte) 0);
        }
    }

    public static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
