//! `-m limit`'s token bucket arithmetic (the kernel's xt_limit), as the data plane runs it on
//! a rule's `Action` (`limit_credit_ns`, `limit_last_ns`): credit in nanoseconds grows with
//! the time elapsed, up to burst × interval, and a packet that passes takes one interval.

/// What a bucket holds at most: `interval × burst` nanoseconds, saturated.
#[inline(always)]
pub fn cap(interval_ns: u64, burst: u32) -> u64 {
    saturating_mul(interval_ns, burst)
}

/// One packet against a bucket holding `credit`, `elapsed` nanoseconds after the last one:
/// the new credit, and whether the packet passes (the bucket held one interval).
#[inline(always)]
pub fn take(credit: u64, elapsed: u64, cap: u64, interval_ns: u64) -> (u64, bool) {
    let mut new = credit.saturating_add(elapsed);
    if new > cap {
        new = cap;
    }
    let pass = new >= interval_ns;
    if pass {
        new -= interval_ns;
    }
    (new, pass)
}

/// `a × b`, saturated, in 32-bit halves: BPF has no 128-bit multiply (which LLVM would use
/// for an overflow check).
#[inline(always)]
pub fn saturating_mul(a: u64, b: u32) -> u64 {
    let high = (a >> 32) * b as u64;
    if high >> 32 != 0 {
        return u64::MAX;
    }
    let low = (a & 0xffff_ffff) * b as u64;
    let sum = (high << 32).wrapping_add(low);
    if sum < low { u64::MAX } else { sum }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// A bucket as the data plane keeps it: full at first (the compiler fills it), the time of
    /// the last check 0 (so the first packet sees the whole uptime elapsed).
    struct Bucket {
        credit: u64,
        last: u64,
        cap: u64,
        interval: u64,
    }

    impl Bucket {
        fn new(interval: u64, burst: u32) -> Self {
            let cap = cap(interval, burst);
            Bucket {
                credit: cap,
                last: 0,
                cap,
                interval,
            }
        }

        fn packet(&mut self, now: u64) -> bool {
            let elapsed = now.saturating_sub(self.last);
            self.last = now;
            let (credit, pass) = take(self.credit, elapsed, self.cap, self.interval);
            self.credit = credit;
            pass
        }
    }

    #[test]
    fn three_a_minute_burst_five_is_xt_limit() {
        // --limit 3/min --limit-burst 5: one packet every 20 s, 5 at once.
        let mut b = Bucket::new(20 * SECOND, 5);
        let t0 = 1000 * SECOND;
        let passed = (0..10).filter(|_| b.packet(t0)).count();
        assert_eq!(passed, 5);
        // Nothing more until a whole interval went by.
        assert!(!b.packet(t0 + 19 * SECOND));
        assert!(b.packet(t0 + 20 * SECOND));
        assert!(!b.packet(t0 + 20 * SECOND));
        assert!(b.packet(t0 + 40 * SECOND));
        assert!(!b.packet(t0 + 41 * SECOND));
        // After a long silence the bucket holds `burst` again, not more.
        let t1 = t0 + 3600 * SECOND;
        assert_eq!((0..10).filter(|_| b.packet(t1)).count(), 5);
    }

    #[test]
    fn one_a_second_passes_a_steady_flow_at_that_rate() {
        let mut b = Bucket::new(SECOND, 1);
        let passed = (0..100)
            .filter(|i| b.packet(5 * SECOND + i * SECOND / 10))
            .count();
        // 10 s of packets every 100 ms: one a second.
        assert_eq!(passed, 10);
    }

    #[test]
    fn saturates() {
        assert_eq!(saturating_mul(u64::MAX, 2), u64::MAX);
        assert_eq!(saturating_mul(1 << 40, 1 << 24), u64::MAX);
        assert_eq!(
            saturating_mul((1 << 40) - 1, 1 << 24),
            ((1 << 40) - 1) << 24
        );
        assert_eq!(saturating_mul(u64::MAX, 1), u64::MAX);
        assert_eq!(saturating_mul(u64::MAX, 0), 0);
        assert_eq!(
            saturating_mul(0xffff_ffff, u32::MAX),
            0xffff_ffff * 0xffff_ffff
        );
        // The low half's product alone may carry into the top.
        assert_eq!(saturating_mul(0x1_ffff_ffff, u32::MAX), u64::MAX);
        for (a, b) in [(3u64, 7u32), (20 * SECOND, 10_000), (1 << 33, 1 << 30)] {
            assert_eq!(
                saturating_mul(a, b) as u128,
                (a as u128 * b as u128).min(u64::MAX as u128)
            );
        }
        // Credit never wraps either.
        assert_eq!(
            take(u64::MAX - 1, u64::MAX, u64::MAX, 1),
            (u64::MAX - 1, true)
        );
        assert_eq!(take(0, 5, 100, 10), (5, false));
    }
}
