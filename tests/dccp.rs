//! `-m dccp`: DCCP packets judged by their ports and types as netfilter judges them.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_raw;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(dccp_ports_and_types_match);

const REQUEST: u8 = 0;
const DATA: u8 = 2;
const ACK: u8 = 3;

/// A DCCP generic header with short sequence numbers (X = 0): ports, data offset (3 words),
/// checksum 0, the type, a sequence number.
fn dccp(sport: u16, dport: u16, kind: u8) -> Vec<u8> {
    [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[3, 0, 0, 0],
        &[kind << 1, 0, 0, 1],
    ]
    .concat()
}

/// The first rule takes the REQUEST from 1500 (ports and type), the second the ACK (a type
/// not listed), the third everything to port 80 that got that far (the DATA and the ACK),
/// the last the packet of type 12 (INVALID: every type from 10 on).
fn dccp_ports_and_types_match(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p dccp -m dccp --sport 1000:2000 --dccp-types REQUEST -j DROP
         -A INPUT -p dccp ! --dccp-types REQUEST,DATA --dport 80
         -A INPUT -p dccp --destination-port 80
         -A INPUT -p dccp --dccp-types INVALID",
    );
    for (sport, dport, kind) in [
        (1500, 80, REQUEST),
        (1500, 80, DATA),
        (3000, 80, ACK),
        (3000, 81, REQUEST),
        (3000, 81, 12),
    ] {
        send_raw(&c1, HOST1, 33, &dccp(sport, dport, kind));
    }
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 2, 1]);
}
