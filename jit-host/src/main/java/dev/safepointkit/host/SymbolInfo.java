package dev.safepointkit.host;

import java.util.List;

/**
 * What the host knows about one symbol: who defines it, its address, and every place in loaded
 * code that refers to it. A snapshot; the host's own table changes as objects come and go.
 *
 * @param name the symbol's name
 * @param definingObject the key of the loaded object that defines it, or -1 for a runtime or process symbol
 * @param address its absolute address when the snapshot was taken, or 0 when nothing defines it
 *     (it is only referred to)
 * @param callSites every relocated field that refers to the symbol, across all loaded objects
 */
public record SymbolInfo(String name, long definingObject, long address, List<CallSite> callSites) {

    /**
     * Copies {@code callSites}, so the record stays immutable.
     *
     * @param name the symbol's name
     * @param definingObject the defining object's key, or -1
     * @param address its absolute address, or 0
     * @param callSites copied
     */
    public SymbolInfo {
        callSites = List.copyOf(callSites);
    }
}
