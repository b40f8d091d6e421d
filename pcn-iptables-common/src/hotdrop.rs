//! The kernel's hotdrop of malformed packets: a match that cannot read the header it looks
//! at sets `par->hotdrop`, and ipt_do_table drops the packet at that rule, uncounted, once
//! the rule's IP part and the matches before this one matched:
//! - xt_tcpudp's tcp: a first fragment with fewer than 20 bytes of TCP header, and a
//!   fragment at offset 1 (8 bytes: "evil TCP offset=1 frag");
//! - udp, icmp (ip_tables' `icmp_match`, xt_tcpudp's since 6.x): fewer than 8 bytes;
//! - xt_sctp: fewer than 12 (the common header); xt_dccp: fewer than 12 (the generic
//!   header); xt_esp: fewer than 8; ipt_ah: fewer than 12;
//! - xt_tcpmss: a TCP header under 20 bytes, a data offset under 20, or options past the
//!   packet's end; xt_tcpudp's `--tcp-option` the same, once the ports and flags matched.
//!
//! The parse puts the packet's `cut` bits (`PacketInfo::cut`: which of these matches would
//! drop it, from its protocol, fragment offset and the bytes after its IP header, IP's
//! length, not the frame's); each rule's action has the bits of the matches it holds
//! (`Action::hotdrop`). The rule's other checks come first, as if the dropping match came
//! last in it (as `dccp_option`'s drop does): tcp, udp and icmp rules pass the classifier's
//! port, flag and ICMP bitmaps for such a packet (its key there is `[CUT_KEY]`, whose entry
//! holds them besides the rules that do not look at the field), the others pass their own
//! check; the scan stops at the first such rule (for one with a check of its own it says so
//! in `PacketInfo::stop`, having tested `stops`), and the round drops the packet there
//! (`at`, `stops`; uncounted but where `counted` says). `dccp_option` and `sctp_chunks` add
//! the drops of their walks.

use crate::{Action, IPPROTO_DCCP, IPPROTO_SCTP, PacketInfo, dccp_option, sctp_chunks, tcp_option};

pub const TCP: u8 = 1;
pub const UDP: u8 = 2;
pub const ICMP: u8 = 4;
pub const SCTP: u8 = 8;
pub const DCCP: u8 = 16;
pub const ESP: u8 = 32;
pub const AH: u8 = 64;
pub const TCPMSS: u8 = 128;

/// The matches whose fields the classifier scans (ports, TCP flags, ICMP type): a packet cut
/// short for one of them looks those fields up under `[CUT_KEY]` instead of `[0]`/`[1, v]`.
pub const KEYED: u8 = TCP | UDP | ICMP;
/// The lead byte of an optional field's key for a packet cut short for a `KEYED` match.
pub const CUT_KEY: u8 = 2;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_AH: u8 = 51;

/// The `cut` bits of a packet of protocol `proto` at fragment offset `frag_offset` (8-byte
/// units) with `avail` bytes after its IP header (its IP length less the header). The parse
/// adds `TCPMSS` for a whole TCP header whose data offset is under 20 bytes or past `avail`
/// (`PacketInfo::tcp_header_whole`).
#[inline(always)]
pub fn of(proto: u8, frag_offset: u16, avail: u32) -> u8 {
    if frag_offset != 0 {
        // The others answer no to any later fragment (xt_tcpmss reads none: the parse has
        // no MSS for it).
        return if proto == IPPROTO_TCP && frag_offset == 1 {
            TCP
        } else {
            0
        };
    }
    let (need, bit) = match proto {
        IPPROTO_TCP => (20, TCP),
        IPPROTO_UDP => (8, UDP),
        IPPROTO_ICMP => (8, ICMP),
        IPPROTO_SCTP => (12, SCTP),
        IPPROTO_DCCP => (12, DCCP),
        IPPROTO_ESP => (8, ESP),
        IPPROTO_AH => (12, AH),
        _ => return 0,
    };
    if avail < need {
        // xt_tcpmss too reads the 20 bytes first.
        return bit | if proto == IPPROTO_TCP { TCPMSS } else { 0 };
    }
    0
}

/// The lead byte of an optional field's key for packet `pkt` without the field's value:
/// `CUT_KEY` when a `KEYED` match would drop it, else 0.
#[inline(always)]
pub fn absent_key(pkt: &PacketInfo) -> u8 {
    if pkt.cut & KEYED != 0 { CUT_KEY } else { 0 }
}

/// Whether rule action `a`, its other checks passed, drops packet `pkt` (uncounted): a match
/// of the rule drops a packet cut short for it, or the rule has `--tcp-option` and the
/// packet's options could not be walked (a data offset under 20 bytes, options past the
/// packet's end: xt_tcpudp drops it once the ports and flags matched; such a rule sees no
/// later fragment, and the walk is fresh for every TCP packet of a generation that has one).
#[inline(always)]
pub fn at(pkt: &PacketInfo, a: &Action) -> bool {
    pkt.cut & a.hotdrop != 0
        || (a.tcp_option_flags != 0 && pkt.tcp_kinds[0] & tcp_option::WALKED == 0)
}

/// Whether the rule the classifier's scan stopped at (its other checks passed) drops packet
/// `pkt`: `at`, or its `--dccp-option` meets options cut short (`dccp_option::unwalked`), or
/// its `--chunk-types` walk meets chunks cut short (`sctp_chunks::cut_at`).
#[inline(always)]
pub fn stops(pkt: &PacketInfo, a: &Action) -> bool {
    at(pkt, a) || dccp_option::unwalked(pkt, a) || sctp_chunks::cut_at(pkt, a)
}

/// Whether the rule `stops` at counts the packet before the drop (and its target acts): a
/// match whose check answered no at the cut, turned into a match by its `!` (xt_dccp's
/// option, xt_sctp's chunks; ipt_do_table drops the packet after the rule's target).
#[inline(always)]
pub fn counted(pkt: &PacketInfo, a: &Action) -> bool {
    !at(pkt, a)
        && (dccp_option::matched_at_cut(pkt, a)
            || (sctp_chunks::cut_at(pkt, a) && a.sctp_chunk_flags & sctp_chunks::flag::INVERT != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_at_its_header_length() {
        for (proto, need, bit) in [
            (6, 20, TCP | TCPMSS),
            (17, 8, UDP),
            (1, 8, ICMP),
            (132, 12, SCTP),
            (33, 12, DCCP),
            (50, 8, ESP),
            (51, 12, AH),
        ] {
            assert_eq!(of(proto, 0, need - 1), bit, "{proto}");
            assert_eq!(of(proto, 0, need), 0, "{proto}");
            assert_eq!(of(proto, 0, 0), bit, "{proto}");
            // Later fragments: only TCP's at offset 1.
            assert_eq!(of(proto, 1, 0), if proto == 6 { TCP } else { 0 });
            assert_eq!(of(proto, 2, 0), 0);
        }
        assert_eq!(of(47, 0, 0), 0);
    }
}
