//! REJECT: the sender really gets the answer (TCP RST, ICMP error) on INPUT, FORWARD and
//! OUTPUT, as from iptables-legacy: same errors seen by sockets, same ICMP type/code and
//! source address seen by ping, same counters.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Fw, Ns, Pair, Routed, scenarios};

scenarios!(reject_input, reject_forward, reject_output);

/// veth delivers XDP_TX frames only to a peer with NAPI on, which an XDP program there turns
/// on: pcn-iptables' own, with nothing to filter. (The kernel's REJECT needs nothing of the sort.)
fn peer_napi(lab: &pcn_iptables_tests::Lab, ns: &Ns) {
    if lab.fw.is_pcn() {
        lab.ipt_ok(ns, "-P INPUT ACCEPT");
    }
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

#[track_caller]
fn check(got: String, want: &str, what: &str) {
    assert_eq!(got, want, "{what}");
}

/// INPUT: every --reject-with type answers the client; the rule counts what it rejected.
fn reject_input(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    peer_napi(&lab, &c1);
    // The kernel rate-limits its ICMP errors per peer (6 at once, then 1/s); pcn-iptables
    // does not. Off, so that every probe gets its answer from both.
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

    for (with, seen) in [
        ("icmp-net-unreachable", "Destination Net Unreachable"),
        ("icmp-host-unreachable", "Destination Host Unreachable"),
        ("icmp-port-unreachable", "Destination Port Unreachable"),
        ("icmp-proto-unreachable", "Destination Protocol Unreachable"),
        ("icmp-net-prohibited", "Destination Net Prohibited"),
        ("icmp-host-prohibited", "Destination Host Prohibited"),
        ("icmp-admin-prohibited", "Packet filtered"),
    ] {
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
    peer_napi(&lab, &client);
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
    check(tcp(&host, C1, 80), "ECONNREFUSED", "tcp-reset");
    check(tcp(&host, C1, 81), "connected", "other port");
    check(udp(&host, C1, 80), "ECONNREFUSED", "udp");
    check(udp(&host, C1, 81), "echo", "udp, other port");
    // The kernel answers from the host's own address; pcn-iptables from the destination
    // (an answer with a local source address would be a martian on ingress). See the man page.
    let from = if lab.fw.is_pcn() { C1 } else { HOST1 };
    check(
        ping(&host, C1),
        &format!("From {from} Destination Net Prohibited"),
        "ping",
    );
    check(
        ping(&host, C2),
        &format!("reply from {C2}"),
        "other destination",
    );
    assert_eq!(rule_packets(&lab, &host, "OUTPUT"), 1);
}
