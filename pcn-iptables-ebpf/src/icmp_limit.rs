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
use pcn_iptables_common::icmp_limit::{global_allow, peer_allow};
use pcn_iptables_common::{
    ICMP_MSGS_BURST_DEFAULT, ICMP_MSGS_PER_SEC_DEFAULT, ICMP_PEERS, ICMP_RATELIMIT_NS_DEFAULT,
    ICMP_RATEMASK_DEFAULT, IcmpGlobal, IcmpPeer,
};

use crate::settings;

#[map]
static PCN_ICMP_PEERS: LruHashMap<u32, IcmpPeer> = LruHashMap::pinned(ICMP_PEERS, 0);
#[map]
static PCN_ICMP_GLOBAL: Array<IcmpGlobal> = Array::pinned(1, 0);

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

/// inet_peer_xrlim_allow on the destination's bucket (the arithmetic is
/// `pcn_iptables_common::icmp_limit`'s; several CPUs may race here, as in the kernel, where
/// icmp_global_allow's bucket is raced for too: at worst a few more go).
#[inline(always)]
fn destination_allow(dst: u32, timeout: u64, now: u64) -> bool {
    match PCN_ICMP_PEERS.get_ptr_mut(&dst) {
        Some(p) => {
            let p = unsafe { &mut *p };
            let (pass, peer) = peer_allow(Some(p), timeout, now);
            *p = peer;
            pass
        }
        None => {
            let (pass, peer) = peer_allow(None, timeout, now);
            let _ = PCN_ICMP_PEERS.insert(&dst, &peer, 0);
            pass
        }
    }
}
