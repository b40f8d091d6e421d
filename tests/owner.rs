//! `-m owner` on OUTPUT: the fsuid and fsgid of the file of the socket a datagram leaves by,
//! `--socket-exists`, and what the kernel's own answers (an ICMP error: a socket without a
//! file) match, as with netfilter.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{send_udp, udp_as};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(owner_matches_the_sockets_owner);

/// Datagrams to c1 from sockets of fsuid/fsgid 0/0, 4321/8765 and 1000/8765: the first is
/// let through by `! --gid-owner 8765`, the second dropped by `--uid-owner 4321`, the third
/// accepted by `--socket-exists`. The port unreachable the host answers a datagram to a
/// closed port with has a socket (the kernel's ICMP one) without a file: `--socket-exists`
/// and `! --uid-owner 0` match it, `--uid-owner 0` does not.
fn owner_matches_the_sockets_owner(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A OUTPUT -p udp --dport 7000 -m owner --uid-owner 4321 -j DROP
         -A OUTPUT -p udp --dport 7000 -m owner ! --gid-owner 8765 -j ACCEPT
         -A OUTPUT -p udp --dport 7000 -m owner --socket-exists -j ACCEPT
         -A OUTPUT -p udp --dport 7000 -j DROP
         -A OUTPUT -p icmp -m owner --uid-owner 0
         -A OUTPUT -p icmp -m owner ! --uid-owner 0
         -A OUTPUT -p icmp -m owner --socket-exists
         -A OUTPUT -p icmp -m owner ! --socket-exists",
    );
    udp_as(&host, C1, 7000, 0, 0);
    udp_as(&host, C1, 7000, 4321, 8765);
    udp_as(&host, C1, 7000, 1000, 8765);
    send_udp(&c1, HOST1, 7999, 1, Duration::ZERO, true);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![1, 1, 1, 0, 0, 1, 1, 0]);
}
