#!/usr/bin/env bash
# Installs what building and testing pcn-iptables needs on a fresh Debian 12 machine.
# Idempotent: every step checks first, so a second run takes a second or two.
set -euo pipefail

BPF_LINKER_VERSION=0.10.3
DEB_PACKAGES=(iptables bpftool iproute2 iputils-ping util-linux procps kmod man-db groff-base)

need_debs=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_debs+=("$p")
done
if ((${#need_debs[@]})); then
  echo "setup: installing Debian packages: ${need_debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
fi

# The eBPF crate builds core from source (build-std), so the toolchain needs rust-src.
toolchain=$(cd "$(dirname "$0")/.." && rustup show active-toolchain | cut -d' ' -f1)
if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "setup: adding rust-src to $toolchain"
  rustup component add rust-src --toolchain "$toolchain"
fi

# bpf-linker 0.10.x loads the running toolchain's own libLLVM at run time: no system LLVM needed.
if ! bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
  echo "setup: installing bpf-linker $BPF_LINKER_VERSION (about a minute)"
  cargo install "bpf-linker@$BPF_LINKER_VERSION" --locked --quiet
fi

# Pins live on a bpffs; the tool mounts its own, but bpftool likes /sys/fs/bpf too.
if ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi
echo "setup: ok"
