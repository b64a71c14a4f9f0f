package dev.safepointkit.compile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** A manifest reads back only for the source it was made for. */
class ManifestTest {
    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static Manifest sample(byte[] source) {
        Manifest m = new Manifest(source);
        m.dataKey = Optional.of("d".repeat(64));
        m.functions.put("f", new Manifest.Entry(Optional.of("a".repeat(64)), Set.of("g", "h"), Optional.of("b".repeat(64))));
        m.functions.put("g", new Manifest.Entry(Optional.empty(), Set.of(), Optional.empty()));
        return m;
    }

    @Test
    void readsBackWhatItWroteForTheSameSource() {
        byte[] source = bytes("define i64 @f() {\n  ret i64 1\n}\ndata f g\n");
        Manifest back = Manifest.decode(sample(source).encode(), source.clone());
        assertEquals(Optional.of("d".repeat(64)), back.dataKey);
        assertEquals(sample(source).functions, back.functions);
        assertEquals(java.util.List.of("f", "g"), java.util.List.copyOf(back.functions.keySet()), "module order");
    }

    @Test
    void refusesAnotherSourceOfTheSameLengthOrAnother() {
        byte[] source = bytes("ret i64 1");
        byte[] payload = sample(source).encode();
        IllegalArgumentException same = assertThrows(IllegalArgumentException.class, () -> Manifest.decode(payload, bytes("ret i64 2")));
        assertTrue(same.getMessage().contains("another source"), same.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Manifest.decode(payload, bytes("ret i64 10")));
        assertThrows(IllegalArgumentException.class, () -> Manifest.decode(java.util.Arrays.copyOf(payload, 20), source));
        assertThrows(IllegalArgumentException.class, () -> Manifest.decode(bytes("data -\n"), source));
    }
}
