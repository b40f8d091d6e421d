//! `-m sctp`: SCTP packets judged by their ports as netfilter judges them.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_raw;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(sctp_ports_match);

/// An SCTP common header (ports, verification tag, checksum) and an empty DATA chunk.
fn sctp(sport: u16, dport: u16) -> Vec<u8> {
    [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[0, 0, 0, 1],
        &[0; 4],
        &[0, 3, 0, 4],
    ]
    .concat()
}

/// Packets to 80 and 81 from 1500 and 3000: the first rule takes the one to 81 from the
/// range, the second those not from 1000:2000 to 80 (one), the third the rest to 80.
fn sctp_ports_match(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p sctp -m sctp --sport 1000:2000 --dport 81 -j DROP
         -A INPUT -p sctp ! --sport 1000:2000 --dport 80
         -A INPUT -p sctp --destination-port 80",
    );
    for (sport, dport) in [(1500, 80), (1500, 81), (3000, 80), (3000, 81)] {
        send_raw(&c1, HOST1, 132, &sctp(sport, dport));
    }
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 2]);
}
