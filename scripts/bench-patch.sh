#!/usr/bin/env bash
# Patching costs (PatchBenchmark): a call of g through its stub, after relinking, and a static
# direct call, per call; one relink (two aligned sites); a relink of 1,000 sites of one function
# followed by the safepoint that rewrites the unaligned ones; one whole-sled rewrite at a
# safepoint; one atomic sled retarget.
#
#   scripts/bench-patch.sh [JMH OPTIONS...]       about 1 minute on 2 cores
#
# Writes target/bench/patch.json and prints the median and spread in ns per operation.
source "$(dirname "$0")/bench-common.sh"
jmh PatchBenchmark patch "$@"
