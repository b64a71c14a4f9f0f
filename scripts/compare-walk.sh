#!/usr/bin/env bash
# Stack walking, side by side, on the same live stack: 10,002 JIT frames of
# fixtures/jit/src/deep.ll (compiled with frame pointers: fixtures/jit/x86_64/deep-fp.o), four
# roots per frame. gc-roots walks it and reads every root; libunwind's unw_backtrace (through
# stress/src/main/native/unwind_at_bottom.c, called by the JIT code at the bottom of the stack)
# finds the return addresses only. Prints frames, roots and the median and spread per walk.
#
#   scripts/compare-walk.sh [WALKS]        default 2000 timed walks each, after as many untimed
#
# Needs scripts/install-anchors.sh.
source "$(dirname "$0")/bench-common.sh"
walks=${1:-2000}
gcc -O2 -shared -fPIC stress/src/main/native/unwind_at_bottom.c -lunwind -o "$bench/libunwind_at_bottom.so"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp stress/target/benchmarks.jar \
  dev.safepointkit.stress.compare.WalkComparison fixtures/jit/x86_64/deep-fp.o "$bench/libunwind_at_bottom.so" 10000 "$walks"
