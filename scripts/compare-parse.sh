#!/usr/bin/env bash
# Parsing, side by side: LLVM's C++ StackMapParser (llvm-19-dev, compiled here with g++ -O2
# -DNDEBUG) and Safepoint Kit's parser do the same work over the same section of real llc-19
# output (102,400 records): per pass, parse (LLVM: header check + record index; ours: full
# validation), then read and sum every function, constant, record, location and live-out. Both
# print the same checksum, or the comparison fails.
#
#   scripts/compare-parse.sh [WARMUP_PASSES] [MEASURED_PASSES]     default 1000 1000
#
# A thousand warm-up passes (about 2 s): with 200, C2 was still compiling in some runs, and the
# same build's median moved between 2.0 and 3.0 ms from one run to the next.
#
# Needs, of what scripts/install-anchors.sh installs, only llvm-19-dev (StackMapParser.h and the
# libLLVM.so to link with), g++, and llc-19 with llvm-objcopy-19 for the section
# (scripts/install-llvm.sh); bench-common.sh builds the benchmarks jar. Under load, read the
# minimums as well as the medians: a pass longer than a scheduler slice is preempted in most
# passes, which inflates the median of the longer side most.
source "$(dirname "$0")/bench-common.sh"
warmup=${1:-1000}
passes=${2:-1000}
[ -f "$bench/large.llvm_stackmaps" ] || scripts/gen-large-stackmap.sh "$bench"
g++ -O2 -DNDEBUG -std=c++17 -I/usr/lib/llvm-19/include stress/src/main/native/llvm_stackmap_sum.cpp \
  -L/usr/lib/llvm-19/lib -lLLVM -Wl,-rpath,/usr/lib/llvm-19/lib -o "$bench/llvm_stackmap_sum"
llvm=$("$bench/llvm_stackmap_sum" "$bench/large.llvm_stackmaps" "$warmup" "$passes")
ours=$("$JAVA_HOME/bin/java" -cp stress/target/benchmarks.jar dev.safepointkit.stress.compare.ParseComparison \
  "$bench/large.llvm_stackmaps" "$warmup" "$passes")
echo "$llvm"
echo "$ours"
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
[ "$(field "$llvm" checksum)" = "$(field "$ours" checksum)" ] || { echo "compare-parse: checksums differ" >&2; exit 1; }
awk -v a="$(field "$ours" median_ns)" -v b="$(field "$llvm" median_ns)" \
  'BEGIN { printf "median per pass: Safepoint Kit %.3f ms, LLVM C++ %.3f ms; ratio (ours / LLVM) %.2f\n", a / 1e6, b / 1e6, a / b }'
