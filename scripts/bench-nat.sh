#!/usr/bin/env bash
# The nat table's cost, pcn-iptables against iptables-legacy (netfilter), in one run:
#   first        connections per second through a DNAT router: every packet opens a new
#                connection (random source address in 198.19.0.0/16 and random source port),
#                so every packet goes through the nat chains, gets its mapping and is stored;
#                the rate is the first-packet cost's inverse. The connection table fills
#                within a second (netfilter's and pcn-iptables' both hold 262,144 on this
#                machine) and stays full: new connections then make room by early drop.
#   established  packets per second of 1,024 translated flows (source ports) that already
#                have their connection: rewritten from the stored mapping, no chain walked.
# at N nat rules, N = 1, 1,000, 10,000, kube-proxy style: PREROUTING → KUBE-SERVICES (one rule
# per service) → KUBE-SVC-i → KUBE-SEP-i (DNAT), 3 rules per service; the traffic goes to the
# last service, the worst case for a linear walk. (N = 1: one DNAT rule in PREROUTING.)
#
# trafgen sends 64-byte UDP on both CPUs from a generator namespace to the router namespace,
# which translates the service address to the server's (198.18.1.2:8080) and forwards. The
# rate is what the server receives per second, median of WINDOWS one-second windows after a
# WARMUP, then the median of REPEATS such runs (fresh namespaces each; the firewalls take
# turns), with their range. A run in which a trafgen worker stalled (with XDP on the router's
# veth, its TX ring can fill and the worker exits, halving what is sent) is measured again, up
# to three times. Only translated packets can get there (the router has no route for the
# service addresses). A check per run: in `first`, the DNAT rule counted about
# as many packets as the server received (each is a new connection); in `established`, none.
# The machine's two CPUs are shared by the generator and the router: a firewall that costs more
# per packet leaves fewer packets through. A benchmark prints numbers; it does not pass or fail.
#
#   bash scripts/bench-nat.sh                              # about 12 minutes
#   SIZES="1 10000" REPEATS=1 bash scripts/bench-nat.sh
#
# Needs root. Traffic only flows between network namespaces made here (pcnbn-PID-*), with
# addresses in 198.18.0.0/15; they are removed on exit however the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/router.sh

SIZES=${SIZES:-"1 1000 10000"}
WINDOWS=${WINDOWS:-5}
REPEATS=${REPEATS:-3}
WARMUP=${WARMUP:-2}
P="pcnbn-$$"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-nat.sh: run as root (network namespaces, XDP/TC programs)" >&2
  exit 1
fi
need=()
for p in netsniff-ng iptables; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "bench-nat.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/setup.sh >/dev/null
work=$(mktemp -d)
PCN=$PWD/target/release/pcn-iptables
ln -s "$PCN" "$work/pcn-iptables-restore"

cleanup() {
  local ns
  pkill -INT -f "trafgen -o g0 -c $work" 2>/dev/null && sleep 1
  pkill -KILL -f "trafgen -o g0 -c $work" 2>/dev/null || true
  for ns in $(ip netns list | awk -v p="$P" 'index($1, p) == 1 {print $1}'); do
    ip netns exec "$ns" "$PCN" --uninstall 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cargo build --release --quiet 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

# The three namespaces of scripts/lib/router.sh; the router forwards, and has no route for
# the service addresses.
topology() {
  router_namespaces "$P"
  ip netns exec "$P-rtr" sysctl -qw net.ipv4.ip_forward=1
  # No port is open on the server: no ICMP errors back through the router.
  ip netns exec "$P-srv" sysctl -qw net.ipv4.icmp_msgs_per_sec=0 net.ipv4.icmp_msgs_burst=0
}

services() { # N: the services that make N nat rules (3 each, with the jump from PREROUTING)
  if (($1 == 1)); then echo 1; else echo $((($1 - 1) / 3)); fi
}

vip() { # I: service I's address, in 198.18.128.0/17
  echo "198.18.$((128 + $1 / 256)).$(($1 % 256))"
}

ruleset() { # N
  local n=$1 s i
  s=$(services "$n")
  echo "*nat"
  printf ':%s ACCEPT [0:0]\n' PREROUTING INPUT OUTPUT POSTROUTING
  if ((n == 1)); then
    echo "-A PREROUTING -d $(vip 0)/32 -p udp -m udp --dport 80 -j DNAT --to-destination 198.18.1.2:8080"
  else
    echo ":KUBE-SERVICES - [0:0]"
    for ((i = 0; i < s; i++)); do printf ':KUBE-SVC-%d - [0:0]\n:KUBE-SEP-%d - [0:0]\n' $i $i; done
    echo "-A PREROUTING -j KUBE-SERVICES"
    for ((i = 0; i < s; i++)); do
      echo "-A KUBE-SERVICES -d $(vip $i)/32 -p udp -m udp --dport 80 -j KUBE-SVC-$i"
    done
    for ((i = 0; i < s; i++)); do
      echo "-A KUBE-SVC-$i -j KUBE-SEP-$i"
      echo "-A KUBE-SEP-$i -p udp -m udp -j DNAT --to-destination 198.18.1.2:8080"
    done
  fi
  echo COMMIT
}

tool() { # FW
  if [ "$1" = pcn ]; then echo "$PCN"; else echo iptables-legacy; fi
}

dnat_packets() { # FW N: the packet counter of the DNAT rule the traffic meets
  local chain="KUBE-SEP-$(($(services "$2") - 1))"
  (($2 == 1)) && chain=PREROUTING
  ip netns exec "$P-rtr" "$(tool "$1")" -w -t nat -L "$chain" 1 -v -x -n | awk '{print $1}'
}

server_rx() {
  ip netns exec "$P-srv" awk '/s0:/ {print $3}' /proc/net/dev
}

median() {
  sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# One measurement: FW N MODE; prints "pps check".
measure() {
  local fw=$1 n=$2 mode=$3 s mac restore last sport sa c0 c1 r0 r1 a b rates=() i
  topology
  ruleset "$n" >"$work/rules"
  if [ "$fw" = pcn ]; then restore=$work/pcn-iptables-restore; else restore=iptables-legacy-restore; fi
  ip netns exec "$P-rtr" "$restore" <"$work/rules"
  s=$(services "$n")
  last=$(vip $((s - 1)))
  mac=$(ip -n "$P-rtr" link show r0 | awk '/link\/ether/ {print $2}')
  if [ "$mode" = first ]; then
    sa="198.19.0.0, sa[2:2]=drnd()" sport="drnd(1024, 65535)"
  else
    sa="198.19.0.1" sport="drnd(1024, 2047)"
  fi
  echo "{ eth(da=$mac), ipv4(sa=$sa, da=$last, ttl=64), udp(sp=$sport, dp=80), fill(0, 18) }" \
    >"$work/trafgen.cfg"
  setsid ip netns exec "$P-gen" trafgen -o g0 -c "$work/trafgen.cfg" --cpus 2 -Q -C -S 128KiB \
    >"$work/trafgen.log" 2>&1 &
  sleep "$WARMUP"
  c0=$(dnat_packets "$fw" "$n")
  r0=$(server_rx)
  for ((i = 0; i < WINDOWS; i++)); do
    a=$(server_rx)
    sleep 1
    b=$(server_rx)
    rates+=($((b - a)))
  done
  r1=$(server_rx)
  c1=$(dnat_packets "$fw" "$n")
  pkill -INT -f "trafgen -o g0 -c $work" || true
  sleep 1
  pkill -KILL -f "trafgen -o g0 -c $work" || true
  cleanup_run
  # A trafgen worker whose TX ring the veth did not drain in time exits ("Flushing TX_RING
  # failed"), and the generator sends half as much or nothing: such a run measures trafgen.
  if grep -q "TX_RING failed" "$work/trafgen.log"; then
    echo "0 generator-stalled"
    return
  fi
  awk -v m="$mode" -v c=$((c1 - c0)) -v r=$((r1 - r0)) -v pps="$(printf '%s\n' "${rates[@]}" | median)" 'BEGIN {
    ratio = r > 0 ? c / r : 0
    ok = (m == "first") ? (ratio > 0.9 && ratio < 1.1) : (r > 0 && c < r / 1000)
    printf "%d %s\n", pps, ok ? "ok" : sprintf("DNAT-rule/server=%.3f", ratio)
  }'
}

cleanup_run() {
  local ns
  for ns in gen rtr srv; do
    ip netns exec "$P-$ns" "$PCN" --uninstall 2>/dev/null || true
    ip netns del "$P-$ns"
  done
}

echo "bench-nat.sh: $(uname -r), $(nproc) CPUs; $REPEATS runs of $WINDOWS one-second windows after ${WARMUP} s"
declare -A runs=() pps=() range=() check=()
stalled=0
for n in $SIZES; do
  for mode in first established; do
    for ((r = 0; r < REPEATS; r++)); do
      for fw in legacy pcn; do
        k="$fw $n $mode"
        for ((try = 0; try < 3; try++)); do
          read -r rate ok < <(measure "$fw" "$n" "$mode")
          [ "$ok" = generator-stalled ] || break
          stalled=$((stalled + 1))
          echo "  $mode, $n rules, $fw: trafgen stalled, measuring again" >&2
        done
        runs[$k]="${runs[$k]:-} $rate"
        [ "$ok" = ok ] || check[$k]=$ok
        echo "  $mode, $n rules, $fw: $rate pps ($ok)" >&2
      done
    done
    for fw in legacy pcn; do
      k="$fw $n $mode"
      # shellcheck disable=SC2086 # the runs, one per word
      pps[$k]=$(printf '%s\n' ${runs[$k]} | median)
      # shellcheck disable=SC2086
      range[$k]=$(printf '%s\n' ${runs[$k]} | sort -n |
        awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f–%.0f", lo / 1e3, hi / 1e3}')
    done
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "-" }'; }
kpps() { awk -v v="$1" 'BEGIN { printf "%.0f", v / 1e3 }'; }
first=${SIZES%% *}
echo
echo "kpps, median of $REPEATS runs (range)"
echo
echo "| nat rules | new connections/s: legacy | pcn | pcn ÷ legacy | pcn ÷ pcn@$first | established flows: legacy | pcn | pcn ÷ legacy |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
  cell() { echo "$(kpps "${pps["$1 $n $2"]}") (${range["$1 $n $2"]})"; }
  lf=${pps["legacy $n first"]} pf=${pps["pcn $n first"]}
  le=${pps["legacy $n established"]} pe=${pps["pcn $n established"]}
  echo "| $n | $(cell legacy first) | $(cell pcn first) | $(ratio "$pf" "$lf") | $(ratio "$pf" "${pps["pcn $first first"]}") | $(cell legacy established) | $(cell pcn established) | $(ratio "$pe" "$le") |"
done
echo
if ((${#check[@]})); then
  for k in "${!check[@]}"; do echo "check failed: $k: ${check[$k]}"; done
else
  echo "Every run passed its check (first: the DNAT rule counted what the server received, within 10%; established: it counted none)."
fi
echo "Runs measured again because a trafgen worker stalled: $stalled."
