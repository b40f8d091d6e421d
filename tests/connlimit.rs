//! `-m connlimit`: the connections of an address or network that met the rule, counted as
//! netfilter counts them; one closed no longer counts.

use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::whoami::{Whoami, tcp_ask, tcp_open};
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(connlimit_limits_connections);

/// Port 2222 takes two connections per /24 of sources (the client's two addresses count
/// together), resets the third, takes another network's, and takes a new one once one is
/// closed. Port 2223 accepts one connection per destination address (`--connlimit-upto 1
/// --connlimit-daddr`) and drops the rest. A change to the ruleset starts the counts over.
fn connlimit_limits_connections(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let _srv = Whoami::start(&host, &[2222, 2223], false);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp --syn --dport 2222 -m connlimit --connlimit-above 2 --connlimit-mask 24 -j REJECT --reject-with tcp-reset
         -A INPUT -p tcp --syn --dport 2223 -m connlimit --connlimit-upto 1 --connlimit-daddr -j ACCEPT
         -A INPUT -p tcp --syn --dport 2223 -j DROP",
    );
    let (wait, short) = (Duration::from_secs(2), Duration::from_millis(500));
    let first = tcp_open(&c1, HOST1, 2222, Some((C1, 0)), wait);
    let second = tcp_open(&c1, HOST1, 2222, Some((C1_ALT, 0)), wait);
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    let third = tcp_ask(&c1, HOST1, 2222, Some((C1, 0)), short);
    assert!(third.is_err(), "a third from the /24: {third:?}");
    let other = tcp_ask(&c2, HOST2, 2222, None, wait);
    assert!(other.is_ok(), "another network: {other:?}");
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let again = tcp_open(&c1, HOST1, 2222, Some((C1, 0)), wait);
    assert!(again.is_ok(), "once one is closed: {again:?}");
    let to_host1 = tcp_open(&c1, HOST1, 2223, None, wait);
    assert!(to_host1.is_ok(), "{to_host1:?}");
    let more = tcp_ask(&c2, HOST1, 2223, None, short);
    assert!(more.is_err(), "a second to the same address: {more:?}");
    let to_alt = tcp_ask(&c1, HOST1_ALT, 2223, None, wait);
    assert!(to_alt.is_ok(), "another destination address: {to_alt:?}");
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 2, 1]);
    // iptables-legacy makes new match instances on every change: the counts start over (the
    // /24 has two open connections, and a third now gets in).
    lab.ipt_ok(&host, "-A OUTPUT -p udp --dport 9 -j DROP");
    let fresh = tcp_open(&c1, HOST1, 2222, Some((C1_ALT, 0)), wait);
    assert!(fresh.is_ok(), "after a change: {fresh:?}");
    if lab.fw.is_pcn() {
        // Each generation has lists of its own, the one before is left with its slot: after
        // one more change, the running generation has none yet, the one before the list of
        // the connection made since.
        lab.ipt_ok(&host, "-D OUTPUT -p udp --dport 9 -j DROP");
        let mut counts = lists(&host);
        counts.sort();
        assert_eq!(counts, vec![0, 1]);
    }
}

/// How many lists each generation with connlimit rules holds, in slot order.
fn lists(host: &pcn_iptables_tests::Ns) -> Vec<usize> {
    let pin = host.state_dir().join("CONNLIMIT");
    let dump = |args: &[&str]| host.exec(args).expect_ok().stdout;
    let outer = dump(&["bpftool", "map", "dump", "pinned", pin.to_str().unwrap()]);
    // "key: 00 00 00 00  value: ID ..." (the inner map's id, little-endian bytes).
    outer
        .lines()
        .filter_map(|l| l.split_once("value:"))
        .map(|(_, v)| {
            let b: Vec<u32> = v
                .split_whitespace()
                .map(|x| u32::from_str_radix(x, 16).unwrap())
                .collect();
            let id = (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24).to_string();
            dump(&["bpftool", "map", "dump", "id", &id])
                .lines()
                .filter(|l| l.starts_with("key:"))
                .count()
        })
        .collect()
}
