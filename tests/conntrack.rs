//! Connection tracking with real traffic: `-m conntrack --ctstate` and `-m state --state`
//! rules, judged by pcn-iptables' eBPF connection table and by netfilter's own conntrack
//! (iptables-legacy, in sibling namespaces).
//!
//! Each scenario has three tests: `legacy` and `pcn` check the verdicts netfilter gives (the
//! scenario's expectations); `diff_pcn` runs both side by side and demands the same verdicts
//! and the same recorded outputs (rules, save files, and the counters that are deterministic).
//!
//! Besides the harness's probes (ping, TCP connect, UDP echo), the scenarios need outcomes
//! those cannot show: data on a TCP connection that stays open across a firewall change, an
//! ICMP error reaching a UDP socket (ECONNREFUSED), and crafted TCP packets (SYN+FIN, a lone
//! RST, a lone ACK...) sent from a raw socket. These are [`Checks`], recorded beside the
//! lab's verdicts.

use std::fmt::Debug;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pcn_iptables_tests::lab::ip4;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Lab, Listing, Ns, Pair, Pass, Routed, Transcript};

pcn_iptables_tests::differential_scenarios!(
    server_firewall,
    router_clients_out_nothing_in,
    udp_ping_and_related_icmp,
    invalid_packets_and_loose_pickup,
    connections_survive_the_firewall,
    save_restore_state_rules,
    several_matches_must_all_hold,
    tracking_starts_with_the_first_state_rule,
);

/// Two state matches (or two port matches) in one rule must both hold: NEW and ESTABLISHED
/// never do at once, so the DROP rule below catches nothing.
fn several_matches_must_all_hold(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80, 81]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p icmp -m conntrack --ctstate NEW -m conntrack --ctstate ESTABLISHED -j DROP",
    );
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m tcp --dport 80 -m tcp --dport 81 -j DROP",
    );
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m tcp --dport 80:90 -m tcp ! --dport 81 -j DROP",
    );
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c1.tcp(HOST1, 81), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    t.text("-S", lab.rules(&host));
    t.finish(&lab)
}

/// The server firewall of issue 6, as a list of commands.
const SERVER_FIREWALL: &str = "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
                               -A INPUT -m conntrack --ctstate NEW -p tcp --dport 22 -j ACCEPT
                               -P INPUT DROP";

/// Expected passes of the checks below wait this long (TCP retransmits meanwhile).
const PASS_WAIT: Duration = Duration::from_secs(5);
/// Expected drops wait this long.
const DROP_WAIT: Duration = Duration::from_millis(700);

/// Outcomes the harness's probes cannot see, each compared with what netfilter gives; kept as
/// text in the transcript (so that `diff_pcn` compares them too) and as failures.
struct Checks {
    fw: &'static str,
    lines: Vec<String>,
    /// Lines only the run of pcn-iptables records (where it goes further than netfilter).
    pcn_only: Vec<String>,
    failures: Vec<String>,
}

impl Checks {
    fn new(lab: &Lab) -> Checks {
        Checks {
            fw: lab.fw.label(),
            lines: Vec::new(),
            pcn_only: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn check<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        self.lines.push(format!("{what}: {got:?}"));
        if got != want {
            let msg = format!("[{}] {what}: got {got:?}, expected {want:?}", self.fw);
            eprintln!("MISMATCH {msg}");
            self.failures.push(msg);
        }
    }

    /// A check made on pcn-iptables only: it goes further than netfilter there.
    fn check_pcn<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        self.pcn_only.push(format!("{what}: {got:?}"));
        if got != want {
            let msg = format!("[{}] {what}: got {got:?}, expected {want:?}", self.fw);
            eprintln!("MISMATCH {msg}");
            self.failures.push(msg);
        }
    }

    /// Takes the lab's verdicts and failures into the transcript, then these checks.
    fn finish(self, t: Transcript, lab: &Lab) -> Transcript {
        let mut t = t.finish(lab);
        t.text("checks", self.lines.join("\n"));
        if !self.pcn_only.is_empty() {
            t.text("checks (pcn-iptables only)", self.pcn_only.join("\n"));
        }
        t.failures.extend(self.failures);
        t
    }
}

/// What a UDP datagram to a port meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Udp {
    /// The echo came back.
    Answered,
    /// An ICMP port unreachable came back: the socket reports ECONNREFUSED.
    Refused,
    /// Nothing came back.
    Silent,
}

/// One datagram from `from` to `dst:port` on a connected socket, and what comes back within
/// `timeout`.
fn udp_once(from: &Ns, dst: &str, port: u16, timeout: Duration) -> Udp {
    let sock = from
        .in_ns(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("udp socket");
    sock.connect((ip4(dst), port)).expect("udp connect");
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    if sock.send(b"pcnt conntrack!!").is_err() {
        return Udp::Silent;
    }
    let mut buf = [0u8; 64];
    match sock.recv(&mut buf) {
        Ok(_) => Udp::Answered,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Udp::Refused,
        Err(_) => Udp::Silent,
    }
}

/// [`udp_once`], retried while the expected answer does not come (a silence is one attempt).
fn udp_probe(from: &Ns, dst: &str, port: u16, want: Udp) -> Udp {
    if want == Udp::Silent {
        return udp_once(from, dst, port, DROP_WAIT);
    }
    let mut got = Udp::Silent;
    for wait in [1000, 1500, 2500] {
        got = udp_once(from, dst, port, Duration::from_millis(wait));
        if got == want {
            break;
        }
    }
    got
}

static MESSAGE: AtomicU64 = AtomicU64::new(1);

/// A TCP connection between two namespaces that stays open, to carry data across firewall
/// changes.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    _listener: TcpListener,
}

impl Conn {
    /// `client` connects to `dst:port`, where `server` listens.
    fn open(client: &Ns, server: &Ns, dst: &str, port: u16) -> Conn {
        let listener = server
            .in_ns(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)))
            .unwrap_or_else(|e| panic!("listen on {port} in {server}: {e}"));
        let addr = SocketAddr::from((ip4(dst), port));
        let client = client
            .in_ns(|| TcpStream::connect_timeout(&addr, PASS_WAIT))
            .unwrap_or_else(|e| panic!("connect from {client} to {addr}: {e}"));
        let (server, _) = listener.accept().expect("accept");
        Conn {
            client,
            server,
            _listener: listener,
        }
    }

    /// The client's port.
    fn client_port(&self) -> u16 {
        self.client.local_addr().expect("local address").port()
    }

    /// Whether a few bytes sent by the client reach the server within `timeout`.
    fn client_to_server(&mut self, timeout: Duration) -> bool {
        carry(&mut self.client, &mut self.server, timeout)
    }

    /// Whether a few bytes sent by the server reach the client within `timeout`.
    fn server_to_client(&mut self, timeout: Duration) -> bool {
        carry(&mut self.server, &mut self.client, timeout)
    }
}

fn carry(from: &mut TcpStream, to: &mut TcpStream, timeout: Duration) -> bool {
    let msg = format!("msg{:013}", MESSAGE.fetch_add(1, Ordering::Relaxed));
    if from.write_all(msg.as_bytes()).is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < msg.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        to.set_read_timeout(Some(left)).expect("timeout");
        match to.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
    got == msg.as_bytes()
}

/// TCP header flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// One TCP segment (a 20-byte header, no payload, valid checksum) with `flags`, sent from a
/// raw socket in `ns` bound to `src`: no socket of the sender knows it.
fn send_raw_tcp(ns: &Ns, src: &str, sport: u16, dst: &str, dport: u16, flags: u8) {
    send_raw_tcp_doff(ns, src, sport, dst, dport, flags, 5);
}

/// [`send_raw_tcp`] with a data offset of `doff` words in its 20-byte header.
fn send_raw_tcp_doff(ns: &Ns, src: &str, sport: u16, dst: &str, dport: u16, flags: u8, doff: u8) {
    let (src, dst) = (ip4(src), ip4(dst));
    let mut seg = [0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&0x1020_3040u32.to_be_bytes());
    if flags & ACK != 0 {
        seg[8..12].copy_from_slice(&0x5060_7080u32.to_be_bytes());
    }
    seg[12] = doff << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let checksum = tcp_checksum(src, dst, &seg);
    seg[16..18].copy_from_slice(&checksum.to_be_bytes());
    send_raw(ns, libc::IPPROTO_TCP, src, dst, &seg);
}

/// Sends `payload` from a raw socket of `proto` in `ns` bound to `src` (the kernel adds the
/// IP header).
fn send_raw(ns: &Ns, proto: i32, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
    let sockaddr = |a: Ipv4Addr| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    let sent = ns.in_ns(|| {
        // SAFETY: socket(2); the descriptor is owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, proto) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is fresh and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = size_of::<libc::sockaddr_in>() as u32;
        let from = sockaddr(src);
        let to = sockaddr(dst);
        // SAFETY: bind and sendto with live buffers and their sizes.
        unsafe {
            assert_eq!(
                libc::bind(
                    fd.as_raw_fd(),
                    (&from as *const libc::sockaddr_in).cast(),
                    len
                ),
                0,
                "bind raw socket: {}",
                std::io::Error::last_os_error()
            );
            libc::sendto(
                fd.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                len,
            )
        }
    });
    assert_eq!(
        sent,
        payload.len() as isize,
        "sendto: {}",
        std::io::Error::last_os_error()
    );
}

/// The TCP checksum over the IPv4 pseudo-header and the segment.
fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend_from_slice(&src.octets());
    data.extend_from_slice(&dst.octets());
    data.extend_from_slice(&[0, libc::IPPROTO_TCP as u8]);
    data.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    data.extend_from_slice(seg);
    checksum(&data)
}

/// The Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| (u32::from(w[0]) << 8) | u32::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP port unreachable from a raw socket in `ns` (bound to `src`) to `dst`, quoting the
/// IP header and UDP header of a datagram `quoted` = (source, port, destination, port).
fn send_raw_port_unreachable(ns: &Ns, src: &str, dst: &str, quoted: (&str, u16, &str, u16)) {
    let (q_src, q_sport, q_dst, q_dport) = quoted;
    let mut inner = [0u8; 28];
    inner[0] = 0x45;
    inner[2..4].copy_from_slice(&44u16.to_be_bytes());
    inner[8] = 64;
    inner[9] = libc::IPPROTO_UDP as u8;
    inner[12..16].copy_from_slice(&ip4(q_src).octets());
    inner[16..20].copy_from_slice(&ip4(q_dst).octets());
    let ip_checksum = checksum(&inner[..20]);
    inner[10..12].copy_from_slice(&ip_checksum.to_be_bytes());
    inner[20..22].copy_from_slice(&q_sport.to_be_bytes());
    inner[22..24].copy_from_slice(&q_dport.to_be_bytes());
    inner[24..26].copy_from_slice(&24u16.to_be_bytes());
    let mut msg = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&inner);
    let icmp_checksum = checksum(&msg);
    msg[2..4].copy_from_slice(&icmp_checksum.to_be_bytes());
    send_raw(ns, libc::IPPROTO_ICMP, ip4(src), ip4(dst), &msg);
}

/// `-L chain -v -x -n`, polled until the rules' packet counts are `want` (or 5 s went by).
fn counts_settle(lab: &Lab, ns: &Ns, chain: &str, want: &[u64]) -> (Vec<u64>, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = lab
            .ipt_ok(ns, &format!("-L {chain} -v -x -n"))
            .stdout
            .clone();
        let listing = Listing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let got: Vec<u64> = listing.chains[0].rules.iter().map(|r| r.pkts).collect();
        if got == want || Instant::now() > deadline {
            return (got, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 6's server firewall: new connections to 22 get in, to other ports they do not; the
/// replies to the server's own connections (TCP, UDP, ping) get in.
fn server_firewall(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[22, 80]);
    lab.serve(&c1, &[8080]);
    lab.ipt_lines(&host, SERVER_FIREWALL);
    t.text("-S", lab.rules(&host));
    t.text("-L", lab.ipt_ok(&host, "-L").stdout);

    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c2.tcp(HOST2, 22), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.udp(HOST1, 22), Drop);
    lab.expect(&c1.ping(HOST1), Drop);
    // The server's own connections: their replies are ESTABLISHED.
    lab.expect(&host.tcp(C1, 8080), Pass);
    lab.expect(&host.udp(C1, 8080), Pass);
    lab.expect(&host.ping(C1), Pass);
    lab.expect(&host.ping(C2), Pass);
    // And again the other way: still nothing new gets in but ssh.
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 22), Pass);

    // -m state alike; with the ESTABLISHED rule gone, even ssh's handshake cannot complete.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m state --state NEW --dport 22 -j ACCEPT",
    );
    lab.expect(&c1.tcp(HOST1, 22), Pass); // SYN NEW; the handshake's ACK is ESTABLISHED...
    lab.expect(&host.tcp(C1, 8080), Drop); // ...but the SYN-ACK to the host is not let in
    lab.ipt_ok(&host, "-I INPUT -m state --state ESTABLISHED -j ACCEPT");
    lab.expect(&host.tcp(C1, 8080), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    t.text("-S at the end", lab.rules(&host));
    t.finish(&lab)
}

/// A router (FORWARD) that lets its clients (eth0) open connections out and nothing in; the
/// ICMP error of a closed port comes back RELATED.
fn router_clients_out_nothing_in(fw: Fw) -> Transcript {
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    let mut t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&server, &[80]);
    lab.serve(&server2, &[80]);
    lab.serve(&client, &[8080]);
    lab.ipt_lines(
        &router,
        "-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
         -A FORWARD -i eth0 -m conntrack --ctstate NEW -j ACCEPT
         -P FORWARD DROP",
    );
    t.text("-S", lab.rules(&router));

    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.expect(&client.udp(SERVER, 80), Pass);
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.tcp(SERVER2, 80), Pass);
    lab.expect(&client.udp(SERVER2, 80), Pass);
    lab.expect(&server.tcp(CLIENT, 8080), Drop);
    lab.expect(&server.udp(CLIENT, 8080), Drop);
    lab.expect(&server.ping(CLIENT), Drop);
    lab.expect(&server2.ping(CLIENT), Drop);
    // The router itself (INPUT) is not concerned.
    lab.expect(&client.ping(ROUTER_C), Pass);
    lab.expect(&server.ping(ROUTER_S), Pass);

    // A closed port: its ICMP port unreachable crosses the router back, RELATED.
    checks.check(
        "client udp:9 -> server (closed port)",
        udp_probe(&client, SERVER, 9, Udp::Refused),
        Udp::Refused,
    );
    checks.check(
        "server udp:9 -> client (closed port)",
        udp_probe(&server, CLIENT, 9, Udp::Silent),
        Udp::Silent,
    );
    // Without RELATED, the error stays out.
    lab.ipt_ok(
        &router,
        "-R FORWARD 1 -m state --state ESTABLISHED -j ACCEPT",
    );
    checks.check(
        "client udp:9 -> server (closed port), RELATED not accepted",
        udp_probe(&client, SERVER, 9, Udp::Silent),
        Udp::Silent,
    );
    lab.expect(&client.udp(SERVER, 80), Pass);
    checks.finish(t, &lab)
}

/// UDP request/response, ping, and the ICMP port unreachable of a closed UDP port arriving
/// RELATED, seen from the host that sends them (`-P INPUT DROP`).
fn udp_ping_and_related_icmp(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&c1, &[8080]);
    lab.serve(&host, &[80]);
    lab.ipt_lines(
        &host,
        "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
         -A INPUT -p icmp -m conntrack --ctstate RELATED -j ACCEPT
         -P INPUT DROP",
    );
    lab.expect(&host.udp(C1, 8080), Pass);
    lab.expect(&host.ping(C1), Pass);
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.ping(HOST1), Drop);

    // One datagram to a closed port, one ICMP error: 20 + 8 bytes quoting 20 + 8 + 16.
    checks.check(
        "host udp:9 -> c1 (closed port)",
        udp_once(&host, C1, 9, PASS_WAIT),
        Udp::Refused,
    );
    let (counts, _) = counts_settle(&lab, &host, "INPUT", &[0, 1]);
    checks.check("RELATED rule packets", counts.get(1).copied(), Some(1));
    let listing = lab.ipt_ok(&host, "-L INPUT -v -x -n").stdout;
    let related = Listing::parse(&listing).expect("listing").chains[0].rules[1].clone();
    checks.check("RELATED rule bytes", related.bytes, 72);
    t.text("RELATED rule", related.rest);

    // Without the RELATED rule, the error is dropped: the socket hears nothing.
    lab.ipt_ok(
        &host,
        "-D INPUT -p icmp -m conntrack --ctstate RELATED -j ACCEPT",
    );
    checks.check(
        "host udp:9 -> c1 (closed port), RELATED dropped",
        udp_probe(&host, C1, 9, Udp::Silent),
        Udp::Silent,
    );
    // Each ICMP packet in its state: the port unreachable of a datagram the host sent is
    // RELATED, the echo reply to its ping ESTABLISHED, and an error quoting a datagram the
    // host never sent INVALID.
    lab.ipt_ok(&host, "-P INPUT ACCEPT");
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_lines(
        &host,
        "-A INPUT -p icmp -m conntrack --ctstate RELATED
         -A INPUT -p icmp -m conntrack --ctstate INVALID
         -A INPUT -p icmp -m conntrack --ctstate NEW,ESTABLISHED",
    );
    checks.check(
        "host udp:9 -> c1 (closed port), counted",
        udp_once(&host, C1, 9, PASS_WAIT),
        Udp::Refused,
    );
    lab.expect_once(&host.ping(C1), Pass, PASS_WAIT);
    send_raw_port_unreachable(&c1, C1, HOST1, (HOST1, 5555, C1, 9));
    let (counts, text) = counts_settle(&lab, &host, "INPUT", &[1, 1, 1]);
    checks.check(
        "RELATED, INVALID, NEW/ESTABLISHED counts",
        counts,
        vec![1, 1, 1],
    );
    t.text("-L INPUT -v -x -n", text);
    checks.finish(t, &lab)
}

/// Packets netfilter calls INVALID are INVALID here too (bad flag combinations, a lone RST, a
/// SYN-ACK or FIN of an unknown flow, a data offset that does not fit); a lone ACK of an unknown flow is picked up as NEW
/// (netfilter's default `nf_conntrack_tcp_loose`).
fn invalid_packets_and_loose_pickup(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&host, &[80]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp -m conntrack --ctstate INVALID -j DROP
         -A INPUT -p tcp -m state --state NEW
         -A INPUT -p tcp -m conntrack --ctstate ESTABLISHED,RELATED
         -A INPUT -p tcp -m state ! --state INVALID,NEW,ESTABLISHED",
    );
    let invalid = [
        ("SYN+FIN", SYN | FIN),
        ("RST", RST),
        ("SYN+ACK", SYN | ACK),
        ("FIN+ACK", FIN | ACK),
        ("no flag", 0),
        ("SYN+RST", SYN | RST),
        ("everything", FIN | SYN | RST | ACK | 0x08 | 0x20),
    ];
    for (i, (_, flags)) in invalid.iter().enumerate() {
        send_raw_tcp(&c1, C1, 41000 + i as u16, HOST1, 80, *flags);
    }
    // SYNs whose data offset does not fit: shorter than a header, past the segment's end.
    for (i, doff) in [4, 6, 15].into_iter().enumerate() {
        send_raw_tcp_doff(&c1, C1, 41100 + i as u16, HOST1, 80, SYN, doff);
    }
    let n = invalid.len() as u64 + 3;
    let (counts, text) = counts_settle(&lab, &host, "INPUT", &[n, 0, 0, 0]);
    checks.check(
        &format!(
            "INVALID/NEW/ESTABLISHED/other after {} and SYNs of data offset 4, 6, 15",
            invalid.map(|(name, _)| name).join(", ")
        ),
        counts,
        vec![n, 0, 0, 0],
    );
    t.text("-L INPUT -v -x -n after invalid packets", text);

    // A lone ACK of an unknown flow: NEW (picked up); the host answers it with an RST.
    send_raw_tcp(&c1, C1, 42000, HOST1, 80, ACK);
    let (counts, text) = counts_settle(&lab, &host, "INPUT", &[n, 1, 0, 0]);
    checks.check(
        "INVALID/NEW/ESTABLISHED/other after a lone ACK",
        counts,
        vec![n, 1, 0, 0],
    );
    t.text("-L INPUT -v -x -n after a lone ACK", text);

    // Real connections are not disturbed.
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.udp(HOST1, 80), Pass);
    checks.finish(t, &lab)
}

/// A TCP connection opened after tracking started survives loading the server firewall, as
/// with netfilter. One opened before pcn-iptables ever ran in the namespace survives too
/// (the table is seeded from the kernel's sockets): netfilter, which had not tracked it,
/// picks its next packet up as NEW and the firewall drops it; that part is checked on
/// pcn-iptables only.
fn connections_survive_the_firewall(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&host, &[22, 8082]);

    // Before any firewall command: nobody tracks anything yet.
    let mut before = Conn::open(&c1, &host, HOST1, 8080);
    checks.check(
        "connection opened before: data in, no firewall",
        before.client_to_server(PASS_WAIT),
        true,
    );
    checks.check(
        "connection opened before: data out, no firewall",
        before.server_to_client(PASS_WAIT),
        true,
    );

    // The first command starts tracking (netfilter's conntrack for the match, pcn-iptables'
    // table at its first load).
    lab.ipt_ok(&host, "-A INPUT -m conntrack --ctstate INVALID");
    let mut after = Conn::open(&c1, &host, HOST1, 8081);
    checks.check(
        "connection opened after: data in, tracking",
        after.client_to_server(PASS_WAIT),
        true,
    );

    lab.ipt_lines(&host, SERVER_FIREWALL);
    for round in 1..=2 {
        checks.check(
            &format!("connection opened after: data in, firewall on ({round})"),
            after.client_to_server(PASS_WAIT),
            true,
        );
        checks.check(
            &format!("connection opened after: data out, firewall on ({round})"),
            after.server_to_client(PASS_WAIT),
            true,
        );
    }
    lab.expect(&c1.tcp(HOST1, 8082), Drop);
    lab.expect(&c1.tcp(HOST1, 22), Pass);

    let wait = if lab.fw.is_pcn() {
        PASS_WAIT
    } else {
        DROP_WAIT
    };
    let got = before.client_to_server(wait);
    if lab.fw.is_pcn() {
        checks.check_pcn("connection opened before: data in, firewall on", got, true);
        checks.check_pcn(
            "connection opened before: data out, firewall on",
            before.server_to_client(PASS_WAIT),
            true,
        );
    } else {
        eprintln!(
            "[{}] connection opened before the first rule: data in with the firewall on {} \
             (netfilter picks it up as NEW)",
            lab.fw.label(),
            if got { "passed" } else { "was dropped" }
        );
    }
    checks.finish(t, &lab)
}

/// Connections are tracked only while some rule looks at their state (netfilter hooks its
/// conntrack into a namespace for the rules that need it): one opened while the firewall had
/// only stateless rules is unknown when a state rule comes, and its next packet is NEW.
fn tracking_starts_with_the_first_state_rule(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&host, &[22, 8086]);
    lab.ipt_ok(&host, "-A INPUT -s 198.18.200.1/32 -j DROP");
    let mut conn = Conn::open(&c1, &host, HOST1, 8085);
    checks.check(
        "stateless rules: data in",
        conn.client_to_server(PASS_WAIT),
        true,
    );
    checks.check(
        "stateless rules: data out",
        conn.server_to_client(PASS_WAIT),
        true,
    );
    lab.ipt_lines(&host, SERVER_FIREWALL);
    checks.check(
        "after the first state rule: data in (picked up as NEW)",
        conn.client_to_server(DROP_WAIT),
        false,
    );
    // Connections opened from now on are tracked from their first packet.
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c1.tcp(HOST1, 8086), Drop);
    checks.finish(t, &lab)
}

/// A stateful ruleset through `-restore` and `-save`: the same file back, the same verdicts.
fn save_restore_state_rules(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let mut checks = Checks::new(&lab);
    lab.serve(&host, &[22, 80]);
    lab.serve(&c1, &[8080]);
    let file = "*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
-A INPUT -p icmp -m state ! --state INVALID,NEW,UNTRACKED -j ACCEPT
-A OUTPUT -m state --state NEW,RELATED,ESTABLISHED -j ACCEPT
COMMIT
";
    lab.restore_ok(&host, "", file);
    let saved = lab.saved(&host, "");
    checks.check("save gives the restored file back", saved.as_str(), file);
    t.text("save", saved);
    lab.expect(&c1.tcp(HOST1, 22), Pass);
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&host.tcp(C1, 8080), Pass);
    lab.expect(&host.ping(C1), Pass);
    checks.finish(t, &lab)
}

/// `pcn-iptables --conntrack` lists the tracked connections: protocol, TCP state, addresses
/// and ports, original direction first; a connection the kernel had before the first load is
/// there too (seeded).
#[test]
fn conntrack_listing_pcn() {
    let Pair { lab, host, c1, .. } = Pair::new(Fw::pcn());
    lab.serve(&c1, &[8080]);
    let mut before = Conn::open(&c1, &host, HOST1, 8090);
    assert!(before.client_to_server(PASS_WAIT));
    lab.ipt_lines(&host, SERVER_FIREWALL);
    let mut after = Conn::open(&c1, &host, HOST1, 22);
    assert!(after.client_to_server(PASS_WAIT));
    assert!(after.server_to_client(PASS_WAIT));
    lab.expect(&host.udp(C1, 8080), Pass);
    lab.expect(&host.ping(C1), Pass);

    let out = host
        .exec(&[lab.fw.bin_str(), "--conntrack"])
        .expect_ok()
        .stdout;
    let rows: Vec<Vec<String>> = out
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            let cells: Vec<&str> = l.split(['│', '┆']).collect();
            cells[1..cells.len() - 1]
                .iter()
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    let has = |want: &[&str]| rows.iter().any(|r| r.iter().take(want.len()).eq(want));
    let port = |c: &Conn| c.client_port().to_string();
    for want in [
        vec!["proto", "state", "source", "sport", "destination", "dport"],
        vec!["tcp", "ESTABLISHED", C1, &port(&after), HOST1, "22"],
        vec!["tcp", "ESTABLISHED", C1, &port(&before), HOST1, "8090"],
        vec!["udp", "", HOST1],
        vec!["icmp", "", HOST1],
    ] {
        assert!(has(&want), "no row {want:?} in --conntrack:\n{out}");
    }
    let udp = rows.iter().find(|r| r[0] == "udp").unwrap();
    assert_eq!((udp[4].as_str(), udp[5].as_str()), (C1, "8080"), "{out}");
    assert!(
        out.trim_end().ends_with("connections"),
        "no count line:\n{out}"
    );
}

/// `pcn-iptables --conntrack` shows what nat made of a connection, like `conntrack -L`: its
/// reply tuple and `[SNAT]`/`[DNAT]`, one row per connection (not one per key).
#[test]
fn conntrack_listing_shows_nat_pcn() {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(Fw::pcn());
    lab.serve(&server, &[80]);
    lab.ipt_ok(&router, "-t nat -A POSTROUTING -o eth1 -j MASQUERADE");
    lab.ipt_ok(
        &router,
        &format!("-t nat -A PREROUTING -d {ROUTER_C} -p tcp --dport 8080 -j DNAT --to-destination {SERVER}:80"),
    );
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.expect(&client.tcp(ROUTER_C, 8080), Pass);
    let out = router
        .exec(&[lab.fw.bin_str(), "--conntrack"])
        .expect_ok()
        .stdout;
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with('│')).collect();
    let masqueraded = format!("src={SERVER} dst={ROUTER_S} sport=80");
    let published = format!("src={SERVER} dst={ROUTER_S} sport=80");
    let row = |dport: &str, what: &str, reply: &str| {
        rows.iter().any(|r| {
            let cells: Vec<&str> = r.split(['│', '┆']).map(str::trim).collect();
            cells.get(6) == Some(&dport) && cells[9].contains(what) && cells[10].starts_with(reply)
        })
    };
    assert!(row("80", "[SNAT]", &masqueraded), "{out}");
    // The published port's connection is mapped both ways: DNAT in, MASQUERADE out.
    assert!(row("8080", "[SNAT] [DNAT]", &published), "{out}");
    // The header and two connections (no row for their reply keys).
    assert_eq!(rows.len(), 3, "{out}");
}

pcn_iptables_tests::scenarios!(
    connection_protocol_and_direction,
    connection_status_and_expiry,
    connection_ports
);

/// `--ctproto` and `--ctdir`: c1's UDP request to the host's echo port goes the original way,
/// the echo the reply way; a request to a closed port draws an ICMP error that is RELATED to
/// the UDP connection (its protocol) and goes its reply way.
fn connection_protocol_and_direction(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[9]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp -m conntrack --ctdir REPLY -j ACCEPT
         -A INPUT -p udp -m conntrack --ctproto udp --ctdir ORIGINAL -j ACCEPT
         -A OUTPUT -p icmp -m conntrack --ctproto udp --ctdir REPLY -j ACCEPT
         -A OUTPUT -p icmp -m conntrack ! --ctproto 17 -j ACCEPT
         -A OUTPUT -p udp -m conntrack --ctdir ORIGINAL -j ACCEPT
         -A OUTPUT -p udp -m conntrack --ctdir REPLY -j ACCEPT",
    );
    lab.expect(&c1.udp(HOST1, 9), Pass);
    assert!(!c1.udp(HOST1, 10).attempt(Duration::from_millis(300)));
    assert_eq!(lab.counts(&host, "INPUT"), vec![0, 2]);
    assert_eq!(lab.counts(&host, "OUTPUT"), vec![1, 0, 0, 1]);
}

/// `--ctstatus` and `--ctexpire`: a UDP connection's first datagram is not CONFIRMED; the
/// next, after the echo, has SEEN_REPLY but is not ASSURED; two seconds on it is a stream,
/// ASSURED. A connection no reply comes for has 30 seconds left on its second datagram (and
/// 0, unconfirmed, on its first).
fn connection_status_and_expiry(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[9]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p udp --dport 9 -m conntrack --ctstatus ASSURED -j ACCEPT
         -A INPUT -p udp --dport 9 -m conntrack --ctstatus SEEN_REPLY -j ACCEPT
         -A INPUT -p udp --dport 9 -m conntrack ! --ctstatus CONFIRMED -j ACCEPT
         -A INPUT -p udp --dport 10 -m conntrack --ctexpire 0 -j ACCEPT
         -A INPUT -p udp --dport 10 -m conntrack --ctexpire 28:30 ! --ctstatus SEEN_REPLY -j ACCEPT
         -A INPUT -p udp -j ACCEPT",
    );
    let echo = || c1.udp(HOST1, 9).sport(41900);
    lab.expect(&echo(), Pass);
    lab.expect(&echo(), Pass);
    std::thread::sleep(Duration::from_millis(2100));
    lab.expect(&echo(), Pass);
    for _ in 0..2 {
        let closed = c1.udp(HOST1, 10).sport(41901);
        assert!(!closed.attempt(Duration::from_millis(300)));
    }
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 1, 1, 1, 0]);
    lab.check();
}

/// The tuples' ports: a datagram to 7009, which REDIRECT sends to the echo on 9, has 7009 as
/// its original destination port and the client's port as its reply destination port; one to
/// 9 directly has 9 as its reply source port; a range that holds neither matches nothing.
fn connection_ports(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.serve(&host, &[9]);
    lab.ipt_lines(
        &host,
        "-t nat -A PREROUTING -p udp --dport 7009 -j REDIRECT --to-ports 9
         -A INPUT -p udp -m conntrack --ctorigdstport 7009 --ctrepldstport 41950 -j ACCEPT
         -A INPUT -p udp -m conntrack --ctreplsrcport 9 ! --ctorigsrcport 41950 -j ACCEPT
         -A INPUT -p udp -m conntrack --ctorigdstport 1:8 -j ACCEPT
         -A INPUT -p udp -j ACCEPT",
    );
    lab.expect(&c1.udp(HOST1, 7009).sport(41950), Pass);
    lab.expect(&c1.udp(HOST1, 9).sport(41951), Pass);
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 0, 0]);
    lab.check();
}
