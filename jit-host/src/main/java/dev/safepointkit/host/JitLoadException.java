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

    /**
     * An exception with no cause behind it.
     *
     * @param message names the object, what failed in it, and why
     */
    public JitLoadException(String message) {
        super(message);
    }

    /**
     * An exception for a failure found by other code.
     *
     * @param message names the object, what failed in it, and why
     * @param cause the format, listener or libLLVM failure behind it
     */
    public JitLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
