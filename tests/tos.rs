//! `-m tos`, `-m dscp` and `-m ecn`: the rules take the datagrams whose TOS byte they name, as
//! the kernel's matches do; `--ecn-tcp-ece`/`--ecn-tcp-cwr` take an ECN handshake's SYN.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_datagrams;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(datagrams_by_tos_byte, ecn_syn_by_tcp_flags);

/// Ten datagrams, each with its TOS byte, through five rules: DSCP EF (0xb8, 0xb9); TOS
/// Minimize-Delay under 0x3f (0x10, 0x50); ECN CE (0x03); any DSCP bit (0x12, 0x20, 0x04);
/// the rest (0x01, 0x00).
fn datagrams_by_tos_byte(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m dscp --dscp-class EF -j DROP
         -A INPUT -p udp --dport 9 -m tos --tos Minimize-Delay -j ACCEPT
         -A INPUT -p udp --dport 9 -m ecn --ecn-ip-ect 3 -j ACCEPT
         -A INPUT -p udp --dport 9 -m tos ! --tos 0x00/0xfc -j ACCEPT
         -A INPUT -p udp --dport 9 -j ACCEPT",
    );
    let tos = [0xb8, 0xb9, 0x10, 0x12, 0x50, 0x03, 0x01, 0x00, 0x20, 0x04];
    send_datagrams(&c1, 9, &tos.map(|t| (HOST1, t)));
    assert_eq!(lab.counts(&host, "INPUT"), vec![2, 2, 1, 3, 2]);
}

/// With ECN on at both ends, the client's SYN carries ECE and CWR; its other segments
/// carry neither.
fn ecn_syn_by_tcp_flags(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    c1.sysctl("net.ipv4.tcp_ecn=1");
    host.sysctl("net.ipv4.tcp_ecn=1");
    lab.serve(&host, &[80]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp --dport 80 -m ecn --ecn-tcp-ece --ecn-tcp-cwr -j ACCEPT
         -A INPUT -p tcp --dport 80 -m ecn ! --ecn-tcp-ece ! --ecn-tcp-cwr -j ACCEPT
         -A INPUT -p tcp --dport 80 -j ACCEPT",
    );
    assert!(c1.tcp(HOST1, 80).attempt(Duration::from_secs(3)), "connect");
    std::thread::sleep(Duration::from_millis(200));
    let c = lab.counts(&host, "INPUT");
    assert_eq!((c[0], c[2]), (1, 0), "the SYN alone has both flags: {c:?}");
    assert!(c[1] >= 1, "the handshake's ACK has neither: {c:?}");
}
