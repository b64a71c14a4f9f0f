#!/usr/bin/env bash
# Installs from Debian what the tests use of LLVM 19 when any of it is missing; does nothing when
# all is present: the tools the tests and the fixture script run (llvm-19: llc, opt, llvm-readobj,
# llvm-mc, llvm-objcopy, llvm-config; lld-19: ld.lld) and the shared library the run-time
# compiler opens (libllvm19: libLLVM.so.19.1). Each file is checked, not only a command name.
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
  "/usr/lib/$multiarch/libLLVM.so.19.1=libllvm19"
