#!/usr/bin/env bash
# Load + link time of the JIT host, with JMH: a typical fixture (fixtures/jit/x86_64/math.o)
# and a generated object of 1,000 functions with 10 stack map call sites each (llc-19 output).
#
#   scripts/bench-load.sh [JMH OPTIONS...]
#
# Writes target/bench/load.json and prints the median and spread of each metric.
source "$(dirname "$0")/bench-common.sh"
generated=$bench/functions-1000
[ -f "$generated/large.o" ] || scripts/gen-large-stackmap.sh "$generated" 1000 10
jmh LoadBenchmark load -p object="$root/fixtures/jit/x86_64/math.o,$generated/large.o" "$@"
