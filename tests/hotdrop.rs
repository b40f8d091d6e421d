//! The kernel's hotdrop: a packet whose header is cut short for a match (tcp, udp, icmp, esp,
//! ah, sctp, dccp, tcpmss, `--tcp-option`, sctp's `--chunk-types`), or a TCP fragment at
//! offset 1, is dropped at the first rule with that match whose other parts passed,
//! uncounted, as netfilter drops it. And a match given twice in a rule: both must hold.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{ipv4_packet, mac, send_frame, send_raw};
use pcn_iptables_tests::{Fw, Ns, Pair, Routed, scenarios};

scenarios!(
    hotdrop_cut_headers_into_input,
    hotdrop_cut_headers_out_of_output,
    hotdrop_headers_end_with_the_ip_packet,
    hotdrop_tcp_fragment_at_offset_1,
    hotdrop_sctp_chunks_cut_short,
    repeated_matches_all_hold,
    hotdrop_forward_verdicts,
);

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ESP: u8 = 50;
const AH: u8 = 51;
const SCTP: u8 = 132;
const DCCP: u8 = 33;

/// A TCP header from port 1000 to `dport`, its data offset `doff` words, the ACK flag, then
/// `rest` (options, payload).
fn tcp(dport: u16, doff: u8, rest: &[u8]) -> Vec<u8> {
    [
        &1000u16.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[0, 0, 0, 1, 0, 0, 0, 0],
        &[doff << 4, 0x10, 0xff, 0xff, 0, 0, 0, 0],
        rest,
    ]
    .concat()
}

/// Rules of `base`, a few per protocol: a rule whose IP part fails and one whose match before
/// tcp fails (neither drops), a `-m length` rule (no header read) that counts the cut packets
/// before the rule with the protocol's match drops them, then the match, then the protocol
/// alone, which counts what got through. They only count, but for a few that jump to an empty
/// chain (rules with a target, which the classifier's scan stops at).
fn rules(base: &str) -> String {
    format!(
        "-N seen
         -A {base} -p tcp -s 198.18.99.1 --dport 9
         -A {base} -p tcp -m mark --mark 7 -m tcp --dport 9
         -A {base} -p tcp -m length --length 20:39
         -A {base} -p tcp --dport 9 -j seen
         -A {base} -p tcp --dport 20 --tcp-option 2
         -A {base} -p tcp --dport 21 -m tcpmss --mss 1:2000
         -A {base} -p tcp
         -A {base} -p udp -m length --length 20:27
         -A {base} -p udp --sport 7 -j seen
         -A {base} -p udp
         -A {base} -p icmp -m length --length 20:27
         -A {base} -p icmp --icmp-type echo-request -j seen
         -A {base} -p icmp
         -A {base} -p esp -m esp --espspi 5 -j seen
         -A {base} -p esp
         -A {base} -p ah -m ah --ahspi 5
         -A {base} -p ah
         -A {base} -p sctp -m sctp --dport 80
         -A {base} -p sctp
         -A {base} -p dccp -m dccp --dport 80
         -A {base} -p dccp"
    )
}

/// The packets (protocol, payload after the IP header), each cut short one dropped where the
/// comment says.
fn packets() -> Vec<(u8, Vec<u8>)> {
    let spi5 = [0, 0, 0, 5];
    vec![
        // 10 and 0 bytes of TCP header: at `--dport 9`.
        (TCP, tcp(9, 5, &[])[..10].to_vec()),
        (TCP, vec![]),
        // A whole header to 9.
        (TCP, tcp(9, 5, &[])),
        // To 20, its options past the end (24 bytes said, 20 sent), a data offset of 16
        // bytes: at `--tcp-option`; an MSS option, no options (walked).
        (TCP, tcp(20, 6, &[])),
        (TCP, tcp(20, 4, &[])),
        (TCP, tcp(20, 6, &[2, 4, 5, 0xb4])),
        (TCP, tcp(20, 5, &[])),
        // To 21, its options past the end: passes `--tcp-option` (its port), at tcpmss; no
        // options (no MSS: no match).
        (TCP, tcp(21, 6, &[])),
        (TCP, tcp(21, 5, &[])),
        // 4 bytes of UDP: at `--sport 7`; a whole header from 7.
        (UDP, [7u16.to_be_bytes(), 9u16.to_be_bytes()].concat()),
        (
            UDP,
            [&7u16.to_be_bytes()[..], &9u16.to_be_bytes(), &[0, 8, 0, 0]].concat(),
        ),
        // 4 bytes of an echo request: at `--icmp-type`; a whole one.
        (ICMP, vec![8, 0, 0xf7, 0xff]),
        (ICMP, vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0]),
        // ESP: 4 bytes, then 8; AH: 8, then 12 (its SPI in the second word).
        (ESP, spi5.to_vec()),
        (ESP, [spi5, [0, 0, 0, 1]].concat()),
        (AH, [[0, 1, 0, 0], spi5].concat()),
        (AH, [[0, 1, 0, 0], spi5, [0, 0, 0, 1]].concat()),
        // SCTP: 8 bytes of the common header, then 12, to 80.
        (
            SCTP,
            [1000u16.to_be_bytes(), 80u16.to_be_bytes(), [0, 0]].concat()[..6].to_vec(),
        ),
        (
            SCTP,
            [&1000u16.to_be_bytes()[..], &80u16.to_be_bytes(), &[0; 8]].concat(),
        ),
        // DCCP: 8 bytes of the generic header (at a rule without `--dccp-option`), then 12.
        (
            DCCP,
            [
                &1000u16.to_be_bytes()[..],
                &80u16.to_be_bytes(),
                &[3, 0, 0, 0],
            ]
            .concat(),
        ),
        (
            DCCP,
            [
                &1000u16.to_be_bytes()[..],
                &80u16.to_be_bytes(),
                &[3, 0, 0, 0, 4, 0, 0, 1],
            ]
            .concat(),
        ),
    ]
}

/// What netfilter counts for `packets` under `rules`.
const COUNTS: [u64; 21] = [
    0, 0, 2, 1, 1, 0, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
];

fn send(from: &Ns, to: &str) {
    for (proto, payload) in packets() {
        send_raw(from, to, proto, &payload);
    }
}

/// Into INPUT (XDP).
fn hotdrop_cut_headers_into_input(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(&host, &rules("INPUT"));
    send(&c1, HOST1);
    assert_eq!(lab.counts(&host, "INPUT"), COUNTS);
}

/// Out of OUTPUT (TC).
fn hotdrop_cut_headers_out_of_output(fw: Fw) {
    let Pair { lab, host, .. } = Pair::new(fw);
    lab.ipt_lines(&host, &rules("OUTPUT"));
    send(&host, C1);
    assert_eq!(lab.counts(&host, "OUTPUT"), COUNTS);
}

/// Short frames as devices deliver them, padded to Ethernet's 60 bytes with bytes that would
/// make whole headers: a header ends where the IP packet does, not the frame. 10 bytes of
/// TCP (dropped), options said to run into the padding (dropped), 4 bytes of UDP (dropped), a
/// whole UDP header.
fn hotdrop_headers_end_with_the_ip_packet(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp -m length --length 20:39
         -A INPUT -p tcp --dport 9
         -A INPUT -p tcp --tcp-option 2
         -A INPUT -p tcp
         -A INPUT -p udp --dport 9
         -A INPUT -p udp",
    );
    let host_mac = mac(&host, "eth1");
    for (proto, payload) in [
        (TCP, tcp(9, 5, &[])[..10].to_vec()),
        (TCP, tcp(10, 6, &[])),
        (UDP, [7u16.to_be_bytes(), 9u16.to_be_bytes()].concat()),
        (
            UDP,
            [&7u16.to_be_bytes()[..], &9u16.to_be_bytes(), &[0, 8, 0, 0]].concat(),
        ),
    ] {
        let ip = ipv4_packet(C1, HOST1, proto, &payload);
        send_padded(&c1, host_mac, &ip);
    }
    assert_eq!(lab.counts(&host, "INPUT"), [1, 0, 0, 0, 1, 1]);
}

/// A TCP fragment at offset 1 (8 bytes) is dropped at a tcp rule ("evil TCP offset=1
/// frag"), one at offset 2 matches no tcp rule, in mangle PREROUTING (INPUT sees only
/// reassembled packets).
fn hotdrop_tcp_fragment_at_offset_1(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-t mangle -A PREROUTING -p tcp -f
         -t mangle -A PREROUTING -p tcp --dport 9
         -t mangle -A PREROUTING -p tcp",
    );
    let host_mac = mac(&host, "eth1");
    for offset in [1u16, 2, 1] {
        let mut ip = ipv4_packet(C1, HOST1, TCP, &[9; 24]);
        ip[6..8].copy_from_slice(&offset.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let sum = ip[..20]
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!sum as u16).to_be_bytes());
        send_padded(&c1, host_mac, &ip);
    }
    assert_eq!(lab.counts(&host, "PREROUTING -t mangle"), [3, 0, 1]);
}

/// IP packet `ip` out of `ns`'s eth0 to `peer_mac`, in a frame padded to 60 bytes with 2s,
/// through a packet socket.
fn send_padded(ns: &Ns, peer_mac: [u8; 6], ip: &[u8]) {
    let mut frame = [&peer_mac[..], &mac(ns, "eth0"), &[0x08, 0x00], ip].concat();
    frame.resize(frame.len().max(60), 2);
    send_frame(ns, peer_mac, frame, false);
}

/// An SCTP common header from 1000 to `dport`, then `chunks` as given.
fn sctp(dport: u16, chunks: &[u8]) -> Vec<u8> {
    [
        &1000u16.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[0; 8],
        chunks,
    ]
    .concat()
}

/// `--chunk-types` walks that meet chunks cut short (a header past the end, a length of 0):
/// xt_sctp drops the packet where its walk for a rule gets there (ANY: no chunk of the map
/// before; ALL: always, and with `!` the rule counts it first), once the ports passed. A
/// DATA chunk then a cut header (counted by ANY DATA, then dropped at `! ALL INIT`), an INIT
/// then a length of 0 (dropped at ANY DATA), a whole DATA chunk, a cut first chunk to 81
/// (dropped at the first rule) and to 80 (whose port fails there: dropped at ANY DATA).
fn hotdrop_sctp_chunks_cut_short(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p sctp --dport 81 --chunk-types any INIT
         -A INPUT -p sctp -m length --length 20:200
         -A INPUT -p sctp --chunk-types any DATA
         -A INPUT -p sctp ! --chunk-types all INIT
         -A INPUT -p sctp",
    );
    for payload in [
        sctp(80, &[0, 3, 0, 4, 0, 3]),
        sctp(80, &[1, 0, 0, 4, 0, 0, 0, 0]),
        sctp(80, &[0, 3, 0, 4]),
        sctp(81, &[0, 3]),
        sctp(80, &[0, 3]),
    ] {
        send_raw(&c1, HOST1, SCTP, &payload);
    }
    assert_eq!(lab.counts(&host, "INPUT"), [0, 4, 2, 2, 1]);
}

/// A match given twice in one rule (iptables takes it): both must hold. DCCP from 1000 to 80
/// (to 81, from 999: no); ESP with SPI 10 (60 and 150: no); TCP SYNs with an MSS of 1200
/// (600 and 1800: no).
fn repeated_matches_all_hold(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p dccp -m dccp --sport 1000 -m dccp --dport 80
         -A INPUT -p esp -m esp --espspi 1:100 -m esp ! --espspi 50:200
         -A INPUT -p tcp -m tcpmss --mss 500:1500 -m tcpmss --mss 1000:2000",
    );
    let dccp = |sport: u16, dport: u16| {
        [
            &sport.to_be_bytes()[..],
            &dport.to_be_bytes(),
            &[3, 0, 0, 0, 4, 0, 0, 1],
        ]
        .concat()
    };
    let syn = |mss: u16| {
        let mut t = tcp(80, 6, &[&[2, 4][..], &mss.to_be_bytes()].concat());
        t[13] = 0x02;
        t
    };
    for (proto, payload) in [
        (DCCP, dccp(1000, 80)),
        (DCCP, dccp(1000, 81)),
        (DCCP, dccp(999, 80)),
        (ESP, [[0, 0, 0, 10], [0, 0, 0, 1]].concat()),
        (ESP, [[0, 0, 0, 60], [0, 0, 0, 1]].concat()),
        (ESP, [[0, 0, 0, 150], [0, 0, 0, 1]].concat()),
        (TCP, syn(1200)),
        (TCP, syn(600)),
        (TCP, syn(1800)),
    ] {
        send_raw(&c1, HOST1, proto, &payload);
    }
    assert_eq!(lab.counts(&host, "INPUT"), [1, 1, 1]);
}

/// The verdict on a router: a packet cut short for the udp, tcp or icmp match of an ACCEPT
/// rule in FORWARD is dropped there (mangle POSTROUTING, after the routing decision, counts
/// what was forwarded), a whole one accepted.
fn hotdrop_forward_verdicts(fw: Fw) {
    let Routed {
        lab,
        router,
        client,
        ..
    } = Routed::new(fw);
    lab.ipt_lines(
        &router,
        "-A FORWARD -p udp --dport 9 -j ACCEPT
         -A FORWARD -p tcp --dport 9 -j ACCEPT
         -A FORWARD -p icmp --icmp-type echo-request -j ACCEPT
         -t mangle -A POSTROUTING -o eth1",
    );
    for (proto, payload) in [
        (UDP, [7u16.to_be_bytes(), 9u16.to_be_bytes()].concat()),
        (
            UDP,
            [&7u16.to_be_bytes()[..], &9u16.to_be_bytes(), &[0, 8, 0, 0]].concat(),
        ),
        (TCP, tcp(9, 5, &[])[..10].to_vec()),
        (TCP, tcp(9, 5, &[])),
        (ICMP, vec![8, 0, 0xf7, 0xff]),
        (ICMP, vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0]),
    ] {
        send_raw(&client, SERVER, proto, &payload);
    }
    assert_eq!(lab.counts(&router, "FORWARD"), [1, 1, 1]);
    assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), [3]);
}
