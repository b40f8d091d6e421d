extern crate std;
use std::vec::Vec;

use super::tcp_flags::*;
use super::*;

const CLIENT: u8 = 0;
const SERVER: u8 = 1;

/// Runs packets (sender end, flags) through tracking; returns each packet's ctstate and the
/// entry after them.
fn tcp_run(packets: &[(u8, u8)]) -> (Vec<u8>, Option<CtEntry>) {
    let mut entry: Option<CtEntry> = None;
    let mut states = Vec::new();
    for (i, &(from, flags)) in packets.iter().enumerate() {
        let (state, next) = track_tcp(entry.as_ref(), from, flags, i as u64);
        states.push(state);
        if next.is_some() {
            entry = next;
        }
    }
    (states, entry)
}

#[test]
fn handshake_data_and_close() {
    use ctstate::*;
    let (states, entry) = tcp_run(&[
        (CLIENT, SYN),
        (SERVER, SYN | ACK),
        (CLIENT, ACK),
        (CLIENT, PSH | ACK),
        (SERVER, ACK),
        (CLIENT, FIN | ACK),
        (SERVER, FIN | ACK),
        (CLIENT, ACK),
    ]);
    assert_eq!(
        states,
        [
            NEW,
            ESTABLISHED,
            ESTABLISHED,
            ESTABLISHED,
            ESTABLISHED,
            ESTABLISHED,
            ESTABLISHED,
            ESTABLISHED
        ]
    );
    assert_eq!(entry.unwrap().tcp_state, tcp::TIME_WAIT);
}

#[test]
fn states_along_the_handshake() {
    let (_, e) = tcp_run(&[(CLIENT, SYN)]);
    assert_eq!(e.unwrap().tcp_state, tcp::SYN_SENT);
    let (_, e) = tcp_run(&[(CLIENT, SYN), (SERVER, SYN | ACK)]);
    assert_eq!(e.unwrap().tcp_state, tcp::SYN_RECV);
    let (_, e) = tcp_run(&[(CLIENT, SYN), (SERVER, SYN | ACK), (CLIENT, ACK)]);
    assert_eq!(e.unwrap().tcp_state, tcp::ESTABLISHED);
    assert_eq!(tcp_timeout(tcp::ESTABLISHED), 432_000 * 1_000_000_000);
}

#[test]
fn a_retransmitted_syn_is_still_new() {
    let (states, _) = tcp_run(&[(CLIENT, SYN), (CLIENT, SYN)]);
    assert_eq!(states, [ctstate::NEW, ctstate::NEW]);
}

#[test]
fn what_netfilter_calls_invalid() {
    use ctstate::*;
    // Flag combinations no TCP sends.
    for flags in [SYN | FIN, 0, FIN, SYN | RST, FIN | RST | ACK | SYN] {
        assert_eq!(
            track_tcp(None, CLIENT, flags, 0),
            (INVALID, None),
            "flags {flags:#x}"
        );
    }
    // A lone RST or SYN/ACK of an unknown connection.
    assert_eq!(track_tcp(None, CLIENT, RST, 0), (INVALID, None));
    assert_eq!(track_tcp(None, CLIENT, SYN | ACK, 0), (INVALID, None));
    // A SYN/ACK from the side that sent the SYN.
    let (states, _) = tcp_run(&[(CLIENT, SYN), (CLIENT, SYN | ACK)]);
    assert_eq!(states, [NEW, INVALID]);
}

#[test]
fn a_lone_ack_is_picked_up_as_new() {
    let (state, entry) = track_tcp(None, SERVER, ACK, 0);
    assert_eq!(state, ctstate::NEW);
    assert_eq!(entry.unwrap().tcp_state, tcp::ESTABLISHED);
    let (states, _) = tcp_run(&[(SERVER, ACK), (CLIENT, ACK), (SERVER, PSH | ACK)]);
    assert_eq!(
        states,
        [ctstate::NEW, ctstate::ESTABLISHED, ctstate::ESTABLISHED]
    );
}

#[test]
fn rst_closes_and_syn_reopens() {
    let (states, e) = tcp_run(&[
        (CLIENT, SYN),
        (SERVER, SYN | ACK),
        (CLIENT, ACK),
        (SERVER, RST),
    ]);
    assert_eq!(states[3], ctstate::ESTABLISHED);
    assert_eq!(e.unwrap().tcp_state, tcp::CLOSE);
    let (states, e) = tcp_run(&[(CLIENT, SYN), (SERVER, RST | ACK), (CLIENT, SYN)]);
    assert_eq!(states[2], ctstate::NEW);
    assert_eq!(e.unwrap().tcp_state, tcp::SYN_SENT);
    assert_eq!(
        e.unwrap().status & status::SEEN_REPLY,
        0,
        "a reopened connection starts afresh"
    );
}

#[test]
fn udp_and_icmp_queries() {
    const S: u64 = 1_000_000_000;
    let (s, e) = track_other(None, CLIENT, 17, 0);
    assert_eq!(s, ctstate::NEW);
    let e = e.unwrap();
    assert_eq!(e.expires, udp_timeout(false));
    let (s, e2) = track_other(Some(&e), CLIENT, 17, 5);
    assert_eq!(s, ctstate::NEW, "no reply yet");
    // udp_packet: the first reply keeps the short timeout; so does traffic in the first two
    // seconds; after them the connection is a stream, assured, with the long one.
    let (s, e3) = track_other(e2.as_ref(), SERVER, 17, 6);
    assert_eq!(s, ctstate::ESTABLISHED);
    let e3 = e3.unwrap();
    assert_eq!(e3.expires, 6 + udp_timeout(false));
    assert_eq!(e3.status, status::SEEN_REPLY);
    let (s, e4) = track_other(Some(&e3), CLIENT, 17, 2 * S);
    assert_eq!(s, ctstate::ESTABLISHED);
    assert_eq!(
        e4.unwrap().status & status::ASSURED,
        0,
        "two seconds exactly"
    );
    let (_, e5) = track_other(Some(&e3), CLIENT, 17, 2 * S + 1);
    let e5 = e5.unwrap();
    assert_eq!(e5.status, status::SEEN_REPLY | status::ASSURED);
    assert_eq!(e5.expires, 2 * S + 1 + udp_timeout(true));
    // ICMP is never assured.
    let (_, q) = track_other(None, CLIENT, 1, 0);
    let (_, r) = track_other(q.as_ref(), SERVER, 1, 1);
    let (_, q2) = track_other(r.as_ref(), CLIENT, 1, 10 * S);
    assert_eq!(q2.unwrap().status, status::SEEN_REPLY);
    assert_eq!(icmp_reply_type(8), Some(0));
    assert_eq!(icmp_reply_type(0), None);
    assert!(icmp_is_error(3) && !icmp_is_error(8));
}

/// tcp_packet's IPS_ASSURED: the handshake's last ACK, after the SYN-ACK (a reply); not the
/// SYN-ACK itself.
#[test]
fn tcp_is_assured_when_the_handshake_completes() {
    let assured = |packets: &[(u8, u8)]| {
        let (_, e) = tcp_run(packets);
        e.unwrap().status & status::ASSURED != 0
    };
    assert!(!assured(&[(CLIENT, SYN), (SERVER, SYN | ACK)]));
    assert!(assured(&[
        (CLIENT, SYN),
        (SERVER, SYN | ACK),
        (CLIENT, ACK)
    ]));
    assert!(assured(&[
        (CLIENT, SYN),
        (SERVER, SYN | ACK),
        (CLIENT, ACK),
        (CLIENT, FIN | ACK)
    ]));
}

#[test]
fn one_key_for_both_directions() {
    let out = Tuple {
        src: [198, 18, 0, 2],
        dst: [198, 18, 0, 1],
        sport: 40000,
        dport: 22,
        proto: 6,
        _pad: 0,
    };
    let back = Tuple {
        src: out.dst,
        dst: out.src,
        sport: out.dport,
        dport: out.sport,
        proto: 6,
        _pad: 0,
    };
    let (k1, e1) = out.key();
    let (k2, e2) = back.key();
    assert_eq!(k1, k2);
    assert_ne!(e1, e2);
}

#[test]
fn a_full_table_evicts_what_netfilter_would() {
    let tcp = CtKey {
        proto: 6,
        ..Default::default()
    };
    let udp = CtKey {
        proto: 17,
        ..Default::default()
    };
    let live = |tcp_state, status| CtEntry {
        tcp_state,
        status,
        expires: 100,
        ..Default::default()
    };
    let assured = status::SEEN_REPLY | status::ASSURED;
    // Assured: kept while live, evicted once expired.
    assert!(!evictable(&tcp, &live(tcp::ESTABLISHED, assured), 50));
    assert!(evictable(&tcp, &live(tcp::ESTABLISHED, assured), 100));
    assert!(!evictable(&udp, &live(0, assured), 50));
    // Not assured (a reply is not enough), or closing.
    assert!(evictable(
        &tcp,
        &live(tcp::ESTABLISHED, status::SEEN_REPLY),
        50
    ));
    assert!(evictable(&tcp, &live(tcp::SYN_SENT, 0), 50));
    assert!(evictable(&tcp, &live(tcp::SYN_RECV, 0), 50));
    assert!(evictable(&tcp, &live(tcp::TIME_WAIT, assured), 50));
    assert!(evictable(&udp, &live(0, status::SEEN_REPLY), 50));
    assert!(evictable(&udp, &live(0, 0), 50));
}

#[test]
fn an_entry_is_written_again_for_a_new_state_or_a_later_timeout() {
    const S: u64 = 1_000_000_000;
    let old = CtEntry {
        tcp_state: tcp::ESTABLISHED,
        status: status::SEEN_REPLY,
        expires: 100 * S,
        ..Default::default()
    };
    let with = |f: fn(&mut CtEntry)| {
        let mut e = old;
        f(&mut e);
        needs_store(&old, &e)
    };
    assert!(!with(|_| {}));
    assert!(!with(|e| e.expires += REFRESH_NS - 1));
    assert!(with(|e| e.expires += REFRESH_NS));
    assert!(with(|e| e.expires -= 1));
    assert!(with(|e| e.tcp_state = tcp::FIN_WAIT));
    assert!(with(|e| e.status = 0));
}

/// xt_CONNMARK's arithmetic, worked out by hand from `connmark_tg_shift`.
#[test]
fn connmark_follows_xt_connmark() {
    use super::connmark_mode::*;
    let a = |mode, ctmark, ctmask, nfmask, shift| crate::Action {
        connmark_mode: mode,
        set_mark: ctmark,
        set_mark_mask: ctmask,
        nfmask,
        connmark_shift: shift,
        ..Default::default()
    };
    // SET: (0xf0 & !0xf) ^ 0x5 = 0xf5, then shifted left by 4.
    assert_eq!(connmark(0xf0, 7, &a(SET, 5, 0xf, 0, 4)), (0xf50, 7));
    // SAVE: (0xff00 & !0xff) ^ (0x1234 & 0xff).
    assert_eq!(
        connmark(0xff00, 0x1234, &a(SAVE, 0, 0xff, 0xff, 0)),
        (0xff34, 0x1234)
    );
    // RESTORE: (0xff00 & !0xff) ^ ((0xab & 0xf) >> 1).
    assert_eq!(
        connmark(0xab, 0xff00, &a(RESTORE, 0, 0xf, 0xff, 1 | SHIFT_RIGHT)),
        (0xab, 0xff05)
    );
}
