//! The arithmetic of the kernel's rate limits on the ICMP errors it sends (net/ipv4/icmp.c),
//! which REJECT's errors obey: the namespace-wide bucket (icmp_global_allow) and a
//! destination's bucket (inet_peer_xrlim_allow). The data plane keeps the buckets in maps.

use crate::{ICMP_PEER_BURST, IcmpGlobal, IcmpPeer};

pub const SECOND: u64 = 1_000_000_000;
/// icmp_global_allow refills no sooner than HZ / 50.
pub const MIN_REFILL: u64 = SECOND / 50;
/// A new inet_peer's rate_last is 60 s in the past.
pub const NEW_PEER_CREDIT: u64 = 60 * SECOND;

/// icmp_global_allow: while the bucket has credit, errors may go; an empty one refills by
/// `per_sec` × the time since its last refill (at most one second's worth, not before
/// 20 ms), up to `burst`.
#[inline(always)]
pub fn global_allow(g: &mut IcmpGlobal, per_sec: u64, burst: i64, now: u64) -> bool {
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

/// inet_peer_xrlim_allow: `timeout` of credit per error, at most `ICMP_PEER_BURST` errors'
/// worth; `peer` is the destination's bucket, `None` for a destination not seen yet. Returns
/// whether the error may go and the bucket to store.
#[inline(always)]
pub fn peer_allow(peer: Option<&IcmpPeer>, timeout: u64, now: u64) -> (bool, IcmpPeer) {
    // (No saturating_mul: it needs a 128-bit multiply, which BPF lacks.)
    let cap = if timeout > u64::MAX / ICMP_PEER_BURST {
        u64::MAX
    } else {
        timeout * ICMP_PEER_BURST
    };
    let mut tokens = match peer {
        Some(p) => p.tokens_ns.saturating_add(now.saturating_sub(p.last_ns)),
        None => NEW_PEER_CREDIT,
    };
    if tokens > cap {
        tokens = cap;
    }
    let pass = tokens >= timeout;
    if pass {
        tokens -= timeout;
    }
    (
        pass,
        IcmpPeer {
            tokens_ns: tokens,
            last_ns: now,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_gets_six_then_one_per_ratelimit() {
        let timeout = SECOND;
        let t0 = 100 * SECOND;
        let mut peer: Option<IcmpPeer> = None;
        let mut send = |now| {
            let (pass, p) = peer_allow(peer.as_ref(), timeout, now);
            peer = Some(p);
            pass
        };
        // A new destination's bucket is full: 6 errors at once.
        assert_eq!((0..10).filter(|_| send(t0)).count(), 6);
        assert!(!send(t0 + SECOND / 2));
        assert!(send(t0 + SECOND));
        assert!(!send(t0 + SECOND));
        // Credit stops at 6 errors however long the silence.
        assert_eq!((0..10).filter(|_| send(t0 + 3600 * SECOND)).count(), 6);
    }

    #[test]
    fn a_huge_ratelimit_saturates() {
        let (pass, p) = peer_allow(None, u64::MAX / 2, 0);
        assert!(!pass);
        assert_eq!(p.tokens_ns, NEW_PEER_CREDIT);
    }

    #[test]
    fn the_global_bucket_refills_at_most_a_second_worth() {
        let mut g = IcmpGlobal {
            credit: 0,
            stamp_ns: 0,
        };
        let t0 = 50 * SECOND;
        // Empty, a long time after the last refill: one second's worth, capped at the burst.
        assert!(global_allow(&mut g, 1000, 50, t0));
        assert_eq!((g.credit, g.stamp_ns), (50, t0));
        g.credit = 0;
        // Not again within 20 ms.
        assert!(!global_allow(&mut g, 1000, 50, t0 + MIN_REFILL - 1));
        // After 20 ms: 20 errors' worth at 1000/s.
        assert!(global_allow(&mut g, 1000, 50, t0 + MIN_REFILL));
        assert_eq!(g.credit, 20);
        // Credit left: no refill, no new stamp.
        assert!(global_allow(&mut g, 1000, 50, t0 + 10 * SECOND));
        assert_eq!((g.credit, g.stamp_ns), (20, t0 + MIN_REFILL));
        // A rate too low to earn one error in the time: refused, stamp kept.
        g.credit = -1;
        assert!(!global_allow(&mut g, 1, 50, t0 + MIN_REFILL + SECOND / 2));
        assert_eq!(g.stamp_ns, t0 + MIN_REFILL);
    }
}
