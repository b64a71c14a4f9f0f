package dev.safepointkit.host;

import dev.safepointkit.events.internal.Libc;
import dev.safepointkit.stackmap.elf.ElfFile;
import dev.safepointkit.stackmap.elf.ElfFormatException;
import dev.safepointkit.stackmap.elf.ElfRelocation;
import dev.safepointkit.stackmap.elf.ElfSection;
import dev.safepointkit.stackmap.elf.ElfSymbol;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Links one x86-64 ELF relocatable object into fresh memory.
 *
 * <p>Layout, each group starting on a page of its own so it can get its own protection: code
 * and host-made far-call trampolines (read + execute), read-only data including
 * {@code .llvm_stackmaps} (read), the host-made GOT (read), writable data and COMMON symbols
 * (read + write). The code group is double mapped (W^X): its pages live in a memory file
 * ({@code memfd_create}) mapped read + execute in place and read + write at another address, the
 * object's code alias, through which the linker writes the code and, later, a code patcher patches
 * it. No page is ever writable and executable, not even while linking. The other groups are
 * private anonymous memory, written while read + write and then switched to their final
 * protection. Nothing is mapped before {@link ObjectChecks} has passed every loaded section, symbol
 * and relocation; a failure at any later step unmaps everything before the exception leaves.
 * {@code .eh_frame} is followed by {@link EhFrameRegistration#TERMINATOR_BYTES} zero bytes, so
 * that the relocated section can be registered with the process unwinder as it is.
 *
 * <p>Not thread safe: one linker links one object on one thread.
 */
final class ObjectLinker {
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * With {@code -Dsafepointkit.gdb=true} the read + execute view of the memory file is mapped
     * private instead of shared, so that a debugger can write its breakpoints into it. Linux
     * refuses a ptrace write (gdb's {@code break}, which writes {@code int3}) into a shared mapping
     * that is not writable, and gdb then never stops there; into a private one it copies the page.
     * Until a page is copied, the private view shows the memory file's page itself, so stores
     * through the alias are seen as before. A page the debugger copied no longer sees them: a
     * patch written there afterwards does not reach the running code. Hence off by default; with
     * it off, {@code hbreak} (debug registers, nothing written) still works.
     */
    static final boolean DEBUGGER_WRITABLE_CODE = Boolean.getBoolean("safepointkit.gdb");

    /** Where an undefined symbol comes from; throws if nowhere. */
    interface Resolver {
        /** The address of {@code name}, or 0 when nothing defines it. */
        long resolve(String name);
    }

    enum Group {
        CODE(Libc.PROT_READ | Libc.PROT_EXEC), READ_ONLY(Libc.PROT_READ), GOT(Libc.PROT_READ),
        DATA(Libc.PROT_READ | Libc.PROT_WRITE);

        final int protection;

        Group(int protection) {
            this.protection = protection;
        }
    }

    /** A reference from a relocated field to a named symbol. */
    record Reference(String symbol, CallSite site) {
    }

    /**
     * The result: the mapping, where everything went, and what refers to what. {@code mapping} is
     * scoped to {@code arena}, so that once the object is unloaded (arena closed) a late access
     * throws instead of touching unmapped memory; {@code raw} is the same range with global scope,
     * for munmap. {@code code} is the executable group in place and {@code codeAlias} its writable
     * alias, scoped to {@code arena} as well ({@code rawCodeAlias} for munmap); all three are empty
     * segments ({@code NULL}) when the object has no code.
     */
    record Linked(MemorySegment mapping, MemorySegment raw, Arena arena, MemorySegment code, MemorySegment codeAlias,
            MemorySegment rawCodeAlias, Map<Group, MemorySegment> groups,
            Map<Integer, Long> sectionAddresses, long[] symbolAddresses, List<ElfSymbol> symbols,
            List<Reference> references) {
    }

    private final String objectName;
    private final long objectKey;
    private final ElfFile elf;
    private final List<ElfSymbol> symbols;
    private final Resolver resolver;

    /** @param symbols {@code elf}'s symbol table, which the host has already read */
    ObjectLinker(String objectName, long objectKey, ElfFile elf, List<ElfSymbol> symbols, Resolver resolver) {
        this.objectName = objectName;
        this.objectKey = objectKey;
        this.elf = elf;
        this.symbols = symbols;
        this.resolver = resolver;
    }

    Linked link() throws JitLoadException {
        checkHeader();

        // What to load, and which relocations apply to it.
        long page = Libc.pageSize();
        List<ElfSection> loaded = new ArrayList<>();
        Set<Integer> loadedIndices = new HashSet<>();
        for (ElfSection s : elf.sections()) {
            // sh_size is unsigned: a huge one must reach the checks, not pass for empty.
            if ((s.flags() & ElfSection.SHF_ALLOC) != 0 && s.size() != 0) {
                ObjectChecks.loadedSection(objectName, s, page);
                loaded.add(s);
                loadedIndices.add(s.index());
            }
        }
        ObjectChecks.ehFrameSections(objectName, loaded);
        ObjectChecks.symbols(objectName, elf, symbols, page);
        Map<ElfSection, List<ElfRelocation>> relocations = new LinkedHashMap<>();
        boolean lowAddresses = false;
        Map<Integer, Integer> gotSlots = new LinkedHashMap<>();   // symbol index -> slot
        Map<Integer, Integer> trampolineSlots = new LinkedHashMap<>();  // symbol index -> slot
        for (ElfSection target : loaded) {
            List<ElfRelocation> rs;
            try {
                rs = elf.relocationsFor(target);
            } catch (ElfFormatException e) {
                throw new JitLoadException(objectName + ": " + e.getMessage(), e);
            }
            for (ElfRelocation r : rs) {
                if (!X86Relocations.isSupported(r.type())) {
                    throw new JitLoadException(objectName + ": unsupported relocation " + X86Relocations.name(r.type())
                            + " in " + target.name() + " at offset 0x" + Long.toHexString(r.offset())
                            + symbolNote(symbols, r.symbolIndex()));
                }
                ObjectChecks.relocation(objectName, elf, target, r, symbols, loadedIndices);
                lowAddresses |= X86Relocations.needsLowAddresses(r.type());
                if (X86Relocations.usesGot(r.type())) {
                    gotSlots.putIfAbsent(r.symbolIndex(), gotSlots.size());
                }
                if (r.type() == X86Relocations.R_X86_64_PLT32 && symbols.get(r.symbolIndex()).isUndefined()) {
                    trampolineSlots.putIfAbsent(r.symbolIndex(), trampolineSlots.size());
                }
            }
            relocations.put(target, rs);
        }

        // Layout. The checks above bound every size and alignment, so these sums cannot overflow
        // before grow() stops them at MAX_MAPPING_BYTES.
        Map<Integer, Long> offsets = new HashMap<>();
        Map<Group, long[]> extents = new LinkedHashMap<>();
        long offset = 0;
        long trampolinesOffset = 0;
        long gotOffset = 0;
        Map<Integer, Long> commonOffsets = new HashMap<>();
        for (Group g : Group.values()) {
            offset = align(offset, page);
            long start = offset;
            for (ElfSection s : loaded) {
                if (groupOf(s) == g) {
                    offset = align(offset, Math.max(1, s.alignment()));
                    offsets.put(s.index(), offset);
                    offset = grow(offset, s.size());
                    if (s.name().equals(EhFrameRegistration.SECTION_NAME)) {
                        // The unwinder reads up to a zero length word, which an object's .eh_frame
                        // lacks (a linker adds it): the mapping's zero fill after the section is it.
                        offset = grow(offset, EhFrameRegistration.TERMINATOR_BYTES);
                    }
                }
            }
            if (g == Group.CODE) {
                offset = align(offset, FarCallTrampoline.SIZE);
                trampolinesOffset = offset;
                offset = grow(offset, (long) trampolineSlots.size() * FarCallTrampoline.SIZE);
            } else if (g == Group.GOT) {
                gotOffset = offset;
                offset = grow(offset, 8L * gotSlots.size());
            } else if (g == Group.DATA) {
                for (ElfSymbol sym : symbols) {
                    if (sym.sectionIndex() == ElfSymbol.SHN_COMMON) {
                        // For COMMON symbols st_value is the alignment.
                        offset = align(offset, Math.max(1, sym.value()));
                        commonOffsets.put(sym.index(), offset);
                        offset = grow(offset, sym.size());
                    }
                }
            }
            extents.put(g, new long[] {start, offset});
        }
        long total = Math.max(page, align(offset, page));

        int flags = Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | (lowAddresses ? Libc.MAP_32BIT : 0);
        MemorySegment raw = map(objectName, total, flags, lowAddresses);
        // libgcc takes an FDE whose 4-byte pc_begin has 32 zero bits for a function a linker
        // removed and never finds it: a function at a 4 GiB boundary would have no unwind
        // information (the registration's own check would refuse the load). Such a mapping is
        // kept while another is made, so that the kernel gives another address, then dropped.
        List<MemorySegment> declined = new ArrayList<>();
        try {
            while (functionAtA4GiBBoundary(raw.address(), loaded, symbols, offsets)) {
                declined.add(raw);
                if (declined.size() > 4) {
                    throw new JitLoadException(objectName + ": " + declined.size() + " mappings in a row put one of its "
                            + "functions at a 4 GiB boundary, where the process unwinder cannot find its FDE");
                }
                raw = map(objectName, total, flags, lowAddresses);
            }
        } finally {
            declined.forEach(Libc::munmap);
        }
        long codeStart = extents.get(Group.CODE)[0];
        long codeEnd = align(extents.get(Group.CODE)[1], page);
        MemorySegment rawAlias = MemorySegment.NULL;
        MemorySegment code = MemorySegment.NULL;
        if (codeEnd > codeStart) {
            try {
                // The code pages become the memory file's: read + execute here, read + write in the alias.
                int fd = Libc.memfdCreate("safepointkit-code", codeEnd - codeStart);
                try {
                    code = Libc.mmapFixed(raw.address() + codeStart, codeEnd - codeStart, Libc.PROT_READ | Libc.PROT_EXEC,
                            DEBUGGER_WRITABLE_CODE ? Libc.MAP_PRIVATE : Libc.MAP_SHARED, fd, 0);
                    rawAlias = Libc.mmap(codeEnd - codeStart, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
                } finally {
                    Libc.close(fd);   // the mappings keep the file
                }
            } catch (Libc.NativeException e) {
                Libc.munmap(raw);
                throw new JitLoadException(objectName + ": cannot double-map its " + (codeEnd - codeStart)
                        + " bytes of code (memfd_create and two shared mappings): " + e.getMessage(), e);
            }
        }
        // The object's arena owns every segment listeners see; the host closes it on unload.
        Arena arena = Arena.ofShared();
        MemorySegment mapping = raw.reinterpret(arena, null);
        MemorySegment alias = rawAlias.reinterpret(arena, null);
        try {
            long base = mapping.address();
            Map<Integer, Long> sectionAddresses = new HashMap<>();
            for (ElfSection s : loaded) {
                long at = offsets.get(s.index());
                sectionAddresses.put(s.index(), base + at);
                if (s.hasFileBytes()) {
                    MemorySegment.copy(elf.contents(s), 0, writable(mapping, alias, codeStart, codeEnd, at), 0, s.size());
                }
            }
            long[] addresses = new long[symbols.size()];
            for (ElfSymbol sym : symbols) {
                addresses[sym.index()] = symbolAddress(sym, sectionAddresses, commonOffsets, base);
            }
            for (Map.Entry<Integer, Integer> got : gotSlots.entrySet()) {
                mapping.set(U64, gotOffset + 8L * got.getValue(), addresses[got.getKey()]);
            }
            for (Map.Entry<Integer, Integer> t : trampolineSlots.entrySet()) {
                long at = trampolinesOffset + (long) t.getValue() * FarCallTrampoline.SIZE;
                FarCallTrampoline.write(writable(mapping, alias, codeStart, codeEnd, at), addresses[t.getKey()]);
            }

            List<Reference> references = new ArrayList<>();
            for (Map.Entry<ElfSection, List<ElfRelocation>> e : relocations.entrySet()) {
                ElfSection target = e.getKey();
                long sectionOffset = offsets.get(target.index());
                for (ElfRelocation r : e.getValue()) {
                    ElfSymbol sym = symbols.get(r.symbolIndex());
                    long field = sectionOffset + r.offset();
                    long p = base + field;
                    // The relocation's field, through the code alias when it is in code.
                    MemorySegment out = writable(mapping, alias, codeStart, codeEnd, field);
                    long s = addresses[r.symbolIndex()];
                    long a = r.addend();
                    boolean viaTrampoline = false;
                    switch (r.type()) {
                        case X86Relocations.R_X86_64_NONE -> {
                        }
                        case X86Relocations.R_X86_64_64 -> out.set(U64, 0, s + a);
                        case X86Relocations.R_X86_64_PC64 -> out.set(U64, 0, s + a - p);
                        case X86Relocations.R_X86_64_PC32 -> out.set(U32, 0, signed32(s + a - p, r, target, sym));
                        case X86Relocations.R_X86_64_PLT32 -> {
                            long v = s + a - p;
                            if (v != (int) v && trampolineSlots.containsKey(r.symbolIndex())) {
                                // Out of rel32 range: call the far-call trampoline, which jumps anywhere.
                                v = base + trampolinesOffset + (long) trampolineSlots.get(r.symbolIndex()) * FarCallTrampoline.SIZE + a - p;
                                viaTrampoline = true;
                            }
                            out.set(U32, 0, signed32(v, r, target, sym));
                        }
                        case X86Relocations.R_X86_64_32 -> {
                            long v = s + a;
                            if (v < 0 || v > 0xFFFF_FFFFL) {
                                throw outOfRange(r, target, sym, v);
                            }
                            out.set(U32, 0, (int) v);
                        }
                        case X86Relocations.R_X86_64_32S -> out.set(U32, 0, signed32(s + a, r, target, sym));
                        case X86Relocations.R_X86_64_GOTPCREL, X86Relocations.R_X86_64_GOTPCRELX,
                                X86Relocations.R_X86_64_REX_GOTPCRELX -> {
                            long slot = base + gotOffset + 8L * gotSlots.get(r.symbolIndex());
                            out.set(U32, 0, signed32(slot + a - p, r, target, sym));
                        }
                        default -> throw new IllegalStateException("unreachable: " + r.type());
                    }
                    String name = referenceName(sym);
                    if (name != null) {
                        references.add(new Reference(name, new CallSite(objectKey, target.name(), p, r.type(), viaTrampoline)));
                    }
                }
            }

            Map<Group, MemorySegment> groups = new LinkedHashMap<>();
            for (Map.Entry<Group, long[]> g : extents.entrySet()) {
                long start = g.getValue()[0];
                long end = align(g.getValue()[1], page);
                if (end > start) {
                    MemorySegment pages = raw.asSlice(start, end - start);
                    if (g.getKey() != Group.CODE && g.getKey() != Group.DATA) {
                        // Code was mapped read + execute from the start, data stays read + write.
                        Libc.mprotect(pages, g.getKey().protection);
                    }
                    groups.put(g.getKey(), pages);
                }
            }
            return new Linked(mapping, raw, arena, code, alias, rawAlias, groups, sectionAddresses, addresses, symbols,
                    references);
        } catch (JitLoadException | RuntimeException | Error e) {
            arena.close();
            Libc.munmap(raw);
            if (rawAlias.byteSize() > 0) {
                Libc.munmap(rawAlias);
            }
            throw e;
        }
    }

    /**
     * Where the linker writes the byte at {@code offset} of the layout: the code alias inside the
     * code group (its executable pages are never writable), the mapping itself elsewhere. A
     * section, trampoline or relocated field never straddles a group, so the slice ends at its group.
     */
    private static MemorySegment writable(MemorySegment mapping, MemorySegment alias, long codeStart, long codeEnd,
            long offset) {
        return offset >= codeStart && offset < codeEnd ? alias.asSlice(offset - codeStart, codeEnd - offset)
                : mapping.asSlice(offset);
    }

    private void checkHeader() throws JitLoadException {
        if (elf.type() != ElfFile.ET_REL) {
            throw new JitLoadException(objectName + ": not a relocatable object (ELF type " + elf.type()
                    + "); the host loads .o files as llc writes them");
        }
        if (elf.machine() != ElfFile.EM_X86_64 || elf.byteOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new JitLoadException(objectName + ": machine " + elf.archName() + " (e_machine " + elf.machine()
                    + ") is not supported; the host links x86-64 objects");
        }
    }

    private long symbolAddress(ElfSymbol sym, Map<Integer, Long> sectionAddresses, Map<Integer, Long> commons, long base)
            throws JitLoadException {
        if (sym.index() == 0) {
            return 0;
        }
        if (sym.sectionIndex() == ElfSymbol.SHN_ABS) {
            return sym.value();
        }
        if (sym.sectionIndex() == ElfSymbol.SHN_COMMON) {
            return base + commons.get(sym.index());
        }
        if (sym.isUndefined()) {
            long address = resolver.resolve(sym.name());
            if (address == 0 && sym.binding() != ElfSymbol.STB_WEAK) {
                throw new JitLoadException(objectName + ": unresolved symbol '" + sym.name()
                        + "': not defined by a loaded object, a runtime symbol or the process");
            }
            return address;
        }
        Long section = sectionAddresses.get(sym.sectionIndex());
        // Symbols of sections that are not loaded (debug info, .note) have no address.
        return section == null ? 0 : section + sym.value();
    }

    /**
     * The symbol name a relocation refers to, for the call-site table; null for section-relative
     * references (local data and code reached through its section's symbol).
     */
    private static String referenceName(ElfSymbol sym) {
        return sym.type() == ElfSymbol.STT_SECTION || sym.name().isEmpty() ? null : sym.name();
    }

    /** Maps {@code total} bytes read + write for an object's layout. */
    private static MemorySegment map(String objectName, long total, int flags, boolean lowAddresses) throws JitLoadException {
        try {
            return Libc.mmap(total, Libc.PROT_READ | Libc.PROT_WRITE, flags, -1, 0);
        } catch (Libc.NativeException e) {
            throw new JitLoadException(objectName + ": cannot map " + total + " bytes"
                    + (lowAddresses ? " in the low 2 GiB (needed by its 32-bit absolute relocations)" : "") + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * Whether, mapped at {@code base}, a code section or a function would start at an address
     * whose low 32 bits are zero (every FDE starts at one or the other).
     */
    static boolean functionAtA4GiBBoundary(long base, List<ElfSection> loaded, List<ElfSymbol> symbols,
            Map<Integer, Long> offsets) {
        for (ElfSection s : loaded) {
            if (groupOf(s) == Group.CODE && (int) (base + offsets.get(s.index())) == 0) {
                return true;
            }
        }
        for (ElfSymbol sym : symbols) {
            Long section = offsets.get(sym.sectionIndex());
            if (sym.isFunction() && section != null && (int) (base + section + sym.value()) == 0) {
                return true;
            }
        }
        return false;
    }

    private static Group groupOf(ElfSection s) {
        if ((s.flags() & ElfSection.SHF_EXECINSTR) != 0) {
            return Group.CODE;
        }
        return (s.flags() & ElfSection.SHF_WRITE) != 0 ? Group.DATA : Group.READ_ONLY;
    }

    private int signed32(long v, ElfRelocation r, ElfSection target, ElfSymbol sym) throws JitLoadException {
        if (v != (int) v) {
            throw outOfRange(r, target, sym, v);
        }
        return (int) v;
    }

    private JitLoadException outOfRange(ElfRelocation r, ElfSection target, ElfSymbol sym, long v) {
        boolean unwindTable = target.name().equals(EhFrameRegistration.SECTION_NAME) || target.name().equals(".gcc_except_table");
        return new JitLoadException(objectName + ": relocation " + X86Relocations.name(r.type()) + " against '"
                + sym.name() + "' in " + target.name() + " at offset 0x" + Long.toHexString(r.offset())
                + " is out of range (value 0x" + Long.toHexString(v) + " does not fit 32 bits)"
                + (unwindTable ? "; exception tables compiled with -relocation-model=static hold 32-bit absolute "
                        + "addresses of the personality, the LSDA and type infos, which the process's libraries lie "
                        + "beyond: compile with -relocation-model=pic, whose tables reach them PC-relative and "
                        + "through DW.ref pointers" : ""));
    }

    private static String symbolNote(List<ElfSymbol> symbols, int index) {
        return index > 0 && index < symbols.size() && !symbols.get(index).name().isEmpty()
                ? " against '" + symbols.get(index).name() + "'" : "";
    }

    /** {@code offset + size}, refused once the layout outgrows what one object may map. */
    private long grow(long offset, long size) throws JitLoadException {
        long end = offset + size;
        if (end > ObjectChecks.MAX_MAPPING_BYTES) {
            throw new JitLoadException(objectName + ": its sections, far-call trampolines, GOT and COMMON symbols need " + end
                    + " bytes, more than the " + ObjectChecks.MAX_MAPPING_BYTES + " bytes the host maps for one object");
        }
        return end;
    }

    private static long align(long v, long alignment) {
        return (v + alignment - 1) / alignment * alignment;
    }
}
