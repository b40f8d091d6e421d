#!/usr/bin/env bash
# Rule-update latency of pcn-iptables against iptables-legacy and iptables-nft, in one run:
# the first command in a fresh namespace (pcn-iptables' install); then, with N rules loaded
# for N = 100, 1,000, 5,000, 10,000, 16,384 (pcn-iptables' limit per chain):
#   restore   loading the N rules into a fresh namespace (one iptables-restore)
#   warm      the same restore again, into the namespace where they run
#   -D, -A    deleting the last rule, then appending it back (one command each)
#   script    100 commands in a row as a script issues them (25 rounds of -A, -I 1, -R 1, -D),
#             total time
#   noflush   iptables-restore --noflush replacing 3 chains of 100 rules in a ruleset of N
#             rules spread over chains of 100 (what kube-proxy does every sync)
#   nat       the same in the nat table: N DNAT rules in chains of 100 reached from
#             PREROUTING, as kube-proxy's KUBE-SVC-* chains, 3 of them replaced; timed at
#             the second sync after the restore, as syncs follow each other (the first may
#             grow the arrays of the slot the restore left, an RCU grace period)
# Every measurement runs in a fresh network namespace of its own; times are medians of
# REPEATS runs, measured inside the namespace (`ip netns exec` itself not counted). Also
# prints the kernel memory pcn-iptables' maps take (bpftool's memlock), with its per-CPU part
# and what it comes to at 2, 16 and 64 CPUs. A benchmark: it prints numbers, it does not pass
# or fail.
#
#   bash scripts/bench-restore.sh                      # everything, 5 runs each
#   REPEATS=3 SIZES="100 10000" bash scripts/bench-restore.sh
#
# The rule sets follow the bpf-iptables paper's (Miano et al., SIGCOMM CCR 2019): every rule
# combines a source and a destination prefix (/8 to /32), a protocol, a destination port and,
# for a third of them, a source port range, all drawn by a fixed pseudo-random sequence.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=${REPEATS:-5}
SIZES=${SIZES:-"100 1000 5000 10000 16384"}
NS_PREFIX="pcnbench-$$"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-restore.sh: run as root (network namespaces, XDP/TC programs)" >&2
  exit 1
fi
for cmd in iptables-legacy-restore iptables-nft-restore bpftool; do
  if ! command -v "$cmd" >/dev/null; then
    echo "bench-restore.sh: installing iptables and bpftool"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends iptables bpftool >/dev/null
    break
  fi
done
PCN=$PWD/target/release/pcn-iptables
work=$(mktemp -d)

cleanup() {
  for ns in $(ip netns list | awk -v p="$NS_PREFIX" 'index($1, p) == 1 {print $1}'); do
    ip netns exec "$ns" "$PCN" --uninstall 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --quiet 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

# The restore file of $1 rules. A fixed pseudo-random sequence picks each rule's fields; the last
# rule is the one -D deletes and -A appends back.
ruleset() {
  awk -v n="$1" 'BEGIN {
    x = 12345
    printf "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    split("8 16 24 32", lens, " ")
    for (i = 0; i < n; i++) {
      x = (x * 16807) % 2147483647; r = x  # Park-Miller: exact in doubles
      slen = lens[int(r / 7) % 4 + 1]; dlen = lens[int(r / 29) % 4 + 1]
      printf "-A INPUT -s %s -d %s", prefix(10, i, slen), prefix(172, int(r / 3) % 65536, dlen)
      proto = (r % 2) ? "tcp" : "udp"
      printf " -p %s -m %s", proto, proto
      if (r % 3 == 0) printf " --sport %d:%d", 1024 + r % 1000, 2047 + r % 1000
      printf " --dport %d", 1 + int(r / 11) % 65535
      printf " -j %s\n", (i % 10 == 9) ? "ACCEPT" : "DROP"
    }
    printf "COMMIT\n"
  }
  # A prefix of length len, numbered i, under first.0.0.0/8.
  function prefix(first, i, len,    a, b, c) {
    a = int(i / 65536) % 256; b = int(i / 256) % 256; c = i % 256
    if (len == 8) return first ".0.0.0/8"
    if (len == 16) return first "." (i % 256) ".0.0/16"
    if (len == 24) return first "." b "." c ".0/24"
    return first "." a "." b "." c "/32"
  }'
}

# The same rules spread over user chains of 100 (SVC-0, SVC-1, ...), each reached from INPUT by
# its destination /24, as kube-proxy's KUBE-SVC-* chains are.
chained() {
  ruleset "$1" | awk '
    /^-A INPUT/ {
      c = int(n / 100); n++
      if (!(c in seen)) { seen[c] = 1; chains[++k] = c }
      sub(/^-A INPUT/, "-A SVC-" c); rules[c] = rules[c] $0 "\n"; next
    }
    /^COMMIT/ {
      for (i = 1; i <= k; i++) printf ":SVC-%d - [0:0]\n", chains[i]
      for (i = 1; i <= k; i++) printf "-A INPUT -d 198.19.%d.%d/32 -j SVC-%d\n", int(chains[i] / 256), chains[i] % 256, chains[i]
      for (i = 1; i <= k; i++) printf "%s", rules[chains[i]]
      print; next
    }
    { print }'
}

# A --noflush restore replacing the rules of chains SVC-0..2 (declaring a chain flushes it).
noflush_change() {
  awk 'BEGIN {
    print "*filter"
    for (c = 0; c < 3; c++) printf ":SVC-%d - [0:0]\n", c
    for (c = 0; c < 3; c++) for (i = 0; i < 100; i++)
      printf "-A SVC-%d -s 198.18.%d.%d/32 -p tcp --dport %d -j DROP\n", c, c, i, 1000 + i
    print "COMMIT"
  }'
}

# A nat table of $1 DNAT rules in chains of 100 (SVC-0, SVC-1, ...), each reached from
# PREROUTING by its service address, as kube-proxy's KUBE-SVC-* chains are.
nat_ruleset() {
  awk -v n="$1" 'BEGIN {
    print "*nat"
    for (c = 0; c < n / 100; c++) printf ":SVC-%d - [0:0]\n", c
    for (c = 0; c < n / 100; c++)
      printf "-A PREROUTING -d 198.19.%d.%d/32 -p tcp --dport 80 -j SVC-%d\n", int(c / 256), c % 256, c
    for (i = 0; i < n; i++)
      printf "-A SVC-%d -s 10.%d.%d.0/24 -p tcp -j DNAT --to-destination 198.18.0.%d:8080\n",
        int(i / 100), int(i / 65536), int(i / 256) % 256, i % 100 + 1
    print "COMMIT"
  }'
}

# A --noflush restore replacing the nat rules of chains SVC-0..2, with sources 10.$1.*.
nat_change() {
  awk -v net="$1" 'BEGIN {
    print "*nat"
    for (c = 0; c < 3; c++) printf ":SVC-%d - [0:0]\n", c
    for (c = 0; c < 3; c++) for (i = 0; i < 100; i++)
      printf "-A SVC-%d -s 10.%d.%d.0/24 -p tcp -j DNAT --to-destination 198.18.1.%d:9090\n", c, net, i, i + 1
    print "COMMIT"
  }'
}

# 100 commands of tool $1 in a row: 25 rounds of -A, -I 1, -R 1 and -D (of the appended rule).
script() {
  local i
  for ((i = 0; i < 25; i++)); do
    echo "$1 -A INPUT -s 198.18.1.$i/32 -p tcp --dport 80 -j DROP"
    echo "$1 -I INPUT 1 -s 198.18.2.$i/32 -p udp --dport 53 -j ACCEPT"
    echo "$1 -R INPUT 1 -s 198.18.3.$i/32 -p udp --dport 53 -j ACCEPT"
    echo "$1 -D INPUT -s 198.18.1.$i/32 -p tcp --dport 80 -j DROP"
  done
}

# Seconds (wall clock) `$2...` takes inside namespace $ns with stdin from file $1; exits on
# failure.
timed() {
  local input=$1 out
  shift
  out=$(ip netns exec "$ns" bash -c '
    input=$1 err=$2; shift 2
    start=$EPOCHREALTIME
    "$@" <"$input" >/dev/null 2>"$err" || { cat "$err" >&2; exit 1; }
    end=$EPOCHREALTIME
    echo "$start $end"' timed "$input" "$work/stderr" "$@") || {
    echo "bench-restore.sh: failed in $ns: $*" >&2
    exit 1
  }
  awk '{printf "%.6f\n", $2 - $1}' <<<"$out"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# The map ids a program uses.
prog_maps() { bpftool prog show id "$1" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr , ' '; }

# The 4-byte little-endian value at key $2 of the pinned array $1, as a number (empty if none).
lookup() {
  local bytes
  bytes=$(bpftool map lookup pinned "$1" key "$2" 0 0 0 2>/dev/null | awk '{print $10 $9 $8 $7}')
  [ -n "$bytes" ] && echo $((16#$bytes))
}

# The kernel memory (bpftool's memlock, bytes) of the maps with the ids given.
memlock() {
  local sum=0 m
  for m in "$@"; do
    sum=$((sum + $(bpftool map show id "$m" | sed -n 's/.*memlock \([0-9]*\)B.*/\1/p')))
  done
  echo "$sum"
}

# The kernel memory of pcn-iptables' maps in namespace $1: "RUNNING ALL", RUNNING being the
# running generation's maps and the shared ones, ALL adding the previous generation's, which
# stays in the inactive slot (rewritten in place by the next change). The maps are found from
# the XDP program on lo: its pinned directory; there, the shared maps (PCN_*, and the outer maps
# of the build's gen-* directory), and per slot its state (state-SLOT) and the inner maps that
# slot of each outer map holds (the field trie is the same map in both).
pcn_memory() {
  local entry m dir="" active slot id outer
  entry=$(ip netns exec "$1" bpftool net show dev lo |
    awk '{for (i = 1; i < NF; i++) if ($i == "id") print $(i + 1)}' | head -1)
  for m in $(prog_maps "$entry"); do
    dir=$(bpftool -f map show id "$m" | awk '$1 == "pinned" && /PCN_ACTIVE$/ {print $2}')
    [ -n "$dir" ] && break
  done
  dir=$(dirname "$dir")
  active=$(lookup "$dir/PCN_ACTIVE" 0)
  local -A shared=() gen0=() gen1=()
  local outers=("$dir"/gen-*/CHAINS "$dir"/gen-*/ACTIONS "$dir"/gen-*/FIELDS "$dir"/gen-*/BITMAPS)
  for m in "$dir"/PCN_* "$dir"/COUNTERS "$dir"/RECENT "$dir"/CONNLIMIT "$dir"/HASHLIMIT "${outers[@]}"; do
    shared[$(bpftool map show pinned "$m" | awk -F: 'NR == 1 {print $1}')]=1
  done
  # The counter pages made so far, the -m recent lists and the -m hashlimit tables.
  for ((slot = 0; slot < 64; slot++)); do
    id=$(lookup "$dir/COUNTERS" "$slot") && shared[$id]=1
  done
  local lists
  lists=$(for outer in RECENT HASHLIMIT; do bpftool map dump pinned "$dir/$outer" 2>/dev/null; done |
    awk '{for (i = 1; i < NF; i++) if ($i == "value:") print $(i + 1) $(i + 2) $(i + 3) $(i + 4)}')
  for id in $lists; do
    id=$(printf '%s' "$id" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
    shared[$((16#$id))]=1
  done
  for slot in 0 1; do
    local -n gen=gen$slot
    id=$(bpftool map show pinned "$dir/state-$slot" 2>/dev/null | awk -F: 'NR == 1 {print $1}')
    [ -n "$id" ] && gen[$id]=1
    # The generation's outer map slots, and its -m connlimit lists if it has any.
    for outer in "${outers[@]}" "$dir/CONNLIMIT"; do
      id=$(lookup "$outer" "$slot") && gen[$id]=1
    done
    unset -n gen
  done
  # The slots share the field trie: every map counted once in the total.
  local -A all=()
  for m in "${!shared[@]}" "${!gen0[@]}" "${!gen1[@]}"; do all[$m]=1; done
  local running=("${!shared[@]}")
  if [ "$active" -eq 0 ]; then running+=("${!gen0[@]}"); else running+=("${!gen1[@]}"); fi
  local -A running_set=()
  for m in "${running[@]}"; do running_set[$m]=1; done
  echo "$(memlock "${!running_set[@]}") $(memlock "${!all[@]}") $(percpu_bytes "${!all[@]}")"
}

# The per-CPU part of the maps with the ids given: each CPU's copy of the values of the per-CPU
# maps (max_entries x the value size rounded up to 8 bytes, as the kernel allocates them).
percpu_bytes() {
  local sum=0 m
  for m in "$@"; do
    sum=$((sum + $(bpftool map show id "$m" | awk '
      NR == 1 { percpu = $2 ~ /^percpu/ }
      { for (i = 1; i < NF; i++) {
        if ($i == "value") v = $(i + 1) + 0
        if ($i == "max_entries") n = $(i + 1) + 0 } }
      END { print (percpu && v && n) ? n * (int((v + 7) / 8) * 8) : 0 }')))
  done
  echo "$sum"
}

mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
kib() { awk -v b="$1" 'BEGIN {printf "%.0f KiB", b / 1024}'; }

declare -A result
tools="legacy nft pcn"
ops="restore warm delete append script noflush nat"
echo "bench-restore.sh: $REPEATS runs per cell, sizes $SIZES; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The first command in a namespace: for pcn-iptables the install (programs verified, maps
# made, links attached), the target being 0.5 s on this machine's kernel.
for tool in $tools; do
  case $tool in legacy) ipt=iptables-legacy ;; nft) ipt=iptables-nft ;; pcn) ipt=$PCN ;; esac
  for ((run = 0; run < REPEATS; run++)); do
    ns=$NS_PREFIX-$tool-first-$run
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    timed /dev/null "$ipt" -A INPUT -p tcp --dport 22 -m limit --limit 3/min -j ACCEPT \
      >>"$work/$tool-first"
    if [ "$tool" = pcn ]; then ip netns exec "$ns" "$PCN" --uninstall; fi
    ip netns del "$ns"
  done
  result[$tool,first]=$(median <"$work/$tool-first")
done
for n in $SIZES; do
  input=$work/rules-$n
  ruleset "$n" >"$input"
  chained "$n" >"$work/chained-$n"
  noflush_change >"$work/noflush"
  nat_ruleset "$n" >"$work/nat-$n"
  nat_change 98 >"$work/nat-sync"
  nat_change 99 >"$work/nat-change"
  last=$(grep '^-A' "$input" | tail -1 | sed 's/^-A //')
  for tool in $tools; do
    case $tool in legacy) ipt=iptables-legacy ;; nft) ipt=iptables-nft ;; pcn) ipt=$PCN ;; esac
    script "$ipt" >"$work/script-$tool"
  done
  # The tools take turns within each run, so that a busy minute of the machine weighs on all
  # three alike.
  for ((run = 0; run < REPEATS; run++)); do
    for tool in $tools; do
      case $tool in legacy) ipt=iptables-legacy ;; nft) ipt=iptables-nft ;; pcn) ipt=$PCN ;; esac
      ns=$NS_PREFIX-$tool-$n-$run
      ip netns add "$ns"
      ip -n "$ns" link set lo up
      timed "$input" "$ipt-restore" >>"$work/$tool-restore-$n"
      timed "$input" "$ipt-restore" >>"$work/$tool-warm-$n"
      # shellcheck disable=SC2086 # the rule's words
      timed /dev/null "$ipt" -D $last >>"$work/$tool-delete-$n"
      # shellcheck disable=SC2086
      timed /dev/null "$ipt" -A $last >>"$work/$tool-append-$n"
      timed /dev/null bash "$work/script-$tool" >>"$work/$tool-script-$n"
      if [ "$tool" = pcn ] && [ "$run" -eq 0 ]; then
        result[mem,$n]=$(pcn_memory "$ns")
      fi
      timed "$work/chained-$n" "$ipt-restore" >/dev/null
      timed "$work/noflush" "$ipt-restore" --noflush >>"$work/$tool-noflush-$n"
      timed "$work/nat-$n" "$ipt-restore" >/dev/null
      timed "$work/nat-sync" "$ipt-restore" --noflush >/dev/null
      timed "$work/nat-change" "$ipt-restore" --noflush >>"$work/$tool-nat-$n"
      if [ "$tool" = pcn ]; then ip netns exec "$ns" "$PCN" --uninstall; fi
      ip netns del "$ns"
    done
  done
  for tool in $tools; do
    for op in $ops; do
      result[$tool,$op,$n]=$(median <"$work/$tool-$op-$n")
    done
  done
  echo "  $n rules: done"
done

ms() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "Median wall-clock time in ms (ratio: pcn-iptables / other; below 1 means pcn-iptables is faster)"
printf "%-8s %-9s %10s %10s %10s %12s %10s\n" rules operation legacy nft pcn pcn/legacy pcn/nft
l=${result[legacy,first]} f=${result[nft,first]} p=${result[pcn,first]}
printf "%-8s %-9s %10s %10s %10s %12s %10s\n" 0 "first -A" "$(ms "$l")" "$(ms "$f")" \
  "$(ms "$p")" "$(ratio "$p" "$l")" "$(ratio "$p" "$f")"
for n in $SIZES; do
  for op in $ops; do
    case $op in delete) label="-D" ;; append) label="-A" ;; script) label="script" ;; *) label=$op ;; esac
    l=${result[legacy,$op,$n]} f=${result[nft,$op,$n]} p=${result[pcn,$op,$n]}
    printf "%-8s %-9s %10s %10s %10s %12s %10s\n" "$n" "$label" "$(ms "$l")" "$(ms "$f")" \
      "$(ms "$p")" "$(ratio "$p" "$l")" "$(ratio "$p" "$f")"
  done
done
echo
echo "Kernel memory of pcn-iptables' maps (bpftool memlock), N rules loaded, on $(nproc) CPUs;"
echo "the per-CPU maps take their per-CPU part once per CPU: shared + per-CPU x CPUs"
printf "%-8s %14s %14s %12s %12s %12s %12s\n" rules running "all (2 gen.)" per-CPU "2 CPUs" \
  "16 CPUs" "64 CPUs"
cpus=$(nproc)
for n in $SIZES; do
  read -r running total percpu <<<"${result[mem,$n]}"
  shared=$((total - percpu * cpus))
  printf "%-8s %14s %14s %12s %12s %12s %12s\n" "$n" "$(mib "$running")" "$(mib "$total")" \
    "$(kib "$percpu")" "$(mib $((shared + 2 * percpu)))" "$(mib $((shared + 16 * percpu)))" \
    "$(mib $((shared + 64 * percpu)))"
done
