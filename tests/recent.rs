//! `-m recent`: an SSH limiter admits three new connections a minute from one address and
//! drops the fourth, its list outlives changes to other rules and goes with the last rule
//! that names it; a list takes the mask of the rule that made it, `--remove` and `!` do what
//! xt_recent's do. The lists' contents are compared with /proc/net/xt_recent.

use pcn_iptables_tests::fw::workspace_dir;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Lab, Ns, Pair, Pass, scenarios};

scenarios!(
    ssh_limiter_drops_the_fourth_connection,
    lists_mask_remove_and_invert,
    ufw_limit_rejects_the_sixth_connection
);

/// List `name` of `ns`: each address with its TTL and how many times it holds, from
/// /proc/net/xt_recent (netfilter) or `pcn-iptables --recent` (same format).
fn list(lab: &Lab, ns: &Ns, name: &str) -> Vec<(String, u8, usize)> {
    let out = if lab.fw.is_pcn() {
        ns.exec(&[lab.fw.bin_str(), "--recent", name])
    } else {
        ns.exec(&["cat", &format!("/proc/net/xt_recent/{name}")])
    };
    assert!(out.success(), "reading list {name}: {}", out.stderr);
    let mut entries: Vec<(String, u8, usize)> = out
        .stdout
        .lines()
        .map(|l| {
            let field = |key: &str| {
                l.split(key)
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or_else(|| panic!("{key} in {l:?}"))
                    .to_string()
            };
            let stamps = l.split("oldest_pkt: ").nth(1).unwrap().split(',').count();
            (field("src="), field("ttl: ").parse().unwrap(), stamps)
        })
        .collect();
    entries.sort();
    entries
}

/// A list whose name no rule holds any more is gone.
fn gone(lab: &Lab, ns: &Ns, name: &str) -> bool {
    let out = if lab.fw.is_pcn() {
        ns.exec(&[lab.fw.bin_str(), "--recent", name])
    } else {
        ns.exec(&["cat", &format!("/proc/net/xt_recent/{name}")])
    };
    !out.success()
}

const SSH_LIMITER: &str = "\
    -A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH
    -A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP";

/// Three connections from c1 pass, a rule added elsewhere keeps the list, the fourth is
/// dropped and c2 still gets in. c1's address holds five times (four sets, the update that
/// matched). Once no rule names the list it is gone, and new rules start an empty one.
fn ssh_limiter_drops_the_fourth_connection(fw: pcn_iptables_tests::Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[22]);
    lab.ipt_lines(&host, SSH_LIMITER);
    for _ in 0..3 {
        lab.expect(&c1.tcp(HOST1, 22), Pass);
    }
    lab.ipt_ok(&host, "-I INPUT -p udp --dport 7 -j ACCEPT");
    lab.expect(&c1.tcp(HOST1, 22), Drop);
    lab.expect(&c2.tcp(HOST2, 22), Pass);
    assert_eq!(lab.counts(&host, "INPUT"), vec![0, 5, 1]);
    assert_eq!(
        list(&lab, &host, "SSH"),
        vec![(C1.to_string(), 64, 5), (C2.to_string(), 64, 1)]
    );
    lab.ipt_ok(&host, "-F INPUT");
    assert!(gone(&lab, &host, "SSH"), "the list outlived its rules");
    lab.ipt_lines(&host, SSH_LIMITER);
    assert_eq!(list(&lab, &host, "SSH"), vec![]);
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.check();
}

/// The first rule naming list U gives it its /24 mask, so c1's two addresses are one entry:
/// the third datagram to port 9 finds it twice and is dropped. `--remove` on port 10 drops
/// a datagram while the entry is there (and takes it away); `! --rcheck` on port 11 drops
/// what the list does not hold (c2).
fn lists_mask_remove_and_invert(fw: pcn_iptables_tests::Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    lab.serve(&host, &[9, 10, 11]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 10 -m recent --name U --mask 255.255.255.0 --remove -j DROP
         -A INPUT -p udp --dport 11 -m recent --name U ! --rcheck -j DROP
         -A INPUT -p udp --dport 9 -m recent --name U --rcheck --hitcount 2 -j DROP
         -A INPUT -p udp --dport 9 -m recent --name U --set",
    );
    lab.expect(&c1.udp(HOST1, 9), Pass);
    lab.expect(&c1.udp(HOST1, 9).src(C1_ALT), Pass);
    assert_eq!(list(&lab, &host, "U"), vec![("198.18.1.0".into(), 64, 2)]);
    lab.expect(&c1.udp(HOST1, 9), Drop);
    lab.expect(&c1.udp(HOST1, 11), Pass);
    lab.expect(&c2.udp(HOST2, 11), Drop);
    lab.expect(&c1.udp(HOST1, 10).src(C1_ALT), Drop);
    assert_eq!(list(&lab, &host, "U"), vec![]);
    lab.expect(&c1.udp(HOST1, 9), Pass);
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 1, 3]);
    lab.check();
}

/// ufw 0.36 started as ufw-init starts it (its rule files, `ufw limit 22/tcp` in user.rules,
/// deny incoming): five connections to port 22 in 30 s get in, the sixth is rejected (LOG
/// and REJECT in ufw-user-limit); the list holds c1's address seven times (six sets, the
/// update that matched).
fn ufw_limit_rejects_the_sixth_connection(fw: pcn_iptables_tests::Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[22]);
    let dir = workspace_dir().join("tests/corpus/restore/ufw");
    for file in [
        "init",
        "track-output",
        "misc-chains",
        "before",
        "after",
        "user-chains",
        "user",
        "links",
    ] {
        let rules = std::fs::read_to_string(dir.join(format!("{file}.rules"))).unwrap();
        lab.restore_ok(&host, "-n", &rules);
    }
    for _ in 0..5 {
        lab.expect(&c1.tcp(HOST1, 22), Pass);
    }
    lab.expect(&c1.tcp(HOST1, 22), Drop);
    assert_eq!(lab.counts(&host, "ufw-user-limit"), vec![1, 1]);
    assert_eq!(lab.counts(&host, "ufw-user-limit-accept"), vec![5]);
    assert_eq!(list(&lab, &host, "DEFAULT"), vec![(C1.to_string(), 64, 7)]);
    lab.check();
}
