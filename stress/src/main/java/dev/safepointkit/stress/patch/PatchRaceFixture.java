package dev.safepointkit.stress.patch;

import dev.safepointkit.host.JitHost;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.patch.CodePatcher;
import dev.safepointkit.patch.Stub;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * One host and patcher for the patching jcstress tests, shared by every state of a run (loading
 * code per state would dwarf the race): g declared, with two loaded bodies (g_v1: 2x, g_v2: 3x),
 * and lazy_caller.o, whose f2 calls g from a 4-byte aligned rel32. Lives until the JVM exits.
 *
 * <p>The two bodies' addresses differ in both 32-bit halves, so a stub slot store that tore
 * (one half old, the other new) would hold neither body: g_v2 is loaded below a 4 GiB
 * reservation of address space, made as often as needed until its high half differs.
 */
final class PatchRaceFixture {
    static final FunctionDescriptor LONG_LONG = FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
    static final PatchRaceFixture INSTANCE = create();

    final CodePatcher patcher;
    final Stub g;
    final JitObject v1;
    final JitObject v2;
    /** Calls g's stub itself: {@code jmp *slot(%rip)} to whichever body the slot holds. */
    final MethodHandle callStub;
    /** f2(x) = g(x) + 1, through its aligned call site of g. */
    final MethodHandle f2;

    private PatchRaceFixture(CodePatcher patcher, Stub g, JitObject v1, JitObject v2, MethodHandle callStub, MethodHandle f2) {
        this.patcher = patcher;
        this.g = g;
        this.v1 = v1;
        this.v2 = v2;
        this.callStub = callStub;
        this.f2 = f2;
    }

    private static PatchRaceFixture create() {
        try {
            JitHost host = new JitHost();
            CodePatcher patcher = new CodePatcher(host);
            JitObject[] first = new JitObject[1];
            Stub g = patcher.declare("g", fn -> first[0]);
            first[0] = load(host, "g_v1");
            JitObject v2 = loadFarFrom(host, "g_v2", first[0]);
            load(host, "lazy_caller");
            patcher.compile("g");
            MethodHandle callStub = Linker.nativeLinker().downcallHandle(MemorySegment.ofAddress(g.address()), LONG_LONG);
            return new PatchRaceFixture(patcher, g, first[0], v2, callStub, host.downcall("f2", LONG_LONG));
        } catch (Throwable e) {
            throw new IllegalStateException("setting up the patching race fixture", e);
        }
    }

    /**
     * Loads {@code name} so that its g differs from {@code near}'s g in both 32-bit halves. The
     * host maps where the kernel chooses, top down into the highest hole that fits, and the holes
     * near {@code near} would take it: so 4 GiB of address space is reserved below everything,
     * and every hole above that reservation is filled with an inaccessible mapping (all kept
     * until the JVM exits) before the load.
     */
    private static JitObject loadFarFrom(JitHost host, String name, JitObject near) throws Throwable {
        long g = gOf(near);
        Linker linker = Linker.nativeLinker();
        MethodHandle mmap = linker.downcallHandle(linker.defaultLookup().findOrThrow("mmap"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        int prot = 0;                                        // PROT_NONE: address space only
        int flags = 0x02 | 0x20 | 0x4000;                    // MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        int noReplace = flags | 0x100000;                    // | MAP_FIXED_NOREPLACE
        for (int tries = 0; tries < 4; tries++) {
            long reserved = (long) mmap.invokeExact(0L, 4L << 30, prot, flags, -1, 0L);
            if (reserved == -1) {
                throw new IllegalStateException("could not reserve 4 GiB of address space");
            }
            List<String> maps = Files.readAllLines(Path.of("/proc/self/maps"));
            for (int i = 0; i + 1 < maps.size(); i++) {
                long hole = Long.parseUnsignedLong(maps.get(i).substring(maps.get(i).indexOf('-') + 1, maps.get(i).indexOf(' ')), 16);
                long next = Long.parseUnsignedLong(maps.get(i + 1).substring(0, maps.get(i + 1).indexOf('-')), 16);
                // Holes above the reservation, not the stack's room to grow nor the kernel's pages.
                if (hole >= reserved && next > hole && !maps.get(i + 1).endsWith("[stack]") && next < 1L << 47) {
                    // A hole that something mapped meanwhile is refused (EEXIST): nothing to fill.
                    long ignored = (long) mmap.invokeExact(hole, next - hole, prot, noReplace, -1, 0L);
                }
            }
            JitObject o = load(host, name);
            long other = gOf(o);
            if (g >>> 32 != other >>> 32 && (int) g != (int) other) {
                return o;
            }
        }
        throw new IllegalStateException("no load of " + name + " put its g 4 GiB away from 0x" + Long.toHexString(g));
    }

    static long gOf(JitObject o) {
        return o.loaded().symbol("g").orElseThrow().address();
    }

    private static JitObject load(JitHost host, String name) throws Exception {
        return host.load(name + ".o", MemorySegment.ofArray(Files.readAllBytes(root().resolve("fixtures/patch/x86_64/" + name + ".o"))));
    }

    /** The project root: jcstress runs its forks in a directory under stress/target. */
    private static Path root() {
        String property = System.getProperty("safepointkit.root");
        if (property != null) {
            return Path.of(property);
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("fixtures/patch/x86_64"))) {
                return p;
            }
        }
        throw new UncheckedIOException(new IOException("no fixtures/patch/x86_64 above " + Path.of("").toAbsolutePath()));
    }
}
