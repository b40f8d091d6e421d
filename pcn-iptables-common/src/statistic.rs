//! `-m statistic` (xt_statistic): the modes, and which packets `--mode nth` matches.

/// `Action::stat_mode`.
pub const NONE: u8 = 0;
pub const RANDOM: u8 = 1;
pub const NTH: u8 = 2;

/// Whether a random draw matches at `probability` (xt_statistic's: out of 2^31).
#[inline(always)]
pub fn random_hit(draw: u32, probability: u32) -> bool {
    draw & 0x7FFF_FFFF < probability
}

/// Whether the packet that finds the rule's counter at `seen` (0 for the first packet since
/// the ruleset was replaced) matches `--every every --packet packet`. xt_statistic starts its
/// counter at `every - 1 - packet` and matches where it wraps to 0: packets `packet + 1`,
/// `packet + 1 + every`, ... counting from 1.
#[inline(always)]
pub fn nth_hit(seen: u64, every: u32, packet: u32) -> bool {
    seen % every.max(1) as u64 == packet as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xt_statistic's own arithmetic, packet by packet: whether each of 20 packets matches.
    fn kernel(every: u32, packet: u32) -> [bool; 20] {
        let (every, mut count) = (every - 1, every - 1 - packet);
        core::array::from_fn(|_| {
            count = if count == every { 0 } else { count + 1 };
            count == 0
        })
    }

    #[test]
    fn nth_follows_the_kernel() {
        for every in 1..6 {
            for packet in 0..every {
                let ours: [bool; 20] = core::array::from_fn(|n| nth_hit(n as u64, every, packet));
                assert_eq!(ours, kernel(every, packet), "every {every} packet {packet}");
            }
        }
    }

    #[test]
    fn random_takes_31_bits() {
        assert!(random_hit(0xFFFF_FFFF, 0x8000_0000));
        assert!(!random_hit(0x7FFF_FFFF, 0x7FFF_FFFF));
        assert!(!random_hit(0, 0));
    }
}
