#!/usr/bin/env bash
# Benchmarks pcn-iptables against iptables-legacy and iptables-nft (issue 7), in this order:
#   1. per-packet cost of the XDP path by BPF_PROG_TEST_RUN, 1 to 16,384 rules in INPUT;
#   2. INPUT packet rate: trafgen → veth → receiver with the rules;
#   3. FORWARD packet rate: client → router with the rules (ip_forward=1) → server;
#   4. a perf profile of the INPUT packet path (baseline, pcn-iptables, iptables-legacy);
# then prints the tables and writes bench/results/latest.md and bench/results/bench.png.
# A benchmark prints numbers: it does not pass or fail on them.
#
#   bash scripts/bench.sh                 # about 10 minutes
#   BENCH_LONG=1 bash scripts/bench.sh    # longer windows and more runs (about 25 minutes)
#
# Knobs (environment):
#   BENCH_PHASES       "cost input forward profile"; a run of some phases reports them with
#                      the results the others left in bench/results
#   BENCH_COST_SIZES   1,10,100,1000,5000,10000,16384
#   BENCH_RATE_SIZES   1 100 1000 10000 16384
#   BENCH_QUIET_WAIT   seconds to wait, at most, before each rate run for other work on the
#                      machine to quiet down (default 5)
#   BENCH_TRAFGEN_OPTS default "-S 128KiB" (see below)
#
# Needs root. Traffic only flows between network namespaces made here (pcnb-PID-*), with
# addresses in 198.18.0.0/15; they are removed on exit however the script ends, after
# `pcn-iptables --uninstall` in each. The host namespace's interfaces and rules are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/router.sh
started=$(date +%s)

if [ "$(id -u)" -ne 0 ]; then
  echo "bench.sh: run as root (network namespaces, XDP, BPF_PROG_TEST_RUN)" >&2
  exit 1
fi

# --- what it needs ------------------------------------------------------------------------
need=()
for p in netsniff-ng iptables nftables gnuplot-nox bpftool iproute2 linux-perf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "bench.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/setup.sh >/dev/null

echo "bench.sh: cargo build --release"
cargo build --release -p pcn-iptables -p pcn-iptables-bench
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BENCH="$TARGET/release/pcn-iptables-bench"
PCN="$TARGET/release/pcn-iptables"

# --- settings -----------------------------------------------------------------------------
PHASES=${BENCH_PHASES:-cost input forward profile}
COST_SIZES=${BENCH_COST_SIZES:-1,10,100,1000,5000,10000,16384}
RATE_SIZES=${BENCH_RATE_SIZES:-1 100 1000 10000 16384}
QUIET_WAIT=${BENCH_QUIET_WAIT:-5}
# trafgen's default TX ring lets more packets be in flight than the socket's send buffer
# holds when the receiving veth runs XDP (its queue fills); trafgen then dies on EAGAIN
# ("Flushing TX_RING failed"). A smaller ring keeps it running; the same for every firewall.
TRAFGEN_OPTS=${BENCH_TRAFGEN_OPTS:--S 128KiB}
if [ -n "${BENCH_LONG:-}" ]; then
  REPEAT=5000000 RUNS=7 WARMUP=2 WINDOW=5 WINDOWS=5
else
  REPEAT=1000000 RUNS=5 WARMUP=1 WINDOW=2 WINDOWS=3
fi
RESULTS="$PWD/bench/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.dat "$RESULTS"/trafgen.log "$RESULTS"/rate.tsv
# Each phase replaces its own results; a run of some phases reports them with what the
# others left.

# --- network namespaces -------------------------------------------------------------------
P="pcnb-$$"
export BENCH_SCRATCH="/run/pcn-iptables/bpffs/bench-$$" # the baseline's maps, ours alone
made=()

cleanup() {
  local ns pids
  for ns in "${made[@]}"; do
    # A generator left behind by an interrupted measurement: it lives in our namespace.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      kill -INT $pids 2>/dev/null || true
      sleep 1
      kill -KILL $pids 2>/dev/null || true
    fi
    ip netns exec "$ns" "$PCN" --uninstall >/dev/null 2>&1 || true
    ip netns del "$ns" 2>/dev/null || true
  done
  made=()
  rm -rf "$BENCH_SCRATCH" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# topology NAME CHAIN: the three namespaces of scripts/lib/router.sh. The rule sets'
# destinations (198.18.128.0/17) are local to the router for INPUT, routed on to the server
# for FORWARD.
topology() {
  local n=$1 chain=$2
  made+=("$n-gen" "$n-rtr" "$n-srv")
  router_namespaces "$n"
  if [ "$chain" = INPUT ]; then
    ip -n "$n-rtr" route add local 198.18.128.0/17 dev lo
  else
    ip netns exec "$n-rtr" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$n-rtr" route add 198.18.128.0/17 via 198.18.1.2
  fi
}

mac_of() { # NS IFACE
  ip -n "$1" link show "$2" | awk '/link\/ether/ {print $2}'
}

# --- 1. per-packet cost -------------------------------------------------------------------
if [[ " $PHASES " == *" cost "* ]]; then
  echo "bench.sh: 1. per-packet cost (BPF_PROG_TEST_RUN)"
  rm -f "$RESULTS"/{cost,insns,fields,conntrack,flowcache}.tsv
  topology "$P-cost" INPUT
  # In the background and waited for, so that a signal reaches our trap at once.
  ip netns exec "$P-cost-rtr" "$BENCH" cost --iface r0 --repeat "$REPEAT" --runs "$RUNS" \
    --sizes "$COST_SIZES" --out "$RESULTS" &
  wait $!
  cleanup
fi

# --- 2./3. packet rate --------------------------------------------------------------------
# One topology per firewall, so that no firewall's leftovers (netfilter tables, XDP) sit in
# another's path; the firewalls take turns at each rule count, so that drifting background
# load spreads over all of them.
FIREWALLS=(baseline pcn legacy nft)
rate_phase() { # CHAIN
  local chain=$1 fw n
  rm -f "$RESULTS/rate-$chain.tsv"
  for fw in "${FIREWALLS[@]}" baseline-skb; do
    topology "$P-$fw" "$chain"
  done
  run() { # FW RULES
    ip netns exec "$P-$1-rtr" "$BENCH" rate --firewall "$1" --chain "$chain" --rules "$2" \
      --gen-ns "$P-$1-gen" --gen-iface g0 --dst-mac "$(mac_of "$P-$1-rtr" r0)" \
      --rx-iface r0 --cpus 2 --trafgen-opts "$TRAFGEN_OPTS" --quiet-wait "$QUIET_WAIT" \
      --warmup "$WARMUP" --window "$WINDOW" --windows "$WINDOWS" --out "$RESULTS" &
    wait $!
  }
  # A run that fails (say, the generator dies) is reported and leaves a gap in the tables.
  run baseline-skb 1 || echo "bench.sh: $chain baseline-skb failed" >&2
  for n in $RATE_SIZES; do
    for fw in "${FIREWALLS[@]}"; do
      run "$fw" "$n" || echo "bench.sh: $chain $fw $n rules failed" >&2
    done
  done
  cleanup
}
if [[ " $PHASES " == *" input "* ]]; then
  echo "bench.sh: 2. INPUT packet rate (veth, trafgen)"
  rate_phase INPUT
fi
if [[ " $PHASES " == *" forward "* ]]; then
  echo "bench.sh: 3. FORWARD packet rate (veth, trafgen, router namespace)"
  rate_phase FORWARD
fi

# --- 4. where the time goes ---------------------------------------------------------------
# perf (software clock: this VM has no hardware counters, so `bpftool prog profile` cannot
# run) samples every CPU while one more INPUT run goes on; the report sums the samples of the
# packet path (trafgen's sends and the receive softirq run in trafgen's and ksoftirqd's names).
profile_run() { # FW RULES
  local fw=$1 n=$2 data="$RESULTS/profile/INPUT-$1-$2.data" pid
  ip netns exec "$P-$fw-rtr" "$BENCH" rate --firewall "$fw" --chain INPUT --rules "$n" \
    --gen-ns "$P-$fw-gen" --gen-iface g0 --dst-mac "$(mac_of "$P-$fw-rtr" r0)" \
    --rx-iface r0 --cpus 2 --trafgen-opts "$TRAFGEN_OPTS" --warmup 2 --window 4 --windows 1 \
    --out "$RESULTS/profile" &
  pid=$!
  sleep 3
  perf record -q -e cpu-clock -a -o "$data" -- sleep 3 >/dev/null 2>&1 || true
  wait "$pid" || true
  perf report -i "$data" --no-children --sort sym --comm trafgen,ksoftirqd/0,ksoftirqd/1 \
    --percentage relative -g none --stdio 2>/dev/null | grep '%' >"${data%.data}.txt" || true
  rm -f "$data" "$data.old"
}
if [[ " $PHASES " == *" profile "* ]]; then
  if command -v perf >/dev/null; then
    echo "bench.sh: 4. profile of the INPUT packet path (perf)"
    mkdir -p "$RESULTS/profile"
    rm -f "$RESULTS"/profile/*
    for fw in baseline pcn legacy; do
      topology "$P-$fw" INPUT
    done
    profile_run baseline 1
    profile_run pcn 1
    profile_run pcn 16384
    profile_run legacy 1000
    cleanup
  else
    echo "bench.sh: no perf (Debian's linux-perf): no profile" >&2
  fi
fi

# --- report -------------------------------------------------------------------------------
command="bash scripts/bench.sh"
[ -n "${BENCH_LONG:-}" ] && command="BENCH_LONG=1 $command"
echo
"$BENCH" report --dir "$RESULTS" --elapsed "$(($(date +%s) - started))" --command "$command"
