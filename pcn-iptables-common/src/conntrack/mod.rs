//! Connection tracking as netfilter does it, in plain functions both sides share: the eBPF
//! programs track packets with them, userspace tests them and seeds the table with them.

/// A packet's connection state: one of the values below (xt_conntrack's
/// XT_CONNTRACK_STATE_BIT order: INVALID, then ESTABLISHED, RELATED, NEW), in the low 3 bits
/// of the classifier's CTSTATE value, with `PACKET_SNAT`/`PACKET_DNAT` when its connection is
/// translated (`with_nat`). A state set of the model is `1 << state` bits, with `SNAT` and
/// `DNAT` as bits of their own (xt_conntrack's XT_CONNTRACK_STATE_SNAT/DNAT).
pub mod ctstate {
    pub const INVALID: u8 = 0;
    pub const ESTABLISHED: u8 = 1;
    pub const RELATED: u8 = 2;
    pub const NEW: u8 = 3;
    pub const UNTRACKED: u8 = 4;
    /// Model bits only: `--ctstate SNAT`, `--ctstate DNAT`.
    pub const SNAT: u8 = 5;
    pub const DNAT: u8 = 6;
    /// The state in a packet's value.
    pub const STATE_MASK: u8 = 7;
    /// A packet's value: its connection has IPS_SRC_NAT / IPS_DST_NAT.
    pub const PACKET_SNAT: u8 = 1 << 3;
    pub const PACKET_DNAT: u8 = 1 << 4;

    /// The value of a packet in `state` whose connection has `nat` (`nat_flag::*`).
    #[inline(always)]
    pub const fn with_nat(state: u8, nat: u8) -> u8 {
        state
            | if nat & super::nat_flag::SRC != 0 {
                PACKET_SNAT
            } else {
                0
            }
            | if nat & super::nat_flag::DST != 0 {
                PACKET_DNAT
            } else {
                0
            }
    }

    /// Whether a packet of value `v` has a connection (xt_conntrack's `ct != NULL`): not
    /// INVALID, not UNTRACKED.
    #[inline(always)]
    pub const fn has_connection(v: u8) -> bool {
        matches!(v & STATE_MASK, ESTABLISHED | RELATED | NEW)
    }
}

/// netfilter's TCP conntrack states (enum tcp_conntrack, as ctnetlink and `conntrack -L` name
/// them).
pub mod tcp {
    pub const NONE: u8 = 0;
    pub const SYN_SENT: u8 = 1;
    pub const SYN_RECV: u8 = 2;
    pub const ESTABLISHED: u8 = 3;
    pub const FIN_WAIT: u8 = 4;
    pub const CLOSE_WAIT: u8 = 5;
    pub const LAST_ACK: u8 = 6;
    pub const TIME_WAIT: u8 = 7;
    pub const CLOSE: u8 = 8;
    pub const SYN_SENT2: u8 = 9;
    /// Not a state: the packet is invalid for the connection.
    pub const INVALID: u8 = 10;
    /// Not a state: the packet does not change the state (and is accepted as it is).
    pub const IGNORE: u8 = 11;

    pub const NAMES: [&str; 10] = [
        "NONE",
        "SYN_SENT",
        "SYN_RECV",
        "ESTABLISHED",
        "FIN_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
        "TIME_WAIT",
        "CLOSE",
        "SYN_SENT2",
    ];
}

/// TCP header flag bits (byte 13 of the header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

use tcp::*;

const S_SS: u8 = SYN_SENT;
const S_SR: u8 = SYN_RECV;
const S_ES: u8 = ESTABLISHED;
const S_FW: u8 = FIN_WAIT;
const S_CW: u8 = CLOSE_WAIT;
const S_LA: u8 = LAST_ACK;
const S_TW: u8 = TIME_WAIT;
const S_CL: u8 = CLOSE;
const S_S2: u8 = SYN_SENT2;
const S_IV: u8 = INVALID;
const S_IG: u8 = IGNORE;

/// netfilter's transition table (nf_conntrack_proto_tcp.c, `tcp_conntracks`), indexed by
/// direction (0 original, 1 reply), the packet's flag class (SYN, SYN/ACK, FIN, ACK, RST,
/// none) and the current state (NONE … SYN_SENT2).
#[rustfmt::skip]
const TRANSITIONS: [[[u8; 10]; 6]; 2] = [
    [
        /*            sNO   sSS   sSR   sES   sFW   sCW   sLA   sTW   sCL   sS2 */
        /* syn */    [S_SS, S_SS, S_IG, S_IG, S_IG, S_IG, S_IG, S_SS, S_SS, S_S2],
        /* synack */ [S_IV, S_IV, S_SR, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_SR],
        /* fin */    [S_IV, S_IV, S_FW, S_FW, S_LA, S_LA, S_LA, S_TW, S_CL, S_IV],
        /* ack */    [S_ES, S_IV, S_ES, S_ES, S_CW, S_CW, S_TW, S_TW, S_CL, S_IV],
        /* rst */    [S_IV, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL],
        /* none */   [S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV],
    ],
    [
        /*            sNO   sSS   sSR   sES   sFW   sCW   sLA   sTW   sCL   sS2 */
        /* syn */    [S_IV, S_S2, S_IV, S_IV, S_IV, S_IV, S_IV, S_SS, S_IV, S_S2],
        /* synack */ [S_IV, S_SR, S_IG, S_IG, S_IG, S_IG, S_IG, S_IG, S_IG, S_SR],
        /* fin */    [S_IV, S_IV, S_FW, S_FW, S_LA, S_LA, S_LA, S_TW, S_CL, S_IV],
        /* ack */    [S_IV, S_IG, S_SR, S_ES, S_CW, S_CW, S_TW, S_TW, S_CL, S_IG],
        /* rst */    [S_IV, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL],
        /* none */   [S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV, S_IV],
    ],
];

/// Flag combinations netfilter accepts at all (tcp_valid_flags); anything else, SYN+FIN or
/// no flag for instance, is INVALID before any state is looked at. PSH never matters.
#[inline(always)]
pub fn tcp_flags_valid(flags: u8) -> bool {
    use tcp_flags::*;
    let f = flags & (FIN | SYN | RST | ACK | URG);
    matches!(
        f,
        x if x == SYN
            || x == SYN | URG
            || x == SYN | ACK
            || x == RST
            || x == RST | ACK
            || x == FIN | ACK
            || x == FIN | ACK | URG
            || x == ACK
            || x == ACK | URG
    )
}

/// The row of the transition table for a packet's flags (get_conntrack_index).
#[inline(always)]
fn flag_class(flags: u8) -> usize {
    use tcp_flags::*;
    if flags & RST != 0 {
        4
    } else if flags & SYN != 0 {
        if flags & ACK != 0 { 1 } else { 0 }
    } else if flags & FIN != 0 {
        2
    } else if flags & ACK != 0 {
        3
    } else {
        5
    }
}

/// The state a connection in `state` moves to when a packet with `flags` goes the given way
/// (`reply` false: the direction of the connection's first packet). INVALID and IGNORE are
/// not states: the former marks the packet invalid, the latter leaves the state alone.
#[inline(always)]
pub fn tcp_transition(state: u8, reply: bool, flags: u8) -> u8 {
    // Bounded where the compiler cannot drop the check: the eBPF verifier must see the
    // index below 10 on the very register that indexes the table.
    let state = core::hint::black_box(state as usize) & 15;
    let state = if state < 10 { state } else { 0 };
    TRANSITIONS[reply as usize][flag_class(flags)][state]
}

const SEC: u64 = 1_000_000_000;

/// netfilter's default timeouts (nf_conntrack_tcp_timeout_*), in nanoseconds.
pub fn tcp_timeout(state: u8) -> u64 {
    SEC * match state {
        SYN_SENT | SYN_SENT2 => 120,
        SYN_RECV => 60,
        ESTABLISHED => 5 * 24 * 3600,
        FIN_WAIT | TIME_WAIT => 120,
        CLOSE_WAIT => 60,
        LAST_ACK => 30,
        _ => 10,
    }
}

/// nf_conntrack_udp_timeout and nf_conntrack_udp_timeout_stream (a stream: see
/// `track_other`).
pub fn udp_timeout(stream: bool) -> u64 {
    SEC * if stream { 120 } else { 30 }
}

/// nf_conntrack_icmp_timeout.
pub const ICMP_TIMEOUT: u64 = 30 * SEC;
/// nf_conntrack_generic_timeout, for other protocols.
pub const GENERIC_TIMEOUT: u64 = 600 * SEC;

/// ICMP queries and their replies (the types conntrack tracks as connections).
pub fn icmp_reply_type(query: u8) -> Option<u8> {
    match query {
        8 => Some(0),   // echo
        13 => Some(14), // timestamp
        15 => Some(16), // information
        17 => Some(18), // address mask
        _ => None,
    }
}

/// The query an ICMP reply answers.
pub fn icmp_query_of_reply(reply: u8) -> Option<u8> {
    match reply {
        0 => Some(8),
        14 => Some(13),
        16 => Some(15),
        18 => Some(17),
        _ => None,
    }
}

/// ICMP errors that quote a packet of a connection (RELATED to it).
pub fn icmp_is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// Entry flags.
pub mod status {
    /// A packet went the reply way.
    pub const SEEN_REPLY: u8 = 1;
    /// Not a connection: the key of a translated connection's reply tuple, which leads to
    /// the connection's entry (`CtEntry::reply_addr`/`reply_port` hold its key).
    pub const ALIAS: u8 = 2;
    /// netfilter's IPS_ASSURED: a TCP connection whose handshake completed (or whose pick-up
    /// was answered), a UDP stream (traffic after a reply, two seconds on).
    pub const ASSURED: u8 = 4;
}

/// netfilter's IPS_* bits as `--ctstatus` names them (`PacketInfo::ct_status`).
pub mod ips {
    pub const EXPECTED: u8 = 1;
    pub const SEEN_REPLY: u8 = 2;
    pub const ASSURED: u8 = 4;
    pub const CONFIRMED: u8 = 8;
}

/// A UDP connection with a reply is a stream (assured, its longer timeout) once this long
/// after its first packet: nf_conntrack_proto_udp's `stream_ts`.
pub const UDP_STREAM_AFTER: u64 = 2 * SEC;

/// `CtEntry::nat`: which ends of a connection nat rewrites (netfilter's IPS_SRC_NAT and
/// IPS_DST_NAT), seen from its first packet.
pub mod nat_flag {
    /// The source (SNAT, MASQUERADE, NETMAP in POSTROUTING or INPUT).
    pub const SRC: u8 = 1;
    /// The destination (DNAT, REDIRECT, NETMAP in PREROUTING or OUTPUT).
    pub const DST: u8 = 2;
    /// The original way ends here (its first packet went to INPUT): nat INPUT rewrites the
    /// source of its packets, the replies' destination is rewritten on their way out (OUTPUT).
    pub const LOCAL_IN: u8 = 4;
    /// The connection started here (OUTPUT): its replies end here.
    pub const LOCAL_OUT: u8 = 8;
    /// MASQUERADE mapped its source, to an address of `CtEntry::out_ifindex`: the mapping
    /// goes when the address does.
    pub const MASQUERADE: u8 = 16;
    /// Started here to a local address that OUTPUT mapped elsewhere: its replies, whose
    /// source nat INPUT makes local again, go to the socket through lo (a local source is
    /// a martian on any other device), and lo does not judge them again.
    pub const LOOPED: u8 = 32;
    /// Which ends nat rewrites.
    pub const ENDS: u8 = SRC | DST;
}

/// A connection as both hooks see it: the key is the tuple of its first packet with the two
/// ends in a canonical order (lower address/port first), so that one lookup finds it from
/// either direction. For ICMP the "ports" are the query's id and type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct CtKey {
    pub addr: [[u8; 4]; 2],
    pub port: [u16; 2],
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// Word by word: a derived comparison of the arrays can become a call to `bcmp`, a
/// subprogram (and a frame) more for the eBPF verifier.
impl PartialEq for CtKey {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        let addr = |k: &CtKey| (u32::from_ne_bytes(k.addr[0]), u32::from_ne_bytes(k.addr[1]));
        addr(self) == addr(other) && self.port == other.port && self.proto == other.proto
    }
}

/// The fields `eq` compares (the padding is not the key's).
impl core::hash::Hash for CtKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (self.addr, self.port, self.proto).hash(state);
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    /// Which end of the key started the connection (0 or 1).
    pub origin: u8,
    /// TCP state (tcp::*); 0 for other protocols.
    pub tcp_state: u8,
    /// status::* bits.
    pub status: u8,
    /// nat_flag::* bits: the connection is translated, `reply_*` hold its reply tuple.
    pub nat: u8,
    /// The connection's mark (`-j CONNMARK`, `-m connmark`).
    pub mark: u32,
    /// bpf_ktime_get_ns() at which the connection is forgotten.
    pub expires: u64,
    /// A translated connection's reply tuple as its replies carry it (sources first:
    /// `[src, dst]`); an alias's connection key (`CtKey::addr`, `CtKey::port`).
    pub reply_addr: [[u8; 4]; 2],
    pub reply_port: [u16; 2],
    /// MASQUERADE's output interface.
    pub out_ifindex: u32,
    /// UDP: when a replied connection becomes a stream (`UDP_STREAM_AFTER` after its first
    /// packet).
    pub stream_at: u64,
}

/// A packet's tuple: source and destination address and port (id/type for ICMP queries).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// Zero: a padding byte the compiler may leave undefined, which the verifier refuses to
    /// copy.
    pub _pad: u8,
}

impl Tuple {
    /// The tuple of the IPv4 header `ip` (its protocol, addresses) with these ports.
    #[inline(always)]
    pub fn of_ipv4(ip: &[u8; 20], sport: u16, dport: u16) -> Tuple {
        Tuple {
            src: [ip[12], ip[13], ip[14], ip[15]],
            dst: [ip[16], ip[17], ip[18], ip[19]],
            sport,
            dport,
            proto: ip[9],
            _pad: 0,
        }
    }

    /// The tuple of the packets going the other way.
    #[inline(always)]
    pub fn inverse(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            _pad: 0,
        }
    }

    /// The canonical key and which end of it the packet's source is.
    #[inline(always)]
    pub fn key(&self) -> (CtKey, u8) {
        let a = (self.src, self.sport);
        let b = (self.dst, self.dport);
        let (lo, hi, src_end) = if a <= b { (a, b, 0) } else { (b, a, 1) };
        (
            CtKey {
                addr: [lo.0, hi.0],
                port: [lo.1, hi.1],
                proto: self.proto,
                _pad: [0; 3],
            },
            src_end,
        )
    }
}

/// What tracking makes of a TCP packet: its ctstate, and the entry to store if the packet is
/// accepted (`None`: store nothing).
#[inline(always)]
pub fn track_tcp(
    existing: Option<&CtEntry>,
    src_end: u8,
    flags: u8,
    now: u64,
) -> (u8, Option<CtEntry>) {
    if !tcp_flags_valid(flags) {
        return (ctstate::INVALID, None);
    }
    // A SYN reopening a connection in TIME_WAIT/CLOSE starts a new one.
    let existing = existing.filter(|e| {
        src_end != e.origin
            || flags & tcp_flags::SYN == 0
            || (e.tcp_state != TIME_WAIT && e.tcp_state != CLOSE)
    });
    match existing {
        None => {
            // tcp_new: SYN opens, a lone ACK is picked up mid-stream (nf_conntrack_tcp_loose);
            // anything else of an unknown connection is invalid.
            let state = tcp_transition(NONE, false, flags);
            if state == INVALID || state == IGNORE {
                return (ctstate::INVALID, None);
            }
            let entry = CtEntry {
                origin: src_end,
                tcp_state: state,
                expires: now + tcp_timeout(state),
                ..Default::default()
            };
            (ctstate::NEW, Some(entry))
        }
        Some(e) => {
            let reply = src_end != e.origin;
            let next = tcp_transition(e.tcp_state, reply, flags);
            if next == INVALID {
                return (ctstate::INVALID, None);
            }
            let mut entry = *e;
            if next != IGNORE {
                entry.tcp_state = next;
            }
            // tcp_packet: assured once the handshake's last ACK (or an answer to a picked-up
            // connection) leads to ESTABLISHED after a reply was seen.
            if e.status & status::SEEN_REPLY != 0
                && matches!(e.tcp_state, SYN_RECV | ESTABLISHED)
                && next == ESTABLISHED
            {
                entry.status |= status::ASSURED;
            }
            if reply {
                entry.status |= status::SEEN_REPLY;
            }
            entry.expires = now + tcp_timeout(entry.tcp_state);
            (direction_state(&entry, reply), Some(entry))
        }
    }
}

/// What tracking makes of a UDP packet, an ICMP query or reply, or another protocol's packet.
#[inline(always)]
pub fn track_other(
    existing: Option<&CtEntry>,
    src_end: u8,
    proto: u8,
    now: u64,
) -> (u8, Option<CtEntry>) {
    let timeout = |stream: bool| match proto {
        17 => udp_timeout(stream),
        1 => ICMP_TIMEOUT,
        _ => GENERIC_TIMEOUT,
    };
    match existing {
        None => {
            let entry = CtEntry {
                origin: src_end,
                expires: now + timeout(false),
                stream_at: now + UDP_STREAM_AFTER,
                ..Default::default()
            };
            (ctstate::NEW, Some(entry))
        }
        Some(e) => {
            let reply = src_end != e.origin;
            let mut entry = *e;
            // udp_packet: after a reply (seen before this packet), a stream from two seconds
            // on: assured, and the longer timeout.
            let stream = proto == 17 && e.status & status::SEEN_REPLY != 0 && now > e.stream_at;
            if stream {
                entry.status |= status::ASSURED;
            }
            if reply {
                entry.status |= status::SEEN_REPLY;
            }
            entry.expires = now + timeout(stream);
            (direction_state(&entry, reply), Some(entry))
        }
    }
}

/// `Action::connmark_mode`: what `-j CONNMARK` does (xt_CONNMARK's modes).
pub mod connmark_mode {
    pub const SET: u8 = 1;
    pub const SAVE: u8 = 2;
    pub const RESTORE: u8 = 3;
    /// `Action::connmark_shift`: the bits, and this for a right shift.
    pub const SHIFT_RIGHT: u8 = 0x80;
}

/// xt_CONNMARK's `connmark_tg_shift` on a packet with mark `mark` whose connection has
/// `ct_mark`: the connection's mark and the packet's after rule action `a`.
#[inline(always)]
pub fn connmark(ct_mark: u32, mark: u32, a: &crate::Action) -> (u32, u32) {
    let bits = (a.connmark_shift & 0x7f) as u32;
    // x86's shift, which takes the count modulo 32 (the kernel refuses 32 itself).
    let shift = |v: u32| match a.connmark_shift & connmark_mode::SHIFT_RIGHT {
        0 => v << (bits & 31),
        _ => v >> (bits & 31),
    };
    let (ctmark, ctmask) = (a.set_mark, a.set_mark_mask);
    match a.connmark_mode {
        connmark_mode::SET => (shift((ct_mark & !ctmask) ^ ctmark), mark),
        connmark_mode::SAVE => ((ct_mark & !ctmask) ^ shift(mark & a.nfmask), mark),
        connmark_mode::RESTORE => (ct_mark, (mark & !a.nfmask) ^ shift(ct_mark & ctmask)),
        _ => (ct_mark, mark),
    }
}

/// ctinfo of a packet of a known connection: replies are ESTABLISHED, and so is the original
/// direction once a reply was seen; before that it is still NEW.
#[inline(always)]
fn direction_state(entry: &CtEntry, reply: bool) -> u8 {
    if reply || entry.status & status::SEEN_REPLY != 0 {
        ctstate::ESTABLISHED
    } else {
        ctstate::NEW
    }
}

/// Whether a full table may drop the entry to make room for a new connection, as netfilter's
/// early_drop and its gc worker do (`gc_worker_can_early_drop`): an expired entry, one not
/// assured, or a TCP connection closing (`tcp_can_early_drop`).
#[inline(always)]
pub fn evictable(key: &CtKey, entry: &CtEntry, now: u64) -> bool {
    // An alias goes with its connection (see `track::reclaim`).
    if entry.status & status::ALIAS != 0 {
        return false;
    }
    entry.expires <= now
        || entry.status & status::ASSURED == 0
        || (key.proto == 6
            && matches!(
                entry.tcp_state,
                tcp::FIN_WAIT | tcp::LAST_ACK | tcp::TIME_WAIT | tcp::CLOSE | tcp::CLOSE_WAIT
            ))
}

/// A full table's search for room (eBPF's `track::reclaim`), per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CtReclaim {
    /// bpf_ktime_get_ns() of the search.
    pub now: u64,
    /// Until when the table is not searched again: the last search found no room.
    pub hold_until: u64,
    /// Entries the search deleted.
    pub freed: u32,
    pub _pad: u32,
    /// A connection early drop looks at, and the key of one of its aliases: in map memory,
    /// as the classifiers' frames are full.
    pub key: CtKey,
    pub alias: CtKey,
}

/// How much later a packet must push a connection's timeout for its entry to be written
/// again (its state and status are written whenever they change).
pub const REFRESH_NS: u64 = 1_000_000_000;

/// Whether a live connection's entry, `old`, must be replaced by what tracking made of it for
/// a new packet. As netfilter with its default `nf_conntrack_acct=0`, a connection counts no
/// packets, so most packets change nothing but the timeout: writing that for every packet
/// would move the entry's cache line between the CPUs that handle the flow.
#[inline(always)]
pub fn needs_store(old: &CtEntry, new: &CtEntry) -> bool {
    old.tcp_state != new.tcp_state
        || old.status != new.status
        || new.expires < old.expires
        || new.expires - old.expires >= REFRESH_NS
}

pub mod nat;

use crate::{Action, PacketInfo, ct_check, ct_other};

/// `-m conntrack --ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst`, `--ctproto` and
/// `--ctdir`, as xt_conntrack's `conntrack_mt` makes them: whether the packet's connection's
/// tuples (`PacketInfo::orig`, and `xlat`, the reply tuple's inverse) have the addresses and
/// protocol rule action `a` asks for, and the packet goes the direction it asks for. The
/// data plane checks it per rule (not classifier fields: few rules use them, and a field
/// costs a trie lookup for every packet of the chain).
#[inline(always)]
pub fn tuples_match(pkt: &PacketInfo, a: &Action) -> bool {
    let (checks, other) = (a.ct_checks, a.ct_other);
    if checks & ct_check::ADDRS == 0 && other == 0 && a.ct_ports == 0 {
        return true;
    }
    // conntrack_mt without a connection (INVALID, UNTRACKED) stops after `--ctstate`: it
    // matches only if it had a state to check (which the classifier did).
    if !ctstate::has_connection(pkt.ctstate) {
        return checks & ct_check::STATE != 0;
    }
    for i in 0..4 {
        let bit = 1u8 << i;
        if checks & bit == 0 {
            continue;
        }
        let addr = match bit {
            ct_check::ORIG_SRC => pkt.orig.src,
            ct_check::ORIG_DST => pkt.orig.dst,
            ct_check::REPL_SRC => pkt.xlat.dst,
            _ => pkt.xlat.src,
        };
        let differ = (u32::from_ne_bytes(addr) ^ u32::from_ne_bytes(a.ct_addr[i]))
            & u32::from_ne_bytes(a.ct_mask[i]);
        if (differ == 0) == (a.ct_invert & bit != 0) {
            return false;
        }
    }
    // The reply tuple's ports, from its inverse.
    let ports = [
        pkt.orig.sport,
        pkt.orig.dport,
        pkt.xlat.dport,
        pkt.xlat.sport,
    ];
    for (i, port) in ports.into_iter().enumerate() {
        let bit = 1u8 << i;
        if a.ct_ports & bit == 0 {
            continue;
        }
        let [lo, hi] = a.ct_port_range[i];
        let invert = a.ct_ports & (bit << crate::ct_port::INVERT_SHIFT) != 0;
        if (lo <= port && port <= hi) == invert {
            return false;
        }
    }
    if other & ct_other::DIR != 0 && (pkt.ct_reply != 0) != (other & ct_other::REPLY != 0) {
        return false;
    }
    if other & ct_other::STATUS != 0
        && (pkt.ct_status & a.ct_status_mask != 0) == (other & ct_other::STATUS_INVERT != 0)
    {
        return false;
    }
    let [lo, hi] = a.ct_expires;
    if other & ct_other::EXPIRES != 0
        && (lo <= pkt.ct_expires && pkt.ct_expires <= hi) == (other & ct_other::EXPIRES_INVERT != 0)
    {
        return false;
    }
    other & ct_other::PROTO == 0
        || (pkt.orig.proto == a.ct_proto) != (other & ct_other::PROTO_INVERT != 0)
}

#[cfg(test)]
mod tests;
