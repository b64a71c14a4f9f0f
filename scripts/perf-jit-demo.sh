#!/usr/bin/env bash
# Shows perf naming JIT-compiled frames and unwinding through them. First runs fib(38), twice,
# from fixtures/jit/x86_64/math.o in the JIT host under `perf record`, with the jitdump listener
# attached, injects the jitdump into the profile and prints the top of `perf report`; then records
# fib(32) from fixtures/jit/x86_64/debug.o with `--call-graph dwarf` and prints fib's call graph
# and its source lines. Exits 0 when the report names fib inside the jitted code, perf unwound fib
# frames to a fib caller and gave fib's samples lines of debug.ll, 1 when any is missing. Needs
# linux-perf (apt-get install linux-perf) and a kernel that lets this user sample
# (kernel.perf_event_paranoid <= 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/perf
rm -rf "$out"
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf-jit-demo: perf not found (apt-get install linux-perf)" >&2; exit 1; }
"$root/bin/safepointkit" --version >/dev/null   # build first, outside the profile
perf record -k mono -o "$out/perf.data" -- \
  "$root/bin/safepointkit" run --perf-map --jitdump "$out" --call fib --arg 38 --repeat 2 \
  "$root/fixtures/jit/x86_64/math.o"
perf inject --jit -i "$out/perf.data" -o "$out/perf.jit.data"
perf report -i "$out/perf.jit.data" --stdio --sort dso,sym 2>/dev/null | grep -v -e '^#' -e '^$' >"$out/report.txt" || true
# Printed from a file, so that head closing its input early fails no pipeline.
head -n 12 "$out/report.txt"
if grep -qE 'jitted-[0-9]+-[0-9]+\.so +\[\.\] fib$' "$out/report.txt"; then
  echo "perf-jit-demo: perf names fib in the jitted code" >&2
else
  echo "perf-jit-demo: perf's report does not name fib in jitted code (see $out/report.txt)" >&2
  exit 1
fi

# Call graphs through JIT frames: perf record --call-graph dwarf copies each sample's stack, and
# perf report unwinds it with the FDE that the jitdump's JIT_CODE_UNWINDING_INFO record gave
# each function (perf inject writes it into jitted-<pid>-<n>.so as .eh_frame/.eh_frame_hdr).
# fixtures/jit/x86_64/debug.o holds fib alone: perf inject maps each function's unwinding data
# right after its code, over the next function's code, and perf 6.1's libunwind then reads the
# next function's file there; an object of one function has no next function.
graph=$out/call-graph
mkdir -p "$graph"
perf record -k mono --call-graph dwarf -o "$graph/perf.data" -- \
  "$root/bin/safepointkit" run --jitdump "$graph" --call fib --arg 32 "$root/fixtures/jit/x86_64/debug.o"
perf inject --jit -i "$graph/perf.data" -o "$graph/perf.jit.data"
perf report -i "$graph/perf.jit.data" --stdio --no-children -g caller --comm java --sort sym 2>/dev/null \
  | grep -v -e '^#' -e '^$' >"$graph/report.txt" || true
grep -m 1 -A 8 '\[\.\] fib$' "$graph/report.txt" || true
# Each sample's stack, innermost first: a fib frame whose caller is fib is a frame perf unwound
# through JIT code with the jitdump's unwinding information.
perf script -i "$graph/perf.jit.data" --comm java -F ip,sym 2>/dev/null >"$graph/stacks.txt" || true
through=$(awk '/^$/ { prev = "" ; next } { if (prev ~ /^fib/ && $2 ~ /^fib/) { n++ } prev = $2 } END { print n + 0 }' "$graph/stacks.txt")
if [ "$through" -gt 0 ]; then
  echo "perf-jit-demo: perf unwound $through fib frames to a fib caller (call graph through JIT frames)" >&2
else
  echo "perf-jit-demo: perf found no caller of fib in jitted code (see $graph/report.txt, $graph/stacks.txt)" >&2
  exit 1
fi

# Source lines: the jitdump's JIT_CODE_DEBUG_INFO record gives fib's rows of debug.o's
# .debug_line, and perf inject writes them into jitted-<pid>-<n>.so as its line table.
perf report -i "$graph/perf.jit.data" --stdio --no-children --comm java --sort sym,srcline 2>/dev/null \
  | grep -v -e '^#' -e '^$' >"$graph/srcline.txt" || true
grep -E '\[\.\] fib +debug\.ll:[0-9]+$' "$graph/srcline.txt" | head -n 8 || true
if grep -qE '\[\.\] fib +debug\.ll:[0-9]+$' "$graph/srcline.txt"; then
  echo "perf-jit-demo: perf gives fib's samples source lines of debug.ll" >&2
else
  echo "perf-jit-demo: perf gave fib no source lines (see $graph/srcline.txt)" >&2
  exit 1
fi
