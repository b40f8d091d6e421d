#!/usr/bin/env bash
# Runs every test: the unit tests of every crate and the integration tests, which send real
# packets between throwaway network namespaces (tests/), against pcn-iptables and against
# iptables-legacy, the reference. Needs root. Exits non-zero when anything fails.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -- legacy       # extra arguments go to the test binaries (a filter here)
#   TEST_THREADS=2 bash scripts/test.sh  # fewer tests at once (default 4)
#   KERNEL_MATRIX=0 bash scripts/test.sh # without the kernel matrix
#
# After the full suite, scripts/kernel-matrix.sh runs the main scenarios (`::pcn`) and the
# verifier budget test on Debian 12's 6.1 and 6.12 kernels, each in QEMU, and again on this
# machine's kernel (about 10 minutes in all); a kernel that fails fails this script. It is
# skipped when arguments (a filter) are given, unless KERNEL_MATRIX=1.
#
# The integration tests name every test `<scenario>::legacy` (the reference run),
# `<scenario>::pcn` (the same scenario on pcn-iptables) or `<scenario>::diff_pcn` (both side by
# side, verdicts and listings compared).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root (network namespaces, XDP/TC programs, bpffs pins)" >&2
  exit 1
fi

bash scripts/setup.sh

echo "test.sh: cargo build --release"
cargo build --release

export PCN_IPTABLES="${PCN_IPTABLES:-$PWD/target/release/pcn-iptables}"
if [ ! -x "$PCN_IPTABLES" ]; then
  echo "test.sh: no pcn-iptables binary at $PCN_IPTABLES after the build" >&2
  exit 1
fi
echo "test.sh: testing $PCN_IPTABLES against $(iptables-legacy --version)"

# Everything after a `--` goes to the test binaries.
extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); elif [ $# -gt 0 ]; then extra=("$@"); fi

# The eBPF crate only builds for bpfel-unknown-none (through pcn-iptables/build.rs): not here.
# Two cores: the integration tests mostly wait for packets and timeouts, so 4 at a time is fine.
status=0
cargo test --release --workspace --exclude pcn-iptables-ebpf --no-fail-fast -- \
  --test-threads "${TEST_THREADS:-4}" "${extra[@]}" || status=$?

matrix=${KERNEL_MATRIX:-}
if [ -z "$matrix" ]; then
  if ((${#extra[@]})); then matrix=0; else matrix=1; fi
fi
if [ "$matrix" = 1 ]; then
  echo "test.sh: the kernel matrix (scripts/kernel-matrix.sh)"
  bash scripts/kernel-matrix.sh || status=1
fi

leftover=$(ip netns list 2>/dev/null | grep -c '^pcnt-' || true)
if [ "$leftover" -gt 0 ]; then
  echo "test.sh: warning: $leftover test namespace(s) left behind (ip netns list | grep pcnt-)" >&2
fi
if [ "$status" -ne 0 ]; then
  echo "test.sh: FAILED" >&2
  exit "$status"
fi
echo "test.sh: all tests passed"
