//! `-m pkttype`: datagrams to the host, to the link's broadcast address and to the all-hosts
//! group meet the rules of their type on INPUT, as on netfilter; on OUTPUT, the host's own.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_datagrams;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(datagrams_by_packet_type);

/// From c1: 3 to the host, 2 to 198.18.1.255, 1 to 224.0.0.1. From the host: 1 to c1, 1 to
/// the broadcast address.
fn datagrams_by_packet_type(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    for chain in ["INPUT", "OUTPUT"] {
        lab.ipt_lines(
            &host,
            &format!(
                "-A {chain} -p udp --dport 9 -m pkttype --pkt-type broadcast -j ACCEPT
                 -A {chain} -p udp --dport 9 -m pkttype --pkt-type multicast -j ACCEPT
                 -A {chain} -p udp --dport 9 -m pkttype ! --pkt-type unicast -j ACCEPT
                 -A {chain} -p udp --dport 9 -j ACCEPT"
            ),
        );
    }
    let bcast = "198.18.1.255";
    send_datagrams(
        &c1,
        9,
        &[HOST1, HOST1, bcast, HOST1, bcast, "224.0.0.1"].map(|d| (d, 0)),
    );
    assert_eq!(lab.counts(&host, "INPUT"), vec![2, 1, 0, 3]);
    send_datagrams(&host, 9, &[(C1, 0), (bcast, 0)]);
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![0, 0, 0, 2]);
}
