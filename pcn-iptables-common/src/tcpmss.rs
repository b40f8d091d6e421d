//! The MSS option of TCP packets: xt_TCPMSS's search for a SYN's (`tcpmss_mangle_packet`), over
//! the options copied out of the packet, and its choices around it (drop, add an option); and
//! xt_tcpmss's match (`tcpmss_mt`), which the parse reads the option for.

use crate::{Action, PacketInfo};

/// `PacketInfo::tcp_mss` without an MSS option, or with a header or options cut short
/// (xt_tcpmss drops such a packet; here no rule matches it).
pub const NONE: u32 = 0x1_0000;
pub const MALFORMED: u32 = 0x2_0000;

/// `Action::tcpmss_flags`
pub mod flag {
    pub const ON: u8 = 1;
    pub const INVERT: u8 = 2;
}

/// Whether a packet with MSS option `mss` passes rule action `a`'s `-m tcpmss`.
#[inline(always)]
pub fn matches(mss: u32, a: &Action) -> bool {
    let invert = a.tcpmss_flags & flag::INVERT != 0;
    match mss {
        NONE => invert,
        MALFORMED => false,
        v => (a.tcpmss_range[0] as u32 <= v && v <= a.tcpmss_range[1] as u32) != invert,
    }
}

/// TCP options a header can hold (60 bytes less the fixed 20).
pub const MAX_OPTIONS: usize = 40;
/// The buffer the options are copied into: a power of two, so that every index masked to it
/// is in bounds for the verifier.
pub const BUF: usize = 64;

const TCPOPT_NOP: u8 = 1;
pub const TCPOPT_MSS: u8 = 2;
pub const TCPOLEN_MSS: u8 = 4;

/// The MSS xt_TCPMSS puts at most in the option it adds to an IPv4 SYN: RFC 1122's default
/// send MSS, which the receiver would have assumed without the option.
pub const DEFAULT_MSS: u16 = 536;

/// Whether xt_TCPMSS drops a packet whose TCP segment (its IP length less the IP header) is
/// `len` bytes long, its header `hdrlen` (the data offset times 4): either cut short.
#[inline(always)]
pub fn malformed(len: usize, hdrlen: usize) -> bool {
    len < 20 || len < hdrlen || hdrlen < 20
}

/// Whether xt_TCPMSS adds an MSS option to a SYN without one: it has no data (which would
/// have to move, and might no longer fit) and room in its header (the data offset is 4 bits).
#[inline(always)]
pub fn room(len: usize, hdrlen: usize) -> bool {
    len <= hdrlen && hdrlen < 15 * 4
}

/// 1 where xt_TCPMSS has room to add an MSS option to a TCP packet of IP length `ip_len`
/// (header `ihl`), `doff` the byte of its data offset: `!malformed && room`, a whole header
/// of 20 to 56 bytes with no data after it. Arithmetic, no branch (the parse computes it for
/// every SYN: the verifier then goes through the rest of the parse once, not once per case).
#[inline(always)]
pub fn room_for_option(ip_len: u32, ihl: usize, doff: u8) -> u8 {
    let bb = core::hint::black_box::<u64>;
    let words = (doff >> 4) as i64;
    let len = ip_len as i64 - ihl as i64;
    // 0 exactly where the TCP segment is its header.
    let rest = bb((len - words * 4) as u64);
    let whole = (bb(rest | rest.wrapping_neg()) >> 63) ^ 1;
    // 5 to 14 words: 0 <= words - 5 < 10.
    let at = words - 5;
    let fits = (bb(!at as u64) >> 63) & (bb((at - 10) as u64) >> 63);
    (whole & fits) as u8
}

/// What a TCPMSS rule does to the packet as the rules after it see it (xt_TCPMSS changes it
/// before they run; here TC writes it after them): an option added makes it 4 bytes longer
/// for their counters and length matches, once.
#[inline(always)]
pub fn grow(pkt: &mut PacketInfo) {
    if pkt.mss_adds != 0 {
        pkt.mss_adds = 0;
        pkt.len += TCPOLEN_MSS as u32;
    }
}

/// The MSS option as the rules after a `--set-mss mss` rule see it (`-m tcpmss`): lowered to
/// `mss`, or added (before `grow`). After `--clamp-mss-to-pmtu` it stays as it was: the
/// path's MTU is known only at TC.
#[inline(always)]
pub fn set(pkt: &mut PacketInfo, mss: u16) {
    match pkt.tcp_mss {
        NONE if pkt.mss_adds != 0 => pkt.tcp_mss = added(mss) as u32,
        v if v <= u16::MAX as u32 && v > mss as u32 => pkt.tcp_mss = mss as u32,
        _ => {}
    }
}

/// The MSS of the option added for a target MSS (or path MSS) of `mss`.
#[inline(always)]
pub fn added(mss: u16) -> u16 {
    if mss < DEFAULT_MSS { mss } else { DEFAULT_MSS }
}

/// Where the MSS option is among the first `len` bytes of `opts`, as the kernel walks them: a
/// kind of END or NOP, or a length of 0, moves one byte on; any other option its length.
#[inline(always)]
pub fn find(opts: &[u8; BUF], len: usize) -> Option<usize> {
    let mut i = 0;
    // One byte a step at least: MAX_OPTIONS steps cover every header.
    for _ in 0..MAX_OPTIONS {
        if i + TCPOLEN_MSS as usize > len {
            return None;
        }
        let (kind, optlen) = (opts[i & (BUF - 1)], opts[(i + 1) & (BUF - 1)]);
        if kind == TCPOPT_MSS && optlen == TCPOLEN_MSS {
            return Some(i);
        }
        i += if kind <= TCPOPT_NOP || optlen == 0 {
            1
        } else {
            optlen as usize
        };
    }
    None
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// The kernel's loop, line by line (`opt` is the TCP header; options start at 20).
    fn kernel(opt: &[u8], tcp_hdrlen: usize) -> Option<usize> {
        let optlen = |o: &[u8], off: usize| {
            if o[off] <= TCPOPT_NOP || o[off + 1] == 0 {
                1
            } else {
                o[off + 1] as usize
            }
        };
        let mut i = 20;
        while i + TCPOLEN_MSS as usize <= tcp_hdrlen {
            if opt[i] == TCPOPT_MSS && opt[i + 1] == TCPOLEN_MSS {
                return Some(i - 20);
            }
            i += optlen(opt, i);
        }
        None
    }

    #[test]
    fn finds_the_mss_option_as_the_kernel_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // A typical SYN: MSS first; then random options, biased to small kinds and lengths.
        let mut cases = vec![(vec![2, 4, 5, 0xb4, 4, 2, 8, 10], 20)];
        for _ in 0..20_000 {
            let len = (next() % 11) as usize * 4;
            let opts: Vec<u8> = (0..len)
                .map(|_| match next() % 6 {
                    0 => 0,
                    1 => 1,
                    2 => 2,
                    3 => 4,
                    _ => (next() % 12) as u8,
                })
                .collect();
            cases.push((opts, len));
        }
        let mut found = 0;
        for (opts, len) in cases {
            let mut header = vec![0u8; 20];
            header.extend(&opts);
            header.resize(80, 0);
            let mut buf = [0u8; BUF];
            buf[..opts.len()].copy_from_slice(&opts);
            let want = kernel(&header, 20 + len);
            found += want.is_some() as usize;
            assert_eq!(find(&buf, len), want, "{opts:?}");
        }
        assert!(found > 1000, "the cases find an MSS option often: {found}");
    }

    /// `tcpmss_mangle_packet`'s checks around the search, line by line: -1 (the packet is
    /// dropped), 0 (left as it is, or its option lowered) or 4 (an option added).
    fn kernel_outcome(len: i32, tcp_hdrlen: i32, found: bool) -> i32 {
        if len < 20 {
            return -1;
        }
        if len < tcp_hdrlen || tcp_hdrlen < 20 {
            return -1;
        }
        if found {
            return 0;
        }
        if len > tcp_hdrlen {
            return 0;
        }
        if tcp_hdrlen >= 15 * 4 {
            return 0;
        }
        4
    }

    #[test]
    fn drops_and_adds_as_the_kernel_does() {
        let mut added = 0;
        for len in 0..120usize {
            for doff in 0..16usize {
                for found in [false, true] {
                    let ours = match (malformed(len, doff * 4), found, room(len, doff * 4)) {
                        (true, _, _) => -1,
                        (false, true, _) | (false, false, false) => 0,
                        (false, false, true) => 4,
                    };
                    let want = kernel_outcome(len as i32, doff as i32 * 4, found);
                    assert_eq!(ours, want, "len {len}, doff {doff}, found {found}");
                    added += (want == 4) as usize;
                }
            }
        }
        // Every header of 20 to 56 bytes with nothing after it.
        assert_eq!(added, 10);
    }

    #[test]
    fn the_room_is_computed_without_a_branch_alike() {
        for ip_len in 0..200u32 {
            for ihl in [0, 20, 24, 60] {
                for doff in 0..=255u8 {
                    let (len, hdrlen) = (
                        (ip_len as usize).saturating_sub(ihl),
                        (doff >> 4) as usize * 4,
                    );
                    let want = !malformed(len, hdrlen) && room(len, hdrlen);
                    let got = room_for_option(ip_len, ihl, doff);
                    assert_eq!(
                        got, want as u8,
                        "ip_len {ip_len}, ihl {ihl}, doff {doff:#x}"
                    );
                }
            }
        }
    }

    /// What `-m tcpmss` sees after `--set-mss`: an option lowered, one added where there is
    /// room (536 at most), the rest as they were.
    #[test]
    fn the_rules_after_see_the_option_set() {
        let after = |tcp_mss: u32, adds: u8, mss: u16| {
            let mut pkt = PacketInfo {
                tcp_mss,
                mss_adds: adds,
                len: 40,
                ..Default::default()
            };
            set(&mut pkt, mss);
            grow(&mut pkt);
            (pkt.tcp_mss, pkt.len, pkt.mss_adds)
        };
        assert_eq!(after(1460, 0, 1000), (1000, 40, 0));
        assert_eq!(after(900, 0, 1000), (900, 40, 0));
        assert_eq!(after(NONE, 1, 1000), (536, 44, 0));
        assert_eq!(after(NONE, 1, 400), (400, 44, 0));
        assert_eq!(after(NONE, 0, 400), (NONE, 40, 0));
        assert_eq!(after(MALFORMED, 0, 400), (MALFORMED, 40, 0));
        // A second rule lowers the option the first added, and grows nothing.
        let mut pkt = PacketInfo {
            tcp_mss: NONE,
            mss_adds: 1,
            len: 40,
            ..Default::default()
        };
        for mss in [1000, 300] {
            set(&mut pkt, mss);
            grow(&mut pkt);
        }
        assert_eq!((pkt.tcp_mss, pkt.len), (300, 44));
    }

    /// IPv4's default MSS caps the added option; a smaller one is kept.
    #[test]
    fn the_added_mss_is_at_most_536() {
        for (mss, want) in [(0, 0), (200, 200), (535, 535), (536, 536), (537, 536)] {
            assert_eq!(added(mss), want);
        }
        assert_eq!(added(u16::MAX), 536);
    }

    /// xt_tcpmss's verdicts: in the range (or not, with `!`); without an option only `!`
    /// matches; a malformed header matches nothing (the kernel drops it).
    #[test]
    fn the_match_follows_tcpmss_mt() {
        let rule = |invert: bool| crate::Action {
            tcpmss_flags: flag::ON | if invert { flag::INVERT } else { 0 },
            tcpmss_range: [500, 600],
            ..Default::default()
        };
        for (mss, plain) in [(499, false), (500, true), (600, true), (601, false)] {
            assert_eq!(matches(mss, &rule(false)), plain, "{mss}");
            assert_eq!(matches(mss, &rule(true)), !plain, "{mss}");
        }
        assert!(!matches(NONE, &rule(false)) && matches(NONE, &rule(true)));
        assert!(!matches(MALFORMED, &rule(false)) && !matches(MALFORMED, &rule(true)));
    }
}
