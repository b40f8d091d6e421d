//! `-m hashlimit`: a bucket per key (the table's mode and masks), kept by name across ruleset
//! changes with the configuration of the rule that made it; byte rates; rate-match windows;
//! a full table drops packets of new keys until its buckets expire.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{Flow, Proto, send_udp};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(
    buckets_per_key_survive_changes,
    byte_rates_and_rate_match,
    a_full_table_drops_new_keys
);

const NOW: Duration = Duration::ZERO;

/// Per source, 3 packets a minute at most (no refill during the test); per destination
/// address and port, above 2 a minute drops. Both sources have buckets of their own. A
/// change elsewhere keeps the buckets; replacing the rule with another rate under the same
/// name keeps the table's rate; a new name starts afresh.
fn buckets_per_key_survive_changes(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 3 --hashlimit-mode srcip --hashlimit-name per -j ACCEPT
         -A INPUT -p udp --dport 9 -j DROP
         -A INPUT -p udp --dport 10 -m hashlimit --hashlimit-above 1/min --hashlimit-burst 2 --hashlimit-mode dstip,dstport --hashlimit-name above -j DROP
         -A INPUT -p udp --dport 10 -j ACCEPT",
    );
    send_udp(&c1, HOST1, 9, 10, NOW, true);
    send_udp(&c2, HOST2, 9, 10, NOW, true);
    send_udp(&c1, HOST1, 10, 5, NOW, true);
    send_udp(&c2, HOST2, 10, 5, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![6, 14, 6, 4]);
    // A change elsewhere: the buckets stay empty.
    lab.ipt_ok(&host, "-A OUTPUT -p udp --dport 7 -j DROP");
    send_udp(&c1, HOST1, 9, 4, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![6, 18, 6, 4]);
    // The same name at another rate: the table keeps its own, and its buckets.
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p udp --dport 9 -m hashlimit --hashlimit-upto 100/sec --hashlimit-burst 50 --hashlimit-mode srcip --hashlimit-name per -j ACCEPT",
    );
    send_udp(&c2, HOST2, 9, 4, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT")[..2], [0, 22]);
    // Another name: a table of its own, at the new rate.
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p udp --dport 9 -m hashlimit --hashlimit-upto 100/sec --hashlimit-burst 50 --hashlimit-mode srcip --hashlimit-name fresh -j ACCEPT",
    );
    send_udp(&c2, HOST2, 9, 4, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT")[..2], [4, 22]);
}

/// 2kb/s lets a second's worth of 33-byte datagrams through at once (3 chunks of 16 bytes
/// each: 43 of them, one more if a jiffy passes); rate-match at 5/s matches the first 10 of
/// a window (burst + rate), and nothing in the window after one that went over.
fn byte_rates_and_rate_match(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m hashlimit --hashlimit-upto 2kb/s --hashlimit-name bytes -j ACCEPT
         -A INPUT -p udp --dport 9 -j DROP
         -A INPUT -p udp --dport 10 -m hashlimit --hashlimit-upto 5/sec --hashlimit-rate-match --hashlimit-htable-expire 10000 --hashlimit-name window -j ACCEPT
         -A INPUT -p udp --dport 10 -j DROP",
    );
    send_udp(&c1, HOST1, 9, 60, NOW, true);
    let c = lab.counts(&host, "INPUT");
    assert!((43..=44).contains(&c[0]) && c[0] + c[1] == 60, "{c:?}");
    send_udp(&c2, HOST2, 10, 20, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT")[2..], [10, 10]);
    std::thread::sleep(Duration::from_millis(1100));
    send_udp(&c2, HOST2, 10, 3, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT")[2..], [10, 13]);
    std::thread::sleep(Duration::from_millis(1100));
    send_udp(&c2, HOST2, 10, 3, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT")[2..], [13, 13]);
}

/// A table of at most 2 buckets: a third source's packets are dropped (not counted by any
/// rule) while the two live; once they expired and the table was cleaned, it gets one.
fn a_full_table_drops_new_keys(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p icmp -m hashlimit --hashlimit-upto 100/sec --hashlimit-mode srcip --hashlimit-name full --hashlimit-htable-size 1 --hashlimit-htable-max 2 --hashlimit-htable-expire 1000 --hashlimit-htable-gcinterval 300 -j ACCEPT
         -A INPUT -p icmp -j ACCEPT",
    );
    let ping = |from: &pcn_iptables_tests::Ns, src: &str, dst: &str| {
        Flow::new(from, Proto::Icmp, dst)
            .src(src)
            .attempt(Duration::from_millis(500))
    };
    assert!(ping(&c1, C1, HOST1));
    assert!(ping(&c1, C1_ALT, HOST1));
    assert!(!ping(&c2, C2, HOST2), "a third key in a full table");
    assert!(ping(&c1, C1, HOST1), "a key the table has");
    assert_eq!(lab.counts(&host, "INPUT"), vec![3, 0]);
    std::thread::sleep(Duration::from_millis(1800));
    assert!(ping(&c2, C2, HOST2), "once the others expired");
    assert_eq!(lab.counts(&host, "INPUT"), vec![4, 0]);
}
