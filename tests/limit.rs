//! `-m limit`: over a stream of packets at a known rate, the rule matches as many as the
//! kernel's token bucket lets through (± a small tolerance for timing), and the others go on
//! to the next rule.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Fw, Lab, Ns, Pair, scenarios};

scenarios!(limit_burst_then_rate, limit_only_where_reached);

/// Sends `n` UDP datagrams from `ns` to `dst:port`, one every `gap`.
fn send_udp(ns: &Ns, dst: &str, port: u16, n: usize, gap: Duration) {
    let dst: Ipv4Addr = dst.parse().unwrap();
    // SAFETY: raw socket calls on a descriptor this closure owns, with valid buffers.
    ns.in_ns(move || unsafe {
        let fd = OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0));
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let start = Instant::now();
        for i in 0..n {
            let when = start + gap * i as u32;
            if let Some(d) = when.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let msg = b"limit";
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            );
        }
    });
    std::thread::sleep(Duration::from_millis(200));
}

/// Packet counts of the rules of `chain`, in order.
fn counts(lab: &Lab, ns: &Ns, chain: &str) -> Vec<u64> {
    lab.ipt_ok(ns, &format!("-L {chain} -v -x -n"))
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

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
    send_udp(&c1, HOST1, 9, 60, Duration::from_millis(10));
    let c = counts(&lab, &host, "INPUT");
    // 5 (burst) + 0.59 s × 10/s = 10 or 11.
    around(c[0], 11, 2, "limited rule");
    assert_eq!(
        c[0] + c[1],
        60,
        "every packet goes to one rule or the other: {c:?}"
    );
    // The bucket refills: after a pause, another burst.
    std::thread::sleep(Duration::from_millis(600));
    send_udp(&c1, HOST1, 9, 5, Duration::ZERO);
    let d = counts(&lab, &host, "INPUT");
    assert_eq!(d[0] - c[0], 5, "a refilled burst: {c:?} then {d:?}");
}

/// A limit is only spent by packets that reach it: those an earlier rule takes, or that
/// fail an earlier match of the same rule, leave the bucket alone.
fn limit_only_where_reached(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 7 -j DROP");
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m limit --limit 1/hour --limit-burst 3 -j DROP",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp -j ACCEPT");
    send_udp(&c1, HOST1, 7, 10, Duration::ZERO);
    send_udp(&c1, HOST1, 9, 5, Duration::ZERO);
    assert_eq!(counts(&lab, &host, "INPUT"), vec![10, 3, 2]);
}
