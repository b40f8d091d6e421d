//! `-m statistic`: nth mode matches exactly the packets the kernel's count picks (and counts
//! anew once the ruleset changes), random mode its share of packets, and kube-proxy's chain
//! of draws spreads new connections evenly over a service's endpoints.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_udp;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(
    nth_counts_like_the_kernel,
    random_matches_its_share,
    random_spreads_connections_over_endpoints
);

/// `total` draws at probability `p` land within 6 standard deviations of `total × p`.
#[track_caller]
fn about(got: u64, total: u64, p: f64, what: &str) {
    let mean = total as f64 * p;
    let sd = (total as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (got as f64 - mean).abs() <= 6.0 * sd,
        "{what}: {got} of {total}, expected {mean:.0} ± {:.0}",
        6.0 * sd
    );
}

/// Of 20 packets, `--every 3 --packet 1` takes the 2nd, 5th, ... (7); of the 13 left,
/// `! --every 2 --packet 0` takes all but the 1st, 3rd, ... (6). A change to the ruleset
/// starts the counts again: of 2 more packets, the 2nd is taken.
fn nth_counts_like_the_kernel(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m statistic --mode nth --every 3 --packet 1 -j DROP
         -A INPUT -p udp --dport 9 -m statistic --mode nth ! --every 2 --packet 0 -j ACCEPT
         -A INPUT -p udp --dport 9 -j ACCEPT",
    );
    send_udp(&c1, HOST1, 9, 20, Duration::from_millis(2), true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![7, 6, 7]);
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 9 -j DROP");
    send_udp(&c1, HOST1, 9, 2, Duration::from_millis(2), true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![8, 6, 8, 0]);
}

/// `--probability 0.5` takes about half of 400 packets; `! --probability 0.75` a quarter of
/// the rest.
fn random_matches_its_share(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m statistic --mode random --probability 0.5 -j DROP
         -A INPUT -p udp --dport 9 -m statistic --mode random ! --probability 0.75 -j ACCEPT
         -A INPUT -p udp --dport 9 -j ACCEPT",
    );
    send_udp(&c1, HOST1, 9, 400, Duration::from_micros(200), true);
    let c = lab.counts(&host, "INPUT");
    assert_eq!(
        c.iter().sum::<u64>(),
        400,
        "every packet meets one rule: {c:?}"
    );
    about(c[0], 400, 0.5, "--probability 0.5");
    about(c[1], 400 - c[0], 0.25, "! --probability 0.75");
}

/// kube-proxy's service chain for three endpoints: a third, then half of the rest, then the
/// last; 300 new connections (a source port each) land about 100 on each endpoint's DNAT.
fn random_spreads_connections_over_endpoints(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        &format!(
            "-t nat -N SVC
             -t nat -A PREROUTING -d {HOST1} -p udp --dport 80 -j SVC
             -t nat -A SVC -p udp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination {HOST1}:8081
             -t nat -A SVC -p udp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination {HOST1}:8082
             -t nat -A SVC -p udp -j DNAT --to-destination {HOST1}:8083"
        ),
    );
    send_udp(&c1, HOST1, 80, 300, Duration::from_micros(500), false);
    let c = lab.counts(&host, "SVC -t nat");
    assert_eq!(c.iter().sum::<u64>(), 300, "one DNAT per connection: {c:?}");
    for (i, n) in c.iter().enumerate() {
        about(*n, 300, 1.0 / 3.0, &format!("endpoint {}", i + 1));
    }
}
