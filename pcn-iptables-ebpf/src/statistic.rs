//! `-m statistic`: a random draw, or a count of the packets that reached the rule, kept in the
//! rule's `Action` (so a new generation counts anew, as a table replace restarts
//! xt_statistic's count). Like the buckets of `limit`, checked only once the rest of the rule
//! matched (the compiler refuses the rules where that differs from netfilter).

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg};

use aya_ebpf::helpers::generated::bpf_get_prandom_u32;
use pcn_iptables_common::{
    Action,
    statistic::{NTH, RANDOM, nth_hit, random_hit},
};

/// Whether the rule of `action` matches this packet as far as its `-m statistic` goes.
#[inline(always)]
pub fn matches(action: *mut Action) -> bool {
    // SAFETY: `action` is a live map value, 8-byte aligned (as in `limit::take`).
    let (mode, invert, value, packet) = unsafe {
        (
            (*action).stat_mode,
            (*action).stat_invert != 0,
            (*action).stat_value,
            (*action).stat_packet,
        )
    };
    let hit = match mode {
        RANDOM => random_hit(unsafe { bpf_get_prandom_u32() }, value),
        NTH => nth_hit(count(action), value, packet),
        _ => return true,
    };
    hit != invert
}

/// Compare-and-swap attempts at the count (the build's BPF CPU has no fetch-and-add): as many
/// CPUs as reach the same rule at the same moment can make one fail.
const CAS_ATTEMPTS: usize = 8;

/// Counts the packet at the rule; the packets counted before it. After `CAS_ATTEMPTS` lost
/// races the packet goes uncounted, judged by the count it last saw.
#[inline(always)]
fn count(action: *mut Action) -> u64 {
    // SAFETY: as in `matches`.
    let seen = unsafe { &raw mut (*action).stat_seen };
    let mut old = unsafe { core::ptr::read_volatile(seen) };
    for _ in 0..CAS_ATTEMPTS {
        let (was, done) =
            unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(seen, old, old + 1) };
        if done {
            return old;
        }
        old = was;
    }
    old
}
