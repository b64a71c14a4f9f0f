#!/usr/bin/env bash
# Parse throughput over a large .llvm_stackmaps section of real llc-19 output (102,400 records by
# default), with JMH: MB/s and records/s for validation alone and for validation plus reading
# every field (through the views, and through reused cursors), and allocation per parse (-prof gc:
# gc.alloc.rate.norm in B/op; the record index, 4 bytes per record, is all a parse allocates).
#
#   scripts/bench-parse.sh [JMH OPTIONS...]     e.g. -f 3 -i 20 for a longer run
#
# Writes target/bench/parse.json (JMH's JSON) and prints the median and spread of each metric.
source "$(dirname "$0")/bench-common.sh"
[ -f "$bench/large.llvm_stackmaps" ] || scripts/gen-large-stackmap.sh "$bench"
jmh ParseBenchmark parse -p section="$bench/large.llvm_stackmaps" "$@"
