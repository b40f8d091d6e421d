#!/usr/bin/env bash
# The kernel matrix: runs a subset of the integration tests (the `::pcn` runs of the main
# scenarios, and tests/budget.rs, which prints every program's verified instructions) on
# several kernels: Debian 12's newest 6.1 and 6.12 kernels, each booted in QEMU (TCG, no KVM
# here) with virtme-ng sharing this machine's root file system, and this machine's own kernel,
# directly. Needs root. Exits non-zero when any kernel fails.
#
#   bash scripts/kernel-matrix.sh                      # every kernel: 6.1 6.12 host
#   KERNELS="6.12" bash scripts/kernel-matrix.sh       # some of them (6.1, 6.12, host, or an
#                                                      #   exact linux-image-*-amd64 package)
#   bash scripts/kernel-matrix.sh -- input limit       # only the subset's tests whose
#                                                      #   `target::name` contains a word
#
# Installs what it needs (qemu-system-x86, busybox-static, python3-venv; virtme-ng in a venv;
# the kernel packages, fetched with `apt-get download` and unpacked with `dpkg -x`), all under
# $KERNEL_MATRIX_CACHE (default /var/cache/pcn-iptables/kernel-matrix), keyed by version, so a
# second run reuses them. Nothing is installed into /boot.
#
# Writes bench/results/kernel-matrix.md (the table) and bench/results/kernel-insns.tsv
# (kernel, program, verified_insns); logs of every kernel go to target/kernel-matrix/<kernel>/.
#
# Knobs: VM_CPUS (2), VM_MEMORY (3G), VM_TIMEOUT (seconds per VM, 1800), MATRIX_TEST_THREADS (2),
# KEEP_GOING=1 (run the rest of a kernel's tests even when the first install failed there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KERNELS=${KERNELS:-"6.1 6.12 host"}
CACHE=${KERNEL_MATRIX_CACHE:-/var/cache/pcn-iptables/kernel-matrix}
VNG_VERSION=1.42
VM_CPUS=${VM_CPUS:-2}
VM_MEMORY=${VM_MEMORY:-3G}
VM_TIMEOUT=${VM_TIMEOUT:-1800}
MATRIX_TEST_THREADS=${MATRIX_TEST_THREADS:-2}
KEEP_GOING=${KEEP_GOING:-0}
OUT=$ROOT/target/kernel-matrix
RESULTS=$ROOT/bench/results

# The subset: test target, then its tests (exact names). The budget test first: when the first
# install fails on a kernel, the rest is not run there (every test would fail the same way).
SUBSET=(
  "budget verified_insns_and_install_time"
  "input input_by_source::pcn input_by_port::pcn input_delete_restores::pcn"
  "output output_by_destination_and_port::pcn output_replies_and_policy::pcn"
  "forward forward_by_address_and_port::pcn"
  "reject reject_input::pcn reject_forward::pcn reject_output::pcn"
  "classic_tc output_and_reject_on_the_classic_hook"
  "log log_and_go_on::pcn"
  "limit limit_only_where_reached::pcn"
  "conntrack server_firewall::pcn"
  "restore scale_16384_rules::pcn"
  "lifecycle uninstall_removes_programs_links_and_state"
  "nat masquerade_out::pcn published_port::pcn icmp_through_nat::pcn output_dnat::pcn"
  "mangle output_marks_and_tos_route_again::pcn a_connection_mark_routes_a_connection_again::pcn prerouting_marks_and_tos_route_forwarded_packets::pcn"
  "owner owner_matches_the_sockets_owner::pcn suppl_groups_match_the_files_groups::pcn"
)

filter=()
if [ "${1:-}" = "--" ]; then shift; fi
filter=("$@")

log() { echo "kernel-matrix: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (network namespaces, XDP/TC programs, bpffs pins)"
  exit 1
fi

# ---- what is needed -------------------------------------------------------------------------
need_vm=0
for k in $KERNELS; do [ "$k" = host ] || need_vm=1; done

if [ "$need_vm" = 1 ]; then
  debs=()
  for p in qemu-system-x86 busybox-static python3-venv; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || debs+=("$p")
  done
  if ((${#debs[@]})); then
    log "installing ${debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  fi
  VENV=$CACHE/venv-virtme-ng-$VNG_VERSION
  mkdir -p "$CACHE/kernels"
  exec 9>"$CACHE/.lock" # one installer at a time (other worktrees share the cache)
  flock 9
  if [ ! -x "$VENV/bin/vng" ]; then
    log "installing virtme-ng $VNG_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "virtme-ng==$VNG_VERSION"
  fi
  exec 9>&-
fi

# The newest package of a series that apt offers (after an update if it offers none).
newest_package() {
  local re=$1 p
  p=$(apt-cache search --names-only "$re" | awk '{print $1}' | grep -E "$re" | sort -V | tail -1)
  if [ -z "$p" ]; then
    apt-get update -qq
    p=$(apt-cache search --names-only "$re" | awk '{print $1}' | grep -E "$re" | sort -V | tail -1)
  fi
  [ -n "$p" ] || { log "apt offers no package matching $re"; return 1; }
  echo "$p"
}

# Unpacks the kernel package $1 under $CACHE/kernels/<package>_<version> (once; `~` made `_`,
# which virtme-ng refuses in paths); prints the directory.
fetch_kernel() {
  local pkg=$1 version dir tmp
  version=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ {print $2; exit}')
  [ -n "$version" ] || { log "no version of $pkg"; return 1; }
  dir=$CACHE/kernels/${pkg}_${version//\~/_}
  # Another run (another worktree) may be fetching it too.
  exec 9>"$CACHE/kernels/.lock"
  flock 9
  if [ ! -e "$dir/.complete" ]; then
    log "fetching $pkg $version"
    tmp=$(mktemp -d "$CACHE/kernels/.fetch.XXXXXX")
    chown _apt "$tmp" 2>/dev/null || true # apt downloads as _apt where it can
    (cd "$tmp" && apt-get download -q "$pkg=$version" >/dev/null) || return 1
    rm -rf "$dir"
    dpkg -x "$tmp"/*.deb "$dir" || return 1
    rm -rf "$tmp"
    depmod -b "$dir" "$(basename "$dir"/lib/modules/*)" || return 1
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# ---- the test binaries ----------------------------------------------------------------------
log "building (cargo build --release; cargo test --release --no-run)"
cargo build --release -q
export PCN_IPTABLES=${PCN_IPTABLES:-$ROOT/target/release/pcn-iptables}
# The same packages and flags as scripts/test.sh, so nothing is rebuilt after it.
executables=$(cargo test --release --workspace --exclude pcn-iptables-ebpf --no-run -q \
  --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')

mkdir -p "$OUT" "$RESULTS"
# The plan: one line per test target, `executable test...`, the filter applied.
plan=$OUT/plan
: >"$plan"
for entry in "${SUBSET[@]}"; do
  read -r target tests <<<"$entry"
  exe=$(awk -v t="$target" '$1 == t {print $2}' <<<"$executables")
  [ -n "$exe" ] || { log "no test binary for $target"; exit 1; }
  keep=()
  for t in $tests; do
    if ((${#filter[@]} == 0)); then keep+=("$t"); continue; fi
    for f in "${filter[@]}"; do
      if [[ "$target::$t" == *"$f"* ]]; then keep+=("$t"); break; fi
    done
  done
  ((${#keep[@]} == 0)) || echo "$target $exe ${keep[*]}" >>"$plan"
done
[ -s "$plan" ] || { log "no test of the subset matches: ${filter[*]}"; exit 1; }

# The runner, the same in a VM and on this machine: runs the plan, writing to $1 `results`
# (target, test, ok|FAILED|not-run), one log per target, `uname` and `done`. In a VM ($2 is
# the kernel's unpacked package) it first sets up what virtme-ng's guest lacks.
cat >"$OUT/run-plan.sh" <<'EOF'
#!/bin/bash
out=$1 kdir=${2:-}
exec >"$out/runner.log" 2>&1
set -x
if [ -n "$kdir" ]; then
  # virtme-ng links /lib/modules/<release> to the unpacked package (shared with --rodir).
  ls -d "/lib/modules/$(uname -r)/kernel" "$kdir/boot"
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
  for d in /run /tmp; do
    touch "$d/.rw" 2>/dev/null || mount -t tmpfs tmpfs "$d"
  done
  mkdir -p /run/netns
  modprobe veth
  export PCN_INSTALL_SECS_MAX=off
fi
uname -r >"$out/uname"
: >"$out/results"
skip=0
while read -r target exe tests; do
  if [ "$skip" = 1 ]; then
    for t in $tests; do printf '%s\t%s\tnot-run\n' "$target" "$t" >>"$out/results"; done
    continue
  fi
  # shellcheck disable=SC2086
  timeout -k 10 1200 "$exe" --exact --test-threads "$THREADS" --show-output $tests \
    >"$out/$target.log" 2>&1 </dev/null
  for t in $tests; do
    r=$(grep -E "^test $t \.\.\. " "$out/$target.log" | awk '{print $NF}' | tail -1)
    printf '%s\t%s\t%s\n' "$target" "$t" "${r:-FAILED}" >>"$out/results"
  done
  if [ "$target" = budget ] && [ "$KEEP_GOING" != 1 ] &&
    grep -q "first install failed" "$out/$target.log"; then
    skip=1
  fi
done <"$PLAN"
touch "$out/done"
EOF

# ---- the kernels ----------------------------------------------------------------------------
run_kernel() {
  local k=$1 pkg dir dest start vmlinuz
  dest=$OUT/$k
  rm -rf "$dest"
  mkdir -p "$dest"
  start=$(date +%s)
  if [ "$k" = host ]; then
    log "host ($(uname -r)): running the subset directly"
    THREADS=$MATRIX_TEST_THREADS KEEP_GOING=$KEEP_GOING PLAN=$plan bash "$OUT/run-plan.sh" "$dest" || true
  else
    case $k in
      6.1) pkg=$(newest_package '^linux-image-6\.1\.0-[0-9]+-amd64$') || return 1 ;;
      6.12) pkg=$(newest_package '^linux-image-6\.12\.[0-9]+\+deb12-amd64$') || return 1 ;;
      linux-image-*-amd64) pkg=$k ;;
      *) log "unknown kernel $k (6.1, 6.12, host or linux-image-*-amd64)"; return 1 ;;
    esac
    dir=$(fetch_kernel "$pkg") || { log "$k: could not fetch $pkg"; return 1; }
    apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ {print $2; exit}' >"$dest/version"
    vmlinuz=$(ls "$dir"/boot/vmlinuz-*)
    log "$k: booting $(basename "$vmlinuz") in QEMU (TCG, $VM_CPUS CPUs, $VM_MEMORY)"
    # vng exits 255 even when the guest command succeeds: the results are in $dest.
    PATH=$VENV/bin:$PATH timeout -k 30 "$VM_TIMEOUT" vng --run "$vmlinuz" --disable-kvm \
      --cpus "$VM_CPUS" --memory "$VM_MEMORY" --rwdir "$dest" --rodir "$CACHE/kernels" --verbose \
      --exec "PCN_IPTABLES=$PCN_IPTABLES THREADS=$MATRIX_TEST_THREADS KEEP_GOING=$KEEP_GOING PLAN=$plan bash $OUT/run-plan.sh $dest $dir" \
      </dev/null >"$dest/console.log" 2>&1 || true
  fi
  echo $(($(date +%s) - start)) >"$dest/seconds"
  log "$k: done in $(cat "$dest/seconds") s"
}

# A kernel that could not even be tried leaves no `done`: the report marks it failed.
# A guest kernel that panics is booted once more, and the report says so: under TCG the 6.12
# guest once took an int3 oops in __netif_receive_skb_core, at a static key being patched
# (most likely TCG running code it had translated before the patch; an eBPF program cannot
# raise it), while pcn-iptables attached and traffic flowed.
for k in $KERNELS; do
  run_kernel "$k" || true
  d=$OUT/$k
  if [ "$k" != host ] && [ ! -e "$d/done" ] && grep -q "Kernel panic" "$d/console.log" 2>/dev/null; then
    panic=$(grep -m1 -E "Oops|BUG:|Kernel panic" "$d/console.log" | sed 's/^\[[^]]*\] //')
    mv "$d/console.log" "$OUT/$k-panic.log"
    log "$k: the guest kernel panicked ($panic): booting it once more"
    run_kernel "$k" || true
    mv "$OUT/$k-panic.log" "$d/console-panic.log"
    echo "$panic" >"$d/retried"
  fi
done

# ---- the report -----------------------------------------------------------------------------
status=0
# shellcheck disable=SC2086 # one argument per kernel
python3 scripts/kernel-matrix-report.py "$OUT" "$RESULTS" $KERNELS || status=$?
log "logs in $OUT/<kernel>/; table in bench/results/kernel-matrix.md"
exit $status
