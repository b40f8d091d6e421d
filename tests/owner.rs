//! `-m owner` on OUTPUT: the fsuid and fsgid of the file of the socket a datagram leaves by,
//! `--socket-exists`, and what the kernel's own answers (an ICMP error: a socket without a
//! file) match, as with netfilter.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{send_udp, udp_as, udp_as_in_groups};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(
    owner_matches_the_sockets_owner,
    suppl_groups_match_the_files_groups
);

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

/// `--suppl-groups`: a GID range matches the socket file's fsgid or one of its credentials'
/// supplementary groups; without it, only the fsgid. Datagrams from fsgid 100 with the
/// groups {5005}, {4000, 6000}, none, and from fsgid 5003 with none; then again once the
/// rule of 5000-5010 is gone, which leaves the later rules' ranges at other places in the
/// data plane's list of the generation's ranges.
fn suppl_groups_match_the_files_groups(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A OUTPUT -p udp --dport 7000 -m owner --gid-owner 6000
         -A OUTPUT -p udp --dport 7000 -m owner --gid-owner 5000-5010 --suppl-groups -j DROP
         -A OUTPUT -p udp --dport 7000 -m owner ! --gid-owner 6000 --suppl-groups -j ACCEPT
         -A OUTPUT -p udp --dport 7000 -m owner --uid-owner 1000 --gid-owner 4000 --suppl-groups
         -A OUTPUT -p udp --dport 7000 -j DROP",
    );
    let send = || {
        udp_as_in_groups(&host, C1, 7000, 1000, 100, &[5005]);
        udp_as_in_groups(&host, C1, 7000, 1000, 100, &[4000, 6000]);
        udp_as_in_groups(&host, C1, 7000, 1000, 100, &[]);
        udp_as_in_groups(&host, C1, 7000, 1000, 5003, &[]);
        std::thread::sleep(Duration::from_millis(200));
    };
    send();
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![0, 2, 1, 1, 1]);
    lab.ipt_ok(&host, "-D OUTPUT 2");
    send();
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![0, 4, 2, 2]);
    let _ = c1;
}
