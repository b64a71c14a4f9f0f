package dev.safepointkit.compile;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a warm start needs to know of a source without parsing it: the object that holds its data,
 * and for each function it defines the object compiled for it (when one was), the functions whose
 * bodies that object was given for inlining, and a key naming those bodies as they were given
 * (other sources define them, and a later run may load other definitions). Kept in the object cache under a key made from a cheap
 * fingerprint of the source's bytes (their length and two CRCs) and a SHA-256 of the settings
 * and the runtime; since a fingerprint can collide, the manifest carries the source's bytes and
 * is used only for a source equal to them ({@link #decode}). The payload:
 * <pre>
 *   manifest 3 LENGTH\n       the source's length in bytes, in decimal
 *   SOURCE                    LENGTH bytes, the source itself
 *   data KEY|-\n
 *   function NAME KEY|- INLINED,...|- GIVEN|-\n   one line per function, in module order
 * </pre>
 * Not thread safe: the pipeline's lock guards each instance.
 */
final class Manifest {
    /**
     * What is known of one function.
     *
     * @param objectKey its object's key
     * @param inlined the functions whose bodies its object was given
     * @param given the key of those bodies as they were given; empty when none was
     */
    record Entry(Optional<String> objectKey, Set<String> inlined, Optional<String> given) {}

    private static final String HEAD = "manifest 3 ";

    /** The source the manifest describes, compared byte for byte before a warm start trusts it. */
    final byte[] source;
    Optional<String> dataKey = Optional.empty();
    final Map<String, Entry> functions = new LinkedHashMap<>();

    /** @param source the bytes of the source described; kept, not copied */
    Manifest(byte[] source) {
        this.source = source;
    }

    /** Whether every name survives the line format: no space, comma or line break in any. */
    boolean encodable() {
        for (Map.Entry<String, Entry> e : functions.entrySet()) {
            if (!plain(e.getKey()) || !e.getValue().inlined().stream().allMatch(Manifest::plain)) {
                return false;
            }
        }
        return true;
    }

    private static boolean plain(String name) {
        return !name.isEmpty() && name.chars().noneMatch(c -> c == ' ' || c == ',' || c == '\n' || c == '\r');
    }

    byte[] encode() {
        byte[] head = (HEAD + source.length + "\n").getBytes(StandardCharsets.US_ASCII);
        StringBuilder out = new StringBuilder();
        out.append("data ").append(dataKey.orElse("-")).append('\n');
        functions.forEach((name, e) -> out.append("function ").append(name).append(' ').append(e.objectKey().orElse("-"))
                .append(' ').append(e.inlined().isEmpty() ? "-" : String.join(",", e.inlined()))
                .append(' ').append(e.given().orElse("-")).append('\n'));
        byte[] text = out.toString().getBytes(StandardCharsets.UTF_8);
        byte[] payload = new byte[head.length + source.length + text.length];
        System.arraycopy(head, 0, payload, 0, head.length);
        System.arraycopy(source, 0, payload, head.length, source.length);
        System.arraycopy(text, 0, payload, head.length + source.length, text.length);
        return payload;
    }

    /**
     * Reads an encoded manifest made for {@code source}.
     *
     * @param payload what {@link #encode} wrote
     * @param source the bytes the caller is loading; the manifest's copy must equal them
     * @throws IllegalArgumentException if the manifest describes another source (a fingerprint
     *     that collided), or naming the line that is not one of the forms above
     */
    static Manifest decode(byte[] payload, byte[] source) {
        int newline = -1;
        for (int i = 0; i < Math.min(payload.length, 40); i++) {
            if (payload[i] == '\n') {
                newline = i;
                break;
            }
        }
        String head = newline < 0 ? "" : new String(payload, 0, newline, StandardCharsets.US_ASCII);
        if (!head.startsWith(HEAD) || !head.substring(HEAD.length()).matches("[0-9]{1,10}")) {
            throw new IllegalArgumentException("the manifest does not begin with '" + HEAD + "LENGTH'");
        }
        long length = Long.parseLong(head.substring(HEAD.length()));
        int from = newline + 1;
        if (length != source.length || payload.length - from < length
                || !Arrays.equals(payload, from, from + source.length, source, 0, source.length)) {
            throw new IllegalArgumentException("the manifest describes another source: its copy of " + length
                    + " bytes differs from the " + source.length + " bytes loaded");
        }
        Manifest m = new Manifest(source);
        int textAt = from + source.length;
        List<String> lines = new String(payload, textAt, payload.length - textAt, StandardCharsets.UTF_8).lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(" ");
            if (f.length == 2 && f[0].equals("data")) {
                m.dataKey = key(f[1]);
            } else if (f.length == 5 && f[0].equals("function")) {
                Set<String> inlined = new TreeSet<>();
                if (!f[3].equals("-")) {
                    inlined.addAll(List.of(f[3].split(",")));
                }
                m.functions.put(f[1], new Entry(key(f[2]), inlined, key(f[4])));
            } else {
                throw new IllegalArgumentException("manifest line " + (i + 1) + " is not 'data KEY' or 'function NAME KEY INLINED GIVEN'");
            }
        }
        return m;
    }

    private static Optional<String> key(String field) {
        return field.equals("-") ? Optional.empty() : Optional.of(field);
    }
}
