//! `-m limit`: one token bucket per rule, in the rule's `Action` (so a new generation starts
//! with full buckets, as a table replace restarts xt_limit's state).
//!
//! The scan checks the buckets of a word's checked rules one at a time, in rule order, only
//! up to the first rule that decides: a rule whose bucket is empty does not match, and the
//! scan goes on with the next rule (see `scan_step`).

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg, atomic_xchg};

use pcn_iptables_common::limit::{cap, take as take_one};

use pcn_iptables_common::Action;

/// Attempts at the compare-and-swap of a bucket before giving up (the packet then does not
/// match, as when the bucket is empty): only as many CPUs as hit the same rule at the same
/// nanosecond can make it fail.
const CAS_ATTEMPTS: usize = 4;

/// Whether the rule of `action` may match one more packet now: kernel-like
/// (xt_limit) credit that grows with elapsed time up to burst × interval, one interval a
/// packet (the arithmetic is `pcn_iptables_common::limit`'s). Atomic for packets of several
/// CPUs: the time of the last check is swapped in, the credit changes by compare-and-swap.
#[inline(always)]
pub fn take(action: *mut Action) -> bool {
    let (burst, interval) = unsafe { ((*action).limit_burst, (*action).limit_interval_ns) };
    if burst == 0 {
        return true;
    }
    let cap = cap(interval, burst);
    let now = unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() };
    // SAFETY: map values are 8-byte aligned and live as long as the program runs. (The bpf
    // target has no AtomicU64 with swap/CAS, but the instructions exist: BPF_XCHG, BPF_CMPXCHG.)
    let (last, credit) = unsafe {
        (
            &raw mut (*action).limit_last_ns,
            &raw mut (*action).limit_credit_ns,
        )
    };
    let elapsed = now.saturating_sub(unsafe { atomic_xchg::<u64, { Relaxed }>(last, now) });
    for _ in 0..CAS_ATTEMPTS {
        let old = unsafe { core::ptr::read_volatile(credit) };
        let (new, pass) = take_one(old, elapsed, cap, interval);
        if unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(credit, old, new) }.1 {
            return pass;
        }
    }
    false
}
