#!/usr/bin/env bash
# Writes a large LLVM IR module full of stack map and patchpoint call sites and compiles it with
# llc-19, for the parse benchmarks: FUNCTIONS functions with RECORDS call sites each.
#
#   scripts/gen-large-stackmap.sh OUT_DIR [FUNCTIONS] [RECORDS]     (default 1024 x 100)
#
# Produces OUT_DIR/large.ll, OUT_DIR/large.o (x86-64, -O2) and OUT_DIR/large.llvm_stackmaps
# (the raw section). A stackmap call site keeps six values live: three values (registers or
# spill slots), a Direct alloca address, a small constant and a large one (constants table);
# a patchpoint keeps three and has live-out registers.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [FUNCTIONS] [RECORDS]}
functions=${2:-1024}
records=${3:-100}
for tool in llc-19 llvm-objcopy-19; do
  command -v "$tool" >/dev/null || { echo "gen-large-stackmap: $tool not found (apt-get install llvm-19)" >&2; exit 1; }
done
mkdir -p "$out"
awk -v functions="$functions" -v records="$records" 'BEGIN {
  print "declare void @llvm.experimental.stackmap(i64, i32, ...)"
  print "declare void @llvm.experimental.patchpoint.void(i64, i32, ptr, i32, ...)"
  print "declare void @sink(ptr, i64)"
  id = 0
  for (f = 0; f < functions; f++) {
    # llc-19 crashes (in StackMaps::parseRegisterLiveOutMask) on a void patchpoint in a function
    # that also makes ordinary calls, so every eighth function holds patchpoints and no calls.
    patch = (f % 8 == 7)
    printf "define i64 @f%d(i64 %%a, i64 %%b, i64 %%c) {\nentry:\n", f
    if (!patch) {
      print "  %slot = alloca [4 x i64], align 8"
      print "  call void @sink(ptr %slot, i64 %a)"
    }
    printf "  %%v0 = add i64 %%a, %d\n", f
    for (r = 0; r < records; r++) {
      printf "  %%v%d = mul i64 %%v%d, %%b\n", r + 1, r
      if (patch) {
        printf "  call void (i64, i32, ptr, i32, ...) @llvm.experimental.patchpoint.void(i64 %d, i32 16, ptr null, i32 0, i64 %%v%d, i64 %%c, i32 %d)\n", id++, r + 1, r
      } else {
        printf "  call void (i64, i32, ...) @llvm.experimental.stackmap(i64 %d, i32 0, i64 %%v%d, i64 %%b, i64 %%c, ptr %%slot, i32 %d, i64 %.0f)\n", id++, r + 1, -r, 4294967296 + (id % 4096)
      }
    }
    if (!patch) {
      printf "  call void @sink(ptr %%slot, i64 %%v%d)\n", records
    }
    printf "  ret i64 %%v%d\n}\n\n", records
  }
}' > "$out/large.ll"
llc-19 -O2 -mtriple=x86_64-unknown-linux-gnu -filetype=obj "$out/large.ll" -o "$out/large.o"
llvm-objcopy-19 --dump-section ".llvm_stackmaps=$out/large.llvm_stackmaps" "$out/large.o" /dev/null
echo "gen-large-stackmap: $out/large.o, section of $(stat -c %s "$out/large.llvm_stackmaps") bytes, $((functions * records)) records" >&2
