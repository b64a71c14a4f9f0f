#!/usr/bin/env bash
# Patching costs (PatchBenchmark): a call of g through its stub, after relinking, and a static
# direct call, per call; one relink (two aligned sites); one whole-sled rewrite at a safepoint;
# one atomic sled retarget.
#
#   scripts/bench-patch.sh [JMH OPTIONS...]       about 1 minute on 2 cores
#
# Writes target/bench/patch.json and prints the median and spread in ns per operation.
source "$(dirname "$0")/bench-common.sh"
jmh PatchBenchmark patch "$@"
