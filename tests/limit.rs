//! `-m limit`: over a stream of packets at a known rate, the rule matches as many as the
//! kernel's token bucket lets through (± a small tolerance for timing), and the others go on
//! to the next rule.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_udp;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(limit_burst_then_rate, limit_only_where_reached);

#[track_caller]
fn around(got: u64, want: u64, tolerance: u64, what: &str) {
    assert!(
        got.abs_diff(want) <= tolerance,
        "{what}: {got} packets, the kernel's bucket gives {want} ± {tolerance}"
    );
}

/// Burst 5 at 10/s: of 60 packets 10 ms apart (0.6 s), the burst then about one per 100 ms.
fn limit_burst_then_rate(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp --dport 9 -m limit --limit 10/sec --limit-burst 5 -j ACCEPT",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 9 -j DROP");
    send_udp(&c1, HOST1, 9, 60, Duration::from_millis(10), true);
    let c = lab.counts(&host, "INPUT");
    // 5 (burst) + 0.59 s × 10/s = 10 or 11.
    around(c[0], 11, 2, "limited rule");
    assert_eq!(
        c[0] + c[1],
        60,
        "every packet goes to one rule or the other: {c:?}"
    );
    // The bucket refills: after a pause, another burst.
    std::thread::sleep(Duration::from_millis(600));
    send_udp(&c1, HOST1, 9, 5, Duration::ZERO, true);
    let d = lab.counts(&host, "INPUT");
    assert_eq!(d[0] - c[0], 5, "a refilled burst: {c:?} then {d:?}");
}

/// A limit is only spent by packets that reach it: those an earlier rule takes, or that
/// fail an earlier match of the same rule, leave the bucket alone. A change to the ruleset
/// fills it again.
fn limit_only_where_reached(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 7 -j DROP");
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m limit --limit 1/hour --limit-burst 3 -j DROP",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp -j ACCEPT");
    send_udp(&c1, HOST1, 7, 10, Duration::ZERO, true);
    send_udp(&c1, HOST1, 9, 5, Duration::ZERO, true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![10, 3, 2]);
    // A change to the ruleset, even one that leaves the rule alone, starts its bucket full.
    lab.ipt_ok(&host, "-A INPUT -p tcp -j ACCEPT");
    send_udp(&c1, HOST1, 9, 5, Duration::ZERO, true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![10, 6, 4, 0]);
}
