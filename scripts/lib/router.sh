# shellcheck shell=bash
# Sourced by the benchmarks. router_namespaces NAME makes three network namespaces:
# generator NAME-gen (g0 198.18.0.1) ↔ (r0 198.18.0.2) router NAME-rtr (r1 198.18.1.1) ↔
# (s0 198.18.1.2) server NAME-srv. Two queues per veth on the generator's side (one per CPU);
# the generator's sources (198.19.0.0/16) route back to it from the router and the server,
# and the router's reverse-path filter is off (its sources are not on g0's subnet).
router_namespaces() {
  local n=$1 ns
  for ns in gen rtr srv; do
    ip netns add "$n-$ns"
    ip -n "$n-$ns" link set lo up
  done
  ip link add g0 netns "$n-gen" numtxqueues 2 numrxqueues 2 type veth \
    peer r0 netns "$n-rtr" numtxqueues 2 numrxqueues 2
  ip link add r1 netns "$n-rtr" type veth peer s0 netns "$n-srv"
  ip -n "$n-gen" addr add 198.18.0.1/24 dev g0
  ip -n "$n-rtr" addr add 198.18.0.2/24 dev r0
  ip -n "$n-rtr" addr add 198.18.1.1/24 dev r1
  ip -n "$n-srv" addr add 198.18.1.2/24 dev s0
  ip -n "$n-gen" link set g0 up
  ip -n "$n-rtr" link set r0 up
  ip -n "$n-rtr" link set r1 up
  ip -n "$n-srv" link set s0 up
  ip netns exec "$n-rtr" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.r0.rp_filter=0
  ip -n "$n-rtr" route add 198.19.0.0/16 via 198.18.0.1
  ip -n "$n-srv" route add 198.19.0.0/16 via 198.18.1.1
}
