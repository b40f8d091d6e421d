//! `-m dccp --dccp-option`: xt_dccp's `dccp_find_option`, over the option types the parse met
//! walking a DCCP packet's options (`PacketInfo::dccp_types`), once per packet where the
//! generation has such a rule (`chain_flag::DCCP_OPTION`).
//!
//! The options lie between the header (`header_len`: the generic header, the extended
//! sequence number when X is set, the type's own part) and the data offset. xt_dccp steps
//! over them as no RFC does: types 0 and 1 are one byte, any other type takes the next byte as
//! its length (0 or 1 steps one byte, and the option's last byte has none), so a byte is
//! looked at only where a step lands. A data offset short of the header, or options past the
//! packet's end (IP's, not the frame's), make xt_dccp drop the packet (hotdrop) at a rule
//! with the option once its ports and types passed, counting the rule first where its `!`
//! made it match; a generic header cut short, at any such rule, uncounted. Here the rule's
//! other checks come first, as if `-m dccp` came last in it: the classifier's scan stops at
//! the rule once they passed, and its round drops the packet (`unwalked`, `matched_at_cut`).

use crate::{Action, PacketInfo};

/// `Action::dccp_option_flags`
pub mod flag {
    pub const ON: u8 = 1;
    pub const INVERT: u8 = 2;
}

/// `PacketInfo::dccp_walk`: what the parse found of a DCCP packet's options (`NONE`: not
/// walked, a later fragment, which no dccp rule matches, `!` or not).
pub mod walk {
    pub const NONE: u8 = 0;
    /// The options were walked: `dccp_types` holds the types met.
    pub const WALKED: u8 = 1;
    /// The generic header is cut short.
    pub const NO_HEADER: u8 = 2;
    /// The data offset is short of the header, or the options run past the packet.
    pub const CUT_SHORT: u8 = 4;
}

/// The generic header's bytes.
pub const GENERIC_HEADER: u32 = 12;
/// Steps a walk takes at most: one byte each at least, over the most options a data offset
/// of 255 words leaves after the shortest header.
pub const MAX_STEPS: u32 = 255 * 4 - GENERIC_HEADER;

/// `__dccp_hdr_len` of the header whose type and X bit are in `byte` (the generic header's
/// ninth): 12 bytes, 4 more with X, then the type's own part (`dccp_packet_hdr_len`).
#[inline(always)]
pub fn header_len(byte: u8) -> u32 {
    let extended = (byte as u32 & 1) * 4;
    let own = match (byte >> 1) & 0x0f {
        // DATA
        2 => 0,
        // REQUEST: its service code.
        0 => 4,
        // ACK, DATAACK, CLOSEREQ, CLOSE, SYNC, SYNCACK: the acknowledgement number.
        3..=6 | 8 | 9 => 8,
        // RESPONSE (the acknowledgement number and the service code), RESET (the number and
        // the reset code), and every type from 10 on as RESET.
        _ => 12,
    };
    GENERIC_HEADER + extended + own
}

/// Starts the walk of the options of the DCCP packet at frame offset `l4`, whose IP packet
/// ends at `end`, from its generic header (`None`: cut short). Whether there are options to
/// walk (`step`); otherwise the packet's state is final.
#[inline(always)]
pub fn start(pkt: &mut PacketInfo, l4: u32, end: u32, header: Option<[u8; 12]>) -> bool {
    pkt.dccp_types = [0; 4];
    let Some(h) = header else {
        pkt.dccp_walk = walk::NO_HEADER;
        return false;
    };
    let (first, last) = (header_len(h[8]), h[4] as u32 * 4);
    // dccp_find_option's order: the offset against the header, no options (nothing read),
    // then the options against the packet.
    let walking = last > first && l4 + last <= end;
    pkt.dccp_walk = if last < first || (last > first && !walking) {
        walk::CUT_SHORT
    } else {
        walk::WALKED
    };
    pkt.dccp_offset = l4 + first;
    pkt.dccp_end = l4 + last;
    walking
}

/// One step of the walk: the option at `dccp_offset`, its type and, unless it is the
/// options' last byte, the byte after it (`load(at, 2)`; `load(at, 1)` reads the type alone),
/// recorded; the offset past it. Whether the walk goes on.
#[inline(always)]
pub fn step(pkt: &mut PacketInfo, load: impl FnOnce(u32, u32) -> Option<[u8; 2]>) -> bool {
    let (at, end) = (pkt.dccp_offset, pkt.dccp_end);
    if at >= end {
        return false;
    }
    let pair = end - at > 1;
    let Some([kind, len]) = load(at, 1 + pair as u32) else {
        // Not in the frame though inside the IP packet (the kernel drops such a frame).
        pkt.dccp_walk = walk::CUT_SHORT;
        return false;
    };
    pkt.dccp_types[(kind >> 6) as usize & 3] |= 1 << (kind & 63);
    let skip = if kind < 2 || !pair || len == 0 {
        1
    } else {
        len as u32
    };
    pkt.dccp_offset = at + skip;
    pkt.dccp_offset < end
}

/// Whether packet `pkt` passes rule action `a`'s `--dccp-option` (xt_dccp's `DCCHECK` over
/// `match_option`): its type is among those walked. A packet not walked (a later fragment)
/// does not pass, `!` or not; one whose options (or generic header) are cut short passes
/// here, so that the rule reaches its round once the rest of it matched (`unwalked`).
#[inline(always)]
pub fn matches(pkt: &PacketInfo, a: &Action) -> bool {
    let o = a.dccp_option;
    let found = pkt.dccp_types[(o >> 6) as usize & 3] & (1 << (o & 63)) != 0;
    match pkt.dccp_walk {
        walk::WALKED => found != (a.dccp_option_flags & flag::INVERT != 0),
        walk::NONE => false,
        _ => true,
    }
}

/// Whether rule action `a` has a `--dccp-option` that packet `pkt`'s options, cut short,
/// leave undecided: the classifier's scan stops at such a rule once the rest of it matched
/// (as if `-m dccp` came last in it), and the round drops the packet there, as xt_dccp does.
#[inline(always)]
pub fn unwalked(pkt: &PacketInfo, a: &Action) -> bool {
    a.dccp_option_flags != 0 && pkt.dccp_walk & (walk::NO_HEADER | walk::CUT_SHORT) != 0
}

/// Whether the rule `unwalked` stopped at counts the packet before the drop (and its target
/// acts): its options cut short, xt_dccp's check of the option answers no, which `!` turns
/// into a match. A packet without its generic header it drops before any check.
#[inline(always)]
pub fn matched_at_cut(pkt: &PacketInfo, a: &Action) -> bool {
    pkt.dccp_walk == walk::CUT_SHORT && a.dccp_option_flags & flag::INVERT != 0
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::test_rng::Rng;
    use crate::{IPPROTO_DCCP, SPI_DCCP_TYPE, pkt_check};

    /// What xt_dccp makes of a rule: `Ok(matched)`, or `Err(counted)`: the packet dropped
    /// (hotdrop), the rule counting it first if it matched all the same.
    type Kernel = Result<bool, bool>;

    /// xt_dccp's `dccp_mt` with its `DCCHECK`s (ports and types, then the option) and
    /// `dccp_find_option`, line by line, over `dccp` (the IP packet's payload from the
    /// generic header on).
    fn kernel(dccp: &[u8], r: &Rule) -> Kernel {
        if dccp.len() < 12 {
            return Err(false);
        }
        let sport = u16::from_be_bytes([dccp[0], dccp[1]]);
        let kind = (dccp[8] >> 1) & 0x0f;
        let ports = r.sport.is_none_or(|(p, inv)| (sport == p) != inv);
        let types = r.types.is_none_or(|(t, inv)| (t & (1 << kind) != 0) != inv);
        if !(ports && types) {
            return Ok(false);
        }
        // The option's check answers no; DCCHECK's `!` may turn it into a match.
        let dropped = Err(r.invert);
        let hdr_len = 12
            + if dccp[8] & 1 != 0 { 4 } else { 0 }
            + match kind {
                2 => 0,
                3 | 4 | 8 | 9 | 6 | 5 => 8,
                0 => 4,
                1 => 12,
                _ => 12,
            };
        let doff = dccp[4] as usize * 4;
        if doff < hdr_len {
            return dropped;
        }
        let optlen = doff - hdr_len;
        let found = 'find: {
            if optlen == 0 {
                break 'find false;
            }
            // skb_header_pointer: the options whole, or the drop.
            let Some(op) = dccp.get(hdr_len..hdr_len + optlen) else {
                return dropped;
            };
            let mut i = 0;
            while i < optlen {
                if op[i] == r.option {
                    break 'find true;
                }
                if op[i] < 2 || i == optlen - 1 {
                    i += 1;
                } else {
                    i += match op[i + 1] {
                        0 => 1,
                        n => n as usize,
                    };
                }
            }
            false
        };
        Ok(found != r.invert)
    }

    /// A rule: `--dccp-option` with its `!`, maybe a source port and types (each with `!`).
    struct Rule {
        option: u8,
        invert: bool,
        sport: Option<(u16, bool)>,
        types: Option<(u16, bool)>,
    }

    fn action(r: &Rule) -> Action {
        let mut a = Action {
            dccp_option: r.option,
            dccp_option_flags: flag::ON | if r.invert { flag::INVERT } else { 0 },
            ports_proto: IPPROTO_DCCP,
            ..Default::default()
        };
        if let Some((p, inv)) = r.sport {
            a.ports_flags |=
                pkt_check::PORTS_SPORT | [0, pkt_check::PORTS_SPORT_INVERT][inv as usize];
            a.ports_range[0] = [p, p];
        }
        if let Some((t, inv)) = r.types {
            a.ports_flags |=
                pkt_check::PORTS_TYPES | [0, pkt_check::PORTS_TYPES_INVERT][inv as usize];
            a.dccp_types = t;
        }
        a
    }

    /// The parse's walk over `frame` (`dccp` at offset 34, then `padding` bytes of Ethernet
    /// padding past the IP packet's end), then the rule's check and its drop.
    fn data_plane(dccp: &[u8], padding: usize, r: &Rule) -> Kernel {
        const L4: u32 = 34;
        let mut frame = std::vec![0xaa; L4 as usize];
        frame.extend_from_slice(dccp);
        frame.resize(frame.len() + padding, 0);
        let end = L4 + dccp.len() as u32;
        let mut pkt = PacketInfo {
            proto: IPPROTO_DCCP,
            ..Default::default()
        };
        // As the parse reads the ports and type, from the frame.
        pkt.spi = match frame.get(L4 as usize..L4 as usize + 12) {
            Some(h) => {
                u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64
                    | ((h[8] >> 1) as u64 & 0x0f) << SPI_DCCP_TYPE
            }
            None => crate::SPI_NONE,
        };
        let header = (L4 + 12 <= end).then(|| frame[L4 as usize..][..12].try_into().unwrap());
        if start(&mut pkt, L4, end, header) {
            for _ in 0..MAX_STEPS {
                let load = |at: u32, n: u32| {
                    let b = frame.get(at as usize..(at + n) as usize)?;
                    Some([b[0], *b.get(1).unwrap_or(&0)])
                };
                if !step(&mut pkt, load) {
                    break;
                }
            }
        }
        let a = action(r);
        // The scan reaches the round only where the rule's checks pass.
        let passed = crate::packet_matches(&pkt, &a);
        match passed && unwalked(&pkt, &a) {
            true => Err(matched_at_cut(&pkt, &a)),
            false => Ok(passed),
        }
    }

    /// Types the tests use: padding, mandatory, single-byte ones past 1, and longer ones.
    const TYPES: [u8; 9] = [0, 1, 2, 5, 32, 40, 44, 128, 255];

    /// A DCCP packet: generic header (a type, X), the type's part, options, payload; its data
    /// offset right, short of the header, or past the packet.
    fn packet(rng: &mut Rng) -> Vec<u8> {
        let kind = rng.below(16) as u8;
        let x = rng.below(2) as u8;
        let sport = [1000u16, 2000][rng.below(2) as usize];
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&[0, 80, 0, 0, 0, 0, kind << 1 | x, 0, 0, 1]);
        let first = header_len(kind << 1 | x) as usize;
        // The rest of the header: bytes that look like options.
        while p.len() < first {
            p.push(TYPES[rng.below(TYPES.len() as u64) as usize]);
        }
        for _ in 0..rng.below(6) {
            let t = TYPES[rng.below(TYPES.len() as u64) as usize];
            p.push(t);
            if rng.below(4) != 0 {
                let len = [0u8, 1, 2, 3, 4, 6, 200][rng.below(7) as usize];
                p.push(len);
                for _ in 2..len.min(8) {
                    p.push(TYPES[rng.below(TYPES.len() as u64) as usize]);
                }
            }
        }
        let words = p.len().div_ceil(4);
        p.resize(words * 4, 0);
        p[4] = match rng.below(8) {
            0 => (words as u8).saturating_sub(1 + rng.below(3) as u8),
            1 => words as u8 + 1 + rng.below(2) as u8,
            _ => words as u8,
        };
        // Payload, or the packet cut anywhere.
        match rng.below(6) {
            0 => p.truncate(rng.below(p.len() as u64 + 1) as usize),
            1 => p.extend_from_slice(&[5, 5, 44, 2]),
            _ => {}
        }
        p
    }

    fn rule(rng: &mut Rng) -> Rule {
        Rule {
            option: TYPES[1 + rng.below(TYPES.len() as u64 - 1) as usize],
            invert: rng.below(2) == 0,
            sport: (rng.below(3) == 0).then(|| (1000, rng.below(2) == 0)),
            types: (rng.below(3) == 0).then(|| (1 << 2 | 1 << 1, rng.below(2) == 0)),
        }
    }

    #[test]
    fn the_walk_answers_as_dccp_find_option() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut hotdrops, mut hits, mut misses) = (0, 0, 0);
        for case in 0..200_000 {
            let (dccp, r) = (packet(&mut rng), rule(&mut rng));
            let padding = [0, 0, 4, 26][rng.below(4) as usize];
            let want = kernel(&dccp, &r);
            hotdrops += want.is_err() as u32;
            hits += (want == Ok(true)) as u32;
            misses += (want == Ok(false)) as u32;
            assert_eq!(
                data_plane(&dccp, padding, &r),
                want,
                "case {case}: {dccp:?} padding {padding} option {} invert {} sport {:?} types {:?}",
                r.option,
                r.invert,
                r.sport,
                r.types
            );
        }
        // The generator reaches every outcome.
        assert!(
            hotdrops > 5000 && hits > 5000 && misses > 5000,
            "{hotdrops} {hits} {misses}"
        );
    }

    #[test]
    fn single_byte_types_are_0_and_1_only() {
        let rule = |option| Rule {
            option,
            invert: false,
            sport: None,
            types: None,
        };
        // DATA; Slow Receiver (2) takes 44 as its length: 44 is never looked at.
        let data = [0, 1, 0, 80, 4, 0, 0, 0, 4, 0, 0, 1, 2, 44, 1, 1];
        assert_eq!(data_plane(&data, 0, &rule(2)), Ok(true));
        assert_eq!(data_plane(&data, 0, &rule(44)), Ok(false));
        assert_eq!(data_plane(&data, 0, &rule(1)), Ok(false));
        // A length of 0 or 1 steps one byte; the last byte is a type whatever it is.
        let steps = [
            0, 1, 0, 80, 5, 0, 0, 0, 4, 0, 0, 1, 40, 0, 41, 1, 32, 3, 0, 44,
        ];
        for (option, found) in [
            (40, true),
            (41, true),
            (1, true),
            (32, true),
            (44, true),
            (3, false),
        ] {
            assert_eq!(data_plane(&steps, 0, &rule(option)), Ok(found), "{option}");
        }
        // The options run into the frame's padding, past the IP packet: dropped, counted
        // under `!`.
        let cut = [0, 1, 0, 80, 5, 0, 0, 0, 4, 0, 0, 1, 1, 1, 1, 1];
        assert_eq!(data_plane(&cut, 26, &rule(1)), Err(false));
        let inverted = Rule {
            invert: true,
            ..rule(1)
        };
        assert_eq!(data_plane(&cut, 26, &inverted), Err(true));
        // Without its generic header: dropped before any check.
        assert_eq!(data_plane(&cut[..11], 26, &inverted), Err(false));
    }
}
