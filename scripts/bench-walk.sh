#!/usr/bin/env bash
# Walk and scan a real 10,000-frame JIT stack with four roots per frame (StackWalkBenchmark):
# scan reads every root slot, relocate rewrites each through RootRelocator.
#
#   scripts/bench-walk.sh [JMH OPTIONS...]       about 1 minute on 2 cores
#
# Writes target/bench/walk.json and prints the median and spread per walk of 10,002 frames
# (divide by 10,002 for a frame, by 40,008 for a root).
source "$(dirname "$0")/bench-common.sh"
jmh StackWalkBenchmark walk "$@"
