//! `-m dccp`: DCCP packets judged by their ports, types and options as netfilter judges them.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{ipv4_packet, mac, send_frame, send_raw};
use pcn_iptables_tests::{Fw, Lab, Ns, Pair, scenarios};

scenarios!(
    dccp_ports_and_types_match,
    dccp_options_match,
    dccp_options_on_output,
    dccp_options_end_with_the_ip_packet
);

const REQUEST: u8 = 0;
const RESPONSE: u8 = 1;
const DATA: u8 = 2;
const ACK: u8 = 3;
/// A type from 10 on (INVALID), whose header has RESET's size.
const TYPE_12: u8 = 12;

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

/// A DCCP packet: the generic header (ports, data offset `doff` in words, checksum 0, type
/// `kind`, X when `x`, a sequence number), then `rest` as given (the rest of the header, the
/// options, a payload).
fn packet(sport: u16, dport: u16, doff: u8, kind: u8, x: bool, rest: &[u8]) -> Vec<u8> {
    [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[doff, 0, 0, 0],
        &[kind << 1 | x as u8, 0, 0, 1],
        rest,
    ]
    .concat()
}

/// A DATA packet (a 12-byte header) with `options` (whole words), its data offset right.
fn data(sport: u16, dport: u16, options: &[u8]) -> Vec<u8> {
    packet(
        sport,
        dport,
        (3 + options.len() / 4) as u8,
        DATA,
        false,
        options,
    )
}

/// Count-only rules: `walked` looks for option types (0 and 1 are the only ones xt_dccp takes
/// as one byte; the others take the next byte as their length), with `!`, with a type and a
/// port; `cut` and `inverted` get packets whose options xt_dccp cannot walk (it drops them at
/// the first `--dccp-option` rule whose ports and types pass, or any without the generic
/// header; a rule with `!` matches first, and counts, where the options are cut short); the
/// base chain's last rule counts what came back.
fn option_rules(base: &str) -> String {
    format!(
        "-N walked
         -N cut
         -N inverted
         -A {base} -p dccp -m length --length 20:28 -j cut
         -A {base} -p dccp -m length --length 29:31 -j inverted
         -A {base} -p dccp --dport 80 -j walked
         -A {base} -p dccp --dport 81 -j cut
         -A {base} -p dccp --dport 82 -j inverted
         -A {base} -p dccp
         -A walked -p dccp --dccp-option 1
         -A walked -p dccp --dccp-option 2
         -A walked -p dccp --dccp-option 5
         -A walked -p dccp --dccp-option 32
         -A walked -p dccp --dccp-option 44
         -A walked -p dccp ! --dccp-option 5
         -A walked -p dccp --dccp-option 40 --dccp-types DATA
         -A walked -p dccp ! --sport 1000 --dccp-option 41
         -A walked -p dccp --dccp-option 255
         -A walked -p dccp --dccp-option 3
         -A cut -p dccp --sport 2000 --dccp-option 5
         -A cut -p dccp -m length --length 20:31
         -A cut -p dccp --dccp-option 5
         -A cut -p dccp
         -A inverted -p dccp ! --dccp-option 5
         -A inverted -p dccp"
    )
}

/// The option lists, each packet from port 1000 unless said, with the types xt_dccp's walk
/// lands on.
fn option_packets() -> Vec<Vec<u8>> {
    vec![
        // To 80 (`walked`): no options ({}); padding and mandatory ({1}); type 2 takes 44 as
        // its length ({2}); a length of 3, then a type as the last byte ({32, 5}); lengths 0
        // and 1 step one byte ({40, 0, 41, 1}); a 5 inside an option ({44}).
        data(1000, 80, &[]),
        data(1000, 80, &[1, 1, 1, 1]),
        data(1000, 80, &[2, 44, 0, 0]),
        data(1000, 80, &[32, 3, 0, 5]),
        data(1000, 80, &[40, 0, 41, 1]),
        data(1000, 80, &[44, 4, 5, 5]),
        // RESPONSE with X (a 28-byte header of 5s), then {0, 255}; REQUEST (16 bytes), then
        // {5, 0}; ACK with X (24 bytes), no options.
        packet(
            1000,
            80,
            8,
            RESPONSE,
            true,
            &[[0; 4], [5; 4], [5; 4], [5; 4], [0, 0, 255, 2]].concat(),
        ),
        packet(1000, 80, 5, REQUEST, false, &[5, 5, 5, 5, 5, 2, 0, 0]),
        packet(1000, 80, 6, ACK, true, &[[0; 4], [5; 4], [5; 4]].concat()),
        // {32, 0}, then a payload of 5s past the data offset.
        [data(1000, 80, &[32, 2, 0, 0]), vec![5; 4]].concat(),
        // Forty steps of 1, then {5, 0}; a length past the options' end ({44}).
        data(1000, 80, &[&[1; 40][..], &[5, 2, 0, 0]].concat()),
        data(1000, 80, &[44, 255, 5, 5]),
        // From 2000: {41, 40}.
        data(2000, 80, &[41, 2, 40, 2]),
        // A type from 10 on (24-byte header of 5s), then {5, 32}; a last byte of 3 ({0, 3}).
        packet(
            1000,
            80,
            7,
            TYPE_12,
            false,
            &[&[5; 12][..], &[5, 2, 32, 2]].concat(),
        ),
        data(1000, 80, &[0, 0, 0, 3]),
        // To 81 (`cut`): a data offset short of DATA's header with X (16 bytes); options past
        // the packet's end (into the frame's padding: 24 bytes said, 16 sent); the same short
        // offset from 2000, whose rule drops it first; {5, 0}; a REQUEST cut before its
        // service code, its data offset the header's (no options: nothing read, not dropped).
        packet(1000, 81, 3, DATA, true, &[0; 4]),
        packet(1000, 81, 6, DATA, false, &[5, 2, 0, 0]),
        packet(2000, 81, 3, DATA, true, &[0; 4]),
        data(1000, 81, &[5, 2, 0, 0]),
        packet(1000, 81, 4, REQUEST, false, &[]),
        // A generic header cut short (8 bytes: `-m length` sends it to `cut`), dropped at the
        // first dccp rule whatever its port.
        packet(1000, 81, 3, DATA, false, &[])[..8].to_vec(),
        // To 82 (`inverted`): a generic header cut short (9 bytes, sent there by `-m length`:
        // dropped, `!` or not), both cuts, then {1} and {5, 0}.
        packet(1000, 82, 3, DATA, false, &[])[..9].to_vec(),
        packet(1000, 82, 3, DATA, true, &[0; 4]),
        packet(1000, 82, 6, DATA, false, &[5, 2, 0, 0]),
        data(1000, 82, &[1, 1, 1, 1]),
        data(1000, 82, &[5, 2, 0, 0]),
    ]
}

/// What netfilter counts for `option_packets` under `option_rules`: the base chain, `walked`,
/// `cut`, `inverted`.
const OPTION_COUNTS: [&[u64]; 4] = [
    &[1, 1, 15, 5, 4, 19],
    &[3, 1, 4, 3, 2, 11, 2, 1, 1, 1],
    &[0, 0, 1, 2],
    &[3, 2],
];

fn send_options(from: &Ns, to: &str) {
    for p in option_packets() {
        send_raw(from, to, 33, &p);
    }
}

fn option_counts(lab: &Lab, host: &Ns, base: &str) -> Vec<Vec<u64>> {
    [base, "walked", "cut", "inverted"]
        .map(|chain| lab.counts(host, chain))
        .to_vec()
}

/// The option lists into INPUT (XDP).
fn dccp_options_match(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(&host, &option_rules("INPUT"));
    send_options(&c1, HOST1);
    assert_eq!(option_counts(&lab, &host, "INPUT"), OPTION_COUNTS);
}

/// The same out of OUTPUT (TC, the skb's helper), the rules added to a ruleset without
/// `--dccp-option` (a change that makes the data plane start walking options).
fn dccp_options_on_output(fw: Fw) {
    let Pair { lab, host, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-A OUTPUT -p udp");
    lab.ipt_lines(&host, &option_rules("OUTPUT"));
    lab.ipt_ok(&host, "-D OUTPUT 1");
    send_options(&host, C1);
    assert_eq!(option_counts(&lab, &host, "OUTPUT"), OPTION_COUNTS);
}

/// Short frames as devices deliver them, padded to Ethernet's 60 bytes with bytes that look
/// like option 5: the options and the generic header end where the IP packet does, not the
/// frame. {5, 0}; options said to run 8 bytes into the padding (dropped); a generic header
/// of 8 bytes before the padding (dropped); {1}.
fn dccp_options_end_with_the_ip_packet(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p dccp --dccp-option 5
         -A INPUT -p dccp",
    );
    let host_mac = mac(&host, "eth1");
    for dccp in [
        data(1000, 80, &[5, 2, 0, 0]),
        packet(1000, 80, 6, DATA, false, &[1, 1, 1, 1]),
        packet(1000, 80, 3, DATA, false, &[])[..8].to_vec(),
        data(1000, 80, &[1, 1, 1, 1]),
    ] {
        send_padded(&c1, host_mac, &dccp);
    }
    assert_eq!(lab.counts(&host, "INPUT"), [1, 2]);
}

/// DCCP packet `dccp` from C1 to HOST1 out of `ns`'s eth0 to `peer_mac`, in a frame padded
/// to 60 bytes with 5s, through a packet socket.
fn send_padded(ns: &Ns, peer_mac: [u8; 6], dccp: &[u8]) {
    let ip = ipv4_packet(C1, HOST1, 33, dccp);
    let mut frame = [&peer_mac[..], &mac(ns, "eth0"), &[0x08, 0x00], &ip].concat();
    frame.resize(frame.len().max(60), 5);
    send_frame(ns, peer_mac, frame, false);
}
