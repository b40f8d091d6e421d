#!/usr/bin/env bash
# A short tour of pcn-iptables on throwaway network namespaces: a client talks to a host, the
# host gets a few rules, and real pings and TCP connections are accepted or dropped by the
# eBPF data plane. Needs root. Touches nothing outside its own namespaces, and removes them
# (after `pcn-iptables --uninstall`) however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (network namespaces, XDP/TC programs)" >&2
  exit 1
fi

bold=$(printf '\033[1m'); green=$(printf '\033[32m'); red=$(printf '\033[31m'); off=$(printf '\033[0m')
[ -t 1 ] || { bold=; green=; red=; off=; }
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }

bash scripts/setup.sh
say "Building pcn-iptables (cargo build --release)"
cargo build --release
PCN="${PCN_IPTABLES:-$PWD/target/release/pcn-iptables}"

HOST="pcndemo-host-$$"
CLIENT="pcndemo-client-$$"
INSIDE="pcndemo-inside-$$"
SERVER_PID=""
NAT_PIDS=""
cleanup() {
  set +e
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  for pid in $NAT_PIDS; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if ip netns list | grep -q "^$HOST\b"; then
    echo
    echo "demo: cleaning up: pcn-iptables --uninstall in the host namespace, then deleting the namespaces"
    ip netns exec "$HOST" "$PCN" --uninstall
  fi
  ip netns del "$CLIENT" 2>/dev/null
  ip netns del "$INSIDE" 2>/dev/null
  ip netns del "$HOST" 2>/dev/null
}
trap cleanup EXIT

# Every firewall command runs inside the host namespace, exactly as a user would type it.
fw() {
  printf '%s[host]# pcn-iptables %s%s\n' "$bold" "$*" "$off"
  ip netns exec "$HOST" "$PCN" -w "$@"
}

ping_test() { # ping_test SRC DST
  if ip netns exec "$CLIENT" ping -n -q -c1 -W1 -I "$1" "$2" >/dev/null 2>&1; then
    echo "  ping $1 -> $2: ${green}answered${off}"
  else
    echo "  ping $1 -> $2: ${red}no answer (dropped)${off}"
  fi
}

tcp_test() { # tcp_test DST PORT
  local reply
  if reply=$(ip netns exec "$CLIENT" timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n1 <&3" 2>/dev/null) \
     && [ -n "$reply" ]; then
    echo "  tcp connect -> $1:$2: ${green}connected${off} (server says: $reply)"
  else
    echo "  tcp connect -> $1:$2: ${red}no connection (dropped)${off}"
  fi
}

say "Two network namespaces joined by a veth pair"
echo "  client ($CLIENT): eth0 198.18.1.1/24 and 198.18.1.3/24"
echo "  host   ($HOST):   eth0 198.18.1.2/24   <- the firewall runs here"
ip netns add "$HOST"
ip netns add "$CLIENT"
ip link add eth0 netns "$CLIENT" type veth peer name eth0 netns "$HOST"
ip -n "$CLIENT" addr add 198.18.1.1/24 dev eth0
ip -n "$CLIENT" addr add 198.18.1.3/24 dev eth0
ip -n "$HOST" addr add 198.18.1.2/24 dev eth0
for ns in "$HOST" "$CLIENT"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done

echo "  starting small TCP servers on the host, ports 22 and 80 (they greet and hang up)"
ip netns exec "$HOST" perl -MIO::Socket::INET -e '
  my @s = map { IO::Socket::INET->new(LocalPort => $_, Listen => 16, ReuseAddr => 1) or die "listen $_: $!" } (22, 80);
  my %port = map { ($_ => $_->sockport) } @s;
  use IO::Select; my $sel = IO::Select->new(@s);
  while (1) { for my $l ($sel->can_read) { my $c = $l->accept or next; print $c "hello from port $port{$l}\n"; close $c } }
' &
SERVER_PID=$!
sleep 0.3

say "No rules yet: everything gets through"
fw -S
ping_test 198.18.1.1 198.18.1.2
ping_test 198.18.1.3 198.18.1.2
tcp_test 198.18.1.2 22
tcp_test 198.18.1.2 80

say "Drop everything from 198.18.1.3, and TCP port 80 from anyone"
fw -A INPUT -s 198.18.1.3 -j DROP
fw -A INPUT -p tcp --dport 80 -j DROP
ping_test 198.18.1.1 198.18.1.2
ping_test 198.18.1.3 198.18.1.2
tcp_test 198.18.1.2 22
tcp_test 198.18.1.2 80

say "The counters saw it: pcn-iptables -L -v -n"
fw -L -v -n

say "Insert an ACCEPT for port 80 in front of the DROP (-I), then delete the source rule (-D)"
fw -I INPUT 1 -p tcp --dport 80 -j ACCEPT
fw -D INPUT -s 198.18.1.3 -j DROP
tcp_test 198.18.1.2 80
ping_test 198.18.1.3 198.18.1.2

say "Default-deny: allow ssh and ping, then -P INPUT DROP"
fw -F INPUT
fw -A INPUT -p tcp --dport 22 -j ACCEPT
fw -A INPUT -p icmp -j ACCEPT
fw -P INPUT DROP
ping_test 198.18.1.1 198.18.1.2
tcp_test 198.18.1.2 22
tcp_test 198.18.1.2 80

say "The ruleset, as iptables would print it: -S and -L -v -n --line-numbers"
fw -S
fw -L -v -n --line-numbers

say "The host as a NAT gateway: a private network behind it (eth1), masqueraded out, one port published"
echo "  inside ($INSIDE): eth0 198.18.2.2/24, its gateway the host's eth1 198.18.2.1/24"
ip netns add "$INSIDE"
ip link add eth0 netns "$INSIDE" type veth peer name eth1 netns "$HOST"
ip -n "$INSIDE" addr add 198.18.2.2/24 dev eth0
ip -n "$HOST" addr add 198.18.2.1/24 dev eth1
ip -n "$INSIDE" link set lo up
ip -n "$INSIDE" link set eth0 up
ip -n "$HOST" link set eth1 up
ip -n "$INSIDE" route add default via 198.18.2.1
ip netns exec "$HOST" sysctl -qw net.ipv4.ip_forward=1
# Servers that tell each client the address it came from: the client's on 7, the inside's on 80.
whoami_server() { # whoami_server NS PORT NAME
  ip netns exec "$1" perl -MIO::Socket::INET -e '
    my ($port, $name) = @ARGV;
    my $s = IO::Socket::INET->new(LocalPort => $port, Listen => 16, ReuseAddr => 1) or die "listen: $!";
    while (my $c = $s->accept) { print $c "$name sees you as " . $c->peerhost . "\n"; close $c }
  ' "$2" "$3" &
  NAT_PIDS="$NAT_PIDS $!"
}
whoami_server "$CLIENT" 7 "the client"
whoami_server "$INSIDE" 80 "the inside server"
sleep 0.3
inside_tcp() { # inside_tcp DST PORT
  local reply
  if reply=$(ip netns exec "$INSIDE" timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n1 <&3" 2>/dev/null) \
     && [ -n "$reply" ]; then
    echo "  inside: tcp connect -> $1:$2: ${green}connected${off} ($reply)"
  else
    echo "  inside: tcp connect -> $1:$2: ${red}no connection${off}"
  fi
}
echo "  without nat the client has no route back to 198.18.2.0/24:"
inside_tcp 198.18.1.1 7
fw -t nat -A POSTROUTING -s 198.18.2.0/24 -o eth0 -j MASQUERADE
fw -t nat -A PREROUTING -d 198.18.1.2 -p tcp --dport 8080 -j DNAT --to-destination 198.18.2.2:80
inside_tcp 198.18.1.1 7
tcp_test 198.18.1.2 8080
fw -t nat -L -v -n
ip netns exec "$HOST" "$PCN" --conntrack

say "Mistakes are refused the way iptables refuses them (and change nothing)"
fw -A INPUT -p tcp --dport 99999 -j DROP || echo "  (exit code $?)"
fw -D INPUT -s 198.18.1.99 -j DROP || echo "  (exit code $?)"

say "Done"
echo "  the namespaces go away now; pcn-iptables --uninstall removes its programs and pins first"
