//! REJECT: the sender really gets the answer (TCP RST, ICMP error) on INPUT, FORWARD and
//! OUTPUT, as from iptables-legacy: same errors seen by sockets, same ICMP type/code and
//! source address seen by ping, same counters. The senders are plain veth peers (no XDP
//! program, no NAPI), like a container's. ICMP errors obey the kernel's rate limits:
//! `rate_limits_as_legacy` counts the errors bursts of datagrams get from both.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Fw, Ns, Pair, Routed, scenarios};

scenarios!(reject_input, reject_forward, reject_output, reject_on_lo);

/// The pinned link of the TC ingress program (REJECT's answers) on `ifname` in `ns`.
fn answer_link(ns: &Ns, ifname: &str) -> std::path::PathBuf {
    let ifname = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: a NUL-terminated name.
    let ifindex = ns.in_ns(move || unsafe { libc::if_nametoindex(ifname.as_ptr()) });
    ns.state_dir().join(format!("tci-{ifindex}"))
}

/// The id of the BPF link pinned at `pin`.
fn link_id(pin: &std::path::Path) -> String {
    let out = pcn_iptables_tests::cmd::run(
        "bpftool",
        &["link", "show", "pinned", pin.to_str().unwrap()],
    );
    assert!(out.success(), "bpftool link show pinned {}", pin.display());
    out.stdout
        .split(':')
        .next()
        .map(|id| id.trim().to_string())
        .filter(|id| id.parse::<u32>().is_ok())
        .unwrap_or_else(|| panic!("no link id in {:?}", out.stdout))
}

/// Packets `ifname` in `ns` received so far.
fn rx_packets(ns: &Ns, ifname: &str) -> u64 {
    let out = ns.exec(&["ip", "-s", "-o", "link", "show", ifname]).stdout;
    // "... RX: bytes packets ...\    <bytes> <packets> ..."
    let rx = out.split("RX:").nth(1).unwrap_or_else(|| panic!("{out}"));
    let numbers = rx.split('\\').nth(1).unwrap_or_else(|| panic!("{out}"));
    numbers.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// INPUT on lo: the local sender gets the answer, once (lo hands the answer straight back to
/// the TC ingress program, which must not send it round again).
fn reject_on_lo(fw: Fw) {
    let Pair { lab, host, .. } = Pair::new(fw);
    lab.ipt_ok(&host, "-A INPUT -i lo -p udp --dport 9 -j REJECT");
    lab.ipt_ok(
        &host,
        "-A INPUT -i lo -p tcp --dport 10 -j REJECT --reject-with tcp-reset",
    );
    let before = rx_packets(&host, "lo");
    check(udp(&host, "127.0.0.1", 9), "ECONNREFUSED", "udp");
    check(tcp(&host, "127.0.0.1", 10), "ECONNREFUSED", "tcp-reset");
    std::thread::sleep(Duration::from_millis(200));
    // Two packets and their two answers.
    assert_eq!(rx_packets(&host, "lo") - before, 4);
}

/// Both ends of the veth pair run pcn-iptables (two containers): the answer reaches the
/// sender, once.
#[test]
fn reject_between_two_installations() {
    let Pair { lab, host, c1, .. } = Pair::new(Fw::pcn());
    lab.ipt_ok(&c1, "-P INPUT ACCEPT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 80 -j REJECT");
    let before = rx_packets(&c1, "eth0");
    check(tcp(&c1, HOST1, 80), "ECONNREFUSED", "tcp-reset");
    check(udp(&c1, HOST1, 80), "ECONNREFUSED", "udp");
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx_packets(&c1, "eth0") - before <= 4);
}

/// Fail closed: at XDP the rejected packet becomes the answer before the TC ingress program
/// sends it out, so without that program nothing reaches the host's sockets (the answer is
/// addressed to the sender's MAC, and the stack drops it); the next command attaches the
/// program again.
#[test]
fn without_the_answer_program_nothing_gets_through() {
    let Pair { lab, host, c1, .. } = Pair::new(Fw::pcn());
    host.sysctl("net.ipv4.icmp_ratelimit=0");
    lab.serve(&host, &[80, 81]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 81 -j REJECT");
    check(tcp(&c1, HOST1, 80), "ECONNREFUSED", "with the program");
    check(udp(&c1, HOST1, 81), "ECONNREFUSED", "with the program");
    let link = answer_link(&host, "eth1");
    let id = link_id(&link);
    std::fs::remove_file(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    // Another test's command may hold the link open for a moment (every change looks at
    // every namespace's links): it goes when the last holder lets it go.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !pcn_iptables_tests::cmd::run("bpftool", &["link", "show", "id", &id]).success()
    });
    assert!(gone, "link {id} still there 5 s after its pin was removed");
    check(tcp(&c1, HOST1, 80), "timeout", "without the program");
    check(udp(&c1, HOST1, 81), "timeout", "without the program");
    check(
        tcp(&c1, HOST1, 82),
        "ECONNREFUSED",
        "a closed port (the kernel's RST)",
    );
    lab.ipt_ok(&host, "-A INPUT -p icmp");
    assert!(link.exists(), "the next command attaches it again");
    check(tcp(&c1, HOST1, 80), "ECONNREFUSED", "attached again");
}

fn errno_name(e: i32) -> String {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::EHOSTUNREACH => "EHOSTUNREACH".into(),
        libc::ENETUNREACH => "ENETUNREACH".into(),
        libc::ENOPROTOOPT => "ENOPROTOOPT".into(),
        libc::EACCES => "EACCES".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        e => format!("errno {e}"),
    }
}

fn sockaddr(a: &str, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(a.parse::<Ipv4Addr>().unwrap()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A TCP connect from `ns`: "connected", "timeout", or the error the socket got.
fn tcp(ns: &Ns, dst: &str, port: u16) -> String {
    let dst = dst.to_string();
    // SAFETY: raw socket calls on descriptors this closure owns, with valid buffers.
    ns.in_ns(move || unsafe {
        let fd = OwnedFd::from_raw_fd(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
            0,
        ));
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        );
        let sa = sockaddr(&dst, port);
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        );
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        if libc::poll(&mut p, 1, 1500) == 0 {
            return "timeout".to_string();
        }
        let mut err: i32 = 0;
        let mut len = size_of::<i32>() as u32;
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut i32).cast(),
            &mut len,
        );
        if err == 0 {
            "connected".to_string()
        } else {
            errno_name(err)
        }
    })
}

/// A UDP datagram from a connected socket in `ns`: "echo", "timeout", or the socket's error.
fn udp(ns: &Ns, dst: &str, port: u16) -> String {
    let dst = dst.to_string();
    // SAFETY: raw socket calls on descriptors this closure owns, with valid buffers.
    ns.in_ns(move || unsafe {
        let fd = OwnedFd::from_raw_fd(libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK,
            0,
        ));
        let sa = sockaddr(&dst, port);
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        );
        let msg = b"pcn-reject-probe";
        libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut buf = [0u8; 64];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut p, 1, left.as_millis() as i32) == 0 {
                return "timeout".to_string();
            }
            let n = libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if e == libc::EAGAIN {
                    continue;
                }
                return errno_name(e);
            }
            return "echo".to_string();
        }
    })
}

/// One ping from `ns`: the line ping prints about the answer, without its sequence number
/// and time ("reply from X" or "From X Destination Port Unreachable"), or "timeout".
fn ping(ns: &Ns, dst: &str) -> String {
    let out = ns.exec(&["ping", "-n", "-c1", "-W1", dst]);
    for line in out.stdout.lines() {
        if line.contains("bytes from") {
            let from = line
                .split_whitespace()
                .nth(3)
                .unwrap_or("")
                .trim_end_matches(':');
            return format!("reply from {from}");
        }
        if let Some(rest) = line.strip_prefix("From ") {
            let mut words = rest.split_whitespace();
            let from = words.next().unwrap_or("");
            let what: Vec<&str> = words.filter(|w| !w.starts_with("icmp_seq=")).collect();
            return format!("From {from} {}", what.join(" "));
        }
    }
    "timeout".to_string()
}

/// The packet count of rule 1 of `chain`.
fn rule_packets(lab: &pcn_iptables_tests::Lab, ns: &Ns, chain: &str) -> u64 {
    let out = lab.ipt_ok(ns, &format!("-L {chain} 1 -v -x -n")).stdout;
    out.split_whitespace().next().unwrap().parse().unwrap()
}

/// Every ICMP `--reject-with` type and what ping prints about it.
const ICMP_ERRORS: [(&str, &str); 7] = [
    ("icmp-net-unreachable", "Destination Net Unreachable"),
    ("icmp-host-unreachable", "Destination Host Unreachable"),
    ("icmp-port-unreachable", "Destination Port Unreachable"),
    ("icmp-proto-unreachable", "Destination Protocol Unreachable"),
    ("icmp-net-prohibited", "Destination Net Prohibited"),
    ("icmp-host-prohibited", "Destination Host Prohibited"),
    ("icmp-admin-prohibited", "Packet filtered"),
];

#[track_caller]
fn check(got: String, want: &str, what: &str) {
    assert_eq!(got, want, "{what}");
}

/// INPUT: every --reject-with type answers the client; the rule counts what it rejected.
fn reject_input(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    // Both rate-limit ICMP errors per destination (6 at once, then 1/s): off, so that every
    // probe gets its answer (see rate_limits_as_legacy for the limits).
    host.sysctl("net.ipv4.icmp_ratelimit=0");
    lab.serve(&host, &[80, 81]);
    check(tcp(&c1, HOST1, 80), "connected", "no rule yet");
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
    );
    check(tcp(&c1, HOST1, 80), "ECONNREFUSED", "tcp-reset");
    check(tcp(&c1, HOST1, 81), "connected", "other port");
    assert_eq!(rule_packets(&lab, &host, "INPUT"), 1);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 80 -j REJECT");
    check(udp(&c1, HOST1, 80), "ECONNREFUSED", "udp, port unreachable");
    check(udp(&c1, HOST1, 81), "echo", "udp, other port");
    // A TCP connect meets an ICMP port unreachable: the kernel treats it as a hard error too.
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 80 -j REJECT");
    check(tcp(&c1, HOST1, 80), "ECONNREFUSED", "tcp, port unreachable");

    for (with, seen) in ICMP_ERRORS {
        lab.ipt_ok(&host, "-F INPUT");
        lab.ipt_ok(
            &host,
            &format!("-A INPUT -p icmp -j REJECT --reject-with {with}"),
        );
        check(ping(&c1, HOST1), &format!("From {HOST1} {seen}"), with);
        // The answer comes from the address the request went to.
        check(
            ping(&c1, HOST1_ALT),
            &format!("From {HOST1_ALT} {seen}"),
            with,
        );
        assert_eq!(rule_packets(&lab, &host, "INPUT"), 2, "{with}");
    }
    lab.ipt_ok(&host, "-F INPUT");
    check(ping(&c1, HOST1), &format!("reply from {HOST1}"), "no rule");
}

/// FORWARD: the RST comes from the destination, the ICMP error from the router's address
/// toward the client.
fn reject_forward(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    router.sysctl("net.ipv4.icmp_ratelimit=0");
    lab.serve(&server, &[80, 81]);
    check(tcp(&client, SERVER, 80), "connected", "no rule yet");
    lab.ipt_ok(
        &router,
        "-A FORWARD -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
    );
    lab.ipt_ok(&router, "-A FORWARD -p udp --dport 80 -j REJECT");
    lab.ipt_ok(
        &router,
        "-A FORWARD -p icmp -j REJECT --reject-with icmp-host-prohibited",
    );
    check(tcp(&client, SERVER, 80), "ECONNREFUSED", "tcp-reset");
    check(tcp(&client, SERVER, 81), "connected", "other port");
    check(udp(&client, SERVER, 80), "ECONNREFUSED", "udp");
    check(udp(&client, SERVER, 81), "echo", "udp, other port");
    check(
        ping(&client, SERVER),
        &format!("From {ROUTER_C} Destination Host Prohibited"),
        "ping",
    );
    // Local traffic is INPUT's business.
    check(
        ping(&client, ROUTER_C),
        &format!("reply from {ROUTER_C}"),
        "to the router",
    );
    assert_eq!(rule_packets(&lab, &router, "FORWARD"), 1);
    for (with, seen) in ICMP_ERRORS {
        lab.ipt_ok(&router, "-F FORWARD");
        lab.ipt_ok(
            &router,
            &format!("-A FORWARD -p icmp -j REJECT --reject-with {with}"),
        );
        check(
            ping(&client, SERVER),
            &format!("From {ROUTER_C} {seen}"),
            with,
        );
        assert_eq!(rule_packets(&lab, &router, "FORWARD"), 1, "{with}");
    }
}

/// OUTPUT: the host's own connects and datagrams are answered by the local stack.
fn reject_output(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    host.sysctl("net.ipv4.icmp_ratelimit=0");
    lab.serve(&c1, &[80, 81]);
    lab.ipt_ok(
        &host,
        &format!("-A OUTPUT -d {C1} -p tcp --dport 80 -j REJECT --reject-with tcp-reset"),
    );
    lab.ipt_ok(
        &host,
        &format!("-A OUTPUT -d {C1} -p udp --dport 80 -j REJECT"),
    );
    lab.ipt_ok(
        &host,
        &format!("-A OUTPUT -d {C1} -p icmp -j REJECT --reject-with icmp-net-prohibited"),
    );
    lab.ipt_ok(&host, "-A OUTPUT -o lo");
    lab.ipt_ok(&host, "-A INPUT -i lo");
    check(tcp(&host, C1, 80), "ECONNREFUSED", "tcp-reset");
    check(tcp(&host, C1, 81), "connected", "other port");
    check(udp(&host, C1, 80), "ECONNREFUSED", "udp");
    check(udp(&host, C1, 81), "echo", "udp, other port");
    // The error comes from the host's own address (through lo), the RST from the destination.
    check(
        ping(&host, C1),
        &format!("From {HOST1} Destination Net Prohibited"),
        "ping",
    );
    check(
        ping(&host, C2),
        &format!("reply from {C2}"),
        "other destination",
    );
    assert_eq!(rule_packets(&lab, &host, "OUTPUT"), 1);
    // The answers (the RST, the UDP datagram's error, the ping's) went through OUTPUT
    // (-o lo) and INPUT (-i lo), as netfilter's do; nothing else uses lo here.
    let listing = lab.ipt_ok(&host, "-L OUTPUT 4 -v -x -n").stdout;
    assert!(listing.contains(" lo "), "{listing}");
    assert_eq!(listing.split_whitespace().next(), Some("3"), "{listing}");
    assert_eq!(rule_packets(&lab, &host, "INPUT"), 3);
    for (with, seen) in ICMP_ERRORS {
        lab.ipt_ok(&host, "-F OUTPUT");
        lab.ipt_ok(
            &host,
            &format!("-A OUTPUT -d {C1} -p icmp -j REJECT --reject-with {with}"),
        );
        check(ping(&host, C1), &format!("From {HOST1} {seen}"), with);
        assert_eq!(rule_packets(&lab, &host, "OUTPUT"), 1, "{with}");
    }
    // To a local address (through lo): the error comes from the destination, and goes
    // through OUTPUT, which must let it pass (`-p icmp` alone would REJECT it in turn,
    // which drops an ICMP error, for both).
    lab.ipt_ok(&host, "-F OUTPUT");
    lab.ipt_ok(
        &host,
        &format!(
            "-A OUTPUT -d {HOST2} -p icmp --icmp-type echo-request -j REJECT \
             --reject-with icmp-host-prohibited"
        ),
    );
    check(
        ping(&host, HOST2),
        &format!("From {HOST2} Destination Host Prohibited"),
        "to a local address",
    );
}

/// Sends `n` UDP datagrams from one socket in `ns` to `dst:port` as fast as it can, and
/// counts the ICMP destination unreachable errors `ns` receives about them (by a raw socket:
/// the errors that quote the socket's own port) within a second.
fn errors_for_burst(ns: &Ns, dst: &str, port: u16, n: usize) -> usize {
    let dst = dst.to_string();
    // SAFETY: raw socket calls on descriptors this closure owns, with valid buffers.
    ns.in_ns(move || unsafe {
        let raw = OwnedFd::from_raw_fd(libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            libc::IPPROTO_ICMP,
        ));
        let udp = OwnedFd::from_raw_fd(libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK,
            0,
        ));
        let sa = sockaddr(&dst, port);
        let msg = b"pcn-reject-burst";
        for _ in 0..n {
            libc::sendto(
                udp.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            );
        }
        let mut own: libc::sockaddr_in = std::mem::zeroed();
        let mut len = size_of::<libc::sockaddr_in>() as u32;
        libc::getsockname(
            udp.as_raw_fd(),
            (&mut own as *mut libc::sockaddr_in).cast(),
            &mut len,
        );
        let deadline = Instant::now() + Duration::from_millis(1000);
        let mut count = 0;
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut p = libc::pollfd {
                fd: raw.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            if left.is_zero() || libc::poll(&mut p, 1, left.as_millis() as i32) == 0 {
                return count;
            }
            let got = libc::recv(raw.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            if got < 20 {
                continue;
            }
            let b = &buf[..got as usize];
            let ihl = ((b[0] & 0x0f) as usize) * 4;
            // ICMP type 3, then the quoted IP header and UDP ports.
            let Some(icmp) = b.get(ihl..) else { continue };
            if icmp.len() < 8 + 20 + 4 || icmp[0] != 3 {
                continue;
            }
            let inner = &icmp[8..];
            let l4 = ((inner[0] & 0x0f) as usize) * 4;
            let Some(ports) = inner.get(l4..l4 + 4) else {
                continue;
            };
            if inner[9] == libc::IPPROTO_UDP as u8
                && u16::from_be_bytes([ports[0], ports[1]]) == u16::from_be(own.sin_port)
                && u16::from_be_bytes([ports[2], ports[3]]) == port
            {
                count += 1;
            }
        }
    })
}

/// The ICMP errors bursts of datagrams get back from REJECT, with `fw`:
/// - INPUT, FORWARD: 20 datagrams, default sysctls: the destination's bucket lets 6 through;
/// - OUTPUT: 20 datagrams: the error goes to a local address (through lo for the kernel),
///   which only the namespace-wide bucket (50 at once) limits, so all 20;
/// - the namespace-wide bucket alone (icmp_ratelimit=0, icmp_msgs_burst=10,
///   icmp_msgs_per_sec=10, so no refill within 100 ms): 60 datagrams to INPUT; each error
///   spends 0, 1 or 2 of the 10 credits at random, so 5 to about 30 errors.
fn bursts(fw: Fw) -> Vec<(&'static str, usize)> {
    let mut seen = Vec::new();
    {
        let Pair { lab, host, c1, .. } = Pair::new(fw.clone());
        lab.ipt_ok(&host, "-A INPUT -p udp --dport 80 -j REJECT");
        seen.push(("INPUT", errors_for_burst(&c1, HOST1, 80, 20)));
        // One rule count per datagram, answered or not.
        seen.push((
            "INPUT rule packets",
            rule_packets(&lab, &host, "INPUT") as usize,
        ));
        lab.ipt_ok(&host, &format!("-A OUTPUT -d {C1} -p udp -j REJECT"));
        seen.push(("OUTPUT", errors_for_burst(&host, C1, 80, 20)));
    }
    {
        let Routed {
            lab,
            client,
            router,
            ..
        } = Routed::new(fw.clone());
        lab.ipt_ok(&router, "-A FORWARD -p udp --dport 80 -j REJECT");
        seen.push(("FORWARD", errors_for_burst(&client, SERVER, 80, 20)));
    }
    {
        let Pair { lab, host, c1, .. } = Pair::new(fw);
        host.sysctl("net.ipv4.icmp_ratelimit=0");
        host.sysctl("net.ipv4.icmp_msgs_burst=10");
        host.sysctl("net.ipv4.icmp_msgs_per_sec=10");
        lab.ipt_ok(&host, "-A INPUT -p udp --dport 80 -j REJECT");
        seen.push(("namespace-wide", errors_for_burst(&c1, HOST1, 80, 60)));
    }
    seen
}

#[test]
fn rate_limits_as_legacy() {
    let (legacy, pcn) = std::thread::scope(|s| {
        let l = s.spawn(|| bursts(Fw::legacy()));
        let p = s.spawn(|| bursts(Fw::pcn()));
        (l.join().unwrap(), p.join().unwrap())
    });
    eprintln!(
        "errors received, iptables-legacy: {legacy:?}\nerrors received, pcn-iptables:  {pcn:?}"
    );
    for ((what, l), (_, p)) in legacy.iter().zip(&pcn) {
        let (l, p) = (*l, *p);
        match *what {
            // Random spending: both within what the algorithm allows, and well below 60.
            "namespace-wide" => {
                assert!((5..=35).contains(&l), "{what}: iptables-legacy got {l}");
                assert!(
                    (5..=35).contains(&p),
                    "{what}: pcn-iptables got {p}, legacy {l}"
                );
            }
            "INPUT rule packets" => assert_eq!(p, l, "{what}"),
            _ => assert!(p.abs_diff(l) <= 1, "{what}: pcn-iptables {p}, legacy {l}"),
        }
    }
    // The reference itself shows the limits (otherwise this test would prove nothing).
    let get = |v: &[(&str, usize)], k: &str| v.iter().find(|(w, _)| *w == k).unwrap().1;
    assert!((5..=7).contains(&get(&legacy, "INPUT")), "{legacy:?}");
    assert_eq!(get(&legacy, "OUTPUT"), 20, "{legacy:?}");
}
