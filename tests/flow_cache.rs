//! The flow cache: pcn-iptables remembers a flow's verdict (and the counters it bumped) once
//! its way through the chains depends on the flow alone, and must still give, packet after
//! packet of the same flow, exactly netfilter's verdicts and counters: after rule changes, in
//! chains that look at per-packet fields (length, TTL), on ways longer than a cache entry
//! holds, and with rules that only count.
//!
//! Each scenario runs under iptables-legacy (`legacy`), pcn-iptables (`pcn`) and both side
//! by side (`diff_pcn`: identical verdicts and listings).

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Listing, Ns, Pair, Pass, Routed, Transcript};

pcn_iptables_tests::differential_scenarios!(
    cache_rule_changes => check_rule_changes,
    cache_length_in_called_chain => check_length_in_called_chain,
    cache_ttl_forward => check_ttl_forward,
    cache_long_way => check_long_way,
);

const PASS_WAIT: Duration = Duration::from_millis(1500);
const DROP_WAIT: Duration = Duration::from_millis(400);

/// One ping of `size` payload bytes with this TTL; whether its reply came back. Every ping
/// from one namespace to one address is the same flow for the cache (ICMP echo, type 8 code 0).
fn ping(from: &Ns, dst: &str, size: u32, ttl: u32, wait: Duration) -> bool {
    let (size, ttl, w) = (
        size.to_string(),
        ttl.to_string(),
        format!("{:.3}", wait.as_secs_f64()),
    );
    from.exec(&[
        "ping", "-n", "-q", "-c1", "-W", &w, "-s", &size, "-t", &ttl, dst,
    ])
    .success()
}

/// `pass`/`drop` per probe, in order.
fn outcome(results: &[bool]) -> String {
    results
        .iter()
        .map(|&r| if r { "pass" } else { "drop" })
        .collect::<Vec<_>>()
        .join(" ")
}

fn listing(t: &Transcript, name: &str) -> Listing {
    Listing::parse(t.get(name))
        .unwrap_or_else(|e| panic!("[{}] {name}: {e}\n{}", t.fw, t.get(name)))
}

/// One UDP flow (fixed source port) meets each rule change at its next datagram.
fn cache_rule_changes(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000]);
    let flow = c1.udp(HOST1, 7000).sport(40000);
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 7000 -j ACCEPT");
    lab.expect_once(&flow, Pass, PASS_WAIT);
    lab.expect_once(&flow, Pass, PASS_WAIT);
    lab.ipt_ok(&host, "-I INPUT -p udp --sport 40000 -j DROP");
    lab.expect_once(&flow, Drop, DROP_WAIT);
    lab.expect_once(&flow, Drop, DROP_WAIT);
    lab.ipt_ok(&host, "-R INPUT 1 -p udp --sport 40001 -j DROP");
    lab.expect_once(&flow, Pass, PASS_WAIT);
    lab.ipt_ok(&host, "-D INPUT 2");
    lab.ipt_ok(&host, "-P INPUT DROP");
    lab.expect_once(&flow, Drop, DROP_WAIT);
    lab.ipt_ok(&host, "-P INPUT ACCEPT");
    lab.expect_once(&flow, Pass, PASS_WAIT);
    lab.ipt_ok(&host, "-Z INPUT");
    lab.expect_once(&flow, Pass, PASS_WAIT);
    lab.expect_once(&flow, Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

fn check_rule_changes(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    // Since -Z: two datagrams, no rule matching them, the ACCEPT policy.
    assert_eq!(l.rule("INPUT", 1).0, 0, "[{}] INPUT 1 after -Z", t.fw);
    assert_eq!(l.policy("INPUT").0, 2, "[{}] INPUT policy after -Z", t.fw);
}

/// INPUT (cacheable) jumps to a chain that judges by length: small and large pings of one
/// flow, alternating, each gets its own verdict.
fn cache_length_in_called_chain(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_lines(
        &host,
        "-N SIZE
         -A SIZE -m length --length 0:100 -j DROP
         -A INPUT -p icmp -j SIZE
         -A INPUT -p icmp -j ACCEPT",
    );
    let mut got = Vec::new();
    for size in [56, 300, 56, 300, 56, 300] {
        let want = size > 100;
        let wait = if want { PASS_WAIT } else { DROP_WAIT };
        got.push(ping(&c1, HOST1, size, 64, wait));
    }
    t.text("pings of 56, 300, 56, 300, 56, 300 bytes", outcome(&got));
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

fn check_length_in_called_chain(t: &Transcript) {
    t.assert_expected();
    assert_eq!(
        t.get("pings of 56, 300, 56, 300, 56, 300 bytes"),
        "drop pass drop pass drop pass",
        "[{}]",
        t.fw
    );
    let l = listing(t, "-L -v -x -n");
    assert_eq!(l.rule("SIZE", 1).0, 3, "[{}] SIZE 1 (length DROP)", t.fw);
    assert_eq!(l.rule("INPUT", 1).0, 6, "[{}] INPUT 1 (-j SIZE)", t.fw);
    assert_eq!(l.rule("INPUT", 2).0, 3, "[{}] INPUT 2 (ACCEPT)", t.fw);
}

/// FORWARD judges the TTL the router leaves: pings of one flow with TTL 64 and 3, alternating.
fn cache_ttl_forward(fw: Fw) -> Transcript {
    let Routed {
        lab,
        client,
        router,
        ..
    } = Routed::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_ok(&router, "-A FORWARD -p icmp -m ttl --ttl-lt 5 -j DROP");
    let mut got = Vec::new();
    for ttl in [64, 3, 64, 3, 64] {
        let wait = if ttl > 5 { PASS_WAIT } else { DROP_WAIT };
        got.push(ping(&client, SERVER, 56, ttl, wait));
    }
    t.text("pings with TTL 64, 3, 64, 3, 64", outcome(&got));
    t.text("-L -v -x -n", lab.listing(&router));
    t.finish(&lab)
}

fn check_ttl_forward(t: &Transcript) {
    t.assert_expected();
    assert_eq!(
        t.get("pings with TTL 64, 3, 64, 3, 64"),
        "pass drop pass drop pass",
        "[{}]",
        t.fw
    );
    let l = listing(t, "-L -v -x -n");
    assert_eq!(l.rule("FORWARD", 1).0, 2, "[{}] FORWARD 1 (ttl DROP)", t.fw);
}

/// Ways of exactly as many counters as a cache entry remembers (six), of more (seven), and
/// with a rule that only counts, each taken by three datagrams of one flow.
fn cache_long_way(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000, 7002]);
    lab.ipt_lines(
        &host,
        "-N A
         -N B
         -N C
         -N D
         -A D -j ACCEPT
         -A C -p udp -j RETURN
         -A B -p udp --dport 7000 -j C
         -A B -p udp --dport 7000 -j D
         -A A -p udp -j B
         -A INPUT -p udp -j A
         -A INPUT -p udp --dport 7001 -j A
         -A INPUT -p udp --dport 7001 -j A
         -A INPUT -p udp --dport 7001 -j DROP
         -A INPUT -p udp --dport 7002
         -A INPUT -p udp --dport 7002 -j ACCEPT",
    );
    let six = c1.udp(HOST1, 7000).sport(40000);
    let seven = c1.udp(HOST1, 7001).sport(40001);
    let counting = c1.udp(HOST1, 7002).sport(40002);
    for _ in 0..3 {
        lab.expect_once(&six, Pass, PASS_WAIT);
        lab.expect_once(&seven, Drop, DROP_WAIT);
        lab.expect_once(&counting, Pass, PASS_WAIT);
    }
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

fn check_long_way(t: &Transcript) {
    t.assert_expected();
    let l = listing(t, "-L -v -x -n");
    // udp:7000: INPUT 1, A 1, B 1, C 1 (RETURN), B 2, D 1 (ACCEPT).
    // udp:7001: INPUT 1, A 1 (nothing in B), INPUT 2, A 1, INPUT 3, A 1, INPUT 4 (DROP).
    // udp:7002: INPUT 1, A 1, INPUT 5 (counts), INPUT 6 (ACCEPT).
    for (chain, n, want) in [
        ("INPUT", 1, 9),
        ("INPUT", 2, 3),
        ("INPUT", 3, 3),
        ("INPUT", 4, 3),
        ("INPUT", 5, 3),
        ("INPUT", 6, 3),
        ("A", 1, 15),
        ("B", 1, 3),
        ("B", 2, 3),
        ("C", 1, 3),
        ("D", 1, 3),
    ] {
        assert_eq!(l.rule(chain, n).0, want, "[{}] {chain} {n}", t.fw);
    }
}
