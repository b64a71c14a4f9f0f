#!/usr/bin/env bash
# Regenerates the fixtures from the committed LLVM IR sources.
#
#   scripts/regen-fixtures.sh            rewrite fixtures/stackmaps and fixtures/jit in place
#   scripts/regen-fixtures.sh --out DIR  write the same trees under DIR/stackmaps and DIR/jit
#                                        (tests use this to check that the committed objects
#                                        still match their sources)
#
# Stack maps: for each source in fixtures/stackmaps/src and each target (x86-64, AArch64 little and big
# endian) and level (-O0, -O2) it writes TARGET/LEVEL/NAME.o, plus:
#   x86_64/O2/statepoints-gcregs.o  GC pointers kept in callee-saved registers at statepoints
#   linked/TARGET/libpair.so         stackmaps.ll and statepoints.ll (PIC) linked into one shared
#                                    object: its .llvm_stackmaps holds two concatenated stack maps
#   macho/x86_64, macho/arm64        the same sources as Mach-O objects (x86_64- and arm64-apple-macosx)
#   coff/x86_64                      and as COFF objects, NAME.obj (x86_64-pc-windows-msvc)
# and beside every object NAME.readobj.txt, the output of `llvm-readobj-19 --stackmap NAME`
# run in the object's own directory. In place, it also rewrites the fuzz tests' seed corpus.
#
# Patching: each source in fixtures/patch/src becomes fixtures/patch/x86_64/NAME.o: callers of
# lazily compiled functions, the bodies, and the stress loop with its patchpoint sled.
#
# JIT host: each source in fixtures/jit/src becomes fixtures/jit/x86_64/NAME.o, compiled as the
# host's tests need (see the flags below): objects the host loads, links and runs.
#
# Time to safepoint: fixtures/ttsp/src/spin.ll becomes fixtures/ttsp/x86_64/spin.o (statepoints
# from rewrite-statepoints-for-gc): the polled and unpolled loops of scripts/bench-ttsp.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/fixtures/stackmaps/src
fixtures=$root/fixtures
if [ "${1:-}" = --out ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 [--out DIR]" >&2; exit 2; }
  mkdir -p "$2"
  fixtures=$(cd "$2" && pwd)
fi
out=$fixtures/stackmaps

for tool in llc-19 opt-19 llvm-readobj-19 llvm-objcopy-19 ld.lld-19 llvm-link-19 llvm-extract-19; do
  command -v "$tool" >/dev/null || {
    echo "regen-fixtures: $tool not found; install it with: apt-get install llvm-19 lld-19" >&2
    exit 1
  }
done

targets="x86_64:x86_64-unknown-linux-gnu aarch64:aarch64-unknown-linux-gnu aarch64_be:aarch64_be-unknown-linux-gnu"
levels="O0 O2"

# llc records the input name in the object (STT_FILE), so compile from the source directory
# with relative names: the output then does not depend on where the checkout lives.
cd "$src"
for target in $targets; do
  arch=${target%%:*}
  triple=${target#*:}
  for level in $levels; do
    dir=$out/$arch/$level
    mkdir -p "$dir"
    for ll in *.ll; do
      llc-19 "-$level" -mtriple="$triple" -filetype=obj "$ll" -o "$dir/${ll%.ll}.o"
    done
  done
done

llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -max-registers-for-gc-values=4 \
  -fixup-allow-gcptr-in-csr -filetype=obj statepoints.ll -o "$out/x86_64/O2/statepoints-gcregs.o"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $targets; do
  arch=${target%%:*}
  triple=${target#*:}
  mkdir -p "$work/$arch" "$out/linked/$arch"
  for ll in stackmaps.ll statepoints.ll; do
    llc-19 -O2 -mtriple="$triple" -relocation-model=pic -filetype=obj "$ll" -o "$work/$arch/${ll%.ll}.o"
  done
  # The section is read-only and holds absolute function addresses: -Bsymbolic binds them
  # locally, -z notext accepts the RELATIVE relocations they need, and --apply-dynamic-relocs
  # also stores each address in the section itself, where a linked file's reader finds it.
  (cd "$work/$arch" && ld.lld-19 -shared -Bsymbolic -z notext --apply-dynamic-relocs -soname libpair.so \
    stackmaps.o statepoints.o -o "$out/linked/$arch/libpair.so")
done

# Mach-O and COFF objects of the same sources, for dump's other readers: macho/x86_64, macho/arm64
# (__LLVM_STACKMAPS,__llvm_stackmaps) and coff/x86_64 (.llvm_stackmaps, named NAME.obj).
other_targets="macho/x86_64:x86_64-apple-macosx:o macho/arm64:arm64-apple-macosx:o coff/x86_64:x86_64-pc-windows-msvc:obj"
cd "$src"
for target in $other_targets; do
  IFS=: read -r subdir triple ext <<< "$target"
  for level in $levels; do
    dir=$out/$subdir/$level
    mkdir -p "$dir"
    for ll in *.ll; do
      llc-19 "-$level" -mtriple="$triple" -filetype=obj "$ll" -o "$dir/${ll%.ll}.$ext"
    done
  done
done

cd "$out"
find . -path ./src -prune -o \( -name '*.o' -o -name '*.so' -o -name '*.obj' \) -print | sort | while read -r object; do
  (cd "$(dirname "$object")" && llvm-readobj-19 --stackmap "$(basename "$object")" > "$(basename "$object").readobj.txt")
done
# The fuzz tests' seed corpus: every fixture's section for the section target, every fixture file
# for the ELF target. Only when the fixtures themselves are rewritten.
if [ "$fixtures" = "$root/fixtures" ]; then
  seeds=$root/stackmap-parser/src/test/resources/dev/safepointkit/stackmap/StackMapFuzzTestInputs
  rm -rf "$seeds"
  mkdir -p "$seeds/sectionBytes" "$seeds/elfBytes" "$seeds/objectBytes"
  find ./macho ./coff -type f \( -name '*.o' -o -name '*.obj' \) | sort | while read -r object; do
    cp "$object" "$seeds/objectBytes/$(echo "${object#./}" | tr '/' '-')"
  done
  find . \( -path ./src -o -path ./macho -o -path ./coff \) -prune -o \( -name '*.o' -o -name '*.so' \) -print | sort | while read -r object; do
    seed=$(echo "${object#./}" | tr '/' '-')
    cp "$object" "$seeds/elfBytes/$seed"
    llvm-objcopy-19 --dump-section ".llvm_stackmaps=$seeds/sectionBytes/$seed.llvm_stackmaps" "$object" /dev/null
  done
fi
echo "regen-fixtures: wrote $(find . -path ./src -prune -o -name '*.readobj.txt' -print | wc -l) objects under $out"

# JIT host objects, x86-64 only (the host runs them).
cd "$root/fixtures/jit/src"
jit=$fixtures/jit/x86_64
mkdir -p "$jit"
for ll in math.ll caller.ll safepoints.ll host_poll.ll chain.ll chain-tail.ll; do
  llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$ll" -o "$jit/${ll%.ll}.o"
done
# Debug information (the IR's own DWARF 5 line table and subprogram): what gdb reads from the host's
# GDB JIT entry, and the jitdump writer's JIT_CODE_DEBUG_INFO.
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj debug.ll -o "$jit/debug.o"
# The line table's other headers: DWARF 2 and 4 (directory and file name strings inline, file
# indexes from 1) and 64-bit DWARF 5 (8-byte lengths and .debug_line_str offsets, relocated by R_X86_64_64).
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -dwarf-version=2 -filetype=obj lines.ll -o "$jit/lines-dwarf2.o"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -dwarf-version=4 -filetype=obj lines.ll -o "$jit/lines-dwarf4.o"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -dwarf-version=5 -dwarf64 -filetype=obj lines.ll \
  -o "$jit/lines-dwarf64.o"
# Relaxation off: its GOT loads stay R_X86_64_GOTPCREL (the others emit GOTPCRELX/REX_GOTPCRELX).
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -x86-relax-relocations=false \
  -filetype=obj data.ll -o "$jit/data.o"
# Non-PIC small code model: 32-bit absolute relocations (R_X86_64_32, R_X86_64_32S).
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=static -filetype=obj absolute.ll -o "$jit/absolute.o"
# Unwinding through JIT code: PIC, and static, where unwind.ll is mapped low and calls its runtime
# through far-call trampolines, and catch.ll's exception tables hold 32-bit absolute addresses.
for ll in unwind.ll catch.ll; do
  llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$ll" -o "$jit/${ll%.ll}.o"
  llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=static -filetype=obj "$ll" -o "$jit/${ll%.ll}-static.o"
done
# Statepoints inserted by LLVM itself: rewrite-statepoints-for-gc, then code generation.
opt-19 -passes=rewrite-statepoints-for-gc -S roots.ll -o "$work/roots.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$work/roots.statepoints.ll" -o "$jit/roots.o"
opt-19 -passes=rewrite-statepoints-for-gc -S nested.ll -o "$work/nested.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$work/nested.statepoints.ll" -o "$jit/nested.o"
opt-19 -passes=rewrite-statepoints-for-gc -S deep.ll -o "$work/deep.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$work/deep.statepoints.ll" -o "$jit/deep.o"
# The same with frame pointers: the walk comparison's stack, which libunwind can follow without
# unwind tables (scripts/compare-walk.sh).
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic --frame-pointer=all -filetype=obj \
  "$work/deep.statepoints.ll" -o "$jit/deep-fp.o"
# The same as roots.o with GC pointers kept in callee-saved registers: Register roots, which a walker can only
# resolve where the poll saved the register.
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=4 \
  -fixup-allow-gcptr-in-csr -filetype=obj "$work/roots.statepoints.ll" -o "$jit/roots-gcregs.o"
# Roots in callee-saved registers at every depth, and dynamic frames under callers without frame
# pointers: the register map's real frames, walked through each frame's CFI; deopt values in registers too.
opt-19 -passes=rewrite-statepoints-for-gc -S csr-chain.ll -o "$work/csr-chain.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=8 \
  -fixup-allow-gcptr-in-csr -use-registers-for-deopt-values -filetype=obj "$work/csr-chain.statepoints.ll" -o "$jit/csr-chain.o"
# The same chain in two objects: gc_poll with its CFI (csr-chain-poll.o), and the rest with its .eh_frame
# removed (csr-chain-noeh.o, loaded after the poll, whose gc_poll it links to): frames that no CFI
# describes, whose callers' register roots the walker must refuse rather than read a stale save slot.
llvm-extract-19 --func=gc_poll -S "$work/csr-chain.statepoints.ll" -o "$work/csr-chain-poll.ll"
llvm-extract-19 --delete --func=gc_poll -S "$work/csr-chain.statepoints.ll" -o "$work/csr-chain-rest.ll"
for part in poll rest; do
  llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=8 \
    -fixup-allow-gcptr-in-csr -use-registers-for-deopt-values -filetype=obj "$work/csr-chain-$part.ll" -o "$work/csr-chain-$part.o"
done
cp "$work/csr-chain-poll.o" "$jit/csr-chain-poll.o"
llvm-objcopy-19 --remove-section=.eh_frame "$work/csr-chain-rest.o" "$jit/csr-chain-noeh.o"
# Derived pointers (relocated with their base, not rematerialized) in callee-saved registers at every depth.
opt-19 -passes=rewrite-statepoints-for-gc -S csr-derived.ll -o "$work/csr-derived.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=8 \
  -fixup-allow-gcptr-in-csr -filetype=obj "$work/csr-derived.statepoints.ll" -o "$jit/csr-derived.o"
# A frame over 1 MiB (too large for the registry's step) without .eh_frame, under a caller whose root is in RBX;
# it links to csr-chain-poll.o's gc_poll.
opt-19 -passes=rewrite-statepoints-for-gc -S csr-bigframe.ll -o "$work/csr-bigframe.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=8 \
  -fixup-allow-gcptr-in-csr -filetype=obj "$work/csr-bigframe.statepoints.ll" -o "$work/csr-bigframe.o"
llvm-objcopy-19 --remove-section=.eh_frame "$work/csr-bigframe.o" "$jit/csr-bigframe-noeh.o"
# A frame whose CFI says a callee-saved register is undefined at its call, under a caller whose root is in it.
opt-19 -passes=rewrite-statepoints-for-gc -S csr-undefined.ll -o "$work/csr-undefined.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=8 \
  -fixup-allow-gcptr-in-csr -filetype=obj "$work/csr-undefined.statepoints.ll" -o "$jit/csr-undefined.o"
echo "regen-fixtures: wrote $(ls "$jit" | wc -l) objects under $jit"
# The loader fuzz test's seeds are the JIT objects themselves; crashing inputs found by fuzzing
# stay beside them as regression seeds.
if [ "$fixtures" = "$root/fixtures" ]; then
  cp "$jit"/*.o "$root/jit-host/src/test/resources/dev/safepointkit/host/JitHostFuzzTestInputs/loadsOrRefuses/"
fi

# The demo (examples/demo): its runtime functions and binary-trees, which the demo bundles, and
# the programs its tests run. Statepoints come from rewrite-statepoints-for-gc, except in the
# sources that write them by hand (frames.ll: gc-live allocas, exact derived pointers).
# runtime.o and binarytrees.o come from the compile pipeline (`safepointkit compile`: runtime.ll's
# allocation fast path inlined into binary-trees), so they are written in place only, where the
# command line can be built; cli's DemoObjectsTest checks them against a fresh compile instead.
demo=$fixtures/demo/x86_64
mkdir -p "$demo"
if [ "$fixtures" = "$root/fixtures" ]; then
  "$root/bin/safepointkit" compile --runtime "$root/examples/demo/src/main/llvm/runtime.ll" --out "$demo" \
    "$root/examples/demo/src/main/llvm/binarytrees.ll"
fi
cd "$root/examples/demo/src/test/llvm"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj frames.ll -o "$demo/frames.o"
# binary-trees with GC pointers kept in callee-saved registers (demo --gc-regs): the compile
# pipeline's steps with LLVM's tools, since its code generation has no such option. runtime.ll is
# linked in for default<O2> to inline the allocation fast path, then its functions are cut out again
# (the bundled runtime.o has them), then rewrite-statepoints-for-gc and llc with
# -max-registers-for-gc-values=4 -fixup-allow-gcptr-in-csr.
cd "$root/examples/demo/src/main/llvm"
llvm-link-19 -S binarytrees.ll runtime.ll -o "$work/binarytrees-linked.ll"
opt-19 -passes='default<O2>' -S "$work/binarytrees-linked.ll" -o "$work/binarytrees-o2.ll"
llvm-extract-19 --delete --rfunc='^rt_' -S "$work/binarytrees-o2.ll" -o "$work/binarytrees-own.ll"
opt-19 -passes=rewrite-statepoints-for-gc -S "$work/binarytrees-own.ll" -o "$work/binarytrees-gcregs.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -max-registers-for-gc-values=4 \
  -fixup-allow-gcptr-in-csr -filetype=obj "$work/binarytrees-gcregs.statepoints.ll" -o "$demo/binarytrees-gcregs.o"
echo "regen-fixtures: wrote $(ls "$demo" | wc -l) objects under $demo"

# The patcher's tests and benchmarks (patchpoint, stress).
patch=$fixtures/patch/x86_64
mkdir -p "$patch"
cd "$root/fixtures/patch/src"
for ll in *.ll; do
  llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$ll" -o "$patch/${ll%.ll}.o"
done
echo "regen-fixtures: wrote $(ls "$patch" | wc -l) objects under $patch"

# The time-to-safepoint benchmark's loops (stress, scripts/bench-ttsp.sh).
ttsp=$fixtures/ttsp/x86_64
mkdir -p "$ttsp"
cd "$root/fixtures/ttsp/src"
opt-19 -passes=rewrite-statepoints-for-gc -S spin.ll -o "$work/spin.statepoints.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -relocation-model=pic -filetype=obj "$work/spin.statepoints.ll" -o "$ttsp/spin.o"
echo "regen-fixtures: wrote $(ls "$ttsp" | wc -l) objects under $ttsp"
