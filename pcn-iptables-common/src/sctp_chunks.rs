//! `-m sctp --chunk-types`: xt_sctp's `match_packet`, over what the parse learns walking an SCTP
//! packet's chunks (`PacketInfo::sctp_*`): the chunk types met, and for types 0 to 14 the flag
//! values met. xt_sctp walks the chunks once per rule and stops early (ANY at the first chunk
//! that passes, ONLY at the first that does not); the walk here goes to the end once per
//! packet, and the rule's answer follows from the sets, the same in every case:
//! - ANY: some chunk of a type of the map passes its flag check;
//! - ALL: every type of the map has a chunk that passes;
//! - ONLY: every chunk's type is in the map, and every chunk passes.
//!
//! A chunk passes when the rule has no flag check for its type, or `flags & mask == flag`.
//! A chunk list cut short (a header past the packet's end, a length of 0) makes xt_sctp drop
//! the packet (hotdrop) where its walk gets there: for ANY when no chunk before passed, for
//! ONLY when none before failed, for ALL always; with `!` the rule matches first (its check
//! answers no), so it counts the packet and its target runs before the drop. Here the rule's
//! other checks come first (its ports too, as xt_sctp checks them before the chunks): such a
//! rule passes its check (`matches`), the scan stops there (`cut_at`), and the round drops
//! the packet (counted with `!`: `hotdrop::counted`).

use crate::{Action, PacketInfo};

/// `Action::sctp_chunk_flags`: the rule has `--chunk-types`, its `!`, and its match type.
pub mod flag {
    pub const ON: u8 = 1;
    pub const INVERT: u8 = 2;
    pub const ANY: u8 = 4;
    pub const ALL: u8 = 8;
    pub const ONLY: u8 = 16;
}

/// `PacketInfo::sctp_walk`: the chunks were walked (an SCTP packet's first fragment, its
/// common header whole), and the walk reached the end of the packet.
pub mod walk {
    pub const WALKED: u8 = 1;
    pub const COMPLETE: u8 = 2;
}

/// Chunks a walk takes at most: an IP packet of 64 KiB holds fewer (4 bytes each at least).
pub const MAX_CHUNKS: u32 = 16384;
/// Flag checks a rule has at most (xt_sctp's `XT_NUM_SCTP_FLAGS`).
pub const MAX_CHECKS: usize = 4;
/// Chunk types whose flags the walk records (`PacketInfo::sctp_flags`): libxt_sctp names a
/// check's type by its place in its table of names, which is the type itself for DATA (0) to
/// SHUTDOWN_COMPLETE (14) only, so a check on any other type never meets a chunk of the map.
/// `UNUSED_TYPE`'s entry stays empty: an unused check of a rule names it.
pub const FLAG_TYPES: usize = 16;
pub const UNUSED_TYPE: u8 = 15;
/// The flag bits libxt_sctp can name: bit 7 (its `-`) and bits 3 to 0 (DATA's `I`, `U`, `B`,
/// `E`; ABORT's and SHUTDOWN_COMPLETE's `T` is bit 0).
pub const NAMED_FLAGS: u8 = 0x8f;

/// A flag byte as one of 32 values (bit 7 as bit 4, bits 3 to 0 as they are): a check looks
/// at no other bit, so its answer for a byte is its answer for this value.
#[inline(always)]
pub fn flag_value(flags: u8) -> u32 {
    ((flags as u32 >> 3) & 0x10) | (flags as u32 & 0x0f)
}

/// The values (`flag_value`, one bit each) that pass a check `flags & mask == flag`; `mask`
/// within `NAMED_FLAGS`.
pub fn passing(flag: u8, mask: u8) -> u32 {
    (0..32u32)
        .filter(|v| {
            let byte = ((v & 0x10) << 3) as u8 | (*v as u8 & 0x0f);
            byte & mask == flag
        })
        .fold(0, |set, v| set | 1 << v)
}

/// Starts the walk of the chunks from offset `first` to `end` (the IP packet's end).
#[inline(always)]
pub fn start(pkt: &mut PacketInfo, first: u32, end: u32) {
    pkt.sctp_walk = walk::WALKED;
    pkt.sctp_types = [0; 4];
    pkt.sctp_flags = [0; FLAG_TYPES];
    pkt.sctp_offset = first;
    pkt.sctp_end = end;
}

/// One step of the walk, as xt_sctp's loop takes it: the chunk header at `sctp_offset`, read
/// by `load` where the packet has it, recorded, and the offset past the chunk (its length
/// padded to 4 bytes). Whether the walk goes on: it stops at the packet's end (COMPLETE), or
/// where a header is cut short or has a length of 0.
#[inline(always)]
pub fn step(pkt: &mut PacketInfo, load: impl FnOnce(u32) -> Option<[u8; 4]>) -> bool {
    let at = pkt.sctp_offset;
    if at > pkt.sctp_end || pkt.sctp_end - at < 4 {
        return false;
    }
    let Some([kind, flags, len_hi, len_lo]) = load(at) else {
        return false;
    };
    let len = u16::from_be_bytes([len_hi, len_lo]) as u32;
    if len == 0 {
        return false;
    }
    pkt.sctp_types[(kind >> 6) as usize & 3] |= 1 << (kind & 63);
    if kind < UNUSED_TYPE {
        pkt.sctp_flags[kind as usize & (FLAG_TYPES - 1)] |= 1 << flag_value(flags);
    }
    pkt.sctp_offset = at + ((len + 3) & !3);
    if pkt.sctp_offset >= pkt.sctp_end {
        pkt.sctp_walk |= walk::COMPLETE;
        return false;
    }
    true
}

/// Fills rule action `a`'s `--chunk-types`: match type `kind` (`flag::ANY`, `ALL` or `ONLY`),
/// its `!`, the map, and the flag checks (type, flag, mask) in the rule's order. A check on a
/// type outside the map never meets a chunk it looks at, and is left out. `Err` gives the
/// type of a check the data plane cannot make (libxt_sctp makes none: see `FLAG_TYPES`).
///
/// What `matches` computes is the same for every match type, from what is filled in:
/// `sctp_types` is the types whose chunks count (ANY's and ALL's map, less the types with a
/// check; ONLY's types outside the map), `sctp_check_set` each check's flag values that count
/// (those that pass; for ONLY those that fail).
pub fn fill(
    a: &mut Action,
    kind: u8,
    invert: bool,
    map: [u64; 4],
    checks: &[(u8, u8, u8)],
) -> Result<(), u8> {
    let mut types = map;
    a.sctp_check_types = [UNUSED_TYPE; MAX_CHECKS];
    a.sctp_check_set = [0; MAX_CHECKS];
    a.sctp_checks = 0;
    for &(t, flag, mask) in checks {
        if map[(t >> 6) as usize] & (1 << (t & 63)) == 0 {
            continue;
        }
        let i = a.sctp_checks as usize;
        if t >= UNUSED_TYPE || mask & !NAMED_FLAGS != 0 || i >= MAX_CHECKS {
            return Err(t);
        }
        let ok = passing(flag, mask);
        a.sctp_check_types[i] = t;
        a.sctp_check_set[i] = if kind == flag::ONLY { !ok } else { ok };
        a.sctp_checks += 1;
        types[0] &= !(1 << t);
    }
    a.sctp_types = match kind {
        flag::ONLY => map.map(|w| !w),
        _ => types,
    };
    a.sctp_chunk_flags = flag::ON | kind | if invert { flag::INVERT } else { 0 };
    Ok(())
}

/// Whether packet `pkt` passes rule action `a`'s `--chunk-types` in the classifier's scan: a
/// packet whose chunks were not walked matches no rule; one whose walk meets the cut for this
/// rule passes it, for the round to drop (`cut_at`); otherwise `answer`. Branch-free, and with
/// few values live at once: in the classifier's scan a branch here would multiply the
/// verifier's states, and a spilled value grows a frame the stack limit has no room for.
#[inline(always)]
pub fn matches(pkt: &PacketInfo, a: &Action) -> bool {
    let f = a.sctp_chunk_flags as u64;
    let hit = hit(pkt, a);
    let walked = pkt.sctp_walk as u64;
    let invert = (f >> flag::INVERT.trailing_zeros()) & 1;
    (walked & 1) & (cut_bit(walked, f, hit) | (hit ^ invert)) != 0
}

/// Whether packet `pkt` passes rule action `a`'s `--chunk-types` (see the module's comment
/// and `fill`): not where its chunks were not walked, nor where the walk meets the cut for
/// this rule (`cut_at`).
#[inline(always)]
pub fn answer(pkt: &PacketInfo, a: &Action) -> bool {
    let f = a.sctp_chunk_flags as u64;
    let hit = hit(pkt, a);
    let walked = pkt.sctp_walk as u64;
    let invert = (f >> flag::INVERT.trailing_zeros()) & 1;
    (walked & 1) & (1 - cut_bit(walked, f, hit)) & (hit ^ invert) != 0
}

/// 1 where the chunks walked satisfy rule action `a`'s `--chunk-types` (before `!`), as if
/// the walk were complete.
#[inline(always)]
fn hit(pkt: &PacketInfo, a: &Action) -> u64 {
    // Chunks of the types that count: met (ANY, ONLY) or missed (ALL: the walk's types
    // flipped).
    let flip = ((a.sctp_chunk_flags as u64 >> flag::ALL.trailing_zeros()) & 1).wrapping_neg();
    let mut types = 0;
    for w in 0..4 {
        types |= (pkt.sctp_types[w] ^ flip) & a.sctp_types[w];
    }
    // The checks with chunks whose flags count (an unused one: none).
    let mut counted = 0;
    for i in 0..MAX_CHECKS {
        let t = a.sctp_check_types[i] as usize & (FLAG_TYPES - 1);
        counted += nonzero(pkt.sctp_flags[t] as u64 & a.sctp_check_set[i] as u64);
    }
    let f = a.sctp_chunk_flags as u64;
    let bit = |b: u8| (f >> b.trailing_zeros()) & 1;
    let none = 1 - nonzero(types);
    // ANY: a chunk of the map passes; ALL: no type missed, every check passed; ONLY: no type
    // outside, no check failed.
    (bit(flag::ANY) & ((1 - none) | nonzero(counted)))
        | (bit(flag::ALL) & none & (1 - nonzero(counted ^ a.sctp_checks as u64)))
        | (bit(flag::ONLY) & none & (1 - nonzero(counted)))
}

/// 1 where xt_sctp's walk would have met the cut, for a rule of flags `f` that a complete
/// walk would `hit`: ANY found nothing before, ALL always, ONLY found no chunk that fails
/// before.
#[inline(always)]
fn cut_bit(walked: u64, f: u64, hit: u64) -> u64 {
    let bit = |b: u8| (f >> b.trailing_zeros()) & 1;
    (walked & 1)
        & (1 - ((walked >> 1) & 1))
        & ((bit(flag::ANY) & (1 - hit)) | bit(flag::ALL) | (bit(flag::ONLY) & hit))
}

/// Whether rule action `a` has `--chunk-types` and xt_sctp's walk for it meets the cut in
/// packet `pkt`'s chunks (hotdrop): the round drops the packet at the rule once its other
/// checks passed.
#[inline(always)]
pub fn cut_at(pkt: &PacketInfo, a: &Action) -> bool {
    a.sctp_chunk_flags != 0
        && cut_bit(pkt.sctp_walk as u64, a.sctp_chunk_flags as u64, hit(pkt, a)) != 0
}

/// 1 when `x` is not 0, else 0, without a branch.
#[inline(always)]
fn nonzero(x: u64) -> u64 {
    (x | x.wrapping_neg()) >> 63
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// A rule as xt_sctp_info has it: match type, chunk map, flag checks (type, flag, mask).
    struct Rule {
        kind: u8,
        invert: bool,
        map: [u64; 4],
        checks: Vec<(u8, u8, u8)>,
    }

    /// xt_sctp's `match_packet` and its `SCCHECK`, line by line, over the chunks in `bytes`
    /// (the packet from its first chunk on); `None`: hotdrop.
    fn kernel(bytes: &[u8], r: &Rule) -> Option<bool> {
        let in_map = |t: u8| r.map[(t >> 6) as usize] & (1 << (t & 63)) != 0;
        let match_flags = |t: u8, f: u8| {
            r.checks
                .iter()
                .find(|c| c.0 == t)
                .is_none_or(|&(_, flag, mask)| f & mask == flag)
        };
        let mut copy = r.map;
        let mut offset = 0usize;
        let found = 'walk: loop {
            if offset + 4 > bytes.len() {
                return None;
            }
            let (t, f) = (bytes[offset], bytes[offset + 1]);
            let len = u16::from_be_bytes([bytes[offset + 2], bytes[offset + 3]]) as usize;
            if len == 0 {
                return None;
            }
            offset += (len + 3) & !3;
            if in_map(t) {
                match r.kind {
                    flag::ANY if match_flags(t, f) => break 'walk true,
                    flag::ALL if match_flags(t, f) => copy[(t >> 6) as usize] &= !(1 << (t & 63)),
                    flag::ONLY if !match_flags(t, f) => break 'walk false,
                    _ => {}
                }
            } else if r.kind == flag::ONLY {
                break 'walk false;
            }
            if offset >= bytes.len() {
                break match r.kind {
                    flag::ALL => copy == [0; 4],
                    flag::ANY => false,
                    _ => true,
                };
            }
        };
        Some(found != r.invert)
    }

    /// The rule's action, as the compiler makes it.
    fn action(r: &Rule) -> Action {
        let mut a = Action::default();
        fill(&mut a, r.kind, r.invert, r.map, &r.checks).expect("checks on types below 15");
        a
    }

    /// The walk over `bytes` (the packet from its first chunk on), then the rule: `None`
    /// where the round drops the packet (the rule passing its check, as it must to get there).
    fn data_plane(bytes: &[u8], r: &Rule) -> Option<bool> {
        let mut pkt = PacketInfo::default();
        start(&mut pkt, 0, bytes.len() as u32);
        for _ in 0..MAX_CHUNKS {
            let load = |at: u32| bytes[at as usize..].first_chunk::<4>().copied();
            if !step(&mut pkt, load) {
                break;
            }
        }
        let a = action(r);
        // The scan lets the rule through to the round where the walk meets the cut.
        assert_eq!(matches(&pkt, &a), answer(&pkt, &a) || cut_at(&pkt, &a));
        if cut_at(&pkt, &a) {
            return None;
        }
        Some(answer(&pkt, &a))
    }

    use crate::test_rng::Rng;

    /// Types the tests use: a few flag-bearing ones, one above 64, one above 128.
    const TYPES: [u8; 6] = [0, 1, 6, 14, 64, 193];

    fn chunks(rng: &mut Rng) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(5) {
            let t = TYPES[rng.below(TYPES.len() as u64) as usize];
            let f = [0u8, 1, 2, 3, 0x0f, 0x80, 0x81, 0x40][rng.below(8) as usize];
            // Lengths 1 to 3 move 4 bytes on, as the kernel pads them; 0 is cut short.
            let len = [4u16, 5, 8, 1, 16, 0][rng.below(6) as usize];
            bytes.extend_from_slice(&[t, f]);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.resize(bytes.len() + ((len as usize + 3) & !3).saturating_sub(4), 0);
        }
        // Sometimes a header cut short, sometimes a last chunk longer than the packet.
        match rng.below(4) {
            0 => bytes.extend_from_slice(&[0, 3]),
            1 => bytes.extend_from_slice(&[0, 3, 0, 40, 9]),
            _ => {}
        }
        bytes
    }

    fn rule(rng: &mut Rng) -> Rule {
        let mut map = [0u64; 4];
        for _ in 0..rng.below(4) {
            let t = TYPES[rng.below(TYPES.len() as u64) as usize];
            map[(t >> 6) as usize] |= 1 << (t & 63);
        }
        // ALL (no checks: libxt_sctp takes it alone).
        let all = rng.below(10) == 0;
        if all {
            map = [u64::MAX; 4];
        }
        let mut checks: Vec<(u8, u8, u8)> = Vec::new();
        for _ in 0..if all { 0 } else { rng.below(3) } {
            let t = [0u8, 6, 14, 1, 18][rng.below(5) as usize];
            let mask = [0x01u8, 0x02, 0x03, 0x80, 0x8f, 0x09][rng.below(6) as usize];
            let flag = mask & rng.below(256) as u8;
            if checks.iter().all(|c| c.0 != t) {
                checks.push((t, flag, mask));
            }
        }
        Rule {
            kind: [flag::ANY, flag::ALL, flag::ONLY][rng.below(3) as usize],
            invert: rng.below(2) == 0,
            map,
            checks,
        }
    }

    #[test]
    fn passing_values_follow_the_mask() {
        // DATA:Be: B (bit 1) set, E (bit 0) clear.
        let ok = passing(0x02, 0x03);
        for byte in 0..=255u8 {
            assert_eq!(
                ok & (1 << flag_value(byte)) != 0,
                byte & 3 == 2,
                "{byte:#x}"
            );
        }
        // `-` (bit 7) clear.
        assert_eq!(passing(0, 0x80), 0x0000_ffff);
    }

    #[test]
    fn the_sets_answer_as_xt_sctp_walks() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut hotdrops, mut hits) = (0, 0);
        for case in 0..200_000 {
            let (bytes, r) = (chunks(&mut rng), rule(&mut rng));
            let want = kernel(&bytes, &r);
            hotdrops += want.is_none() as u32;
            hits += (want == Some(true)) as u32;
            assert_eq!(
                data_plane(&bytes, &r),
                want,
                "case {case}: chunks {bytes:?}, kind {}, invert {}, map {:x?}, checks {:?}",
                r.kind,
                r.invert,
                r.map,
                r.checks
            );
        }
        // The generator reaches every outcome.
        assert!(hotdrops > 1000 && hits > 1000, "{hotdrops} {hits}");
    }

    #[test]
    fn duplicate_chunks_and_types_never_met() {
        // Two DATA chunks, flags 0x03 and 0x00, then an INIT.
        let bytes = [0, 3, 0, 4, 0, 0, 0, 4, 1, 0, 0, 4];
        let data_init = [0b11, 0, 0, 0];
        let hit = |bytes: &[u8], r: &Rule| data_plane(bytes, r) == Some(true);
        let r = |kind, checks: &[(u8, u8, u8)], map| Rule {
            kind,
            invert: false,
            map,
            checks: checks.to_vec(),
        };
        // DATA:BE: one DATA passes (ANY, ALL), one fails (ONLY).
        let be = [(0, 3, 3)];
        assert!(hit(&bytes, &r(flag::ANY, &be, data_init)));
        assert!(hit(&bytes, &r(flag::ALL, &be, data_init)));
        assert!(!hit(&bytes, &r(flag::ONLY, &be, data_init)));
        // ALL with ABORT in the map, never met.
        let abort = [0b100_0011, 0, 0, 0];
        assert!(!hit(&bytes, &r(flag::ALL, &[], abort)));
        assert!(hit(&bytes, &r(flag::ONLY, &[], abort)));
        // NONE: ANY never, ONLY only a packet without chunks (which is cut short).
        assert!(!hit(&bytes, &r(flag::ANY, &[], [0; 4])));
        assert!(!hit(&bytes, &r(flag::ONLY, &[], [0; 4])));
        assert!(hit(&bytes, &r(flag::ALL, &[], [0; 4])));
    }
}
