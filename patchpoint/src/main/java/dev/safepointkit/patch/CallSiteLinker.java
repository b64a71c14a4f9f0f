package dev.safepointkit.patch;

import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.CallSite;
import dev.safepointkit.host.JitHost;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The call sites of declared functions: which {@code call}/{@code jmp rel32} the host recorded
 * belong to a stub (directly or through a far-call trampoline), where each leads now, and which
 * wait for a safepoint because their rel32 is not 4-byte aligned.
 *
 * <p>The sites of one function are kept together ({@link Group}), found once for each version of
 * the host's list of the function's call sites, so a relink walks an array and hands all its
 * writes to the {@link CodeWriter} at once: one check of every site and one batch of stores, each
 * under one hold of the writer's lock.
 *
 * <p>Threading: {@link #plan}, {@link SitePlan#apply} and {@link #applyPending} run under the
 * patcher's lock (applyPending also inside a stop); {@link #forget} runs on the host's unloading
 * thread, inside the host's lock, without the patcher's; queries from any thread. The maps are
 * concurrent for that reason; a site's {@code current}, {@code pendingTarget} and
 * {@code forgotten} are volatile, written under the patcher's lock except {@code forgotten}.
 */
final class CallSiteLinker {
    private final JitHost host;
    private final CodeWriter writer;
    /** Whether unaligned sites may wait for a safepoint: the patcher has a coordinator. */
    private final boolean canDefer;
    /** Every site found, by the address of its rel32. */
    private final Map<Long, Site> sites = new ConcurrentHashMap<>();
    /** The sites of each declared function, by name. */
    private final Map<String, Group> groups = new ConcurrentHashMap<>();
    /**
     * The waiting site found changed by someone else, and the bytes found there, when a stop last
     * reported it: reported once, not at every stop while it stays so. Under the patcher's lock.
     */
    private String reportedChange;
    /** The functions that have sites waiting for a safepoint (or had, until the next one). */
    private final Set<String> waitingFunctions = ConcurrentHashMap.newKeySet();

    CallSiteLinker(JitHost host, CodeWriter writer, boolean canDefer) {
        this.host = host;
        this.writer = writer;
        this.canDefer = canDefer;
    }

    /**
     * The sites of one function as found in one version of the host's list of its call sites
     * ({@code source}, compared by identity: the host replaces the list whenever an object that
     * calls the function is loaded or unloaded). Immutable once made.
     */
    private record Group(List<CallSite> source, Site[] sites, int foreign, boolean complete) {
    }

    /**
     * What pointing every site of {@code e} that belongs to its stub at {@code target} (or back to
     * the stub when {@code target} is 0) will write. Every site to be rewritten now is checked to
     * hold the bytes the patcher last wrote there, so that {@link SitePlan#apply} cannot be refused
     * half-way by a site someone else changed. Sites of objects being unloaded are dropped: nothing
     * runs them any more. Changes nothing.
     */
    SitePlan plan(StubEntry e, long target) throws PatchException {
        Group g = group(e);
        SitePlan plan = new SitePlan(e.name, g.sites.length);
        plan.foreign = g.foreign;
        for (Site s : g.sites) {
            long want = target == 0 ? s.home : target;
            long disp = want - (s.address + 4);
            if (disp != (int) disp) {
                want = s.home;
                plan.outOfRange++;
            }
            long current = s.current;
            if (want == current) {
                plan.unchanged.add(s);
            } else if (s.aligned()) {
                plan.now[plan.nowCount] = s;
                plan.nowFrom[plan.nowCount] = current;
                plan.nowTo[plan.nowCount] = want;
                plan.nowCount++;
            } else if (canDefer) {
                plan.deferred[plan.deferredCount] = s;
                plan.deferredTo[plan.deferredCount] = want;
                plan.deferredCount++;
            } else {
                plan.stayOnStub++;
            }
        }
        plan.unloading = new boolean[plan.nowCount];
        int wrong = writer.checkBranches(plan.now, plan.nowFrom, plan.nowCount, plan.unloading);
        if (wrong >= 0) {
            Site s = plan.now[wrong];
            byte[] expected = s.bytes(plan.nowFrom[wrong]);
            byte[] found = writer.read(s.address - 1, 5);
            throw new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written,"
                    + " no site of '%s' changed", s.describe(plan.nowTo[wrong]), s.address - 1, X86Code.hex(expected),
                    X86Code.hex(found), e.name));
        }
        return plan;
    }

    /** {@code e}'s sites, found again only when the host's list of them has changed. */
    private Group group(StubEntry e) throws PatchException {
        List<CallSite> known = host.symbol(e.name).map(s -> s.callSites()).orElse(List.of());
        Group g = groups.get(e.name);
        if (g != null && g.complete && (g.source == known || g.source.equals(known))) {
            return g;
        }
        List<Site> found = new ArrayList<>(known.size());
        int foreign = 0;
        boolean complete = true;
        for (CallSite cs : known) {
            if (!cs.isBranch()) {
                continue;
            }
            Site s = sites.get(cs.address());
            if (s == null) {
                if (!writer.isLiveCode(cs.address() - 1, 5)) {
                    // Not (or no longer) loaded code: not counted, and looked at again next time.
                    complete = false;
                    foreign++;
                    continue;
                }
                s = discover(cs, e);
                if (s == null) {
                    foreign++;
                    continue;
                }
            }
            found.add(s);
        }
        g = new Group(known, found.toArray(Site[]::new), foreign, complete);
        groups.put(e.name, g);
        return g;
    }

    /** The writes {@link #plan} decided on, applied under the same hold of the patcher's lock. */
    final class SitePlan {
        final String function;
        /** The aligned sites written now, [0, nowCount), from and to those targets. */
        final Site[] now;
        final long[] nowFrom;
        final long[] nowTo;
        int nowCount;
        /** Set by the writer's check: the site's object is being unloaded. */
        boolean[] unloading;
        /** The unaligned sites that wait for a safepoint, [0, deferredCount), and their targets. */
        final Site[] deferred;
        final long[] deferredTo;
        int deferredCount;
        final List<Site> unchanged = new ArrayList<>();
        int outOfRange;
        int stayOnStub;
        int foreign;

        SitePlan(String function, int sites) {
            this.function = function;
            now = new Site[sites];
            nowFrom = new long[sites];
            nowTo = new long[sites];
            deferred = new Site[sites];
            deferredTo = new long[sites];
        }

        RelinkReport apply() throws PatchException {
            for (Site s : unchanged) {
                s.setPendingTarget(0);
            }
            // The stores owe one core-serializing barrier between them, paid before any code is
            // unmapped or at the next stop: the old targets stay mapped until then. The writer
            // checks every site again and writes all or none; a site whose object started
            // unloading since the plan (or before it) is left alone, and flagged in unloading.
            writer.writeBranches(now, nowFrom, nowTo, nowCount, true, unloading);
            int patched = 0;
            for (int i = 0; i < nowCount; i++) {
                Site s = now[i];
                if (unloading[i]) {
                    drop(s);
                    continue;
                }
                s.setPendingTarget(0);
                s.setCurrent(nowTo[i]);
                patched++;
            }
            if (deferredCount > 0) {
                waitingFunctions.add(function);
            }
            for (int i = 0; i < deferredCount; i++) {
                deferred[i].setPendingTarget(deferredTo[i]);
            }
            return new RelinkReport(patched, deferredCount, unchanged.size(), outOfRange, stayOnStub, foreign);
        }
    }

    /** A site whose object is being unloaded: nothing runs it any more. */
    private void drop(Site s) {
        s.forgotten = true;
        s.setPendingTarget(0);
        sites.remove(s.address);
    }

    /**
     * Rewrites the sites that wait for a safepoint, all or nothing; the caller has stopped every
     * mutator. When a waiting site is not as the patcher left it (someone else wrote there),
     * nothing is written and every site still waits; that is reported in {@code refused} once (not
     * again at later stops while the same bytes are found), and every address a waiting site leads
     * to now, as the patcher left it or as its bytes say, goes into {@code pinned}: the stop's
     * other work goes on, but code there must stay loaded.
     *
     * @param refused gets the report of a changed site, the first time it is found so
     * @param pinned gets the addresses the unwritten waiting sites lead to
     * @return how many were written
     */
    int applyPending(List<PatchException> refused, List<Long> pinned) throws PatchException {
        List<Site> waiting = new ArrayList<>();
        List<String> functions = List.copyOf(waitingFunctions);
        for (String f : functions) {
            Group g = groups.get(f);
            for (Site s : g == null ? new Site[0] : g.sites) {
                if (s.pendingTarget != 0) {
                    waiting.add(s);
                }
            }
        }
        int n = 0;
        Site[] write = new Site[waiting.size()];
        long[] from = new long[write.length];
        long[] to = new long[write.length];
        for (Site s : waiting) {
            long want = s.pendingTarget;
            if (!s.forgotten && s.current != want) {
                write[n] = s;
                from[n] = s.current;
                to[n] = want;
                n++;
            }
        }
        boolean[] skipped = new boolean[n];
        int wrong = writer.checkBranches(write, from, n, skipped);
        if (wrong >= 0) {
            Site s = write[wrong];
            byte[] found = writer.read(s.address - 1, 5);
            String change = s.address + ":" + X86Code.hex(found);
            if (!change.equals(reportedChange)) {
                reportedChange = change;
                refused.add(new PatchException(String.format("%s at 0x%x: expected [%s], found [%s]; nothing written,"
                        + " every waiting site still waits, and what they lead to stays loaded",
                        s.describe(to[wrong]), s.address - 1, X86Code.hex(s.bytes(from[wrong])), X86Code.hex(found))));
            }
            for (int i = 0; i < n; i++) {
                pinned.add(from[i]);
                leadsTo(write[i]).ifPresent(pinned::add);
            }
            return 0;
        }
        reportedChange = null;
        writer.writeBranches(write, from, to, n, false, skipped);
        int written = 0;
        for (int i = 0; i < n; i++) {
            if (!skipped[i]) {
                write[i].setCurrent(to[i]);
                written++;
            }
        }
        for (Site s : waiting) {
            s.setPendingTarget(0);
        }
        functions.forEach(waitingFunctions::remove);
        return written;
    }

    /** Where the branch at {@code s} leads by its bytes now (past a far-call trampoline); empty if it is none. */
    private Optional<Long> leadsTo(Site s) {
        try {
            byte[] b = writer.read(s.address - 1, 5);
            int opcode = Byte.toUnsignedInt(b[0]);
            if (opcode != X86Code.CALL_REL32 && opcode != X86Code.JMP_REL32) {
                return Optional.empty();
            }
            long target = s.address + 4 + X86Code.getInt(b, 1);
            return Optional.of(host.farCallTarget(target).orElse(target));
        } catch (PatchException gone) {
            return Optional.empty();   // its object is being unloaded: it leads nowhere any more
        }
    }

    /** Forgets the sites in {@code object}, which the host is unloading. */
    void forget(LoadedObject object) {
        sites.values().removeIf(s -> {
            if (s.objectKey != object.key()) {
                return false;
            }
            s.forgotten = true;
            return true;
        });
    }

    /**
     * A site outside object {@code objectKey} that leads into {@code code} now, or will once a
     * safepoint rewrites it, described; empty if none. Any thread.
     */
    Optional<String> siteInto(long objectKey, List<LoadedSection> code) {
        for (Site s : sites.values()) {
            if (s.forgotten || s.objectKey == objectKey) {
                continue;
            }
            long current = s.current;
            long pending = s.pendingTarget;
            for (LoadedSection c : code) {
                if (c.contains(current) || (pending != 0 && c.contains(pending))) {
                    return Optional.of(String.format("%s at 0x%x leads to 0x%x in it", s.describe(current),
                            s.address - 1, c.contains(current) ? current : pending));
                }
            }
        }
        return Optional.empty();
    }

    Optional<Long> siteTarget(long siteAddress) {
        Site s = sites.get(siteAddress);
        return s == null ? Optional.empty() : Optional.of(s.current);
    }

    int pendingSites() {
        int n = 0;
        for (String f : waitingFunctions) {
            Group g = groups.get(f);
            for (Site s : g == null ? new Site[0] : g.sites) {
                if (s.pendingTarget != 0 && !s.forgotten) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Where {@code cs} leads now; a site of the stub if it leads to the stub, directly or through a far-call trampoline. */
    private Site discover(CallSite cs, StubEntry e) throws PatchException {
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
        // Its object may have been unloaded since the read (the host's unload takes no patcher
        // lock): forget runs after the writer marks the code dead, so once the site is in the map,
        // either forget sees it or this sees the code dead.
        if (!writer.isLiveCodeOf(cs.address() - 1, 5, cs.objectKey())) {
            sites.remove(s.address, s);
            s.forgotten = true;
            return null;
        }
        return s;
    }

    /** A call or jmp rel32 that belongs to a stub; {@code address} is its rel32. */
    private static final class Site extends CodeWriter.BranchSite {
        final String symbol;
        /** Where it led when the patcher first saw it: the stub, or the far-call trampoline to it. */
        final long home;
        volatile long current;
        /** Where it is to lead once a safepoint rewrites it; 0 when it waits for none. */
        volatile long pendingTarget;
        /** Set once its object is being unloaded. */
        volatile boolean forgotten;

        private static final VarHandle CURRENT;
        private static final VarHandle PENDING_TARGET;

        static {
            try {
                MethodHandles.Lookup l = MethodHandles.lookup();
                CURRENT = l.findVarHandle(Site.class, "current", long.class);
                PENDING_TARGET = l.findVarHandle(Site.class, "pendingTarget", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        /**
         * Release stores: the patcher's lock orders its own reads, and a reader on another
         * thread ({@code siteTarget}, {@code pendingSites}) needs the value and what was written
         * before it, not a full fence per site.
         */
        void setCurrent(long target) {
            CURRENT.setRelease(this, target);
        }

        void setPendingTarget(long target) {
            PENDING_TARGET.setRelease(this, target);
        }

        Site(long address, long objectKey, String symbol, byte opcode, long home) {
            super(address, objectKey, opcode);
            this.symbol = symbol;
            this.home = home;
            this.current = home;
        }

        /** The patch log's text for this site's write to {@code want}. */
        @Override
        public String describe(long want) {
            return (opcode == (byte) X86Code.CALL_REL32 ? "call" : "jmp") + " to " + symbol
                    + (want == home ? " via its stub" : " direct");
        }

        /** The five bytes of the instruction when it leads to {@code target}. */
        byte[] bytes(long target) {
            return X86Code.fromLong(X86Code.branchBytes(opcode, disp(target)), 5);
        }
    }
}
