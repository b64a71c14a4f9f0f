package dev.safepointkit.host;

/**
 * An object that could not be loaded or unloaded: not an x86-64 ELF relocatable object, a
 * malformed one (a section, symbol or relocation that does not fit the object), an unresolved
 * symbol, an unsupported or out-of-range relocation, a clash with a loaded symbol. The message
 * names the object, the section, symbol or relocation, and why. A failed load leaves nothing
 * mapped and nothing published.
 */
public final class JitLoadException extends Exception {
    private static final long serialVersionUID = 1L;

    public JitLoadException(String message) {
        super(message);
    }

    public JitLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
