#!/usr/bin/env bash
# Installs from Debian what the tests use of LLVM 19 when any of it is missing; does nothing when
# all is present: the tools the tests and the fixture script run (llvm-19: llc, opt, llvm-readobj,
# llvm-mc, llvm-objcopy, llvm-config; lld-19: ld.lld) and the shared library the run-time
# compiler opens (libllvm19: libLLVM.so.19.1); and for the unwinding tests, the C++ compiler that
# builds their runtime (g++ with libstdc++-12-dev, the headers and link library of Debian 12's
# g++ 12) and the process unwinder the host registers JIT code with (libgcc-s1: libgcc_s.so.1);
# and gdb, which the integration tests of the GDB JIT interface (cli's GdbIT) run, and perf
# (linux-perf), which cli's PerfIT runs to profile JIT code through a jitdump.
# Each file is checked, not only a command name.
set -euo pipefail
. "$(dirname "$0")/apt-files.sh"
apt_files install-llvm \
  /usr/bin/llc-19=llvm-19 \
  /usr/bin/opt-19=llvm-19 \
  /usr/bin/llvm-readobj-19=llvm-19 \
  /usr/bin/llvm-mc-19=llvm-19 \
  /usr/bin/llvm-objcopy-19=llvm-19 \
  /usr/bin/llvm-config-19=llvm-19 \
  /usr/bin/ld.lld-19=lld-19 \
  "/usr/lib/$multiarch/libLLVM.so.19.1=libllvm19" \
  /usr/bin/g++=g++ \
  /usr/include/c++/12/cstdint=libstdc++-12-dev \
  "/usr/lib/gcc/$multiarch/12/libstdc++.so=libstdc++-12-dev" \
  "/lib/$multiarch/libgcc_s.so.1=libgcc-s1" \
  /usr/bin/gdb=gdb \
  /usr/bin/perf=linux-perf
