//! iptables-save and iptables-restore: round trips over a corpus of rule sets, failing restores
//! that change nothing, `--test`, `--noflush`, `-v`, counters, 16,384 rules in one chain.
//!
//! Each scenario has three tests: `legacy` and `pcn` check the expected verdicts; `diff_pcn`
//! runs iptables-legacy and pcn-iptables side by side and demands the same verdicts and the
//! same save text, messages and exit codes (the save comment lines and the program names
//! aside).

use std::time::Duration;

use pcn_iptables_tests::restore::{normalize_tool_output, strip_save_comments};
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Flow, Fw, Lab, Ns, Pair, Pass, Transcript, Verdict};

pcn_iptables_tests::differential_scenarios!(
    round_trip_ports,
    round_trip_addresses_interfaces,
    round_trip_user_chains,
    round_trip_counters,
    round_trip_extension_matches,
    round_trip_reject,
    round_trip_log_limit_counters,
    errors_change_nothing,
    test_and_verbose,
    noflush_appends,
    scale_16384_rules,
    several_tables,
    filter_and_nat,
);

/// Ports the host serves.
const PORTS: [u16; 6] = [22, 53, 80, 81, 443, 8005];

const PASS_WAIT: Duration = Duration::from_millis(1500);
const DROP_WAIT: Duration = Duration::from_millis(400);

/// Every match on ports, both protocols, ranges, `!`, two port matches in one rule.
const PORTS_RULES: &str = "\
# ports
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j DROP
-A INPUT -p tcp -m tcp --dport 8000:8010 -j DROP
-A INPUT -p udp -m udp ! --dport 53 -j DROP
-A INPUT -p tcp -m tcp --sport 1024:65535 --dport 81 -j DROP
-A INPUT -p tcp -m tcp ! --sport 1024:65535 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -m tcp --sport 1:65535
-A OUTPUT -o eth2 -p udp -m udp --sport 53 -j DROP
COMMIT
";

fn ports_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.tcp(HOST1, 22), Drop),
        (p.c1.tcp(HOST1, 8005), Drop),
        (p.c1.udp(HOST1, 80), Drop),
        (p.c1.udp(HOST1, 53), Pass),
        (p.c2.udp(HOST2, 53), Drop),
        (p.c1.tcp(HOST1, 81), Drop),
        (p.c1.tcp(HOST1, 80), Pass),
        (p.c1.ping(HOST1), Pass),
    ]
}

/// Addresses, prefixes and lists, interfaces and wildcards, protocols by name and number, `!`
/// on each, a DROP policy.
const ADDRESS_RULES: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s 198.18.1.3/32 -j DROP
-A INPUT ! -s 198.18.0.0/15 -j DROP
-A INPUT -d 198.18.1.4/32 -p icmp -j DROP
-A INPUT -i eth2 -p tcp -m tcp --dport 80 -j DROP
-A INPUT ! -i eth+ -j ACCEPT
-A INPUT -s 198.18.2.0/24 -d 198.18.2.2/32 -i eth2 -p udp -j DROP
-A INPUT -p gre
-A INPUT ! -p 253
-A INPUT -s 198.18.9.1,198.18.9.2 -d 198.18.1.2 -p 6 --dport 9 -j DROP
-A FORWARD -p all -i eth1 -o eth2 -j ACCEPT
-A OUTPUT ! -o lo -p sctp -j DROP
-A OUTPUT -d 198.18.1.1/32 -o eth1 -p tcp -m tcp --sport 443 -j DROP
COMMIT
";

fn address_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.ping(HOST1).src(C1_ALT), Drop),
        (p.c1.ping(HOST1), Pass),
        (p.c1.ping(HOST1_ALT), Drop),
        (p.c2.tcp(HOST2, 80), Drop),
        (p.c1.tcp(HOST1, 80), Pass),
        (p.c2.udp(HOST2, 53), Drop),
        (p.c1.udp(HOST1, 53), Pass),
        (p.c1.tcp(HOST1, 443), Drop),
        (p.c2.tcp(HOST2, 443), Pass),
    ]
}

/// User chains (listed out of order), jumps, gotos, RETURN, a DROP policy behind them.
const USER_CHAIN_RULES: &str = "\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:WEB - [0:0]
:SERVICES - [0:0]
:BLOCK - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -s 198.18.1.3/32 -g BLOCK
-A INPUT -j SERVICES
-A BLOCK -j DROP
-A SERVICES -p tcp -m tcp --dport 80 -j WEB
-A SERVICES -p udp -m udp --dport 53 -j ACCEPT
-A SERVICES -p tcp -m tcp --dport 22 -j ACCEPT
-A WEB -s 198.18.2.1/32 -j RETURN
-A WEB -j ACCEPT
COMMIT
";

fn user_chain_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.ping(HOST1), Pass),
        (p.c1.tcp(HOST1, 80), Pass),
        (p.c2.tcp(HOST2, 80), Drop),
        (p.c1.udp(HOST1, 53), Pass),
        (p.c1.tcp(HOST1, 22), Pass),
        (p.c1.tcp(HOST1, 443), Drop),
        (p.c1.tcp(HOST1, 80).src(C1_ALT), Drop),
        (p.c1.ping(HOST1).src(C1_ALT), Pass),
    ]
}

/// Counters on policies and rules (restored with `-c`), in base and user chains.
const COUNTER_RULES: &str = "\
*filter
:INPUT ACCEPT [1000:200000]
:FORWARD DROP [5:300]
:OUTPUT ACCEPT [42:4242]
:COUNT - [0:0]
[7:700] -A INPUT -p icmp -j COUNT
[12345678901:98765432109876] -A INPUT -s 198.18.1.3/32 -j DROP
-A INPUT -p udp -m udp --dport 53
[3:300] -A COUNT -j RETURN
[0:0] -A OUTPUT -p icmp
COMMIT
";

fn counter_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.ping(HOST1), Pass),
        (p.c1.ping(HOST1), Pass),
        (p.c1.ping(HOST1).src(C1_ALT), Drop),
        (p.c1.udp(HOST1, 53), Pass),
    ]
}

/// Every match of issue 5, most with `!`, in base and user chains, with counters. The probes
/// (UDP: 44 bytes, TCP SYN: 60, ping: 84; TTL 64) make each match decide at least one verdict.
const EXTENSION_MATCH_RULES: &str = "\
*filter
:INPUT ACCEPT [10:1000]
:FORWARD DROP [1:2]
:OUTPUT ACCEPT [20:2000]
:EXT - [0:0]
:TRUSTED - [0:0]
[3:180] -A INPUT -i eth1 -j EXT
[4:336] -A INPUT -p icmp -m icmp --icmp-type echo-request -m iprange --src-range 198.18.2.1-198.18.2.1 -m comment --comment \"c2 may not ping\" -j DROP
-A INPUT -m comment --comment nothing_to_see
-A FORWARD -f -j DROP
-A FORWARD ! -f -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m iprange ! --src-range 198.18.0.0-198.18.255.255 ! --dst-range 10.0.0.1-10.0.0.9 -j DROP
-A FORWARD -p udp -m length --length 1000:65535 -m ttl --ttl-gt 200 -j DROP
-A EXT -p udp -m multiport --sports 1000:1010,2000 -j DROP
-A EXT -p tcp -m multiport --dports 22,8000:8010 -j DROP
-A EXT -p udp -m multiport ! --ports 22,53,80:81,443 -j DROP
-A EXT -p tcp -m multiport --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j DROP
-A EXT -p tcp -m multiport ! --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,65535 -m multiport --sports 9 -j DROP
-A EXT -p tcp -m tcp --dport 443 --tcp-flags SYN,ACK SYN -m comment --comment \"new https\" -j DROP
-A EXT -s 198.18.1.3/32 -p tcp -m tcp --syn -j DROP
-A EXT -p tcp -m tcp --dport 9999 ! --syn -j DROP
-A EXT -p tcp -m tcp --tcp-flags ALL NONE -j DROP
-A EXT -p tcp -m tcp ! --tcp-flags URG,PSH URG -m tcp --sport 9 -j DROP
-A EXT -p udp -m udp --dport 80 -m length --length 44 -j DROP
-A EXT -p udp -m udp --dport 81 -m length ! --length 0:43 -m ttl --ttl-eq 64 -j DROP
-A EXT -p tcp -m ttl --ttl-lt 64 -j DROP
-A EXT -p tcp -m ttl --ttl-gt 64 -j DROP
-A EXT -m ttl ! --ttl-eq 64 -j DROP
-A EXT -p udp -m udp --dport 443 -m mac ! --mac-source 02:00:00:00:00:99 -j DROP
-A EXT -p udp -m udp --dport 22 -m mac --mac-source 02:00:00:00:00:99 -j DROP
-A EXT -p udp -m udp --dport 22 -m addrtype --src-type LOCAL -j DROP
-A EXT -p udp -m udp --sport 3000 -m addrtype --src-type UNICAST --dst-type LOCAL -j DROP
-A EXT -p udp -m udp --sport 3001 -m addrtype ! --dst-type LOCAL,BROADCAST -j DROP
-A EXT -m addrtype ! --src-type BLACKHOLE,UNREACHABLE,PROHIBIT,MULTICAST -m addrtype --dst-type UNSPEC -j DROP
-A EXT -s 198.18.1.3/32 -p icmp -m icmp --icmp-type 8/0 -j TRUSTED
-A EXT -p icmp -m icmp ! --icmp-type any -j DROP
-A EXT -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A EXT -p icmp -m icmp --icmp-type time-exceeded -j ACCEPT
-A EXT -p icmp -m icmp ! --icmp-type port-unreachable -m icmp --icmp-type 11/1 -j ACCEPT
-A TRUSTED -m iprange ! --dst-range 198.18.1.2-198.18.1.2 -j DROP
-A TRUSTED -j RETURN
-A OUTPUT -p icmp -m icmp --icmp-type echo-reply -m iprange --dst-range 198.18.1.1-198.18.1.1 -m length --length 84 -j ACCEPT
-A OUTPUT -o eth2 -p icmp -m icmp --icmp-type 0 -j DROP
-A OUTPUT -p udp -m udp --sport 53 -m addrtype --src-type LOCAL
COMMIT
";

fn extension_match_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    let (c1, c2) = (&p.c1, &p.c2);
    vec![
        // multiport
        (c1.udp(HOST1, 53).sport(1005), Drop),
        (c1.udp(HOST1, 53).sport(1011), Pass),
        (c1.tcp(HOST1, 22), Drop),
        (c1.tcp(HOST1, 8005), Drop),
        (c1.udp(HOST1, 8005), Drop),
        (c1.udp(HOST1, 53), Pass),
        // tcp flags
        (c1.tcp(HOST1, 443), Drop),
        (c1.tcp(HOST1, 81).src(C1_ALT), Drop),
        (c1.tcp(HOST1, 81), Pass),
        // length, ttl
        (c1.udp(HOST1, 80), Drop),
        (c1.udp(HOST1, 81), Drop),
        // mac
        (c1.udp(HOST1, 443), Drop),
        (c1.udp(HOST1, 22), Pass),
        // addrtype
        (c1.udp(HOST1, 53).sport(3000), Drop),
        (c1.udp(HOST1, 53).sport(3001), Pass),
        // icmp, iprange, a user chain and RETURN
        (c1.ping(HOST1).src(C1_ALT), Pass),
        (c1.ping(HOST1_ALT).src(C1_ALT), Drop),
        (c1.ping(HOST1), Pass),
        (c2.ping(HOST2), Drop),
        (c2.udp(HOST2, 53), Pass),
        (c2.tcp(HOST2, 22), Pass),
    ]
}

/// REJECT with every `--reject-with` (names, an alias, the default), on INPUT and OUTPUT.
const REJECT_RULES: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:REJECTS - [0:0]
-A INPUT -p udp -m udp --sport 2000:2999 -j REJECTS
-A INPUT -s 198.18.2.1/32 -p tcp -m tcp --dport 8005 -j REJECT --reject-with tcp-reset
-A INPUT -s 198.18.1.3/32 -p icmp -j REJECT --reject-with icmp-admin-prohibited
-A FORWARD -p tcp -j REJECT --reject-with tcp-rst
-A FORWARD -j REJECT --reject-with icmp-net-prohibited
-A REJECTS -p udp -m udp --sport 2001 -j REJECT --reject-with icmp-net-unreachable
-A REJECTS -p udp -m udp --sport 2002 -j REJECT --reject-with icmp-host-unreachable
-A REJECTS -p udp -m udp --sport 2003 -j REJECT --reject-with icmp-port-unreachable
-A REJECTS -p udp -m udp --sport 2004 -j REJECT --reject-with icmp-proto-unreachable
-A REJECTS -p udp -m udp --sport 2005 -j REJECT --reject-with icmp-net-prohibited
-A REJECTS -p udp -m udp --sport 2006 -j REJECT --reject-with icmp-host-prohibited
-A REJECTS -p udp -m udp --sport 2007 -j REJECT --reject-with icmp-admin-prohibited
-A REJECTS -p udp -m udp --sport 2008 -j REJECT
-A REJECTS -p udp -m udp --sport 2009 -j REJECT --reject-with host-unreach
-A REJECTS -p udp -m udp --sport 2010 -j REJECT --reject-with icmp-host-prohib
-A OUTPUT -d 198.18.2.1/32 -p udp -m udp --sport 81 -j REJECT --reject-with icmp-port-unreachable
COMMIT
";

fn reject_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    let (c1, c2) = (&p.c1, &p.c2);
    let mut probes: Vec<_> = (2001..=2010)
        .map(|sport| (c1.udp(HOST1, 53).sport(sport), Drop))
        .collect();
    probes.extend([
        (c1.udp(HOST1, 53).sport(2011), Pass),
        (c2.tcp(HOST2, 8005), Drop),
        (c1.tcp(HOST1, 8005), Pass),
        (c1.ping(HOST1).src(C1_ALT), Drop),
        (c1.ping(HOST1), Pass),
        (c2.udp(HOST2, 81), Drop),
        (c1.udp(HOST1, 81), Pass),
    ]);
    probes
}

/// LOG with every option (levels by name and number, prefixes with spaces), which lets the
/// packet go on; `-m limit` buckets that run dry (a burst of 2 or 3 at 1/hour or 2/day, with
/// and without a target) and that never do; counters on policies, rules and user chains. No
/// TCP and no REJECT (whose answers iptables counts on OUTPUT), so that every count is exact.
/// (Rates times bursts stay small: xt_limit computes the bucket's size in 32 bits, and with
/// e.g. `--limit 2/day --limit-burst 10000` it wraps to a bucket of about 2 packets, where
/// pcn-iptables' holds 10000.)
const LOG_LIMIT_RULES: &str = "\
*filter
:INPUT ACCEPT [11:1111]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [22:2222]
:LOGGED - [5:5]
[7:308] -A INPUT -p udp -m udp --sport 3000:3100 -j LOGGED
[1:84] -A INPUT -s 198.18.1.3/32 -p icmp -m limit --limit 1/hour --limit-burst 2 -j ACCEPT
-A INPUT -s 198.18.1.3/32 -p icmp -j DROP
[2:88] -A INPUT -p udp -m limit --limit 100/sec --limit-burst 50
-A INPUT -p icmp -m limit --limit 3/min -j LOG
-A INPUT -m limit --limit 2/day --limit-burst 3 -m comment --comment \"rarely\"
-A INPUT -p udp -m limit --limit 10000/s -m udp --sport 9
-A LOGGED -p udp -m udp --sport 3001 -j LOG --log-prefix \"udp 3001: \" --log-level debug
[3:132] -A LOGGED -p udp -m udp --sport 3002 -j LOG --log-prefix \"all options \" --log-level 1 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
-A LOGGED -j LOG --log-level alert
-A LOGGED -p udp -m udp --sport 3003 -j LOG --log-level emerg --log-tcp-sequence --log-tcp-options
-A LOGGED -p udp -m udp --sport 3003 -j DROP
-A LOGGED -j LOG --log-level info --log-ip-options
-A LOGGED -j LOG --log-level 5 --log-uid --log-prefix x
-A LOGGED -j LOG --log-level warning --log-prefix \"twenty-nine characters long..\"
-A LOGGED -j LOG --log-level crit
-A LOGGED -j LOG --log-level error --log-prefix \" \"
-A LOGGED -j RETURN
-A OUTPUT -p udp -m udp --dport 3002 -j LOG --log-uid --log-prefix \"out \"
-A OUTPUT -p icmp -m limit --limit 1/hour --limit-burst 1 -j LOG --log-level notice
COMMIT
";

fn log_limit_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    let c1 = &p.c1;
    vec![
        (c1.udp(HOST1, 53).sport(3001), Pass),
        (c1.udp(HOST1, 53).sport(3002), Pass),
        (c1.udp(HOST1, 53).sport(3003), Drop),
        (c1.udp(HOST1, 53).sport(3004), Pass),
        (c1.ping(HOST1).src(C1_ALT), Pass),
        (c1.ping(HOST1).src(C1_ALT), Pass),
        (c1.ping(HOST1).src(C1_ALT), Drop),
        (c1.ping(HOST1), Pass),
        (c1.ping(HOST1), Pass),
        (c1.udp(HOST1, 53), Pass),
    ]
}

/// Sends each probe once (every packet counts) and checks its verdict.
fn probe(lab: &Lab, probes: &[(Flow, Verdict)]) {
    for (flow, want) in probes {
        let wait = if *want == Pass { PASS_WAIT } else { DROP_WAIT };
        lab.expect_once(flow, *want, wait);
    }
}

/// Flushes every chain and opens the policies (user chains stay, empty: restoring replaces
/// them).
fn flush(lab: &Lab, host: &Ns) {
    lab.ipt_lines(
        host,
        "-F
         -P INPUT ACCEPT
         -P FORWARD ACCEPT
         -P OUTPUT ACCEPT",
    );
}

/// Which counts a round trip can compare once traffic has flowed.
#[derive(Clone, Copy, PartialEq)]
enum Counts {
    /// Every packet is a probe's: compare them all.
    Exact,
    /// A SYN-ACK dropped on its way out is sent again, seconds later: compare none.
    Masked,
}

/// `[packets:bytes]` → `[*:*]`.
fn mask_counts(text: &str) -> String {
    text.lines()
        .map(|line| match (line.find('['), line.find(']')) {
            (Some(open), Some(close)) if open < close => {
                format!("{}[*:*]{}\n", &line[..open], &line[close + 1..])
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// restore → save → flush → restore of what was saved → save: the same text and the same
/// verdicts before and after.
fn round_trip(
    fw: Fw,
    rules: &str,
    probes: fn(&Pair) -> Vec<(Flow, Verdict)>,
    counts: Counts,
) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host) = (&pair.lab, &pair.host);
    let mut t = Transcript::new(lab);
    let after_traffic = |text: String| match counts {
        Counts::Exact => text,
        Counts::Masked => mask_counts(&text),
    };
    lab.serve(host, &PORTS);
    let probes = probes(&pair);
    lab.restore_ok(host, "--counters", rules);
    let saved = lab.save(host, "-c").expect_ok().stdout;
    t.text("save -c", strip_save_comments(&saved));
    t.text("save", lab.saved(host, ""));
    t.text("-S", lab.rules(host));
    probe(lab, &probes);
    t.text(
        "save -c after traffic",
        after_traffic(lab.saved(host, "--counters")),
    );

    flush(lab, host);
    let flushed = lab.rules(host);
    assert!(
        !flushed.contains("-A "),
        "[{}] flushed:\n{flushed}",
        lab.fw.label()
    );
    t.text("-S after flushing", flushed);
    for (flow, _) in &probes {
        lab.expect_once(flow, Pass, PASS_WAIT);
    }

    lab.restore_ok(host, "-c", &saved);
    assert_eq!(
        after_traffic(lab.saved(host, "-c")),
        after_traffic(strip_save_comments(&saved)),
        "[{}] save after restoring what save printed",
        lab.fw.label()
    );
    probe(lab, &probes);
    t.text(
        "save -c after the same traffic again",
        after_traffic(lab.saved(host, "-c")),
    );
    t.finish(lab)
}

fn round_trip_ports(fw: Fw) -> Transcript {
    round_trip(fw, PORTS_RULES, ports_probes, Counts::Masked)
}

fn round_trip_addresses_interfaces(fw: Fw) -> Transcript {
    round_trip(fw, ADDRESS_RULES, address_probes, Counts::Masked)
}

fn round_trip_user_chains(fw: Fw) -> Transcript {
    round_trip(fw, USER_CHAIN_RULES, user_chain_probes, Counts::Masked)
}

fn round_trip_counters(fw: Fw) -> Transcript {
    round_trip(fw, COUNTER_RULES, counter_probes, Counts::Exact)
}

fn round_trip_extension_matches(fw: Fw) -> Transcript {
    round_trip(
        fw,
        EXTENSION_MATCH_RULES,
        extension_match_probes,
        Counts::Masked,
    )
}

fn round_trip_reject(fw: Fw) -> Transcript {
    round_trip(fw, REJECT_RULES, reject_probes, Counts::Masked)
}

fn round_trip_log_limit_counters(fw: Fw) -> Transcript {
    round_trip(fw, LOG_LIMIT_RULES, log_limit_probes, Counts::Exact)
}

/// The rule set the failing restores find; `base_probes` tells it apart from an empty one and
/// from anything the failing files would have loaded.
const BASE_RULES: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:WEB - [0:0]
-A INPUT -p tcp -m tcp --dport 80 -j WEB
-A INPUT -p tcp -m tcp --dport 22 -j DROP
-A WEB -s 198.18.2.1/32 -j DROP
COMMIT
";

fn base_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.tcp(HOST1, 80), Pass),
        (p.c2.tcp(HOST2, 80), Drop),
        (p.c1.tcp(HOST1, 22), Drop),
        (p.c1.tcp(HOST1, 81), Pass),
        (p.c1.ping(HOST1), Pass),
    ]
}

/// What every failing file starts with: applied, it would drop everything above.
const HARMFUL: &str = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 81 -j DROP\n";

/// Restores that fail at various lines, each from the start of [`HARMFUL`] (or not), with
/// their flags.
fn failing_files() -> Vec<(&'static str, &'static str, String)> {
    let harmful = |rest: &str| format!("{HARMFUL}{rest}");
    vec![
        (
            "unknown option",
            "",
            harmful("-A INPUT -p icmp -j DROP\n-A INPUT --bogus\nCOMMIT\n"),
        ),
        ("unknown chain", "", harmful("-A NOPE -j DROP\nCOMMIT\n")),
        (
            "unknown target",
            "",
            harmful("-A INPUT -j NOWHERE\nCOMMIT\n"),
        ),
        (
            "bad address",
            "",
            harmful("-A INPUT -s 300.1.1.1 -j DROP\nCOMMIT\n"),
        ),
        (
            "rule not found",
            "",
            harmful("-D INPUT -s 198.18.9.9/32 -j ACCEPT\nCOMMIT\n"),
        ),
        (
            "index too big",
            "",
            harmful("-I INPUT 99 -j ACCEPT\nCOMMIT\n"),
        ),
        (
            "jump to a base chain",
            "",
            harmful("-A INPUT -j OUTPUT\nCOMMIT\n"),
        ),
        (
            "-t in a rule",
            "",
            harmful("-A INPUT -t filter -j DROP\nCOMMIT\n"),
        ),
        ("missing COMMIT", "", harmful("-A INPUT -p icmp -j DROP\n")),
        ("COMMIT without newline", "", harmful("COMMIT")),
        ("COMMIT with a blank", "", harmful("COMMIT \n")),
        ("blank line of spaces", "", harmful("  \nCOMMIT\n")),
        (
            "bad policy",
            "",
            "*filter\n-A INPUT -j DROP\n:INPUT BOGUS [0:0]\nCOMMIT\n".into(),
        ),
        (
            "policy of a user chain",
            "",
            harmful(":FOO ACCEPT [0:0]\nCOMMIT\n"),
        ),
        (
            "chain twice",
            "",
            harmful(":FOO - [0:0]\n:FOO - [0:0]\nCOMMIT\n"),
        ),
        (
            "chain name too long",
            "",
            harmful(":abcdefghijabcdefghijabcdefghi - [0:0]\nCOMMIT\n"),
        ),
        ("no policy", "", harmful(":FOO\nCOMMIT\n")),
        (
            "policy counters missing",
            "-c",
            harmful(":OUTPUT DROP\nCOMMIT\n"),
        ),
        (
            "counters not numeric",
            "-c",
            harmful("[1:x] -A INPUT -j DROP\nCOMMIT\n"),
        ),
        (
            "counters unclosed",
            "",
            harmful("[12 -A INPUT -j DROP\nCOMMIT\n"),
        ),
        (
            "unknown table",
            "",
            "*bogus\n-A INPUT -j DROP\nCOMMIT\n".into(),
        ),
        ("table name missing", "", "*\nCOMMIT\n".into()),
        ("rule outside a table", "", "-A INPUT -j DROP\n".into()),
        ("COMMIT outside a table", "", "COMMIT\n".into()),
        ("table in a table", "", harmful("*filter\nCOMMIT\n")),
        (
            "second table fails",
            "--noflush",
            format!("*filter\nCOMMIT\n{HARMFUL}-A INPUT -j NOWHERE\nCOMMIT\n"),
        ),
    ]
}

/// Every failing restore leaves the running rule set (checked with -S and packets) as it was,
/// with iptables-restore's message and exit code.
fn errors_change_nothing(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host) = (&pair.lab, &pair.host);
    let mut t = Transcript::new(lab);
    lab.serve(host, &PORTS);
    let probes = base_probes(&pair);
    lab.restore_ok(host, "", BASE_RULES);
    let before = lab.rules(host);
    probe(lab, &probes);
    for (name, args, input) in failing_files() {
        let out = lab.restore(host, args, &input);
        assert_ne!(out.code, Some(0), "[{}] {name}: {out}", lab.fw.label());
        t.text(
            &format!("{name}: exit code, stdout, stderr"),
            format!(
                "{:?}\n{}{}",
                out.code,
                out.stdout,
                normalize_tool_output(&lab.fw, "restore", &out.stderr)
            ),
        );
        assert_eq!(
            lab.rules(host),
            before,
            "[{}] {name} changed the rule set",
            lab.fw.label()
        );
    }
    probe(lab, &probes);

    // iptables-legacy refuses this at COMMIT (the kernel checks the match), pcn-iptables at the
    // rule: the line number differs, the rest does not.
    let out = lab.restore(
        host,
        "",
        &format!("{HARMFUL}-A INPUT -p udp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"),
    );
    assert_eq!(out.code, Some(1), "[{}] {out}", lab.fw.label());
    assert!(out.stderr.ends_with(" failed\n"), "{out}");
    assert_eq!(lab.rules(host), before, "[{}] changed", lab.fw.label());

    // Tables before the failing one stay committed.
    let out = lab.restore(
        host,
        "",
        "*filter\n-A INPUT -p tcp -m tcp --dport 81 -j DROP\nCOMMIT\n\
         *filter\n-A INPUT -j NOWHERE\nCOMMIT\n",
    );
    t.text(
        "first table committed: stderr",
        normalize_tool_output(&lab.fw, "restore", &out.stderr),
    );
    t.text("first table committed: -S", lab.rules(host));
    lab.expect_once(&pair.c1.tcp(HOST1, 81), Drop, DROP_WAIT);
    lab.expect_once(&pair.c1.tcp(HOST1, 80), Pass, PASS_WAIT);
    t.finish(lab)
}

/// `--test` parses (and compiles) without changing anything; `-v` echoes comments, flushes and
/// rules as iptables-restore does (not with `-n`).
fn test_and_verbose(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host) = (&pair.lab, &pair.host);
    let mut t = Transcript::new(lab);
    lab.serve(host, &PORTS);
    let probes = base_probes(&pair);
    lab.restore_ok(host, "", BASE_RULES);
    let before = lab.rules(host);

    let out = lab.restore_ok(host, "--test", USER_CHAIN_RULES);
    t.text("--test: stdout", out.stdout);
    assert_eq!(lab.rules(host), before, "[{}] --test", lab.fw.label());
    let out = lab.restore(
        host,
        "-t",
        &format!("{HARMFUL}-A INPUT -j NOWHERE\nCOMMIT\n"),
    );
    t.text(
        "--test of a bad file",
        format!(
            "{:?}\n{}",
            out.code,
            normalize_tool_output(&lab.fw, "restore", &out.stderr)
        ),
    );
    assert_eq!(lab.rules(host), before, "[{}] -t", lab.fw.label());
    probe(lab, &probes);

    let out = lab.restore_ok(host, "-v", &format!("# comment\n{USER_CHAIN_RULES}"));
    t.text("-v: stdout", out.stdout);
    let out = lab.restore_ok(host, "-v --noflush", &format!("# comment\n{PORTS_RULES}"));
    t.text("-v -n: stdout", out.stdout);
    t.text("-S after -v -n", lab.rules(host));
    let out = lab.restore_ok(
        host,
        "-v",
        "*filter\n-S\n-A INPUT -s 198.18.9.9/32 -j DROP\n-L INPUT -n\n-C INPUT -s 198.18.9.9/32 -j DROP\nCOMMIT\n",
    );
    t.text("-v with listing commands: stdout", out.stdout);
    t.finish(lab)
}

/// `--noflush` appends to the running rule set, flushes the user chains the file names, keeps
/// the counters of the rules it keeps.
fn noflush_appends(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host, c1, c2) = (&pair.lab, &pair.host, &pair.c1, &pair.c2);
    let mut t = Transcript::new(lab);
    lab.serve(host, &PORTS);
    lab.restore_ok(host, "", BASE_RULES);
    lab.expect_once(&c1.tcp(HOST1, 22), Drop, DROP_WAIT);
    lab.restore_ok(
        host,
        "-n -c",
        "*filter\n:WEB - [0:0]\n:NEW - [0:0]\n[5:500] -A WEB -s 198.18.1.1/32 -j DROP\n\
         -A INPUT -p tcp -m tcp --dport 443 -j NEW\n-A NEW -j DROP\nCOMMIT\n",
    );
    t.text("save -c", lab.saved(host, "-c"));
    for (flow, want) in [
        (c1.tcp(HOST1, 80), Drop),
        (c2.tcp(HOST2, 80), Pass),
        (c1.tcp(HOST1, 22), Drop),
        (c1.tcp(HOST1, 443), Drop),
        (c1.tcp(HOST1, 81), Pass),
    ] {
        let wait = if want == Pass { PASS_WAIT } else { DROP_WAIT };
        lab.expect_once(&flow, want, wait);
    }
    lab.restore_ok(host, "--noflush", "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n");
    t.text("-S after a policy alone", lab.rules(host));
    t.finish(lab)
}

/// 16,384 rules in INPUT from one restore, only the last matching the traffic; pcn-iptables
/// refuses one more with a clear message, changing nothing.
fn scale_16384_rules(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host, c1, c2) = (&pair.lab, &pair.host, &pair.c1, &pair.c2);
    let mut t = Transcript::new(lab);
    lab.serve(host, &[80, 81]);
    let rules = |n: u32| {
        let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n");
        text += ":OUTPUT ACCEPT [0:0]\n";
        for i in 1..n {
            text += &format!(
                "-A INPUT -s 10.{}.{}.0/24 -p tcp -m tcp --dport {} -j DROP\n",
                i >> 8,
                i & 255,
                1000 + i
            );
        }
        text += &format!("-A INPUT -s {C1}/32 -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n");
        text
    };
    lab.restore_ok(host, "", &rules(16384));
    let listed = lab.rules(host);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("-A INPUT")).count(),
        16384,
        "[{}]",
        lab.fw.label()
    );
    t.text("save", lab.saved(host, ""));
    let probes = [
        (c1.tcp(HOST1, 80), Drop),
        (c1.tcp(HOST1, 81), Pass),
        (c2.tcp(HOST2, 80), Pass),
        (c1.ping(HOST1), Pass),
    ];
    probe(lab, &probes);
    // What only pcn-iptables refuses stays out of the transcript compared with iptables-legacy.
    let t = t.finish(lab);
    if lab.fw.is_pcn() {
        for args in ["", "--test"] {
            let out = lab.restore(host, args, &rules(16385));
            assert_eq!(out.code, Some(1), "{out}");
            assert!(
                out.stderr.contains(
                    "chain INPUT has 16385 rules; pcn-iptables supports at most 16384 per chain"
                ) && out.stderr.ends_with(": line 16390 failed\n"),
                "{out}"
            );
            assert_eq!(
                lab.rules(host),
                listed,
                "a refused restore changed the rules"
            );
        }
        probe(lab, &probes);
    }
    t
}

/// Tables in one file: mangle, filter, nat and raw with chains and policies (filter with
/// rules), as Docker, kube-proxy and libvirt leave them.
const SEVERAL_TABLES: &str = "\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j DROP
-A INPUT -s 198.18.2.0/24 -p udp -j DROP
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
";

/// `save` text with the policy counters of the tables other than filter masked: netfilter's
/// mangle, nat and raw chains count the packets that flow (the namespaces' own too),
/// pcn-iptables' mangle and raw do not yet (and nat's count first packets only).
fn mask_other_counts(save: &str) -> String {
    let mut other = false;
    let mut out = String::new();
    for line in save.lines() {
        if let Some(table) = line.strip_prefix('*') {
            other = table != "filter";
        }
        match line.rsplit_once(" [") {
            Some((chain, _)) if other && line.starts_with(':') => {
                out += &format!("{chain} [-]\n");
            }
            _ => out += &format!("{line}\n"),
        }
    }
    out
}

fn several_tables_probes(p: &Pair) -> Vec<(Flow, Verdict)> {
    vec![
        (p.c1.tcp(HOST1, 22), Drop),
        (p.c1.tcp(HOST1, 80), Pass),
        (p.c2.udp(HOST2, 53), Drop),
        (p.c1.udp(HOST1, 53), Pass),
        (p.c1.ping(HOST1), Pass),
    ]
}

/// Several tables in one file, each committed at its COMMIT; iptables-save prints the tables
/// loaded, the newest first; `--noflush` and `-T` on the other tables. What pcn-iptables
/// refuses (a CT option it does not have) changes nothing: not the stored tables, not the
/// verdicts.
fn several_tables(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host) = (&pair.lab, &pair.host);
    let mut t = Transcript::new(lab);
    lab.serve(host, &[22, 53, 80]);
    lab.restore_ok(host, "", SEVERAL_TABLES);
    let saved = |args: &str| mask_other_counts(&lab.saved(host, args));
    t.text("save", saved(""));
    t.text("-t nat -S", lab.ipt_ok(host, "-t nat -S").stdout);
    t.text("-t mangle -L", lab.ipt_ok(host, "-t mangle -L -n").stdout);
    lab.restore_ok(
        host,
        "--noflush",
        "*nat\n:LIBVIRT_PRT - [0:0]\n:DOCKER - [0:0]\nCOMMIT\n*raw\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
    );
    t.text("save after --noflush", saved(""));
    lab.restore_ok(
        host,
        "-T mangle",
        "*mangle\n:X - [0:0]\nCOMMIT\n*nat\nCOMMIT\n",
    );
    t.text("save after -T mangle", saved(""));
    t.text("save -t nat", saved("-t nat"));
    lab.restore_ok(host, "", "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
    t.text("save after nat flushed", saved("-c"));
    let probes = several_tables_probes(&pair);
    probe(lab, &probes);
    // What only pcn-iptables refuses stays out of the transcript compared with iptables-legacy.
    let t = t.finish(lab);
    if lab.fw.is_pcn() {
        let saved = lab.saved(host, "-c");
        let listed = lab.listing(host);
        // A CT option pcn-iptables does not have fails at its line, from a file and from the
        // command line, and changes nothing.
        let out = lab.restore(
            host,
            "",
            "*raw\n-A PREROUTING -j ACCEPT\n-A OUTPUT -j CT --zone 1\nCOMMIT\n",
        );
        assert_eq!(out.code, Some(2), "{out}");
        assert_eq!(
            normalize_tool_output(&lab.fw, "restore", &out.stderr),
            "iptables-restore v1.8.9 (legacy): -j CT --zone is not supported by pcn-iptables\n\
             Error occurred at line: 3\nTry `iptables-restore -h' or 'iptables-restore --help' \
             for more information.\n",
            "{out}"
        );
        let out = lab.ipt(host, "-t raw -A OUTPUT -j CT --helper ftp");
        assert_eq!(out.code, Some(2), "{out}");
        assert!(
            out.stderr
                .contains("-j CT --helper is not supported by pcn-iptables\n"),
            "{out}"
        );
        assert_eq!(
            lab.saved(host, "-c"),
            saved,
            "a refused rule changed the tables"
        );
        assert_eq!(
            lab.listing(host),
            listed,
            "a refused rule changed the counters"
        );
        // The running filter table is the one before: the same verdicts.
        probe(lab, &probes);
        let out = lab.save(host, "-t security");
        assert_eq!(out.code, Some(2), "{out}");
        assert_eq!(
            out.stderr,
            "pcn-iptables-save v1.8.9 (legacy): table `security' is not supported by pcn-iptables\n"
        );
    }
    t
}

/// filter and nat in one file, as iptables-save prints Docker's gateway (MASQUERADE out, a
/// published port) with some of every nat target. The nat rules match none of the probes'
/// packets: nothing is translated on either side.
const FILTER_AND_NAT: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
[3:180] -A INPUT -p tcp -m tcp --dport 22 -j DROP
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
[7:420] -A PREROUTING -d 203.0.113.0/24 -j NETMAP --to 10.1.0.0/24
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
[5:300] -A OUTPUT -d 203.0.113.7/32 -p tcp -j REDIRECT --to-ports 8081
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -s 10.99.0.0/16 -p udp -j SNAT --to-source 198.18.0.1-198.18.0.9:1024-65535 --random-fully
-A INPUT -s 10.98.0.0/16 -j SNAT --to-source 198.18.0.1
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
";

/// filter and nat restored from one file, each table at its COMMIT; save, `-S` and `-L` of
/// nat; then nat files that fail (at a rule, at COMMIT, with `--noflush`, after a filter table
/// that goes in), each leaving nat as it was; `--test` changes nothing.
fn filter_and_nat(fw: Fw) -> Transcript {
    let pair = Pair::new(fw);
    let (lab, host) = (&pair.lab, &pair.host);
    let mut t = Transcript::new(lab);
    lab.serve(host, &PORTS);
    lab.restore_ok(host, "-c", FILTER_AND_NAT);
    let saved = |args: &str| mask_other_counts(&lab.saved(host, args));
    t.text("save -c", saved("-c"));
    t.text("-t nat -S", lab.ipt_ok(host, "-t nat -S").stdout);
    t.text(
        "-t nat -L",
        lab.ipt_ok(host, "-t nat -L -n --line-numbers").stdout,
    );
    let probes = vec![
        (pair.c1.tcp(HOST1, 22), Drop),
        (pair.c1.tcp(HOST1, 80), Pass),
        (pair.c2.udp(HOST2, 53), Pass),
        (pair.c1.ping(HOST1), Pass),
    ];
    probe(lab, &probes);
    let nat = lab.ipt_ok(host, "-t nat -S").stdout;
    let filter = lab.rules(host);
    for (name, args, input) in [
        (
            "ports without -p",
            "",
            "*nat\n-A POSTROUTING -j SNAT --to-source 198.18.0.1:80\nCOMMIT\n",
        ),
        ("DROP in nat", "", "*nat\n-A PREROUTING -j DROP\nCOMMIT\n"),
        (
            "SNAT in PREROUTING",
            "",
            "*nat\n-A PREROUTING -j SNAT --to-source 198.18.0.1\nCOMMIT\n",
        ),
        (
            "MASQUERADE reached from PREROUTING",
            "--noflush",
            "*nat\n-A DOCKER -j MASQUERADE\nCOMMIT\n",
        ),
        (
            "DNAT in filter",
            "--noflush",
            "*filter\n-A INPUT -j DNAT --to-destination 198.18.0.1\nCOMMIT\n",
        ),
        (
            "bad option",
            "",
            "*nat\n-A POSTROUTING -j MASQUERADE --to-source 198.18.0.1\nCOMMIT\n",
        ),
        (
            "several --to-destination",
            "",
            "*nat\n-A OUTPUT -j DNAT --to-destination 1.2.3.4 --to-destination 1.2.3.5\nCOMMIT\n",
        ),
    ] {
        let out = lab.restore(host, args, input);
        assert_ne!(out.code, Some(0), "[{}] {name}: {out}", lab.fw.label());
        t.text(
            &format!("{name}: exit code, stdout, stderr"),
            format!(
                "{:?}\n{}{}",
                out.code,
                out.stdout,
                normalize_tool_output(&lab.fw, "restore", &out.stderr)
            ),
        );
        assert_eq!(
            lab.ipt_ok(host, "-t nat -S").stdout,
            nat,
            "[{}] {name} changed nat",
            lab.fw.label()
        );
        assert_eq!(lab.rules(host), filter, "[{}] {name}", lab.fw.label());
    }
    lab.restore_ok(
        host,
        "--test",
        "*nat\n:PREROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n",
    );
    assert_eq!(lab.ipt_ok(host, "-t nat -S").stdout, nat, "--test");
    // The tables before the failing one stay committed.
    let out = lab.restore(
        host,
        "",
        "*filter\n-A INPUT -p tcp -m tcp --dport 81 -j DROP\nCOMMIT\n\
         *nat\n-A OUTPUT -j MASQUERADE\nCOMMIT\n",
    );
    t.text(
        "filter committed, nat not: stderr",
        normalize_tool_output(&lab.fw, "restore", &out.stderr),
    );
    t.text("filter committed, nat not: save", saved(""));
    lab.expect_once(&pair.c1.tcp(HOST1, 81), Drop, DROP_WAIT);
    lab.expect_once(&pair.c1.tcp(HOST1, 80), Pass, PASS_WAIT);
    // nat flushed by a restore of its own, filter left alone.
    lab.restore_ok(host, "", "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n");
    t.text("nat flushed", lab.ipt_ok(host, "-t nat -S").stdout);
    t.text("filter after nat flushed", lab.rules(host));
    t.finish(lab)
}

/// security, which pcn-iptables does not have: an empty one restores (as iptables-save prints
/// it where it is loaded), anything in it is refused, and save refuses to print it.
#[test]
fn security_table_pcn() {
    let mut lab = Lab::new(Fw::pcn());
    let host = lab.ns("host");
    let empty = "*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 COMMIT\n";
    lab.restore_ok(&host, "", &format!("{empty}{PORTS_RULES}"));
    let before = lab.rules(&host);
    for (input, line) in [
        ("*security\n-A INPUT -j ACCEPT\nCOMMIT\n", 2),
        ("*security\n:INPUT DROP [0:0]\nCOMMIT\n", 2),
        ("*security\n:FOO - [0:0]\nCOMMIT\n", 2),
    ] {
        let out = lab.restore(&host, "", input);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(
            out.stderr.contains("is not supported by pcn-iptables")
                && out
                    .stderr
                    .contains(&format!("Error occurred at line: {line}\n")),
            "{out}"
        );
        assert_eq!(lab.rules(&host), before);
    }
    let out = lab.ipt(&host, "-t security -L");
    assert_eq!(out.code, Some(2), "{out}");
    let out = lab.save(&host, "-t bogus");
    assert_eq!(out.code, Some(1), "{out}");
}

/// The save text, messages and exit codes of the tools' own flags, against iptables-legacy's.
#[test]
fn flags_diff_pcn() {
    let mut lab = Lab::new(Fw::pcn());
    let host = lab.ns("host");
    let mut reference = Lab::new(Fw::legacy());
    let ref_host = reference.ns("reference");
    lab.restore_ok(&host, "-c", COUNTER_RULES);
    reference.restore_ok(&ref_host, "-c", COUNTER_RULES);
    let mut problems = Vec::new();
    let cases: [(&str, &str); 29] = [
        ("save", ""),
        ("save", "-c"),
        ("save", "--counters --table=filter"),
        ("save", "-t filter -c -M /bin/true"),
        ("save", "-t bogus"),
        ("save", "-h"),
        ("save", "--bogus"),
        ("save", "-t"),
        ("save", "--table"),
        ("save", "extra"),
        ("save", "-f /nonexistent/file"),
        ("save", "-b -c"),
        ("restore", "-h"),
        ("restore", "--ver"),
        ("restore", "--t"),
        ("restore", "--counters=1"),
        ("restore", "-T"),
        ("restore", "-x"),
        ("restore", "a b"),
        ("restore", "/nonexistent/file"),
        ("restore", "-W"),
        ("restore", "-W 5"),
        ("restore", "-w -W 100"),
        ("restore", "-W 1000000 -w"),
        ("restore", "--wait=abc"),
        ("restore", "-w file"),
        ("restore", "-b"),
        ("restore", "-T nat"),
        ("restore", "-ctn -v"),
    ];
    for (tool, args) in cases {
        let run = |lab: &Lab, ns: &Ns| {
            let out = match tool {
                "save" => lab.save(ns, args),
                _ => lab.restore(ns, args, COUNTER_RULES),
            };
            format!(
                "{:?}\n{}{}",
                out.code,
                normalize_tool_output(&lab.fw, tool, &strip_save_comments(&out.stdout)),
                normalize_tool_output(&lab.fw, tool, &out.stderr)
            )
        };
        let (got, want) = (run(&lab, &host), run(&reference, &ref_host));
        if got != want {
            problems.push(format!("{tool} {args}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The version is the tool's own, after iptables' (which scripts parse).
    for (tool, out) in [
        ("save", lab.save(&host, "-V")),
        ("restore", lab.restore(&host, "-V", "")),
    ] {
        assert!(
            out.success()
                && out
                    .stdout
                    .starts_with(&format!("pcn-iptables-{tool} v1.8.9 (")),
            "{out}"
        );
    }
}
