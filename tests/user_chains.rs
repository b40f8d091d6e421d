//! User-defined chains with real packets: jumps and RETURN, gotos, deep nesting, RETURN in a
//! base chain, rules without a target, and changes to chains that are in use.
//!
//! Each scenario has three tests: `legacy` and `pcn` check the verdicts against what netfilter
//! decides for these rules; `diff_pcn` runs iptables-legacy and pcn-iptables side by side in
//! sibling namespace sets and demands identical verdicts and byte-identical `-L -v -x -n`
//! listings (the counters of every rule, user chains included, and of the policies).

use std::time::Duration;

use pcn_iptables_tests::listing::normalize_stderr;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, Transcript};

pcn_iptables_tests::differential_scenarios!(
    jump_and_return,
    goto_returns_to_the_caller_of_the_caller,
    nested_chains,
    return_in_a_base_chain,
    chains_changed_in_use,
);

/// One attempt each, so that the counters count exactly the packets sent.
const PASS_WAIT: Duration = Duration::from_millis(1500);
const DROP_WAIT: Duration = Duration::from_millis(400);

/// `-j CHAIN` runs the chain and comes back after the rule that jumped; `RETURN` comes back
/// early; a rule without a target counts and goes on.
fn jump_and_return(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000, 7001, 7002, 7003]);
    lab.ipt_lines(
        &host,
        &format!(
            "-N udp_in
             -N icmp_in
             -A INPUT -p udp -j udp_in
             -A INPUT -p udp --dport 7001 -j DROP
             -A INPUT -p icmp -j icmp_in
             -A udp_in -p udp --dport 7000 -j DROP
             -A udp_in -p udp --dport 7002 -j ACCEPT
             -A udp_in -j RETURN
             -A udp_in -p udp -j DROP
             -A icmp_in -s {C1_ALT} -j DROP
             -A icmp_in"
        ),
    );
    lab.expect_once(&c1.udp(HOST1, 7000), Drop, DROP_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7001), Drop, DROP_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7002), Pass, PASS_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7003), Pass, PASS_WAIT);
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    lab.expect_once(&c1.ping(HOST1).src(C1_ALT), Drop, DROP_WAIT);
    lab.expect_once(&c2.ping(HOST2), Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.text("-S", lab.rules(&host));
    t.finish(&lab)
}

/// `-g CHAIN` does not come back: when the chain ends, the packet goes back to where the chain
/// that went there was called from, or to the policy from a base chain.
fn goto_returns_to_the_caller_of_the_caller(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[7000, 7001]);
    lab.ipt_lines(
        &host,
        &format!(
            "-N g
             -N a
             -N b
             -A INPUT -p udp -g g
             -A INPUT -p udp -j DROP
             -A INPUT -p icmp -j a
             -A INPUT -p icmp -s {C1_ALT} -j DROP
             -A g -p udp --dport 7000 -j DROP
             -A a -g b
             -A a -j DROP
             -A b -s {C2} -j DROP"
        ),
    );
    // udp: g drops 7000; 7001 falls off g, whose caller is INPUT itself: the policy accepts.
    lab.expect_once(&c1.udp(HOST1, 7000), Drop, DROP_WAIT);
    lab.expect_once(&c1.udp(HOST1, 7001), Pass, PASS_WAIT);
    // icmp: INPUT -j a, a -g b; b falls off back to INPUT after its -j a (never a's DROP).
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    lab.expect_once(&c1.ping(HOST1).src(C1_ALT), Drop, DROP_WAIT);
    lab.expect_once(&c2.ping(HOST2), Drop, DROP_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

/// Six levels of jumps, with verdicts, RETURNs and a goto at different depths.
fn nested_chains(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let ports = [7000, 7001, 7002, 7003, 7004, 7005, 7006];
    lab.serve(&host, &ports);
    lab.ipt_lines(
        &host,
        "-N l1
         -N l2
         -N l3
         -N l4
         -N l5
         -N l6
         -N accept
         -A INPUT -p udp -j l1
         -A INPUT -p udp --dport 7006 -j DROP
         -A l1 -p udp --dport 7001 -j DROP
         -A l1 -j l2
         -A l1 -p udp --dport 7002 -j DROP
         -A l2 -j l3
         -A l3 -j l4
         -A l3 -p udp --dport 7006 -g accept
         -A l4 -j l5
         -A l5 -j l6
         -A l5 -p udp --dport 7005 -j DROP
         -A l6 -p udp --dport 7003 -j DROP
         -A l6 -p udp --dport 7004 -j RETURN
         -A l6 -p udp --dport 7004 -j DROP
         -A l6
         -A accept -j ACCEPT",
    );
    let want = [Pass, Drop, Drop, Drop, Pass, Drop, Pass];
    for (port, want) in ports.into_iter().zip(want) {
        let wait = if want == Pass { PASS_WAIT } else { DROP_WAIT };
        lab.expect_once(&c1.udp(HOST1, port), want, wait);
    }
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

/// RETURN in a base chain ends it with the policy's verdict.
fn return_in_a_base_chain(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_lines(
        &host,
        &format!(
            "-N u
             -A INPUT -p icmp -s {C2} -j RETURN
             -A INPUT -p icmp -j u
             -A u -j ACCEPT
             -A OUTPUT -p icmp -d {C1} -j RETURN
             -A OUTPUT -p icmp -j ACCEPT
             -P INPUT DROP"
        ),
    );
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    lab.expect_once(&c2.ping(HOST2), Drop, DROP_WAIT);
    lab.expect_once(&c1.ping(HOST2), Pass, PASS_WAIT);
    t.text("-L -v -x -n", lab.listing(&host));
    t.finish(&lab)
}

/// Renaming, flushing and deleting chains that packets go through; a loop that would close is
/// refused and changes nothing.
fn chains_changed_in_use(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_lines(
        &host,
        &format!(
            "-N blk
             -A INPUT -p icmp -j blk
             -A blk -s {C1} -j DROP"
        ),
    );
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    lab.expect_once(&c2.ping(HOST2), Pass, PASS_WAIT);
    lab.ipt_ok(&host, "-E blk blocked");
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    t.text("-L -v -x -n after -E", lab.listing(&host));

    lab.ipt_lines(
        &host,
        "-N a
         -N b
         -A a -j b
         -A b -j a",
    );
    let refused = lab.ipt(&host, "-A blocked -j a");
    assert!(
        !refused.success(),
        "[{}] a loop was accepted",
        lab.fw.label()
    );
    let stderr = normalize_stderr(&lab.fw, &refused.stderr);
    t.text("loop refused", format!("{:?} {stderr}", refused.code));
    lab.expect_once(&c1.ping(HOST1), Drop, DROP_WAIT);
    lab.expect_once(&c2.ping(HOST2), Pass, PASS_WAIT);

    lab.ipt_ok(&host, "-F blocked");
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    lab.ipt_lines(
        &host,
        "-D INPUT 1
         -F
         -X",
    );
    lab.expect_once(&c1.ping(HOST1), Pass, PASS_WAIT);
    t.text("-S at the end", lab.rules(&host));
    t.finish(&lab)
}
