/**
 * Code patching for JIT code a {@code JitHost} loaded, while other threads run it (x86-64).
 * {@link dev.safepointkit.patch.CodePatcher} is the façade; each concern is a class of its own:
 *
 * <ul>
 *   <li>{@code StubTable}, {@code StubEntry}, {@code StubBlock}: declared functions and their
 *       <b>stubs</b> ({@code jmp *slot(%rip)}), lazy entries and the reentry that compiles on the
 *       first call. Not to be confused with the host's <b>far-call trampolines</b>
 *       ({@code FarCallTrampoline}, in jit-host) or FFM's <b>upcall stubs</b> (entry points into Java).</li>
 *   <li>{@code CallSiteLinker}: the {@code call}/{@code jmp rel32} sites that belong to a stub,
 *       planned and rewritten all or nothing, and the unaligned ones waiting for a safepoint.</li>
 *   <li>{@code SledPatcher}: patchpoint sleds, always written whole.</li>
 *   <li>{@code CodeReclaimer}: retired code, freed at a stop that shows no stack runs it.</li>
 *   <li>{@code CodeWriter}: the one writer of code, through the host's writable aliases
 *       (W^X by double mapping), with the checks, the log ({@code PatchLog}) and
 *       {@code CoreSync}'s membarrier. The call sites of one function reach it as one batch,
 *       checked and written under one hold of its lock.</li>
 * </ul>
 *
 * <p>Lock order, outermost first; a thread holding one may take only those below it:
 * <ol>
 *   <li>A stop of the world ({@code SafepointCoordinator.stopTheWorld}). The patcher takes its
 *       lock only inside a stop, never before one: a mutator that compiles lazily holds the
 *       patcher's lock while the stop waits for it. So a {@code LazyCompiler}, which runs under
 *       the patcher's lock, must never call the coordinator in a way that stops the world or
 *       waits for a stop; the patcher refuses each of its own calls that would stop the world
 *       from inside a lazy compile ({@code safepoint}, {@code unload}, the sled rewrites) with an
 *       {@code IllegalStateException} naming the function being compiled.</li>
 *   <li>The patcher's lock ({@code CodePatcher.lock}, reentrant): guards every change to the
 *       stub table, the call-site linker, the sleds and the reclaimer.</li>
 *   <li>The host's lock (a load, an unload, {@code defineIndirectSymbol}): taken under the
 *       patcher's lock by declare, by lazy compiles and by every install of a body (the stub
 *       and its sites are written inside {@code JitHost.whileLoaded}, so a direct non-forced
 *       {@code host.unload} of the body cannot slip between its refusal check and the write);
 *       never the other way round. The patcher's
 *       listener runs inside the host's lock and takes no patcher lock (it answers the host's
 *       {@code unloadRefusal} from volatile reads); {@code safepoint()} and {@code unload()} unload
 *       objects after releasing the patcher's lock, having marked them as being freed under it so
 *       that no redefine or lazy compile makes them a body in between.</li>
 *   <li>The code writer's lock (one per process): innermost; nothing done under it takes a lock
 *       (the alias lookups in the host read concurrent maps). The listener takes it to forget an object's
 *       code before the host unmaps it.</li>
 * </ol>
 * Lock-free parts: a stub's slot is retargeted by one volatile 8-byte store and read by one
 * volatile load, both through a segment of a shared arena that the free closes before it unmaps
 * (so a read racing the free fails, never faults); lookups of entries,
 * sites and sleds read concurrent maps.
 */
package dev.safepointkit.patch;
