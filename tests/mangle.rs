//! The mangle table's chains on a packet's way, in netfilter's order: PREROUTING before the
//! routing decision, INPUT and FORWARD before filter's, OUTPUT before filter's, POSTROUTING
//! last. Marks set there reach filter's rules and the socket; its DROPs, DROP policies, user
//! chains and RETURNs decide as filter's do; every chain a packet passes counts it, by a rule or
//! by its policy, on both firewalls alike.

use std::time::Duration;

use pcn_iptables_tests::datagrams::{datagrams, marks, receiver};
use pcn_iptables_tests::gateway::{csum_errors, tx_checksum_off};
use pcn_iptables_tests::kernel::fib_lookup_takes_mark;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::{self, ipv4_packet, mac, send_raw, send_udp};
use pcn_iptables_tests::whoami::{Whoami, tcp_ask};
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Pair, Routed, scenarios};
use std::net::{Ipv4Addr, SocketAddrV4};

scenarios!(
    marks_on_every_hook,
    a_router_mangles_what_it_forwards,
    header_rewrites_reach_the_receiver,
    a_router_clamps_mss,
    a_syn_without_mss_gets_one,
    syns_as_devices_deliver_them_get_mss,
    the_mss_option_matches,
    output_marks_and_tos_route_again,
    a_connection_mark_routes_a_connection_again,
    prerouting_marks_and_tos_route_forwarded_packets
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
    server_mss_at(from, server, SERVER, port)
}

/// [`server_mss`] for a connection to `dst`, an address of `server`.
fn server_mss_at(from: &Ns, server: &Ns, dst: &str, port: u16) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let listener = server.in_ns(|| std::net::TcpListener::bind(("0.0.0.0", port)).unwrap());
    let to = std::net::SocketAddr::from((pcn_iptables_tests::lab::ip4(dst), port));
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

/// A TCP segment from `src` to `dst`: ports, a SYN's flags, `options` (a multiple of 4 bytes)
/// and `payload`, its data offset `doff` words if given (else what the options make), and a
/// valid checksum.
fn segment(src: &str, dst: &str, ports: (u16, u16), options: &[u8], payload: &[u8]) -> Vec<u8> {
    segment_doff(
        src,
        dst,
        ports,
        options,
        payload,
        (20 + options.len()) as u8 / 4,
    )
}

fn segment_doff(
    src: &str,
    dst: &str,
    (sport, dport): (u16, u16),
    options: &[u8],
    payload: &[u8],
    doff: u8,
) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&0x1357_9bdfu32.to_be_bytes());
    seg[12] = doff << 4;
    seg[13] = 0x02;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    seg.extend_from_slice(options);
    seg.extend_from_slice(payload);
    let sum = !ones_sum(src, dst, &seg) as u16;
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

/// The folded one's complement sum of TCP segment `seg`'s pseudo-header and bytes (0xffff
/// for a segment whose checksum is right).
fn ones_sum(src: &str, dst: &str, seg: &[u8]) -> u32 {
    let (s, d) = (
        pcn_iptables_tests::lab::ip4(src).octets(),
        pcn_iptables_tests::lab::ip4(dst).octets(),
    );
    let mut bytes = [
        &s[..],
        &d[..],
        &[0, 6],
        &(seg.len() as u16).to_be_bytes()[..],
    ]
    .concat();
    bytes.extend_from_slice(seg);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// What xt_TCPMSS makes of SYN `seg` without an MSS option: an option of `mss` in front of
/// its options, the data offset one word more; the checksum left out (0).
fn with_mss(seg: &[u8], mss: u16) -> Vec<u8> {
    let mut out = seg[..20].to_vec();
    out[12] += 0x10;
    out[16..18].copy_from_slice(&[0, 0]);
    out.extend_from_slice(&[2, 4]);
    out.extend_from_slice(&mss.to_be_bytes());
    out.extend_from_slice(&seg[20..]);
    out
}

/// A raw socket of `ns` that sees every TCP packet the namespace receives (before TCP checks
/// them).
struct Capture(std::os::fd::OwnedFd);

impl Capture {
    fn open(ns: &Ns) -> Capture {
        Capture(ns.in_ns(|| {
            // SAFETY: plain socket(2); owned at once.
            let fd = unsafe {
                libc::socket(
                    libc::AF_INET,
                    libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    libc::IPPROTO_TCP,
                )
            };
            assert!(
                fd >= 0,
                "raw tcp socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: fd is fresh and ours.
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        }))
    }

    /// The TCP segments received so far, each checked against what its IP header says of
    /// its length.
    fn segments(&self) -> Vec<Vec<u8>> {
        use std::os::fd::AsRawFd;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: recv into a live buffer of the given size.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                return out;
            }
            let p = &buf[..n as usize];
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let tot_len = u16::from_be_bytes([p[2], p[3]]) as usize;
            assert_eq!(tot_len, p.len(), "the IP length of {p:?}");
            out.push(p[ihl..].to_vec());
        }
    }
}

/// One crafted SYN: who sends it, from and to which address, and what of it arrives: its
/// segment with the checksum left out (0), or nothing.
struct Syn<'a> {
    from: &'a Ns,
    src: &'static str,
    dst: &'static str,
    sport: u16,
    seg: Vec<u8>,
    want: Option<Vec<u8>>,
}

/// SYNs without an MSS option, crafted on raw sockets, through `-j TCPMSS` rules of the router:
/// forwarded (PREROUTING, FORWARD, POSTROUTING), to the router (INPUT) and from it (OUTPUT,
/// POSTROUTING). Each arrives as xt_TCPMSS leaves it: an option of the rule's MSS, or 536 if
/// that is more, in front of the options it had, the data offset, the IP length and both
/// checksums right; a SYN with data, or whose header has no room left, unchanged; a SYN whose
/// header runs past the packet's end dropped (without the rule, it goes through).
fn a_syn_without_mss_gets_one(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    router.ip("link set eth1 mtu 552");
    lab.ipt_lines(
        &router,
        "-t mangle -A PREROUTING -p tcp --dport 90 --syn -j TCPMSS --set-mss 400
         -t mangle -A FORWARD -p tcp --dport 91 --syn -j TCPMSS --set-mss 1000
         -t mangle -A FORWARD -p tcp --dport 92 --syn -j TCPMSS --clamp-mss-to-pmtu
         -t mangle -A FORWARD -p tcp --dport 93 --syn -j TCPMSS --set-mss 300
         -t mangle -A INPUT -p tcp --dport 94 --syn -j TCPMSS --set-mss 1400
         -t mangle -A OUTPUT -p tcp --dport 95 --syn -j TCPMSS --set-mss 700
         -t mangle -A POSTROUTING -p tcp --dport 96 --syn -j TCPMSS --set-mss 200
         -t mangle -A POSTROUTING -p tcp --dport 97 --syn -j TCPMSS --clamp-mss-to-pmtu
         -t mangle -A POSTROUTING -p tcp --dport 98 --syn -j TCPMSS --set-mss 300
         -t raw -A PREROUTING -p tcp --dport 89 --syn -j TCPMSS --set-mss 450
         -t raw -A OUTPUT -p tcp --dport 89 --syn -j TCPMSS --set-mss 460
         -t mangle -A PREROUTING -p tcp --dport 89
         -t mangle -A FORWARD -p tcp --dport 91
         -t mangle -A POSTROUTING -p tcp --dport 95
         -A FORWARD -p tcp --dport 91 -m length --length 44
         -t mangle -A FORWARD -p tcp --dport 91 -m tcpmss --mss 536
         -t mangle -A POSTROUTING -p tcp --dport 96 -m tcpmss --mss 200",
    );
    let (at_server, at_router) = (Capture::open(&server), Capture::open(&router));
    // Options with no MSS among them: 8 bytes, and 40 (a header with no room left).
    let some = [1, 1, 4, 2, 1, 3, 3, 7];
    let full: Vec<u8> = [&[1, 1, 8, 10][..], &[0x11; 8], &some, &[1; 20]].concat();
    let mut syns = Vec::new();
    // An MSS added (`Some`), or the SYN left as it is.
    let mut syn = |from, src, dst, sport, dport, options: &[u8], payload: &[u8], mss| {
        let seg = segment(src, dst, (sport, dport), options, payload);
        let want = Some(match mss {
            Some(mss) => with_mss(&seg, mss),
            None => unchanged(&seg),
        });
        syns.push(Syn {
            from,
            src,
            dst,
            sport,
            seg,
            want,
        });
    };
    syn(&client, CLIENT, SERVER, 3998, 89, &some, &[], Some(450));
    syn(&router, ROUTER_S, SERVER, 3999, 89, &[], &[], Some(460));
    syn(&client, CLIENT, SERVER, 4000, 90, &[], &[], Some(400));
    syn(&client, CLIENT, SERVER, 4001, 90, &some, &[], Some(400));
    syn(&client, CLIENT, SERVER, 4002, 91, &[], &[], Some(536));
    syn(&client, CLIENT, SERVER, 4003, 91, &some, &[], Some(536));
    // eth1's MTU 552 less 40.
    syn(&client, CLIENT, SERVER, 4004, 92, &[], &[], Some(512));
    syn(&client, CLIENT, SERVER, 4005, 93, &[], b"data", None);
    syn(&client, CLIENT, SERVER, 4006, 93, &full, &[], None);
    syn(&client, CLIENT, SERVER, 4007, 96, &some, &[], Some(200));
    syn(&client, CLIENT, ROUTER_C, 4008, 94, &some, &[], Some(536));
    syn(&client, CLIENT, ROUTER_C, 4009, 94, &[], b"x", None);
    syn(&router, ROUTER_S, SERVER, 4010, 95, &[], &[], Some(536));
    syn(&router, ROUTER_S, SERVER, 4011, 96, &some, &[], Some(200));
    syn(&router, ROUTER_S, SERVER, 4012, 97, &some, &[], Some(512));
    syn(&router, ROUTER_S, SERVER, 4013, 96, &[], b"data", None);
    syn(&router, ROUTER_S, SERVER, 4014, 96, &full, &[], None);
    // A data offset of 6 words over a 20-byte header: dropped by the rule, forwarded and
    // local; without one, it arrives (TCP drops it later).
    for (from, src, sport, dport, arrives) in [
        (&client, CLIENT, 4015, 98, false),
        (&router, ROUTER_S, 4016, 98, false),
        (&client, CLIENT, 4017, 99, true),
    ] {
        let seg = segment_doff(src, SERVER, (sport, dport), &[], &[], 6);
        let want = arrives.then(|| unchanged(&seg));
        syns.push(Syn {
            from,
            src,
            dst: SERVER,
            sport,
            seg,
            want,
        });
    }
    for s in &syns {
        send_raw(s.from, s.dst, libc::IPPROTO_TCP as u8, &s.seg);
    }
    let (at_server, at_router) = (at_server.segments(), at_router.segments());
    let mut got = Vec::new();
    for s in &syns {
        let capture = if s.dst == ROUTER_C {
            &at_router
        } else {
            &at_server
        };
        let arrived: Vec<_> = capture
            .iter()
            .filter(|seg| seg[..2] == s.seg[..2])
            .collect();
        for seg in &arrived {
            // A wrong checksum shows as a difference.
            let ok = ones_sum(s.src, s.dst, seg) == 0xffff;
            assert!(ok, "{}: the checksum of {seg:?}", s.sport);
        }
        got.push((
            s.sport,
            arrived.iter().map(|a| unchanged(a)).collect::<Vec<_>>(),
        ));
    }
    let want: Vec<_> = syns
        .iter()
        .map(|s| (s.sport, s.want.iter().cloned().collect()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(csum_errors(&server), 0);
    assert_eq!(csum_errors(&router), 0);
    // `-m tcpmss` after `--set-mss` sees the option added or lowered.
    assert_eq!(
        lab.counts(&router, "FORWARD -t mangle"),
        vec![2, 1, 2, 2, 2]
    );
    assert_eq!(
        lab.counts(&router, "POSTROUTING -t mangle"),
        vec![4, 1, 2, 1, 2]
    );
    // The rules after a TCPMSS rule see the option it added: 4 bytes more (SYNs of 40 and 48
    // bytes), in its chain and after; a later chain's length match too.
    let bytes = |chain: &str| -> Vec<u64> {
        lab.ipt_ok(&router, &format!("-L {chain} -v -x -n"))
            .stdout
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(bytes("PREROUTING -t mangle"), vec![40 + 48, 52]);
    assert_eq!(bytes("FORWARD -t mangle")[3], 44 + 52);
    assert_eq!(bytes("POSTROUTING -t mangle")[3], 44);
    assert_eq!(lab.counts(&router, "FORWARD"), vec![1]);
}

/// `seg` with its checksum left out (0).
fn unchanged(seg: &[u8]) -> Vec<u8> {
    let mut out = seg.to_vec();
    out[16..18].copy_from_slice(&[0, 0]);
    out
}

/// Sends TCP segment `seg` from `src` to `dst` out of `ns`'s eth0 to its peer `peer_mac`,
/// as a frame a device delivers: with `padding` bytes after the IP packet (Ethernet's short
/// frames), and, if `partial`, with its checksum left to the device (CHECKSUM_PARTIAL: the
/// checksum field holds the sum of the pseudo-header only), as a virtual machine's frames
/// come. Through a packet socket with a virtio-net header.
fn send_frame(
    ns: &Ns,
    peer_mac: [u8; 6],
    (src, dst): (&str, &str),
    seg: &[u8],
    partial: bool,
    padding: &[u8],
) {
    let mut seg = seg.to_vec();
    if partial {
        let pseudo = ones_sum(src, dst, &[]) + seg.len() as u32;
        let pseudo = (pseudo & 0xffff) + (pseudo >> 16);
        seg[16..18].copy_from_slice(&(pseudo as u16).to_be_bytes());
    }
    // virtio_net_hdr: NEEDS_CSUM (or nothing), no GSO, the checksum from the TCP header
    // (frame offset 34) into its field (16 on).
    let mut frame = vec![partial as u8, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&34u16.to_le_bytes());
    frame.extend_from_slice(&16u16.to_le_bytes());
    frame.extend_from_slice(&peer_mac);
    frame.extend_from_slice(&mac(ns, "eth0"));
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ipv4_packet(src, dst, 6, &seg));
    frame.extend_from_slice(padding);
    traffic::send_frame(ns, peer_mac, frame, true);
}

/// Forwarded SYNs without an MSS option as devices deliver them. With the checksum left to
/// the device (CHECKSUM_PARTIAL, as a virtual machine sends it): the option added changes
/// only the pseudo-header's length in the checksum field, and the router's device, which
/// does not offload checksums, completes a right one. In frames with Ethernet padding
/// (short frames; here not zeros): the option takes the padding's place, none of which is
/// left. Without the rule, the same arrive unchanged.
fn syns_as_devices_deliver_them_get_mss(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    tx_checksum_off(&router, "eth1");
    lab.ipt_lines(
        &router,
        "-t mangle -A FORWARD -p tcp --dport 90 --syn -j TCPMSS --set-mss 1000",
    );
    let at_server = Capture::open(&server);
    let router_mac = mac(&router, "eth0");
    let some = [1, 1, 4, 2, 1, 3, 3, 7];
    let ends = (CLIENT, SERVER);
    // (segment, partial, padding, MSS added)
    let syns = [
        (
            segment(CLIENT, SERVER, (4100, 90), &[], &[]),
            true,
            &[][..],
            true,
        ),
        (
            segment(CLIENT, SERVER, (4101, 90), &some, &[]),
            true,
            &[],
            true,
        ),
        (
            segment(CLIENT, SERVER, (4102, 91), &some, &[]),
            true,
            &[],
            false,
        ),
        (
            segment(CLIENT, SERVER, (4103, 90), &[], &[]),
            false,
            &[0xee; 6],
            true,
        ),
        (
            segment(CLIENT, SERVER, (4104, 90), &[], &[]),
            false,
            &[0xee; 4],
            true,
        ),
        (
            segment(CLIENT, SERVER, (4105, 90), &[], &[]),
            false,
            &[0xee; 2],
            true,
        ),
        (
            segment(CLIENT, SERVER, (4106, 91), &[], &[]),
            false,
            &[0xee; 6],
            false,
        ),
    ];
    for (seg, partial, padding, _) in &syns {
        send_frame(&client, router_mac, ends, seg, *partial, padding);
    }
    let got = at_server.segments();
    for seg in &got {
        let ok = ones_sum(CLIENT, SERVER, seg) == 0xffff;
        assert!(ok, "the checksum of {seg:?}");
    }
    let got: Vec<_> = got.iter().map(|s| unchanged(s)).collect();
    let want: Vec<_> = syns
        .iter()
        .map(|(seg, _, _, add)| match add {
            true => with_mss(seg, 536),
            false => unchanged(seg),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(csum_errors(&server), 0);
}

/// An address both servers have: the router's main table reaches it through the server
/// (eth1), its table 100 through server2 (eth2).
const BOTH: &str = "198.18.6.1";

/// The Routed topology with `policy_routes`, and whether the firewall under test routes by
/// marks set in mangle OUTPUT (pcn-iptables only where bpf_fib_lookup takes a mark).
/// Adds rules that set a mark where the namespace routes by fwmark: taken where the routing
/// decision can take the mark (`takes`), else each refused (exit 1, naming fwmark), after
/// which `unchanged` checks that nothing changed.
fn add_mark_rules(lab: &Lab, router: &Ns, rules: &[&str], takes: bool, unchanged: impl Fn()) {
    for rule in rules {
        if takes {
            lab.ipt_ok(router, rule);
        } else {
            let out = lab.ipt(router, rule);
            assert_eq!(out.code, Some(1), "{out}");
            assert!(out.stderr.contains("fwmark"), "{out}");
            unchanged();
        }
    }
}

fn policy_routed(fw: Fw) -> (Routed, bool) {
    let marks = !fw.is_pcn() || fib_lookup_takes_mark();
    let r = Routed::new(fw);
    policy_routes(&r.router, &r.server, &r.server2);
    (r, marks)
}

/// `BOTH` on both servers; on the router, fwmark 1 and tos 0x10 select table 100, fwmark 2
/// table 101, where `BOTH` is unreachable.
fn policy_routes(router: &Ns, server: &Ns, server2: &Ns) {
    server.ip(&format!("addr add {BOTH}/32 dev eth0"));
    server2.ip(&format!("addr add {BOTH}/32 dev eth0"));
    router.ip(&format!("route add {BOTH}/32 via {SERVER}"));
    router.ip(&format!("route add {BOTH}/32 via {SERVER2} table 100"));
    router.ip(&format!("route add unreachable {BOTH}/32 table 101"));
    router.ip("rule add fwmark 1 lookup 100");
    router.ip("rule add fwmark 2 lookup 101");
    router.ip("rule add tos 0x10 lookup 100");
    // The next hops' neighbours known, as a busy router has them (see the man page for a
    // packet that waits for one).
    assert!(router.ping(SERVER).attempt(Duration::from_secs(2)));
    assert!(router.ping(SERVER2).attempt(Duration::from_secs(2)));
}

/// mangle OUTPUT routes a local packet again when its rules changed the mark or the TOS
/// (ipt_mangle_out → ip_route_me_harder): with `ip rule fwmark 1 lookup 100` and `tos 0x10
/// lookup 100`, the router's datagrams to 7001 (marked 1) and 7003 (TOS 0x10) go to server2 by
/// eth2, those to 7002 to the server by eth1, and those to 7004 (marked 2, table 101
/// unreachable) nowhere. filter OUTPUT, in the same hook, still sees the first route's device
/// (`-o eth1`, as netfilter's hook state keeps it); mangle and nat POSTROUTING see the new one
/// (MASQUERADE for 7001, so that both a translated and a plain packet go the new way). Each
/// chain counts each packet once.
///
/// pcn-iptables on a kernel whose bpf_fib_lookup takes no mark (before 6.10) refuses the MARK
/// rules while fwmark rules exist: there the datagrams to 7001 and 7004 keep the main route.
fn output_marks_and_tos_route_again(fw: Fw) {
    let pcn = fw.is_pcn();
    let (
        Routed {
            lab,
            router,
            server,
            server2,
            ..
        },
        marks,
    ) = policy_routed(fw);
    let mark_rules = [
        "-t mangle -A OUTPUT -p udp --dport 7001 -j MARK --set-mark 1",
        "-t mangle -A OUTPUT -p udp --dport 7004 -j MARK --set-mark 2",
    ];
    add_mark_rules(&lab, &router, &mark_rules, marks, || ());
    lab.ipt_lines(
        &router,
        "-t mangle -A OUTPUT -p udp --dport 7003 -j TOS --set-tos 0x10
         -A OUTPUT -o eth1 -p udp
         -A OUTPUT -o eth2 -p udp
         -t mangle -A POSTROUTING -o eth1 -p udp
         -t mangle -A POSTROUTING -o eth2 -p udp
         -t nat -A POSTROUTING -o eth2 -p udp --dport 7001 -j MASQUERADE
         -t nat -A POSTROUTING -o eth1 -p udp",
    );
    let ports = 7001..7005;
    let at_server: Vec<_> = ports.clone().map(|p| receiver(&server, p)).collect();
    let at_server2: Vec<_> = ports.clone().map(|p| receiver(&server2, p)).collect();
    for (port, n) in ports.zip([2, 3, 2, 1]) {
        send_udp(&router, BOTH, port, n, Duration::ZERO, true);
    }
    let got = |socks: &[std::os::fd::OwnedFd]| -> Vec<usize> {
        socks.iter().map(|s| datagrams(s).len()).collect()
    };
    if marks {
        assert_eq!(got(&at_server), vec![0, 3, 0, 0]);
        assert_eq!(got(&at_server2), vec![2, 0, 2, 0]);
        assert_eq!(lab.counts(&router, "OUTPUT -t mangle"), vec![2, 1, 2]);
        // The OUTPUT hook's chains see the device of the first route (netfilter's hook state).
        assert_eq!(lab.counts(&router, "OUTPUT"), vec![7, 0]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), vec![3, 4]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t nat"), vec![1, 1]);
    } else {
        assert_eq!(got(&at_server), vec![2, 3, 0, 1]);
        assert_eq!(got(&at_server2), vec![0, 0, 2, 0]);
        assert_eq!(lab.counts(&router, "OUTPUT -t mangle"), vec![2]);
        assert_eq!(lab.counts(&router, "OUTPUT"), vec![8, 0]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), vec![6, 2]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t nat"), vec![0, 3]);
    }
    if pcn && marks {
        // As on an older kernel: refused while fwmark rules exist, accepted without them.
        let args = [
            "env",
            "PCN_IPTABLES_FIB_MARK=off",
            lab.fw.bin_str(),
            "-w",
            "-t",
            "mangle",
            "-A",
            "OUTPUT",
            "-j",
            "MARK",
            "--set-mark",
            "5",
        ];
        let out = router.exec(&args);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("fwmark"), "{out}");
        router.ip("rule del fwmark 1 lookup 100");
        router.ip("rule del fwmark 2 lookup 101");
        router.exec(&args).expect_ok();
    }
    if pcn {
        // bpf_fib_lookup, asked as from lo, answers only where lo forwards: a TOS that tos rules
        // select by is refused there.
        router.sysctl("net.ipv4.conf.lo.forwarding=0");
        let out = lab.ipt(
            &router,
            "-t mangle -A OUTPUT -p udp --dport 7005 -j DSCP --set-dscp 4",
        );
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("lo.forwarding"), "{out}");
    }
}

/// The split-tunnel pattern: the router's own TCP connection to port 80 is marked on its first
/// packet, the mark saved to the connection and restored on every later packet
/// (`CONNMARK --restore-mark`), so the whole connection goes by table 100 to server2 (eth2,
/// masqueraded to eth2's address, whose answers come back by eth2). filter OUTPUT sees the
/// first route's device, POSTROUTING the new one, for every packet.
fn a_connection_mark_routes_a_connection_again(fw: Fw) {
    let (
        Routed {
            lab,
            router,
            server,
            server2,
            ..
        },
        marks,
    ) = policy_routed(fw);
    let rules = "-t mangle -A OUTPUT -j CONNMARK --restore-mark
         -t mangle -A OUTPUT -p tcp --dport 80 -m mark --mark 0 -j MARK --set-mark 1
         -t mangle -A OUTPUT -j CONNMARK --save-mark";
    if !marks {
        let out = lab.ipt(&router, rules.lines().next().unwrap().trim());
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("fwmark"), "{out}");
        return;
    }
    lab.ipt_lines(&router, rules);
    lab.ipt_lines(
        &router,
        "-A OUTPUT -o eth1 -p tcp
         -A OUTPUT -o eth2 -p tcp
         -t mangle -A POSTROUTING -o eth1 -p tcp
         -t mangle -A POSTROUTING -o eth2 -p tcp
         -t nat -A POSTROUTING -o eth2 -j MASQUERADE",
    );
    let _srv = Whoami::start(&server, &[80], false);
    let _srv2 = Whoami::start(&server2, &[80], false);
    let reply = tcp_ask(&router, BOTH, 80, None, Duration::from_secs(3)).expect("an answer");
    assert_eq!(*reply.peer.ip(), ROUTER_S2.parse::<Ipv4Addr>().unwrap());
    assert_eq!(reply.local, SocketAddrV4::new(BOTH.parse().unwrap(), 80));
    assert_eq!(_srv.seen().len(), 0);
    assert_eq!(_srv2.seen().len(), 1);
    // Only the first packet is marked by MARK; every packet is counted once.
    let mangle = lab.counts(&router, "OUTPUT -t mangle");
    assert_eq!(mangle[1], 1, "{mangle:?}");
    let filter = lab.counts(&router, "OUTPUT");
    let post = lab.counts(&router, "POSTROUTING -t mangle");
    assert!(filter[0] >= 2 && filter[1] == 0, "{filter:?}");
    assert_eq!(post, vec![0, filter[0]]);
    assert_eq!(mangle[0], filter[0]);
}

/// The VPN gateway's pattern: the router (two uplinks, eth1 to the server, eth2 to server2)
/// marks in mangle PREROUTING what the client sends and routes it by `ip rule fwmark 1 lookup
/// 100` (table 100's default via server2) or `tos 0x10 lookup 100`. Datagrams to 7001 are
/// marked 1, those to 7003 get TOS 0x10, those to 7002 neither; a TCP connection to port 80 is
/// marked on its first packet, the mark saved to the connection and restored on every later
/// one (`CONNMARK --restore-mark`). The routing decision after PREROUTING takes the mark and
/// the TOS: FORWARD's and POSTROUTING's `-o` see eth2 for 7001, 7003 and the connection,
/// which `-o eth2 -j MASQUERADE` translates (server2 sees the router's eth2 address), and eth1
/// for 7002 (the server sees the client). Each chain counts each packet once. Then the
/// second uplink gets a tunnel's MTU, 1280, which `--clamp-mss-to-pmtu` on FORWARD clamps a
/// marked connection's SYN to; and is renumbered behind the firewall's back, which
/// MASQUERADE follows for the marked and the TOS-routed datagrams.
///
/// pcn-iptables on a kernel whose bpf_fib_lookup takes no mark (before 6.10, or as one with
/// PCN_IPTABLES_FIB_MARK=off) refuses the rules that set a mark in PREROUTING while fwmark
/// rules exist, and changes nothing; the TOS routes there too.
fn prerouting_marks_and_tos_route_forwarded_packets(fw: Fw) {
    const RENUMBERED: &str = "198.18.5.12";
    let pcn = fw.is_pcn();
    let marks = !pcn || fib_lookup_takes_mark();
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    server.ip(&format!("addr add {BOTH}/32 dev eth0"));
    server2.ip(&format!("addr add {BOTH}/32 dev eth0"));
    router.ip(&format!("route add default via {SERVER}"));
    router.ip(&format!("route add default via {SERVER2} table 100"));
    router.ip("rule add fwmark 1 lookup 100");
    router.ip("rule add tos 0x10 lookup 100");
    // The next hops' neighbours known, as a busy router has them (before the rules, which
    // count only the client's packets).
    assert!(router.ping(SERVER).attempt(Duration::from_secs(2)));
    assert!(router.ping(SERVER2).attempt(Duration::from_secs(2)));
    let mark_rules = [
        "-t mangle -A PREROUTING -i eth0 -p tcp -j CONNMARK --restore-mark",
        "-t mangle -A PREROUTING -i eth0 -p tcp --dport 80 -m conntrack --ctstate NEW \
         -j MARK --set-mark 1",
        "-t mangle -A PREROUTING -i eth0 -p udp --dport 7001 -j MARK --set-mark 1",
    ];
    let all_rules = || -> String {
        ["filter", "nat", "mangle", "raw"]
            .map(|table| lab.ipt_ok(&router, &format!("-t {table} -S")).stdout)
            .join("")
    };
    let before = all_rules();
    add_mark_rules(&lab, &router, &mark_rules, marks, || {
        assert_eq!(all_rules(), before, "nothing changed")
    });
    lab.ipt_lines(
        &router,
        "-t mangle -A PREROUTING -i eth0 -p tcp --dport 80 -m conntrack --ctstate NEW \
            -j CONNMARK --save-mark
         -t mangle -A PREROUTING -i eth0 -p udp --dport 7003 -j TOS --set-tos 0x10
         -A FORWARD -i eth0 -o eth1 -p udp
         -A FORWARD -i eth0 -o eth2 -p udp
         -A FORWARD -i eth0 -o eth1 -p tcp
         -A FORWARD -i eth0 -o eth2 -p tcp
         -t mangle -A FORWARD -i eth0 -o eth2
         -t mangle -A FORWARD -o eth2 -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
         -t mangle -A POSTROUTING -o eth1 -p udp
         -t mangle -A POSTROUTING -o eth2 -p udp
         -t nat -A POSTROUTING -o eth2 -j MASQUERADE
         -t nat -A POSTROUTING -o eth1",
    );
    let ports = [80, 7001, 7002, 7003];
    let at_server = Whoami::start(&server, &ports, false);
    let at_server2 = Whoami::start(&server2, &ports, false);
    for (port, n) in [(7001, 2), (7002, 3), (7003, 2)] {
        send_udp(&client, BOTH, port, n, Duration::ZERO, true);
    }
    let reply = tcp_ask(&client, BOTH, 80, None, Duration::from_secs(3)).expect("an answer");
    let udp_peers = |w: &Whoami| -> Vec<(u16, String)> {
        w.seen_of("udp")
            .iter()
            .map(|s| (s.local.port(), s.peer.ip().to_string()))
            .collect()
    };
    let (client_ip, eth2_ip) = (CLIENT.to_string(), ROUTER_S2.to_string());
    let tcp_at_2 = *reply.peer.ip() == ROUTER_S2.parse::<Ipv4Addr>().unwrap();
    let forward = lab.counts(&router, "FORWARD");
    let tcp = forward[2] + forward[3];
    assert!(tcp >= 2, "{forward:?}");
    eprintln!(
        "counts: {forward:?} {:?} {:?} {:?} {:?}",
        lab.counts(&router, "PREROUTING -t mangle"),
        lab.counts(&router, "FORWARD -t mangle"),
        lab.counts(&router, "POSTROUTING -t mangle"),
        lab.counts(&router, "POSTROUTING -t nat")
    );
    if marks {
        assert_eq!(udp_peers(&at_server), vec![(7002, client_ip.clone()); 3]);
        let mut want = vec![(7001, eth2_ip.clone()); 2];
        want.extend(vec![(7003, eth2_ip.clone()); 2]);
        assert_eq!(udp_peers(&at_server2), want);
        assert!(tcp_at_2, "{:?}", reply.peer);
        assert_eq!(at_server.seen_of("tcp").len(), 0);
        assert_eq!(forward, vec![3, 4, 0, tcp]);
        // restore (every TCP packet from eth0), MARK (the SYN), MARK 7001, save, TOS.
        let mangle = lab.counts(&router, "PREROUTING -t mangle");
        assert_eq!(mangle, vec![tcp, 1, 2, 1, 2]);
        assert_eq!(lab.counts(&router, "FORWARD -t mangle"), vec![4 + tcp, 1]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), vec![3, 4]);
        // New connections: 7001, 7003 and the TCP one masqueraded, 7002 by eth1.
        assert_eq!(lab.counts(&router, "POSTROUTING -t nat"), vec![3, 1]);
    } else {
        // No mark: 7001 and the connection go by the main table (eth1), untranslated.
        let mut want = vec![(7001, client_ip.clone()); 2];
        want.extend(vec![(7002, client_ip.clone()); 3]);
        assert_eq!(udp_peers(&at_server), want);
        assert_eq!(udp_peers(&at_server2), vec![(7003, eth2_ip.clone()); 2]);
        assert!(!tcp_at_2, "{:?}", reply.peer);
        assert_eq!(forward, vec![5, 2, tcp, 0]);
        assert_eq!(lab.counts(&router, "PREROUTING -t mangle"), vec![1, 2]);
        assert_eq!(lab.counts(&router, "FORWARD -t mangle"), vec![2, 0]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t mangle"), vec![5, 2]);
        assert_eq!(lab.counts(&router, "POSTROUTING -t nat"), vec![1, 3]);
    }
    // A tunnel's smaller MTU on the second uplink: `--clamp-mss-to-pmtu` clamps a SYN to the
    // route the packet takes (1240; the server's side keeps 1228 of it beside timestamps).
    drop((at_server, at_server2));
    router.ip("link set eth2 mtu 1280");
    let mss = server_mss_at(&client, &server2, BOTH, 80);
    let mss_at_1 = server_mss_at(&client, &server, BOTH, 80);
    match marks {
        true => assert_eq!((mss, mss_at_1), (Some(1228), None)),
        false => assert_eq!((mss, mss_at_1), (None, Some(1448))),
    }
    if marks {
        // eth2 renumbered behind pcn-iptables' back: MASQUERADE takes the address the routing
        // picks on the way the mark or TOS chose (FIB_LOOKUP_SRC, Linux 6.7), as netfilter
        // takes the device's address then, not the one listed at the last command.
        router.sysctl("net.ipv4.conf.eth2.promote_secondaries=1");
        router.ip(&format!("addr add {RENUMBERED}/24 dev eth2"));
        router.ip(&format!("addr del {ROUTER_S2}/24 dev eth2"));
        let at_server2 = Whoami::start(&server2, &[7001, 7003], false);
        send_udp(&client, BOTH, 7001, 1, Duration::ZERO, true);
        send_udp(&client, BOTH, 7003, 1, Duration::ZERO, true);
        let new = RENUMBERED.to_string();
        assert_eq!(
            udp_peers(&at_server2),
            vec![(7001, new.clone()), (7003, new)]
        );
    }
    if pcn && marks {
        // As on an older kernel: refused while fwmark rules exist (nothing changes), the TOS
        // taken; accepted without fwmark rules.
        let env_ipt = |rule: &str| {
            let mut args = vec!["env", "PCN_IPTABLES_FIB_MARK=off", lab.fw.bin_str(), "-w"];
            args.extend(rule.split_whitespace());
            router.exec(&args)
        };
        let before = all_rules();
        for rule in [
            "-t raw -A PREROUTING -j MARK --set-mark 5",
            "-t mangle -A PREROUTING -j MARK --set-mark 5",
            "-t nat -A PREROUTING -j MARK --set-mark 5",
        ] {
            let out = env_ipt(rule);
            assert_eq!(out.code, Some(1), "{rule}: {out}");
            assert!(out.stderr.contains("PREROUTING"), "{out}");
            assert!(out.stderr.contains("fwmark"), "{out}");
        }
        // The rules already there are refused too at the next change.
        let out = env_ipt("-t mangle -A PREROUTING -j DSCP --set-dscp 1");
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(all_rules(), before, "nothing changed");
        router.ip("rule del fwmark 1 lookup 100");
        env_ipt("-t mangle -A PREROUTING -j MARK --set-mark 5").expect_ok();
        env_ipt("-t mangle -A PREROUTING -j DSCP --set-dscp 1").expect_ok();
    }
}
