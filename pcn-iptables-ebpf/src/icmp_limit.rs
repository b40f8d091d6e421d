//! The kernel's rate limits on the ICMP errors it sends (net/ipv4/icmp.c), applied to
//! REJECT's: netfilter sends them with icmp_send(), so they are limited like any other.
//!
//! For a type in `icmp_ratemask` (destination unreachable, every REJECT error, is in the
//! default mask):
//! 1. the namespace-wide bucket (icmp_global_allow): while it has credit, errors may go; an
//!    empty one refills by `icmp_msgs_per_sec` × the time since its last refill (at most one
//!    second's worth, not before 20 ms), up to `icmp_msgs_burst`;
//! 2. the destination's bucket (inet_peer_xrlim_allow), unless the error goes out through the
//!    loopback device: `icmp_ratelimit` per error, holding 6, full for a new destination;
//! 3. an error that goes spends 0, 1 or 2 of the namespace's credit, at random
//!    (icmp_global_consume).
//!
//! Errors answering a packet that came in on the loopback device are not limited at all.
//! The buckets live in pinned maps, kept across generations; they are pcn-iptables' own (the
//! kernel's, which its other ICMP errors spend, are not reachable from eBPF).

use aya_ebpf::{
    helpers::generated as h,
    macros::map,
    maps::{Array, LruHashMap},
};
use pcn_iptables_common::{
    ICMP_MSGS_BURST_DEFAULT, ICMP_MSGS_PER_SEC_DEFAULT, ICMP_PEER_BURST, ICMP_PEERS,
    ICMP_RATELIMIT_NS_DEFAULT, ICMP_RATEMASK_DEFAULT, IcmpGlobal, IcmpPeer,
};

use crate::settings;

#[map]
static PCN_ICMP_PEERS: LruHashMap<u32, IcmpPeer> = LruHashMap::pinned(ICMP_PEERS, 0);
#[map]
static PCN_ICMP_GLOBAL: Array<IcmpGlobal> = Array::pinned(1, 0);

const SECOND: u64 = 1_000_000_000;
/// icmp_global_allow refills no sooner than HZ / 50.
const MIN_REFILL: u64 = SECOND / 50;
/// A new inet_peer's rate_last is 60 s in the past.
const NEW_PEER_CREDIT: u64 = 60 * SECOND;
/// Destination unreachable, the type of every REJECT error.
const ICMP_DEST_UNREACH: u32 = 3;

/// Whether an ICMP destination unreachable error may go to `dst` now, spending the buckets'
/// credit if so. `per_destination`: the error does not go out through the loopback device.
#[inline(always)]
pub fn allow(dst: [u8; 4], per_destination: bool) -> bool {
    let (mask, timeout, per_sec, burst) = match settings::get() {
        Some(s) => (
            s.icmp_ratemask,
            s.icmp_ratelimit_ns,
            s.icmp_msgs_per_sec,
            s.icmp_msgs_burst,
        ),
        None => (
            ICMP_RATEMASK_DEFAULT,
            ICMP_RATELIMIT_NS_DEFAULT,
            ICMP_MSGS_PER_SEC_DEFAULT,
            ICMP_MSGS_BURST_DEFAULT,
        ),
    };
    if mask & (1 << ICMP_DEST_UNREACH) == 0 {
        return true;
    }
    let Some(global) = PCN_ICMP_GLOBAL.get_ptr_mut(0) else {
        return true;
    };
    let global = unsafe { &mut *global };
    let now = unsafe { h::bpf_ktime_get_ns() };
    if !global_allow(global, per_sec as u64, burst as i64, now) {
        return false;
    }
    if per_destination && !destination_allow(u32::from_ne_bytes(dst), timeout, now) {
        return false;
    }
    // icmp_global_consume: 0, 1 or 2 credits (it may go below zero).
    let spent = (unsafe { h::bpf_get_prandom_u32() } % 3) as i64;
    global.credit -= spent;
    true
}

/// icmp_global_allow (several CPUs may race here, as in the kernel: at worst a few more go).
#[inline(always)]
fn global_allow(g: &mut IcmpGlobal, per_sec: u64, burst: i64, now: u64) -> bool {
    if g.credit > 0 {
        return true;
    }
    let mut delta = now.wrapping_sub(g.stamp_ns);
    if delta > SECOND {
        delta = SECOND;
    }
    if delta < MIN_REFILL {
        return false;
    }
    let incr = (per_sec * delta / SECOND) as i64;
    if incr == 0 {
        return false;
    }
    g.stamp_ns = now;
    let credit = g.credit + incr;
    g.credit = if credit > burst { burst } else { credit };
    true
}

/// inet_peer_xrlim_allow: `timeout` of credit per error, at most 6 errors' worth.
#[inline(always)]
fn destination_allow(dst: u32, timeout: u64, now: u64) -> bool {
    // (No saturating_mul: it needs a 128-bit multiply, which BPF lacks.)
    let cap = if timeout > u64::MAX / ICMP_PEER_BURST {
        u64::MAX
    } else {
        timeout * ICMP_PEER_BURST
    };
    let (mut tokens, entry) = match PCN_ICMP_PEERS.get_ptr_mut(&dst) {
        Some(p) => {
            let p = unsafe { &mut *p };
            (
                p.tokens_ns.saturating_add(now.saturating_sub(p.last_ns)),
                Some(p),
            )
        }
        None => (NEW_PEER_CREDIT, None),
    };
    if tokens > cap {
        tokens = cap;
    }
    let pass = tokens >= timeout;
    if pass {
        tokens -= timeout;
    }
    match entry {
        Some(p) => {
            p.tokens_ns = tokens;
            p.last_ns = now;
        }
        None => {
            let peer = IcmpPeer {
                tokens_ns: tokens,
                last_ns: now,
            };
            let _ = PCN_ICMP_PEERS.insert(&dst, &peer, 0);
        }
    }
    pass
}
