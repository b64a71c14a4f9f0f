package dev.safepointkit.registry;

import dev.safepointkit.events.JitEventListener;
import dev.safepointkit.events.LoadedObject;
import dev.safepointkit.events.LoadedSection;
import dev.safepointkit.events.LoadedSymbol;
import dev.safepointkit.stackmap.dwarf.CfiFormatException;
import dev.safepointkit.stackmap.dwarf.EhFrame;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps a {@link SafepointRegistry} in step with a JIT host: registers each loaded object (its
 * executable sections as the code range, its function symbols, its relocated stack maps) and
 * unregisters it when it is freed, before its memory goes away.
 *
 * <p>Thread safe, as the registry is. It is a {@linkplain JitEventListener#required() required}
 * listener: code whose safepoints are not registered cannot be walked, so a registration the
 * registry refuses (including a safepoint whose {@code .eh_frame} CFI cannot be planned) is thrown as an {@link IllegalStateException} and fails the host's load.
 */
public final class RegistryListener implements JitEventListener {
    private final SafepointRegistry registry;

    /**
     * A listener that feeds {@code registry}; add it to the host's dispatcher before any object
     * is loaded, or earlier objects are never registered.
     *
     * @param registry the registry to keep in step; objects are registered under their
     *     {@link LoadedObject#key()}
     */
    public RegistryListener(SafepointRegistry registry) {
        this.registry = registry;
    }

    @Override
    public boolean required() {
        return true;
    }

    @Override
    public String toString() {
        return "the safepoint registry";
    }

    @Override
    public void objectLoaded(LoadedObject object) {
        long start = Long.MAX_VALUE;
        long end = Long.MIN_VALUE;
        for (LoadedSection s : object.sections()) {
            if (s.executable()) {
                start = Math.min(start, s.address());
                end = Math.max(end, s.address() + s.size());
            }
        }
        if (start >= end) {
            return;
        }
        List<FunctionSpan> functions = new ArrayList<>();
        for (LoadedSymbol s : object.symbols()) {
            if (s.function()) {
                functions.add(new FunctionSpan(s.name(), s.address(), s.size()));
            }
        }
        try {
            registry.register(object.key(), object.name(), start, end - start, object.stackMaps().orElse(null), functions,
                    ehFrame(object));
        } catch (RegistryException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }

    /** The object's relocated {@code .eh_frame} where it is loaded (mapped until the object is freed), or null. */
    private static EhFrame ehFrame(LoadedObject object) throws RegistryException {
        LoadedSection section = object.section(".eh_frame").orElse(null);
        if (section == null) {
            return null;
        }
        try {
            return EhFrame.parse(MemorySegment.ofAddress(section.address()).reinterpret(section.size()), section.address());
        } catch (CfiFormatException e) {
            throw new RegistryException(object.name() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void objectFreeing(LoadedObject object) {
        registry.unregister(object.key());
    }
}
