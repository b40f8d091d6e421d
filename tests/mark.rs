//! `-m mark` and `-j MARK`: the mark the rules set is the skb's, which the socket a datagram
//! reaches reads (SO_RCVMARK), and which later rules match; kube-proxy's path marks a
//! connection to a service for masquerade in nat PREROUTING, lets it through FORWARD by its
//! mark, and masquerades it in nat POSTROUTING. CONNMARK keeps a mark with a connection, which
//! every later packet of it gets back.

use std::os::fd::OwnedFd;
use std::time::Duration;

use pcn_iptables_tests::datagrams::{marks, receiver};
use pcn_iptables_tests::lab::ip4;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_udp;
use pcn_iptables_tests::whoami::{Whoami, tcp_ask};
use pcn_iptables_tests::{Fw, Pair, Routed, scenarios};

scenarios!(
    marks_reach_the_socket,
    kube_proxy_marks_for_masquerade,
    connmark_keeps_a_connections_mark
);

/// On INPUT, a datagram to port 5000 gets mark 0x10, then (matched by it) 0x4000 ORed in; one
/// to 5001 gets 7 XORed in; one to 5002 none, and `! --mark 0` lets it be. On OUTPUT through
/// lo, a datagram to 5003 gets 0x99, which the socket reads on the way back in.
fn marks_reach_the_socket(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    host.ip("link set lo up");
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 5000 -j MARK --set-mark 0x10
         -A INPUT -p udp --dport 5000 -m mark --mark 0x10 -j MARK --or-mark 0x4000
         -A INPUT -p udp --dport 5001 -j MARK --xor-mark 7
         -A INPUT -m mark --mark 0x4010 -j ACCEPT
         -A INPUT -p udp --dport 5002 -m mark ! --mark 0 -j DROP
         -A OUTPUT -o lo -p udp --dport 5003 -j MARK --set-mark 0x99",
    );
    let socks: Vec<OwnedFd> = (5000..5004).map(|p| receiver(&host, p)).collect();
    for port in 5000..5003 {
        send_udp(&c1, HOST1, port, 1, Duration::ZERO, true);
    }
    send_udp(&host, "127.0.0.1", 5003, 1, Duration::ZERO, true);
    let got: Vec<Vec<u32>> = socks.iter().map(marks).collect();
    assert_eq!(got, vec![vec![0x4010], vec![7], vec![0], vec![0x99]]);
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 1, 1, 0]);
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![1]);
}

/// kube-proxy's rules for a service 198.18.3.2:80 backed by the server's port 80, FORWARD
/// dropping all else: the client's connection is marked in nat PREROUTING, accepted in
/// FORWARD by its mark, and masqueraded (the server sees the router's address). A client
/// port that skips the mark chain is not let through.
fn kube_proxy_marks_for_masquerade(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    let _srv = Whoami::start(&server, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -N KUBE-MARK-MASQ
             -t nat -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
             -t nat -N KUBE-POSTROUTING
             -t nat -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
             -t nat -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
             -t nat -A KUBE-POSTROUTING -j MASQUERADE
             -t nat -A POSTROUTING -j KUBE-POSTROUTING
             -t nat -N KUBE-SVC
             -t nat -A KUBE-SVC -p tcp --sport 40000 -j KUBE-MARK-MASQ
             -t nat -A KUBE-SVC -p tcp -j DNAT --to-destination {SERVER}:80
             -t nat -A PREROUTING -d {ROUTER_C} -p tcp --dport 80 -j KUBE-SVC
             -P FORWARD DROP
             -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
             -A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT"
        ),
    );
    let wait = Duration::from_secs(2);
    let marked = tcp_ask(&client, ROUTER_C, 80, Some(("", 40000)), wait);
    assert_eq!(
        marked.map(|r| *r.peer.ip()),
        Ok(ip4(ROUTER_S)),
        "the marked connection is masqueraded"
    );
    let unmarked = tcp_ask(
        &client,
        ROUTER_C,
        80,
        Some(("", 40001)),
        Duration::from_millis(500),
    );
    assert!(
        unmarked.is_err(),
        "an unmarked connection got through: {unmarked:?}"
    );
    assert_eq!(
        lab.counts(&router, "FORWARD")[1],
        1,
        "the first packet, by its mark"
    );
}

/// The first datagram of a connection to port 6000 marks the connection 0x7 (its mark was
/// 0); every datagram then gets the connection's mark back (restore): three from one socket
/// and one from another reach the socket with mark 7, and only the first of each connection
/// met the rule that sets it. `--save-mark` on port 6001 keeps the packet's mark 0x30 (under
/// its mask 0xf0) in the connection, where `-m connmark` finds it on the next datagram.
fn connmark_keeps_a_connections_mark(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 6000 -m connmark --mark 0 -j CONNMARK --set-mark 0x7
         -A INPUT -p udp --dport 6000 -j CONNMARK --restore-mark
         -A INPUT -p udp --dport 6001 -m connmark --mark 0x30/0xf0 -j ACCEPT
         -A INPUT -p udp --dport 6001 -j MARK --set-mark 0x3f
         -A INPUT -p udp --dport 6001 -j CONNMARK --save-mark --mask 0xf0",
    );
    let socks = [receiver(&host, 6000), receiver(&host, 6001)];
    send_udp(&c1, HOST1, 6000, 3, Duration::from_millis(20), true);
    send_udp(&c1, HOST1, 6000, 1, Duration::ZERO, true);
    send_udp(&c1, HOST1, 6001, 2, Duration::from_millis(20), true);
    let got: Vec<Vec<u32>> = socks.iter().map(marks).collect();
    assert_eq!(got, vec![vec![7, 7, 7, 7], vec![0x3f, 0]]);
    assert_eq!(lab.counts(&host, "INPUT"), vec![2, 4, 1, 1, 1]);
    // `pcn-iptables --conntrack` shows the marks, as `conntrack -L` does.
    if lab.fw.is_pcn() {
        let out = host.exec(&[lab.fw.bin_str(), "--conntrack"]);
        let rows = |port: &str, mark: &str| {
            out.stdout
                .lines()
                .filter(|l| l.contains(&format!("┆ {port} ")) && l.contains(&format!("┆ {mark} ")))
                .count()
        };
        assert_eq!(
            (rows("6000", "7"), rows("6001", "48")),
            (2, 1),
            "{}",
            out.stdout
        );
    }
}
