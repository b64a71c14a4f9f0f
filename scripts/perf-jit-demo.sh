#!/usr/bin/env bash
# Shows perf naming JIT-compiled frames and unwinding through them. First runs fib(38), twice,
# from fixtures/jit/x86_64/math.o in the JIT host under `perf record`, with the jitdump listener
# attached, injects the jitdump into the profile and prints the top of `perf report`; then records
# fixtures/jit/x86_64/chain.o (chain_top -> chain_middle -> chain_leaf, three functions of one
# object) with `--call-graph dwarf` and prints the leaf's call graph; then records fib(32) from
# fixtures/jit/x86_64/debug.o the same way and prints fib's source lines. Exits 0 when the report
# names fib inside the jitted code, perf unwound chain_leaf frames to chain_middle and those to
# chain_top, and gave fib's samples lines of debug.ll, 1 when any is missing. Needs linux-perf
# (apt-get install linux-perf) and a kernel that lets this user sample
# (kernel.perf_event_paranoid <= 2). cli's PerfIT checks the call chain in the build.
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
# perf report unwinds it with the unwinding data that the jitdump's JIT_CODE_UNWINDING_INFO records
# gave each function (perf inject writes it into jitted-<pid>-<n>.so as .eh_frame/.eh_frame_hdr).
# chain.o's three functions each get the whole object's .eh_frame, laid out at one address past
# the object's code (see JitdumpUnwinding), so each of them is unwound, not only the last.
# --no-inline: perf script would otherwise run addr2line over libjvm.so for the JVM's frames.
chain=$out/chain
mkdir -p "$chain"
perf record -k mono --call-graph dwarf -o "$chain/perf.data" -- \
  "$root/bin/safepointkit" run --jitdump "$chain" --call chain_top --arg 20000000 "$root/fixtures/jit/x86_64/chain.o"
perf inject --jit -i "$chain/perf.data" -o "$chain/perf.jit.data"
perf report --no-inline -i "$chain/perf.jit.data" --stdio --no-children -g caller --comm java --sort sym 2>/dev/null \
  | grep -v -e '^#' -e '^$' >"$chain/report.txt" || true
grep -m 1 -A 8 '\[\.\] chain_leaf$' "$chain/report.txt" || true
# Each sample's stack, innermost first: chain_leaf, then chain_middle, then chain_top is a stack
# perf unwound through two JIT functions, each with its own FDE.
perf script --no-inline -i "$chain/perf.jit.data" --comm java -F ip,sym 2>/dev/null >"$chain/stacks.txt" || true
read -r leaf through < <(awk '/^$/ { n = 0; next }
  { n++; sym[n] = $2 }
  n == 1 && $2 == "chain_leaf" { leaves++ }
  n == 3 && sym[1] == "chain_leaf" && sym[2] == "chain_middle" && $2 == "chain_top" { chains++ }
  END { print leaves + 0, chains + 0 }' "$chain/stacks.txt")
if [ "$through" -gt 0 ]; then
  echo "perf-jit-demo: perf unwound $through of $leaf chain_leaf samples to chain_middle and on to chain_top (call graph through JIT frames)" >&2
else
  echo "perf-jit-demo: perf found no chain_middle -> chain_leaf call in jitted code (see $chain/report.txt, $chain/stacks.txt)" >&2
  exit 1
fi

# fib(32) from debug.o, for its source lines (--call-graph dwarf too, as a user would record).
graph=$out/call-graph
mkdir -p "$graph"
perf record -k mono --call-graph dwarf -o "$graph/perf.data" -- \
  "$root/bin/safepointkit" run --jitdump "$graph" --call fib --arg 32 "$root/fixtures/jit/x86_64/debug.o"
perf inject --jit -i "$graph/perf.data" -o "$graph/perf.jit.data"

# Source lines: the jitdump's JIT_CODE_DEBUG_INFO record gives fib's rows of debug.o's
# .debug_line, and perf inject writes them into jitted-<pid>-<n>.so as its line table. perf script
# prints each fib sample's line (perf report --sort srcline would look up every JVM sample's
# line too, with addr2line over libjvm.so, for minutes).
perf script --no-inline -i "$graph/perf.jit.data" --comm java -G -S fib -F ip,sym,srcline 2>/dev/null \
  >"$graph/srcline.txt" || true
grep -oE '^ *debug\.ll:[0-9]+$' "$graph/srcline.txt" | sort | uniq -c | sort -rn | head -n 8 || true
if grep -qE '^ *debug\.ll:[0-9]+$' "$graph/srcline.txt"; then
  echo "perf-jit-demo: perf gives fib's samples source lines of debug.ll" >&2
else
  echo "perf-jit-demo: perf gave fib no source lines (see $graph/srcline.txt)" >&2
  exit 1
fi
