package dev.safepointkit.host;

import java.util.List;

/**
 * What the host knows about one symbol: who defines it, its address, and every place in loaded
 * code that refers to it. A snapshot; the host's own table changes as objects come and go.
 *
 * @param definingObject the key of the loaded object that defines it, or -1 for a runtime or process symbol
 * @param callSites every relocated field that refers to the symbol, across all loaded objects
 */
public record SymbolInfo(String name, long definingObject, long address, List<CallSite> callSites) {

    public SymbolInfo {
        callSites = List.copyOf(callSites);
    }
}
