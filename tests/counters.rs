//! Counters: the same rules and exactly the same packets, then `-L -v -x -n`.
//!
//! Each scenario has four tests: `legacy` and `pcn` check the counters against the numbers
//! netfilter gives (packet counts, and bytes where the size is fixed: IP length, as netfilter
//! counts); `diff_pcn` runs pcn-iptables and iptables-legacy side by side in sibling namespace
//! sets and demands identical verdicts and byte-identical listings; `diff_selfcheck_legacy` does
//! the same with iptables-legacy on both sides, proving the scenario itself is deterministic.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Listing, Pair, Pass, Routed, Transcript};

macro_rules! counter_tests {
    ($($name:ident => $check:ident),* $(,)?) => {$(
        mod $name {
            use pcn_iptables_tests::Fw;
            #[test]
            fn legacy() {
                super::$check(&super::$name(Fw::legacy()));
            }
            #[test]
            fn pcn() {
                super::$check(&super::$name(Fw::pcn()));
            }
            #[test]
            fn diff_pcn() {
                pcn_iptables_tests::differential(Fw::legacy(), Fw::pcn(), super::$name);
            }
            #[test]
            fn diff_selfcheck_legacy() {
                pcn_iptables_tests::differential(Fw::legacy(), Fw::legacy(), super::$name);
            }
        }
    )*};
}

counter_tests!(
    counters_input_output => check_input_output,
    counters_forward => check_forward,
    counters_policy_drop_and_zero => check_policy_drop_and_zero,
    counters_policy_after_rule_change => check_policy_after_rule_change,
    counters_rules_without_target => check_rules_without_target,
    counters_beyond_the_first_pages => check_beyond_the_first_pages,
);

const PASS_WAIT: Duration = Duration::from_millis(1500);
const DROP_WAIT: Duration = Duration::from_millis(400);

/// ICMP echo request/reply: 20 + 8 + 56 bytes.
const PING: u64 = 84;
/// UDP probe: 20 + 8 + 16 bytes.
const UDP: u64 = 44;
/// SYN and SYN-ACK with Linux's default options (MSS, SACK-permitted, timestamps, window
/// scale): 20 + 40 bytes.
const TCP_SYN: u64 = 60;
/// ACK and RST with the timestamp option: 20 + 32 bytes.
const TCP_ACK: u64 = 52;

/// `(policy ACCEPT 4 packets, 336 bytes)` → `(policy ACCEPT * packets, * bytes)`.
fn mask_policy_counters(listing: &str) -> String {
    let mut out = String::new();
    for line in listing.lines() {
        match (line.starts_with("Chain "), line.find("(policy ")) {
            (true, Some(i)) => {
                let w: Vec<&str> = line[i..].split_whitespace().collect();
                out.push_str(&format!(
                    "{}(policy {} * packets, * bytes)",
                    &line[..i],
                    w.get(1).unwrap_or(&"?")
                ));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn listing(t: &Transcript, name: &str) -> Listing {
    Listing::parse(t.get(name))
        .unwrap_or_else(|e| panic!("[{}] {name}: {e}\n{}", t.fw, t.get(name)))
}

#[track_caller]
fn eq(t: &Transcript, what: &str, got: (u64, u64), want_pkts: u64, want_bytes: Option<u64>) {
    assert_eq!(got.0, want_pkts, "[{}] packets of {what}", t.fw);
    if let Some(b) = want_bytes {
        assert_eq!(got.1, b, "[{}] bytes of {what}", t.fw);
    }
}

/// INPUT and OUTPUT counters on the host; then counters that must survive `-I`/`-A`, and `-Z`.
fn counters_input_output(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000, 80, 9]);
    lab.ipt_lines(
        &host,
        &format!(
            "-A INPUT -s {C1_ALT} -j DROP
             -A INPUT -p icmp
             -A INPUT -p udp --dport 7000 -j ACCEPT
             -A INPUT -p tcp --dport 9 -j DROP
             -A INPUT -i eth2 -p tcp --dport 80 -j ACCEPT
             -A OUTPUT -p icmp
             -A OUTPUT -d {C2} -j ACCEPT"
        ),
    );
    t.text("-L -v -x -n before traffic", lab.listing(&host));
    for _ in 0..3 {
        lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    }
    lab.expect_once(&c1.ping(HOST1).src(C1_ALT), Drop, DROP_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7000), Pass, PASS_WAIT);
    lab.expect_once(&c1.tcp(HOST1, 9), Drop, DROP_WAIT);
    lab.expect_once(&c2.tcp(HOST2, 80), Pass, PASS_WAIT);
    lab.expect_once(&c2.ping(HOST2), Pass, PASS_WAIT);
    t.text("-L -v -x -n after traffic", lab.listing(&host));
    t.text("-S", lab.rules(&host));
    t.text(
        "-L -n --line-numbers",
        lab.ipt_ok(&host, "-L -n --line-numbers").stdout,
    );
    t.text("-L INPUT -v -n", lab.ipt_ok(&host, "-L INPUT -v -n").stdout);
    t.text(
        "-L OUTPUT -v -x -n",
        lab.ipt_ok(&host, "-L OUTPUT -v -x -n").stdout,
    );

    // Rule changes keep the counters of the rules that stay.
    lab.ipt_ok(&host, "-I INPUT 1 -p tcp --dport 1 -j DROP");
    lab.ipt_ok(&host, "-A OUTPUT -p udp");
    lab.ipt_ok(&host, "-D INPUT -p tcp --dport 9 -j DROP");
    // (What a rule change does to the policy counters is counters_policy_after_rule_change's
    // business: masked here.)
    t.text(
        "-L -v -x -n after -I/-A/-D",
        mask_policy_counters(&lab.listing(&host)),
    );
    lab.ipt_ok(&host, "-Z OUTPUT");
    let l = lab.ipt_ok(&host, "-L -v -x -n --line-numbers").stdout;
    t.text(
        "-L -v -x -n --line-numbers after -Z OUTPUT",
        mask_policy_counters(&l),
    );
    lab.expect_once(&c1.udp(HOST1, 7000), Pass, PASS_WAIT);
    t.text(
        "-L -v -x -n after one more datagram",
        mask_policy_counters(&lab.listing(&host)),
    );
    t.finish(&lab)
}

fn check_input_output(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n before traffic");
    for c in &l.chains {
        assert!(
            c.rules.iter().all(|r| r.pkts == 0 && r.bytes == 0),
            "[{}] fresh counters: {c:?}",
            t.fw
        );
        assert_eq!(
            c.policy.as_ref().map(|p| (p.1, p.2)),
            Some((0, 0)),
            "[{}] fresh policy counters",
            t.fw
        );
    }
    let l = listing(t, "-L -v -x -n after traffic");
    eq(
        t,
        "INPUT 1 (-s c1-alt DROP)",
        l.rule("INPUT", 1),
        1,
        Some(PING),
    );
    eq(
        t,
        "INPUT 2 (-p icmp)",
        l.rule("INPUT", 2),
        4,
        Some(4 * PING),
    );
    eq(
        t,
        "INPUT 3 (udp 7000 ACCEPT)",
        l.rule("INPUT", 3),
        1,
        Some(UDP),
    );
    eq(
        t,
        "INPUT 4 (tcp 9 DROP)",
        l.rule("INPUT", 4),
        1,
        Some(TCP_SYN),
    );
    eq(
        t,
        "INPUT 5 (-i eth2 tcp 80)",
        l.rule("INPUT", 5),
        3,
        Some(TCP_SYN + 2 * TCP_ACK),
    ); // SYN, ACK, RST
    eq(t, "INPUT policy", l.policy("INPUT"), 4, Some(4 * PING));
    eq(t, "FORWARD policy", l.policy("FORWARD"), 0, Some(0));
    eq(
        t,
        "OUTPUT 1 (-p icmp)",
        l.rule("OUTPUT", 1),
        4,
        Some(4 * PING),
    );
    eq(
        t,
        "OUTPUT 2 (-d c2 ACCEPT)",
        l.rule("OUTPUT", 2),
        2,
        Some(PING + TCP_SYN),
    ); // reply, SYN-ACK
    eq(
        t,
        "OUTPUT policy",
        l.policy("OUTPUT"),
        4,
        Some(3 * PING + UDP),
    );

    let l2 = listing(t, "-L -v -x -n after -I/-A/-D");
    eq(t, "new INPUT 1", l2.rule("INPUT", 1), 0, Some(0));
    assert_eq!(
        l2.rule("INPUT", 2),
        l.rule("INPUT", 1),
        "[{}] counters kept across -I",
        t.fw
    );
    assert_eq!(
        l2.rule("INPUT", 3),
        l.rule("INPUT", 2),
        "[{}] counters kept across -I",
        t.fw
    );
    assert_eq!(
        l2.rule("INPUT", 4),
        l.rule("INPUT", 3),
        "[{}] counters kept across -I",
        t.fw
    );
    assert_eq!(
        l2.rule("INPUT", 5),
        l.rule("INPUT", 5),
        "[{}] counters kept across -D",
        t.fw
    );
    assert_eq!(
        l2.rule("OUTPUT", 2),
        l.rule("OUTPUT", 2),
        "[{}] counters kept across -A",
        t.fw
    );
    eq(t, "new OUTPUT 3", l2.rule("OUTPUT", 3), 0, Some(0));

    let l3 = listing(t, "-L -v -x -n after one more datagram");
    eq(
        t,
        "INPUT 4 (udp) after one more",
        l3.rule("INPUT", 4),
        2,
        Some(2 * UDP),
    );
    eq(t, "OUTPUT 1 after -Z", l3.rule("OUTPUT", 1), 0, Some(0));
    eq(
        t,
        "OUTPUT 3 (-p udp) after -Z",
        l3.rule("OUTPUT", 3),
        1,
        Some(UDP),
    );
    assert_eq!(
        l3.rule("INPUT", 2),
        l.rule("INPUT", 1),
        "[{}] -Z OUTPUT leaves INPUT alone",
        t.fw
    );
}

/// FORWARD counters on the router, with INPUT/OUTPUT counters of its own traffic alongside.
fn counters_forward(fw: Fw) -> Transcript {
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&server, &[7000]);
    lab.serve(&server2, &[7000]);
    lab.ipt_lines(
        &router,
        "-A FORWARD -p icmp
         -A FORWARD -o eth2 -j DROP
         -A FORWARD -p udp --dport 7000 -j ACCEPT
         -A INPUT -p icmp -j ACCEPT",
    );
    for _ in 0..2 {
        lab.expect_once(&client.ping(SERVER), Pass, PASS_WAIT);
    }
    lab.expect_once(&client.ping(SERVER2), Drop, DROP_WAIT);
    lab.expect_once(&client.udp(SERVER, 7000), Pass, PASS_WAIT);
    lab.expect_once(&client.udp(SERVER2, 7000), Drop, DROP_WAIT);
    lab.expect_once(&client.ping(ROUTER_C), Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&router));
    t.text(
        "-L FORWARD -v -n --line-numbers",
        lab.ipt_ok(&router, "-L FORWARD -v -n --line-numbers")
            .stdout,
    );
    t.finish(&lab)
}

fn check_forward(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    eq(
        t,
        "FORWARD 1 (-p icmp)",
        l.rule("FORWARD", 1),
        5,
        Some(5 * PING),
    );
    eq(
        t,
        "FORWARD 2 (-o eth2 DROP)",
        l.rule("FORWARD", 2),
        2,
        Some(PING + UDP),
    );
    eq(
        t,
        "FORWARD 3 (udp 7000)",
        l.rule("FORWARD", 3),
        1,
        Some(UDP),
    );
    eq(
        t,
        "FORWARD policy",
        l.policy("FORWARD"),
        5,
        Some(4 * PING + UDP),
    );
    eq(
        t,
        "INPUT 1 (icmp ACCEPT)",
        l.rule("INPUT", 1),
        1,
        Some(PING),
    );
    eq(t, "INPUT policy", l.policy("INPUT"), 0, Some(0));
    eq(t, "OUTPUT policy", l.policy("OUTPUT"), 1, Some(PING));
}

/// Policy DROP counts what it drops; `-Z` zeroes rule and policy counters.
fn counters_policy_drop_and_zero(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp -j ACCEPT
         -A INPUT -i eth2 -p icmp -j ACCEPT
         -P INPUT DROP",
    );
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    lab.expect_once(&c2.ping(HOST2), Pass, PASS_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7000), Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    lab.ipt_ok(&host, "-Z");
    t.text("-L -v -x -n after -Z", lab.listing(&host));
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    t.text("-L -v -x -n after -Z and one ping", lab.listing(&host));
    t.text("-S", lab.rules(&host));
    t.finish(&lab)
}

fn check_policy_drop_and_zero(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    eq(t, "INPUT 1 (udp)", l.rule("INPUT", 1), 1, Some(UDP));
    eq(
        t,
        "INPUT 2 (-i eth2 icmp)",
        l.rule("INPUT", 2),
        1,
        Some(PING),
    );
    eq(t, "INPUT policy DROP", l.policy("INPUT"), 2, Some(2 * PING));
    eq(t, "OUTPUT policy", l.policy("OUTPUT"), 2, Some(PING + UDP));
    let l = listing(t, "-L -v -x -n after -Z");
    for c in &l.chains {
        assert!(
            c.rules.iter().all(|r| r.pkts == 0 && r.bytes == 0),
            "[{}] -Z: {c:?}",
            t.fw
        );
        assert_eq!(
            c.policy.as_ref().map(|p| (p.1, p.2)),
            Some((0, 0)),
            "[{}] -Z policy",
            t.fw
        );
    }
    let l = listing(t, "-L -v -x -n after -Z and one ping");
    eq(
        t,
        "INPUT policy DROP after -Z",
        l.policy("INPUT"),
        1,
        Some(PING),
    );
    assert!(
        t.get("-S").starts_with("-P INPUT DROP\n"),
        "[{}] -S: {}",
        t.fw,
        t.get("-S")
    );
}

/// What happens to the built-in chains' policy counters when the ruleset changes. With
/// iptables-legacy 1.8.9 every change (-A/-I/-D/-R/-P/-Z of any chain) commits the whole table
/// and the policy counters of all built-in chains come back as zero, while rule counters are
/// carried over. This test pins that reference behaviour down on its own, so that a deliberate
/// deviation shows up here and nowhere else.
fn counters_policy_after_rule_change(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_ok(&host, "-A INPUT -p icmp");
    for _ in 0..2 {
        lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    }
    t.text("-L -v -x -n after traffic", lab.listing(&host));
    lab.ipt_ok(&host, "-A FORWARD -p tcp --dport 1 -j DROP");
    t.text("-L -v -x -n after -A FORWARD", lab.listing(&host));
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    t.text("-L -v -x -n after one more ping", lab.listing(&host));
    t.finish(&lab)
}

fn check_policy_after_rule_change(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n after traffic");
    eq(t, "INPUT 1", l.rule("INPUT", 1), 2, Some(2 * PING));
    eq(t, "INPUT policy", l.policy("INPUT"), 2, Some(2 * PING));
    eq(t, "OUTPUT policy", l.policy("OUTPUT"), 2, Some(2 * PING));
    let l = listing(t, "-L -v -x -n after -A FORWARD");
    eq(
        t,
        "INPUT 1 after a change",
        l.rule("INPUT", 1),
        2,
        Some(2 * PING),
    );
    eq(
        t,
        "INPUT policy after a change",
        l.policy("INPUT"),
        0,
        Some(0),
    );
    eq(
        t,
        "OUTPUT policy after a change",
        l.policy("OUTPUT"),
        0,
        Some(0),
    );
    let l = listing(t, "-L -v -x -n after one more ping");
    eq(
        t,
        "INPUT 1 after one more",
        l.rule("INPUT", 1),
        3,
        Some(3 * PING),
    );
    eq(
        t,
        "INPUT policy after one more",
        l.policy("INPUT"),
        1,
        Some(PING),
    );
}

/// Rules without a target count and let the packet go on, however many of them match (40
/// here, more than eBPF's 33 tail calls), before and after a user chain.
fn counters_rules_without_target(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_ok(&host, "-N count");
    for _ in 0..20 {
        lab.ipt_ok(&host, "-A INPUT -p icmp");
        lab.ipt_ok(&host, "-A count -p icmp");
    }
    lab.ipt_ok(&host, "-A INPUT -p icmp -j count");
    for _ in 0..20 {
        lab.ipt_ok(&host, "-A INPUT -p icmp");
    }
    lab.ipt_ok(&host, "-A INPUT -p icmp -j DROP");
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

fn check_rules_without_target(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    for n in 1..=42 {
        eq(
            t,
            &format!("INPUT {n}"),
            l.rule("INPUT", n),
            2,
            Some(2 * PING),
        );
    }
    for n in 1..=20 {
        eq(
            t,
            &format!("count {n}"),
            l.rule("count", n),
            2,
            Some(2 * PING),
        );
    }
    eq(t, "INPUT policy", l.policy("INPUT"), 0, Some(0));
}

/// Rules whose counter slots lie in later pages of the counter arrays (pcn-iptables makes a
/// page of 1,024 slots as the rules need it): 2,500 rules restored, then more appended.
fn counters_beyond_the_first_pages(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let mut rules = String::from("*filter\n");
    for i in 0..2500 {
        rules += &format!("-A INPUT -s 198.19.{}.{}/32 -j DROP\n", i / 250, i % 250);
    }
    rules += "-A INPUT -p icmp\nCOMMIT\n";
    lab.restore_ok(&host, "", &rules);
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    let more = "-A INPUT -p udp --dport 9\n".repeat(1100);
    lab.restore_ok(
        &host,
        "--noflush",
        &format!("*filter\n{more}-A INPUT -p icmp\nCOMMIT\n"),
    );
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

fn check_beyond_the_first_pages(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    eq(t, "INPUT 2501", l.rule("INPUT", 2501), 2, Some(2 * PING));
    eq(t, "INPUT 3602", l.rule("INPUT", 3602), 1, Some(PING));
    eq(t, "INPUT 1", l.rule("INPUT", 1), 0, Some(0));
    // iptables-restore (even with --noflush) starts the policies' counts anew.
    eq(t, "INPUT policy", l.policy("INPUT"), 1, Some(PING));
}
