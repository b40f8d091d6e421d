//! The raw table: its chains run before the packet's connection is looked up; `-j NOTRACK`
//! and `-j CT --notrack` leave a packet untracked (`--ctstate UNTRACKED` after), DROP there
//! drops before anything else, marks set there reach filter; user chains and policies work
//! as elsewhere.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{Flow, Proto, send_udp};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(notrack_exempts_from_tracking, a_drop_policy_in_raw);

const NOW: Duration = Duration::ZERO;

/// Datagrams to 9 are untracked by a rule in a user chain of raw PREROUTING, to 10 dropped
/// there, to 12 marked there; from the host, datagrams to 7 are untracked in raw OUTPUT.
/// filter sees them UNTRACKED, NEW and marked as netfilter does.
fn notrack_exempts_from_tracking(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-t raw -N skip
         -t raw -A skip -p udp --dport 9 -j NOTRACK
         -t raw -A skip -j RETURN
         -t raw -A PREROUTING -j skip
         -t raw -A PREROUTING -p udp --dport 10 -j DROP
         -t raw -A PREROUTING -p udp --dport 12 -j MARK --set-mark 0x7
         -t raw -A OUTPUT -p udp --dport 7 -j CT --notrack
         -A INPUT -p udp -m conntrack --ctstate UNTRACKED -j ACCEPT
         -A INPUT -p udp -m mark --mark 0x7 -m conntrack --ctstate NEW -j ACCEPT
         -A INPUT -p udp -m conntrack --ctstate NEW -j ACCEPT
         -A OUTPUT -p udp -m state --state UNTRACKED -j ACCEPT
         -A OUTPUT -p udp -m state --state NEW -j ACCEPT",
    );
    send_udp(&c1, HOST1, 9, 3, NOW, true);
    send_udp(&c1, HOST1, 10, 2, NOW, true);
    send_udp(&c1, HOST1, 11, 1, NOW, true);
    send_udp(&c1, HOST1, 12, 4, NOW, true);
    send_udp(&host, C1, 7, 2, NOW, true);
    send_udp(&host, C1, 8, 1, NOW, true);
    assert_eq!(lab.counts(&host, "INPUT"), vec![3, 4, 1]);
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![2, 1]);
    assert_eq!(lab.counts(&host, "skip -t raw")[0], 3);
    assert_eq!(lab.counts(&host, "PREROUTING -t raw")[1..], [2, 4]);
    assert_eq!(lab.counts(&host, "OUTPUT -t raw"), vec![2]);
}

/// raw OUTPUT's DROP policy drops what the host sends; PREROUTING's ACCEPT lets in, both
/// counting what they saw.
fn a_drop_policy_in_raw(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-t raw -P OUTPUT DROP");
    let ping = Flow::new(&c1, Proto::Icmp, HOST1);
    assert!(
        !ping.attempt(Duration::from_millis(500)),
        "the reply is dropped"
    );
    let listing = lab.ipt_ok(&host, "-t raw -L -v -x -n").stdout;
    let policy = |chain: &str| -> u64 {
        let line = listing
            .lines()
            .find(|l| l.starts_with(&format!("Chain {chain} ")))
            .unwrap();
        line.split_whitespace().nth(4).unwrap().parse().unwrap()
    };
    assert!(
        policy("PREROUTING") >= 1 && policy("OUTPUT") >= 1,
        "{listing}"
    );
    lab.ipt_ok(&host, "-t raw -P OUTPUT ACCEPT");
    assert!(ping.attempt(Duration::from_millis(2000)), "ACCEPT again");
}
