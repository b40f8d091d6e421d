//! `-m hashlimit`: a bucket per key (the table's mode and masks), kept by name across ruleset
//! changes with the configuration of the rule that made it; byte rates; rate-match windows;
//! a full table drops packets of new keys until its buckets expire.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{Flow, Proto, send_raw, send_udp};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(
    buckets_per_key_survive_changes,
    ports_of_sctp_esp_and_ah,
    byte_rates_and_rate_match,
    a_full_table_drops_new_keys,
    the_view_shows_the_kernels_numbers
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

/// The "ports" xt_hashlimit keys SCTP by are its ports; ESP's are its SPI, AH's its SPI four
/// bytes in: two keys each, three packets of each, two of them within the burst.
fn ports_of_sctp_esp_and_ah(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p sctp -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-mode srcport,dstport --hashlimit-name sctp -j ACCEPT
         -A INPUT -p sctp -j DROP
         -A INPUT -p esp -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-mode dstport --hashlimit-name esp -j ACCEPT
         -A INPUT -p esp -j DROP
         -A INPUT -p ah -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-mode srcport --hashlimit-name ah -j ACCEPT
         -A INPUT -p ah -j DROP",
    );
    let sctp = |dport: u8| {
        [
            &[3, 232, 0, dport][..],
            &[0, 0, 0, 1],
            &[0; 4],
            &[0, 0, 0, 4],
        ]
        .concat()
    };
    let esp = |low: u8| [&[0, 1, 0, low][..], &[0, 0, 0, 1], &[0; 8]].concat();
    let ah = |high: u8| {
        [
            &[59, 4, 0, 0][..],
            &[0, high, 0, 9],
            &[0, 0, 0, 1],
            &[0; 12],
        ]
        .concat()
    };
    for key in [80, 81] {
        for _ in 0..3 {
            send_raw(&c1, HOST1, 132, &sctp(key));
            send_raw(&c1, HOST1, 50, &esp(key));
            send_raw(&c1, HOST1, 51, &ah(key));
        }
    }
    assert_eq!(lab.counts(&host, "INPUT"), vec![4, 2, 4, 2, 4, 2]);
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

/// After 3 datagrams of a 1/min burst 5 bucket keyed by source and destination port, the
/// table's view (/proc/net/ipt_hashlimit/NAME for netfilter, `--hashlimit NAME` for
/// pcn-iptables) shows the bucket with the kernel's numbers: a minute to live, the cap and
/// cost in its credits, the credit less three costs (and what the milliseconds since gave).
fn the_view_shows_the_kernels_numbers(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m hashlimit --hashlimit-upto 1/min --hashlimit-mode srcip,dstport --hashlimit-name view",
    );
    send_udp(&c1, HOST1, 9, 3, NOW, true);
    let view = match lab.fw.is_pcn() {
        true => {
            host.exec(&[lab.fw.bin_str(), "--hashlimit", "view"])
                .expect_ok()
                .stdout
        }
        false => {
            host.exec(&["cat", "/proc/net/ipt_hashlimit/view"])
                .expect_ok()
                .stdout
        }
    };
    let fields: Vec<&str> = view.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "one bucket: {view:?}");
    let left: i64 = fields[0].parse().unwrap();
    assert!((57..=60).contains(&left), "{view}");
    assert_eq!(fields[1], format!("{C1}:0->0.0.0.0:9"), "{view}");
    let n = |i: usize| fields[i].parse::<u64>().unwrap();
    let (credit, cap, cost) = (n(2), n(3), n(4));
    // 60 s (in microseconds) a packet, times the kernel's credits a second in millionths (a
    // jiffy's: the power of two below 2^64 / (HZ × 86400)), burst 5.
    let hz = kernel_hz(&host);
    let per_jiffy = 1u64 << (63 - (u64::MAX / (hz * 86400)).leading_zeros());
    assert_eq!(cost, 60_000_000 * (hz * per_jiffy / 1_000_000), "{view}");
    assert_eq!(cap, 5 * cost, "{view}");
    let spent = cap - 3 * cost;
    assert!(
        credit >= spent && credit < spent + 500 * per_jiffy,
        "credit {credit}, spent to {spent}: {view}"
    );
}

/// The kernel's CONFIG_HZ.
fn kernel_hz(ns: &pcn_iptables_tests::Ns) -> u64 {
    let config = "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)";
    let text = ns.exec(&["sh", "-c", config]).expect_ok().stdout;
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.parse().ok())
        .expect("CONFIG_HZ in the kernel's configuration")
}
