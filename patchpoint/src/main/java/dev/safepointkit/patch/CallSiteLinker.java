package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The call sites of declared functions: which {@code call}/{@code jmp rel32} the host recorded
 * belong to a stub (directly or through a far-call trampoline), where each leads now, and which
 * wait for a safepoint because their rel32 is not 4-byte aligned.
 *
 * <p>Threading: {@link #plan}, {@link SitePlan#apply} and {@link #applyPending} run under the
 * patcher's lock (applyPending also inside a stop); {@link #forget} runs on the host's unloading
 * thread, inside the host's lock, without the patcher's; queries from any thread. The maps are
 * concurrent for that reason; a site's {@code current} is volatile.
 */
final class CallSiteLinker {
    private final JitHost host;
    private final CodeWriter writer;
    /** Whether unaligned sites may wait for a safepoint: the patcher has a coordinator. */
    private final boolean canDefer;
    private final Map<Long, Site> sites = new ConcurrentHashMap<>();
    /** Unaligned sites waiting for a safepoint: site address -> wanted target. */
    private final Map<Long, Long> pending = new ConcurrentHashMap<>();

    CallSiteLinker(JitHost host, CodeWriter writer, boolean canDefer) {
        this.host = host;
        this.writer = writer;
        this.canDefer = canDefer;
    }

    /**
     * What pointing every site of {@code e} that belongs to its stub at {@code target} (or back to
     * the stub when {@code target} is 0) will write. Every site to be rewritten now is checked to
     * hold the bytes the patcher last wrote there, so that {@link SitePlan#apply} cannot be refused
     * half-way by a site someone else changed. Sites of objects being unloaded are dropped: nothing
     * runs them any more. Changes nothing.
     */
    SitePlan plan(StubEntry e, long target) throws PatchException {
        SitePlan plan = new SitePlan();
        List<CallSite> known = host.symbol(e.name).map(s -> s.callSites()).orElse(List.of());
        for (CallSite cs : known) {
            if (!cs.isBranch()) {
                continue;
            }
            Site s = sites.get(cs.address());
            if (s == null) {
                s = discover(cs, e);
                if (s == null) {
                    plan.foreign++;
                    continue;
                }
            }
            long want = target == 0 ? s.home : target;
            long disp = want - (s.address + 4);
            if (disp != (int) disp) {
                want = s.home;
                plan.outOfRange++;
            }
            if (want == s.current) {
                plan.unchanged.add(s);
            } else if (s.aligned()) {
                if (!writer.isLiveCode(s.address - 1, 5)) {
                    plan.unloading.add(s);
                    continue;
                }
                byte[] now = writer.read(s.address - 1, 5);
                if (!Arrays.equals(now, s.bytes(s.current))) {
                    throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written,"
                            + " no site of '%s' changed", s.describe(want), s.address - 1, X86Code.hex(s.bytes(s.current)),
                            X86Code.hex(now), e.name));
                }
                plan.now.put(s, want);
            } else if (canDefer) {
                plan.deferred.put(s, want);
            } else {
                plan.stayOnStub++;
            }
        }
        return plan;
    }

    /** The writes {@link #plan} decided on, applied under the same hold of the patcher's lock. */
    final class SitePlan {
        final Map<Site, Long> now = new LinkedHashMap<>();
        final Map<Site, Long> deferred = new LinkedHashMap<>();
        final List<Site> unchanged = new ArrayList<>();
        final List<Site> unloading = new ArrayList<>();
        int outOfRange;
        int stayOnStub;
        int foreign;

        RelinkReport apply() throws PatchException {
            for (Site s : unloading) {
                sites.remove(s.address);
                pending.remove(s.address);
            }
            for (Site s : unchanged) {
                pending.remove(s.address);
            }
            int patched = 0;
            // The stores owe one core-serializing barrier between them, paid before any code is
            // unmapped or at the next stop: the old targets stay mapped until then.
            for (Map.Entry<Site, Long> w : now.entrySet()) {
                Site s = w.getKey();
                pending.remove(s.address);
                if (rewriteUnlessUnloaded(s, w.getValue())) {
                    patched++;
                }
            }
            for (Map.Entry<Site, Long> d : deferred.entrySet()) {
                pending.put(d.getKey().address, d.getValue());
            }
            return new RelinkReport(patched, deferred.size(), unchanged.size(), outOfRange, stayOnStub, foreign);
        }
    }

    /**
     * Rewrites the sites that wait for a safepoint; the caller has stopped every mutator.
     *
     * @return how many were written
     */
    int applyPending() throws PatchException {
        int n = 0;
        for (Map.Entry<Long, Long> p : new ArrayList<>(pending.entrySet())) {
            Site s = sites.get(p.getKey());
            if (s != null && s.current != p.getValue()) {
                writer.write(s.address - 1, s.bytes(s.current), s.bytes(p.getValue()), false, s.describe(p.getValue()));
                s.current = p.getValue();
                n++;
            }
            pending.remove(p.getKey());
        }
        return n;
    }

    /** Forgets the sites in {@code object}, which the host is unloading. */
    void forget(LoadedObject object) {
        sites.values().removeIf(s -> s.objectKey == object.key());
        pending.keySet().removeIf(a -> !sites.containsKey(a));
    }

    Optional<Long> siteTarget(long siteAddress) {
        Site s = sites.get(siteAddress);
        return s == null ? Optional.empty() : Optional.of(s.current);
    }

    int pendingSites() {
        return pending.size();
    }

    /** Where {@code cs} leads now; a site of the stub if it leads to the stub, directly or through a far-call trampoline. */
    private Site discover(CallSite cs, StubEntry e) throws PatchException {
        if (!writer.isLiveCode(cs.address() - 1, 5)) {
            return null;
        }
        byte[] b = writer.read(cs.address() - 1, 5);
        int opcode = Byte.toUnsignedInt(b[0]);
        if (opcode != X86Code.CALL_REL32 && opcode != X86Code.JMP_REL32) {
            return null;
        }
        long target = cs.address() + 4 + X86Code.getInt(b, 1);
        boolean toStub = target == e.address();
        if (!toStub && cs.viaTrampoline()) {
            // The host's far-call trampoline in the caller's object, which the host decodes.
            toStub = host.farCallTarget(target).orElse(0) == e.address();
        }
        if (!toStub) {
            return null;
        }
        Site s = new Site(cs.address(), cs.objectKey(), e.name, (byte) opcode, target);
        sites.put(s.address, s);
        return s;
    }

    /**
     * An aligned site's atomic rewrite, or nothing if its object started unloading since it was
     * planned (the writer checks that and writes under one lock, which the unload takes too).
     */
    private boolean rewriteUnlessUnloaded(Site s, long want) throws PatchException {
        if (writer.writeUnlessUnloaded(s.address - 1, s.bytes(s.current), s.bytes(want), s.describe(want)) == null) {
            sites.remove(s.address);
            return false;
        }
        s.current = want;
        return true;
    }

    /** A call or jmp rel32 that belongs to a stub; {@code address} is its rel32. */
    private static final class Site {
        final long address;
        final long objectKey;
        final String symbol;
        final byte opcode;
        /** Where it led when the patcher first saw it: the stub, or the far-call trampoline to it. */
        final long home;
        volatile long current;

        Site(long address, long objectKey, String symbol, byte opcode, long home) {
            this.address = address;
            this.objectKey = objectKey;
            this.symbol = symbol;
            this.opcode = opcode;
            this.home = home;
            this.current = home;
        }

        boolean aligned() {
            return address % 4 == 0;
        }

        String describe(long want) {
            return (opcode == (byte) X86Code.CALL_REL32 ? "call" : "jmp") + " to " + symbol
                    + (want == home ? " via its stub" : " direct");
        }

        /** The five bytes of the instruction when it leads to {@code target}. */
        byte[] bytes(long target) {
            byte[] b = new byte[5];
            b[0] = opcode;
            X86Code.putInt(b, 1, (int) (target - (address + 4)));
            return b;
        }
    }
}
