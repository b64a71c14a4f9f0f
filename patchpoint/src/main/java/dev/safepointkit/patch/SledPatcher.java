package dev.safepointkit.patch;

import dev.safepointkit.events.EmittedFunction;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.host.JitObject;
import dev.safepointkit.stackmap.CallSiteRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Patchpoint sleds: finding them from the stack map records, and the bytes of each form (NOPs,
 * the call form, a retargeted call). It remembers the bytes it last saw or wrote in every sled, so
 * a write is always checked against them and always leaves a whole sled.
 *
 * <p>Threading: {@link #write} runs under the patcher's lock (and inside a stop unless the change
 * is one aligned word), and so do {@link #find} and {@link #one}, which record the bytes a write
 * will expect; {@link #forget} on the host's unloading thread; the rest from any thread.
 */
final class SledPatcher {
    private final CodeWriter writer;
    /** Sleds seen, by address: their current bytes. */
    private final Map<Long, byte[]> sledBytes = new ConcurrentHashMap<>();

    SledPatcher(CodeWriter writer) {
        this.writer = writer;
    }

    /** A change of a sled's bytes, made from the bytes it holds when the write happens. */
    @FunctionalInterface
    interface Change {
        byte[] apply(byte[] before) throws PatchException;
    }

    List<Sled> find(JitObject object, long id) throws PatchException {
        List<Sled> found = new ArrayList<>();
        for (EmittedFunction f : object.functions()) {
            List<CallSiteRecord> records = f.stackMapRecords();
            for (int i = 0; i < records.size(); i++) {
                if (records.get(i).id() != id) {
                    continue;
                }
                long at = f.stackMapAddress(i);
                int room = (int) Math.min(256, f.address() + f.size() - at);
                byte[] code = writer.read(at, room);
                int length = X86Code.isSledCall(code) ? X86Code.SLED_CALL_SIZE + X86Code.nopRun(code, X86Code.SLED_CALL_SIZE)
                        : X86Code.nopRun(code, 0);
                if (length == 0) {
                    throw new PatchException(String.format("%s: patchpoint %d at 0x%x: no NOP sled or sled call there [%s]",
                            f.name(), id, at, X86Code.hex(Arrays.copyOf(code, Math.min(16, code.length)))));
                }
                sledBytes.put(at, Arrays.copyOf(code, length));
                found.add(new Sled(at, length, f.name(), id, object.key()));
            }
        }
        return found;
    }

    Sled one(JitObject object, long id, int numBytes) throws PatchException {
        List<Sled> all = find(object, id);
        if (all.size() != 1) {
            throw new PatchException(object.name() + ": " + all.size() + " patchpoints with ID " + id + ", expected one");
        }
        Sled s = all.getFirst();
        if (s.length() < numBytes) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x: only %d bytes of sled, expected %d",
                    s.function(), id, s.address(), s.length(), numBytes));
        }
        sledBytes.put(s.address(), Arrays.copyOf(sledBytes.get(s.address()), numBytes));
        return new Sled(s.address(), numBytes, s.function(), id, s.objectKey());
    }

    Optional<Long> target(Sled sled) throws PatchException {
        byte[] now = writer.read(sled.address(), sled.length());
        return X86Code.isSledCall(now) ? Optional.of(X86Code.sledCallTarget(now)) : Optional.empty();
    }

    /** {@code movabs $target, %r11; call *%r11} and NOPs over the whole sled. */
    static byte[] callForm(Sled sled, long target) throws PatchException {
        if (sled.length() < X86Code.SLED_CALL_SIZE) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x: %d bytes cannot hold a call (%d needed)",
                    sled.function(), sled.id(), sled.address(), sled.length(), X86Code.SLED_CALL_SIZE));
        }
        byte[] call = X86Code.sledCall(target);
        byte[] after = Arrays.copyOf(call, sled.length());
        System.arraycopy(X86Code.nops(sled.length() - call.length), 0, after, call.length, sled.length() - call.length);
        return after;
    }

    /** The sled's call form {@code before} with its imm64 replaced; refused if it holds no call. */
    static byte[] retargeted(Sled sled, byte[] before, long target) throws PatchException {
        if (!X86Code.isSledCall(before)) {
            throw new PatchException(String.format("%s: patchpoint %d at 0x%x holds no call to retarget [%s]",
                    sled.function(), sled.id(), sled.address(), X86Code.hex(before)));
        }
        byte[] after = before.clone();
        X86Code.putLong(after, X86Code.SLED_TARGET_OFFSET, target);
        return after;
    }

    /** Whether a retarget of {@code sled} is one aligned 8-byte store, allowed while threads run. */
    static boolean retargetIsAtomic(Sled sled) {
        return (sled.address() + X86Code.SLED_TARGET_OFFSET) % 8 == 0;
    }

    /**
     * Writes {@code change} of the bytes the sled holds now (as this patcher knows them), checked
     * against memory by the writer.
     */
    void write(Sled sled, Change change, boolean whileRunning, String what) throws PatchException {
        byte[] before = expected(sled);
        byte[] after = change.apply(before);
        writer.write(sled.address(), before, after, whileRunning, what);
        sledBytes.put(sled.address(), after);
    }

    /** Forgets the sleds in {@code object}, which the host is unloading. */
    void forget(LoadedObject object) {
        for (LoadedSection s : object.sections()) {
            sledBytes.keySet().removeIf(s::contains);
        }
    }

    private byte[] expected(Sled sled) throws PatchException {
        byte[] known = sledBytes.get(sled.address());
        if (known == null || known.length != sled.length()) {
            throw new PatchException(String.format("0x%x: not a sled this patcher found (use sleds or sled first)", sled.address()));
        }
        return known;
    }
}
