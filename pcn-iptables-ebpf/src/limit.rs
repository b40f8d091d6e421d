//! `-m limit`: one token bucket per rule, in the rule's `Action` (so a new generation starts
//! with full buckets, as a table replace restarts xt_limit's state).
//!
//! The scan checks the buckets of a word's limited rules one at a time, in rule order, only
//! up to the first rule that decides: a rule whose bucket is empty does not match, and the
//! scan goes on with the next rule. Words without limited rules only pay one load and a test.

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg, atomic_xchg};

use crate::action_mut;

/// Attempts at the compare-and-swap of a bucket before giving up (the packet then does not
/// match, as when the bucket is empty): only as many CPUs as hit the same rule at the same
/// nanosecond can make it fail.
const CAS_ATTEMPTS: usize = 4;

/// Whether rule `index` (in the action array) may match one more packet now: kernel-like
/// (xt_limit) credit that grows with elapsed time up to burst × interval, one interval a
/// packet. Atomic for packets of several CPUs: the time of the last check is swapped in, the
/// credit changes by compare-and-swap.
#[inline(always)]
pub fn take(slot: u32, index: u32) -> bool {
    let Some(action) = action_mut(slot, index) else {
        return true;
    };
    let (burst, interval) = unsafe { ((*action).limit_burst, (*action).limit_interval_ns) };
    if burst == 0 {
        return true;
    }
    let cap = saturating_mul(interval, burst);
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
        let mut new = old.saturating_add(elapsed);
        if new > cap {
            new = cap;
        }
        let pass = new >= interval;
        if pass {
            new -= interval;
        }
        if unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(credit, old, new) }.1 {
            return pass;
        }
    }
    false
}

/// `a × b`, saturated, in 32-bit halves: BPF has no 128-bit multiply (which LLVM would use
/// for an overflow check).
#[inline(always)]
fn saturating_mul(a: u64, b: u32) -> u64 {
    let high = (a >> 32) * b as u64;
    if high >> 32 != 0 {
        return u64::MAX;
    }
    let low = (a & 0xffff_ffff) * b as u64;
    let sum = (high << 32).wrapping_add(low);
    if sum < low { u64::MAX } else { sum }
}

/// The state of `filter` (the `bpf_loop` context).
#[repr(C)]
pub struct Limiting {
    /// The word's matching rules; limited ones whose bucket is empty get cleared.
    pub w: u64,
    pub limited: u64,
    pub count_only: u64,
    /// Action index of the word's bit 0.
    pub first_rule: u32,
    /// First bit to look at.
    pub from: u32,
    /// The generation's slot.
    pub slot: u32,
}

extern "C" fn check_bit(n: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let l = unsafe { &mut *(ctx as *mut Limiting) };
    let bit = n + l.from as u64;
    if bit >= 64 {
        return 1;
    }
    let mask = 1u64 << bit;
    if l.w & mask == 0 {
        return 0;
    }
    if l.limited & mask != 0 && !take(l.slot, l.first_rule + bit as u32) {
        l.w &= !mask;
        return 0;
    }
    // The first rule with a target that matches decides: later buckets are not touched.
    if l.count_only & mask == 0 { 1 } else { 0 }
}

/// `w` (the rules of a word that match every field) without the limited rules that are over
/// their rate, checking the buckets in order up to the rule that decides. Cheap when no limited
/// rule comes before the first deciding one.
#[inline(always)]
pub fn filter(w: u64, limited: u64, count_only: u64, slot: u32, first_rule: u32) -> u64 {
    let lim = w & limited;
    if lim == 0 {
        return w;
    }
    let plain_stop = w & !count_only & !limited;
    let first_lim = lim & lim.wrapping_neg();
    if plain_stop != 0 && (plain_stop & plain_stop.wrapping_neg()) < first_lim {
        return w;
    }
    let from = crate::lowest_bit(lim);
    let mut l = Limiting {
        w,
        limited,
        count_only,
        first_rule,
        from,
        slot,
    };
    unsafe {
        aya_ebpf::helpers::generated::bpf_loop(
            64 - from,
            check_bit as *mut core::ffi::c_void,
            &mut l as *mut Limiting as *mut core::ffi::c_void,
            0,
        );
    }
    unsafe { core::ptr::read_volatile(&l.w) }
}
