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

/**
 * One host and patcher for the patching jcstress tests, shared by every state of a run (loading
 * code per state would dwarf the race): g declared, with two loaded bodies (g_v1: 2x, g_v2: 3x),
 * and lazy_caller.o, whose f2 calls g from a 4-byte aligned rel32. Lives until the JVM exits.
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
            JitObject v2 = load(host, "g_v2");
            load(host, "lazy_caller");
            patcher.compile("g");
            MethodHandle callStub = Linker.nativeLinker().downcallHandle(MemorySegment.ofAddress(g.address()), LONG_LONG);
            return new PatchRaceFixture(patcher, g, first[0], v2, callStub, host.downcall("f2", LONG_LONG));
        } catch (Exception e) {
            throw new IllegalStateException("setting up the patching race fixture", e);
        }
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
