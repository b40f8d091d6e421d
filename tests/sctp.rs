//! `-m sctp`: SCTP packets judged by their ports and chunks as netfilter judges them.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_raw;
use pcn_iptables_tests::{Fw, Ns, Pair, scenarios};

scenarios!(
    sctp_ports_match,
    sctp_chunk_types_match,
    sctp_chunk_types_on_output
);

/// An SCTP common header (ports, verification tag, checksum) and an empty DATA chunk.
fn sctp(sport: u16, dport: u16) -> Vec<u8> {
    packet(sport, dport, &[chunk(DATA, 3, 4)])
}

/// An SCTP common header (ports, verification tag, checksum 0: nothing checks it) and the
/// chunks.
fn packet(sport: u16, dport: u16, chunks: &[Vec<u8>]) -> Vec<u8> {
    [
        &sport.to_be_bytes()[..],
        &dport.to_be_bytes(),
        &[0, 0, 0, 1],
        &[0; 4],
        &chunks.concat(),
    ]
    .concat()
}

const DATA: u8 = 0;
const INIT: u8 = 1;
const SACK: u8 = 3;
const ABORT: u8 = 6;
const SHUTDOWN_COMPLETE: u8 = 14;
const I_DATA: u8 = 64;
const ASCONF: u8 = 193;

/// A chunk of type `kind` with `flags` whose length field says `len`, padded to 4 bytes.
fn chunk(kind: u8, flags: u8, len: u16) -> Vec<u8> {
    let mut c = [&[kind, flags][..], &len.to_be_bytes()].concat();
    c.resize((len as usize + 3) & !3, 0);
    c
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

/// Rules that only count, each with `--chunk-types`: any, all, only, flags set (upper case)
/// and clear (lower case, `-` for bit 7), two checks on one type, `!`, NONE and ALL, with a
/// port, and I_DATA's flags (which check nothing, as libxt_sctp files them).
const CHUNK_RULES: &str = "-p sctp --chunk-types any DATA
    -p sctp --chunk-types any DATA:B
    -p sctp --chunk-types any DATA:Be
    -p sctp --chunk-types all DATA,INIT
    -p sctp --chunk-types all DATA:E,ABORT:T
    -p sctp --chunk-types only DATA
    -p sctp --chunk-types only DATA:-,INIT
    -p sctp ! --chunk-types any INIT,ABORT
    -p sctp --chunk-types any ABORT:T
    -p sctp --chunk-types only ABORT:t,SHUTDOWN_COMPLETE
    -p sctp --chunk-types any NONE
    -p sctp --chunk-types only ALL
    -p sctp --chunk-types all NONE
    -p sctp --dport 81 --chunk-types any INIT
    -p sctp --chunk-types any I_DATA:B
    -p sctp ! --chunk-types only DATA:BE
    -p sctp --chunk-types all DATA:B,DATA:E";

/// Chunk lists (to port 80 but the one to 81): one DATA chunk with B and E, two DATA chunks
/// (B, then E; the first's length not a multiple of 4), INIT, DATA and INIT, ABORT with T,
/// ABORT and SHUTDOWN_COMPLETE without, DATA with bit 7, SACK and DATA without flags, I_DATA
/// with B, INIT to 81, a DATA chunk longer than the packet (the walk ends there, whole), DATA
/// and ASCONF, DATA with E and ABORT with T.
fn chunk_lists() -> Vec<(u16, Vec<Vec<u8>>)> {
    vec![
        (80, vec![chunk(DATA, 3, 16)]),
        (80, vec![chunk(DATA, 2, 5), chunk(DATA, 1, 16)]),
        (80, vec![chunk(INIT, 0, 20)]),
        (80, vec![chunk(DATA, 3, 8), chunk(INIT, 0, 20)]),
        (80, vec![chunk(ABORT, 1, 4)]),
        (80, vec![chunk(ABORT, 0, 4), chunk(SHUTDOWN_COMPLETE, 0, 4)]),
        (80, vec![chunk(DATA, 0x83, 8)]),
        (80, vec![chunk(SACK, 0, 16), chunk(DATA, 0, 5)]),
        (80, vec![chunk(I_DATA, 2, 20)]),
        (81, vec![chunk(INIT, 0, 20)]),
        (80, vec![[&[DATA, 3, 0, 100][..], &[0; 4]].concat()]),
        (80, vec![chunk(DATA, 3, 8), chunk(ASCONF, 0, 8)]),
        (80, vec![chunk(DATA, 1, 8), chunk(ABORT, 1, 4)]),
    ]
}

/// What xt_sctp's walk gives for `chunk_lists` under `CHUNK_RULES`, rule by rule.
const CHUNK_COUNTS: [u64; 17] = [8, 6, 1, 1, 1, 4, 6, 7, 2, 1, 0, 13, 13, 1, 1, 10, 5];

fn rules(chain: &str) -> String {
    CHUNK_RULES
        .lines()
        .map(|r| format!("-A {chain} {}\n", r.trim()))
        .collect()
}

fn send_chunks(from: &Ns, to: &str) {
    for (dport, chunks) in chunk_lists() {
        send_raw(from, to, 132, &packet(5000, dport, &chunks));
    }
}

/// The chunk lists into INPUT (XDP).
fn sctp_chunk_types_match(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(&host, &rules("INPUT"));
    send_chunks(&c1, HOST1);
    assert_eq!(lab.counts(&host, "INPUT"), CHUNK_COUNTS);
}

/// The same out of OUTPUT (TC, the skb's helper), the rules added to a ruleset without
/// `--chunk-types` (a change that makes the data plane start walking chunks).
fn sctp_chunk_types_on_output(fw: Fw) {
    let Pair { lab, host, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-A OUTPUT -p udp");
    lab.ipt_lines(&host, &rules("OUTPUT"));
    lab.ipt_ok(&host, "-D OUTPUT 1");
    send_chunks(&host, C1);
    assert_eq!(lab.counts(&host, "OUTPUT"), CHUNK_COUNTS);
}
