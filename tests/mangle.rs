//! The mangle table's chains on a packet's way, in netfilter's order: PREROUTING before the
//! routing decision, INPUT and FORWARD before filter's, OUTPUT before filter's, POSTROUTING
//! last. Marks set there reach filter's rules and the socket; its DROPs, DROP policies, user
//! chains and RETURNs decide as filter's do; every chain a packet passes counts it, by a rule or
//! by its policy, on both firewalls alike.

use std::time::Duration;

use pcn_iptables_tests::datagrams::{datagrams, marks, receiver};
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_udp;
use pcn_iptables_tests::whoami::{Whoami, tcp_ask};
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Pair, Routed, scenarios};

scenarios!(
    marks_on_every_hook,
    a_router_mangles_what_it_forwards,
    header_rewrites_reach_the_receiver,
    a_router_clamps_mss,
    the_mss_option_matches
);

/// The packet counts of the policies of table `table`'s base chains, in listing order.
fn policy_counts(lab: &Lab, ns: &Ns, table: &str) -> Vec<u64> {
    lab.ipt_ok(ns, &format!("-t {table} -L -v -x -n"))
        .stdout
        .lines()
        .filter_map(|l| l.split_once("(policy ")?.1.split_whitespace().nth(1))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// A datagram to 5000 is marked 0x10 in PREROUTING, 0x4000 ORed in on mangle INPUT (by its
/// mark), and accepted by filter's INPUT by the mark both set; one to 5001 is dropped in
/// mangle INPUT; one to 5002 passes unmarked. From the host itself through lo, a datagram to
/// 5003 is marked 0x99 in OUTPUT and 0x100 ORed in on POSTROUTING, then, met again on lo's
/// way in, marked 0x7 in PREROUTING. Every chain counts what it saw.
fn marks_on_every_hook(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    host.ip("link set lo up");
    lab.ipt_lines(
        &host,
        "-t mangle -A PREROUTING -p udp --dport 5000 -j MARK --set-mark 0x10
         -t mangle -A PREROUTING -i lo -p udp --dport 5003 -j MARK --set-mark 0x7
         -t mangle -A INPUT -m mark --mark 0x10 -j MARK --or-mark 0x4000
         -t mangle -A INPUT -p udp --dport 5001 -j DROP
         -t mangle -A OUTPUT -o lo -p udp --dport 5003 -j MARK --set-mark 0x99
         -t mangle -A POSTROUTING -o lo -m mark --mark 0x99 -j MARK --or-mark 0x100
         -A INPUT -m mark --mark 0x4010 -j ACCEPT
         -A OUTPUT -m mark --mark 0x99 -j ACCEPT",
    );
    let socks: Vec<_> = (5000..5004).map(|p| receiver(&host, p)).collect();
    for port in 5000..5003 {
        send_udp(&c1, HOST1, port, 1, Duration::ZERO, true);
    }
    send_udp(&host, "127.0.0.1", 5003, 1, Duration::ZERO, true);
    let got: Vec<Vec<u32>> = socks.iter().map(marks).collect();
    assert_eq!(got, vec![vec![0x4010], vec![], vec![0], vec![0x7]]);
    assert_eq!(lab.counts(&host, "PREROUTING -t mangle"), vec![1, 1]);
    assert_eq!(lab.counts(&host, "INPUT -t mangle"), vec![1, 1]);
    assert_eq!(lab.counts(&host, "OUTPUT -t mangle"), vec![1]);
    assert_eq!(lab.counts(&host, "POSTROUTING -t mangle"), vec![1]);
    assert_eq!(lab.counts(&host, "INPUT"), vec![1]);
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![1]);
    // PREROUTING, INPUT (less the drop), FORWARD, OUTPUT, POSTROUTING.
    assert_eq!(policy_counts(&lab, &host, "mangle"), vec![4, 3, 0, 1, 1]);
    assert_eq!(policy_counts(&lab, &host, "filter"), vec![2, 0, 0]);
}

/// A router whose mangle FORWARD drops by policy: TCP goes through a user chain that drops
/// port 81 and returns the rest, then is accepted; UDP meets the policy. POSTROUTING marks
/// what leaves to the server. filter's FORWARD sees only what mangle let through.
fn a_router_mangles_what_it_forwards(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    let _srv = Whoami::start(&server, &[80, 81], false);
    lab.serve(&server, &[53]);
    lab.ipt_lines(
        &router,
        "-t mangle -N CHECK
         -t mangle -A CHECK -p tcp --dport 81 -j DROP
         -t mangle -A CHECK -j RETURN
         -t mangle -A FORWARD -p tcp -j CHECK
         -t mangle -A FORWARD -p tcp -j ACCEPT
         -t mangle -P FORWARD DROP
         -t mangle -A POSTROUTING -o eth1 -p tcp --dport 80 -j MARK --set-mark 1
         -A FORWARD -p tcp --dport 80 -j ACCEPT",
    );
    let wait = Duration::from_secs(2);
    let short = Duration::from_millis(500);
    let ok = tcp_ask(&client, SERVER, 80, None, wait);
    assert!(ok.is_ok(), "port 80 through the router: {ok:?}");
    let dropped = tcp_ask(&client, SERVER, 81, None, short);
    assert!(dropped.is_err(), "port 81 got through: {dropped:?}");
    lab.expect(&client.udp(SERVER, 53), Drop);
    lab.check();
    let check = lab.counts(&router, "CHECK -t mangle");
    assert_eq!(check[0], 1, "the SYN to 81, once");
    let forward = lab.counts(&router, "FORWARD -t mangle");
    assert_eq!(
        forward[0],
        forward[1] + 1,
        "all TCP, all but 81's SYN accepted"
    );
    let filter = lab.counts(&router, "FORWARD");
    let marked = lab.counts(&router, "POSTROUTING -t mangle");
    assert!(marked[0] >= 3, "the client's packets to 80: {marked:?}");
    assert_eq!(filter[0], marked[0], "filter saw what mangle marked");
    // FORWARD's policy dropped the datagram; POSTROUTING's counted every packet forwarded
    // (its MARK rule goes on).
    let policies = policy_counts(&lab, &router, "mangle");
    assert_eq!(policies[2], 1, "{policies:?}");
    assert_eq!(policies[4], forward[1], "{policies:?}");
}

/// TTL, TOS and DSCP on a router, as the server's socket receives them: PREROUTING sets a
/// TTL of 30 (29 once forwarded) and raises another by 5, which filter's FORWARD matches as
/// ip_forward() leaves it (64 + 5 - 1); FORWARD sets a TOS, POSTROUTING a DSCP class and the
/// TTL the server sees (100). The router's own datagrams get theirs on OUTPUT.
fn header_rewrites_reach_the_receiver(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    lab.ipt_lines(
        &router,
        "-t mangle -A PREROUTING -p udp --dport 7000 -j TTL --ttl-set 30
         -t mangle -A PREROUTING -p udp --dport 7001 -j TTL --ttl-inc 5
         -t mangle -A FORWARD -p udp --dport 7002 -j TOS --set-tos 0x10/0x3f
         -t mangle -A FORWARD -p udp --dport 7002 -m tos --tos 0x10/0x3f -j TOS --or-tos 0x80
         -t mangle -A POSTROUTING -p udp --dport 7003 -j DSCP --set-dscp-class EF
         -t mangle -A POSTROUTING -p udp --dport 7003 -j TTL --ttl-set 100
         -t mangle -A OUTPUT -p udp --dport 7004 -j TOS --set-tos 0x04
         -t mangle -A OUTPUT -p udp --dport 7004 -j TTL --ttl-dec 60
         -A FORWARD -p udp -m ttl --ttl-eq 68 -j ACCEPT
         -A FORWARD -p udp -m ttl --ttl-eq 63 -j ACCEPT",
    );
    let socks: Vec<_> = (7000..7005).map(|p| receiver(&server, p)).collect();
    for port in 7000..7004 {
        send_udp(&client, SERVER, port, 1, Duration::ZERO, true);
    }
    send_udp(&router, SERVER, 7004, 1, Duration::ZERO, true);
    let got: Vec<Vec<(u8, u8)>> = socks
        .iter()
        .map(|s| datagrams(s).iter().map(|d| (d.tos, d.ttl)).collect())
        .collect();
    let want = [(0, 29), (0, 68), (0x90, 63), (0xb8, 100), (0x04, 4)];
    assert_eq!(got, want.map(|w| vec![w]));
    assert_eq!(lab.counts(&router, "FORWARD"), vec![1, 2]);
    assert_eq!(lab.counts(&router, "FORWARD -t mangle"), vec![1, 1]);
}

/// The MSS the server's side of each connection from `from` to `server:port` settled on
/// (TCP_MAXSEG: the least of the two SYNs' MSS options, less the timestamp option), or `None`
/// when the connection did not open.
fn server_mss(from: &Ns, server: &Ns, port: u16) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let listener = server.in_ns(|| std::net::TcpListener::bind(("0.0.0.0", port)).unwrap());
    let to = std::net::SocketAddr::from((pcn_iptables_tests::lab::ip4(SERVER), port));
    let client = from.in_ns(|| std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)));
    client.ok()?;
    let (conn, _) = listener.accept().ok()?;
    let mut mss: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt on a live socket into a local of the size given.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mut mss as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
    Some(mss)
}

/// A router whose link to the server has an MTU of 1280 clamps the MSS of the connections it
/// forwards to the path (1240; the server's side keeps 1228 of it beside timestamps), sets
/// another's to 1000, and its own connection's on POSTROUTING to 900; a connection it does
/// not touch keeps 1460 (1448).
fn a_router_clamps_mss(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    router.ip("link set eth1 mtu 1280");
    lab.ipt_lines(
        &router,
        "-t mangle -A FORWARD -p tcp --dport 80 --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
         -t mangle -A FORWARD -p tcp --dport 81 --syn -j TCPMSS --set-mss 1000
         -t mangle -A POSTROUTING -p tcp --dport 82 --syn -j TCPMSS --set-mss 900",
    );
    assert_eq!(server_mss(&client, &server, 80), Some(1228));
    assert_eq!(server_mss(&client, &server, 81), Some(988));
    assert_eq!(server_mss(&router, &server, 82), Some(888));
    assert_eq!(server_mss(&client, &server, 83), Some(1448));
    assert_eq!(lab.counts(&router, "FORWARD -t mangle"), vec![1, 1]);
    assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), vec![1]);
}

/// `-m tcpmss`: the clients' SYNs offer an MSS of 1460 (c2's route to the host 536); the host
/// resets connections whose SYN's MSS is in a rule's range, and drops the packets of 2225
/// that carry no MSS option at all (everything after the SYN), so that its request never
/// arrives.
fn the_mss_option_matches(fw: Fw) {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    c2.ip("route change 198.18.2.0/24 dev eth0 advmss 536");
    let _srv = Whoami::start(&host, &[2222, 2223, 2224, 2225], false);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp --dport 2222 -m tcpmss --mss 1400:1460 -j REJECT --reject-with tcp-reset
         -A INPUT -p tcp --dport 2223 -m tcpmss --mss 1:1000 -j REJECT --reject-with tcp-reset
         -A INPUT -p tcp --dport 2224 -m tcpmss --mss 500:600 -j REJECT --reject-with tcp-reset
         -A INPUT -p tcp --dport 2225 -m tcpmss ! --mss 0:65535 -j DROP",
    );
    let (wait, short) = (Duration::from_secs(2), Duration::from_millis(500));
    let reset = tcp_ask(&c1, HOST1, 2222, None, short);
    assert!(reset.is_err(), "MSS 1460 in 1400:1460: {reset:?}");
    let ok = tcp_ask(&c1, HOST1, 2223, None, wait);
    assert!(ok.is_ok(), "MSS 1460 not in 1:1000: {ok:?}");
    let small = tcp_ask(&c2, HOST2, 2224, None, short);
    assert!(small.is_err(), "MSS 536 in 500:600: {small:?}");
    let stalled = tcp_ask(&c1, HOST1, 2225, None, short);
    assert!(stalled.is_err(), "no MSS option after the SYN: {stalled:?}");
    let counts = lab.counts(&host, "INPUT");
    assert_eq!(counts[..3], [1, 0, 1], "{counts:?}");
    assert!(counts[3] >= 1, "{counts:?}");
}
