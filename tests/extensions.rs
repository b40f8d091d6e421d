//! The everyday match extensions (issue 5) with real packets: multiport, tcp flags and --syn,
//! icmp types, iprange, mac, length, ttl, fragments, addrtype, comment. Each scenario runs
//! against iptables-legacy (`legacy`), against pcn-iptables (`pcn`), and both side by side
//! (`diff_pcn`: same verdicts, same -S and the same rule counters).

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Pair, Pass, Routed, Transcript};

pcn_iptables_tests::differential_scenarios!(
    multiport_ports,
    tcp_flags_and_syn,
    tcp_options,
    icmp_types,
    iprange_and_mac,
    length_and_ttl,
    fragments,
    addrtype,
    addrtype_through_the_device,
    comment_changes_nothing,
    forward_sees_the_decremented_ttl,
);

/// Records the rules and their packet counters (`-L -v -x -n` minus byte counts, which differ
/// with TCP options between runs, and, for fragmented datagrams, because pcn-iptables counts
/// the first fragment where netfilter counts the reassembled datagram) and `-S` in the
/// transcript, so that `diff_pcn` compares them.
fn record(t: &mut Transcript, lab: &Lab, ns: &Ns, name: &str) {
    record_masked(t, lab, ns, name, None);
}

/// `record`, with `mask` (text that differs between the two runs, such as a MAC address)
/// replaced by `MASKED`.
fn record_masked(t: &mut Transcript, lab: &Lab, ns: &Ns, name: &str, mask: Option<&str>) {
    let masked = |text: String| match mask {
        Some(m) => text
            .replace(&m.to_lowercase(), "MASKED")
            .replace(&m.to_uppercase(), "MASKED"),
        None => text,
    };
    let out = lab.ipt_ok(ns, "-v -x -L -n");
    let packets: String = out
        .stdout
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some(p), Some(_bytes)) if p.parse::<u64>().is_ok() => {
                    format!("{p} {}\n", w.collect::<Vec<_>>().join(" "))
                }
                _ => match l.split_once(" packets, ") {
                    Some((head, _bytes)) => format!("{head} packets)\n"),
                    None => format!("{l}\n"),
                },
            }
        })
        .collect();
    t.text(name, masked(packets));
    t.text(&format!("{name} -S"), masked(lab.rules(ns)));
}

/// `--dports` lists and ranges, `--sports`, `--ports` (either end), and `!`.
fn multiport_ports(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[21, 22, 80, 443, 8000, 8080, 8081, 9000]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m multiport --dports 22,80,8000:8080 -j DROP",
    );
    for (p, v) in [(21, Pass), (22, Drop), (80, Drop), (443, Pass)] {
        lab.expect(&c1.tcp(HOST1, p), v);
    }
    for (p, v) in [(8000, Drop), (8080, Drop), (8081, Pass)] {
        lab.expect(&c1.tcp(HOST1, p), v);
    }

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m multiport ! --dports 80,443 -j DROP",
    );
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.expect(&c1.udp(HOST1, 443), Pass);
    lab.expect(&c1.udp(HOST1, 9000), Drop);
    lab.expect(&c1.tcp(HOST1, 9000), Pass);

    // Source ports, and --ports: a datagram matches by either of its ports.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m multiport --sports 5000,5002:5004 -j DROP",
    );
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m multiport --ports 7000,9000 -j DROP",
    );
    lab.expect(&c1.udp(HOST1, 80).sport(5000), Drop);
    lab.expect(&c1.udp(HOST1, 80).sport(5003), Drop);
    lab.expect(&c1.udp(HOST1, 80).sport(5001), Pass);
    lab.expect(&c1.udp(HOST1, 80).sport(7000), Drop);
    lab.expect(&c1.udp(HOST1, 9000).sport(6000), Drop);
    lab.expect(&c1.udp(HOST1, 80).sport(6000), Pass);

    // ! --ports: neither end may be in the list.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p udp -m multiport ! --ports 80,7000 -j DROP",
    );
    lab.expect(&c1.udp(HOST1, 80).sport(6000), Pass);
    lab.expect(&c1.udp(HOST1, 9000).sport(7000), Pass);
    lab.expect(&c1.udp(HOST1, 9000).sport(6000), Drop);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// `--syn` and `--tcp-flags` on the handshake: the server's SYN-ACK leaves through OUTPUT,
/// the client's SYN comes in through INPUT.
fn tcp_flags_and_syn(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80, 81]);
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 80 --syn -j DROP");
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 81), Pass);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p tcp ! --syn -j ACCEPT");
    lab.ipt_ok(&host, "-A INPUT -p tcp --dport 81 -j DROP");
    // The SYN falls through to the DROP.
    lab.expect(&c1.tcp(HOST1, 81), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Pass);

    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        &format!("-A OUTPUT -p tcp -d {C2} --tcp-flags SYN,ACK SYN,ACK -j DROP"),
    );
    lab.expect(&c2.tcp(HOST2, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Pass);

    lab.ipt_ok(&host, "-F OUTPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --tcp-flags ALL SYN -m tcp --dport 81 -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 81), Drop);
    record(&mut t, &lab, &host, "host");
    // The SYN of port 80 has SYN set, so only the rest of the connection is dropped: the
    // handshake's final ACK, but connect() has returned by then. (Not counted: the server
    // retransmits its SYN-ACK on its own schedule.)
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --tcp-flags SYN NONE --dport 80 -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    t.finish(&lab)
}

/// `--tcp-option` (with `!`), as Linux's handshakes carry them: a SYN has window scaling (3)
/// and SACK permitted (4), every segment timestamps (8), the SYN-ACK an MSS (2).
fn tcp_options(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80, 81]);
    lab.ipt_lines(
        &host,
        "-A INPUT -p tcp --dport 80 --tcp-option 3 -j DROP
         -A INPUT -p tcp --dport 81 ! --tcp-option 4
         -A INPUT -p tcp -m tcp --dport 81 --tcp-option 8
         -A OUTPUT -p tcp --sport 81 --tcp-option 2
         -A OUTPUT -p tcp --sport 81 ! --tcp-option 0x08",
    );
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 81), Pass);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// `--icmp-type` by name, number, type/code and `any`, with `!`.
fn icmp_types(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.ipt_ok(&host, "-A INPUT -p icmp --icmp-type echo-request -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp --icmp-type 0 -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp --icmp-type 8/0 -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp --icmp-type 8/1 -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p icmp -m icmp ! --icmp-type echo-reply -j DROP",
    );
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p icmp --icmp-type any -s 198.18.2.0/24 -j DROP",
    );
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c2.ping(HOST2), Drop);
    // The host's own pings: echo-replies come back in through INPUT.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p icmp --icmp-type echo-reply -j DROP");
    lab.expect(&host.ping(C1), Drop);
    lab.expect(&c1.ping(HOST1), Pass);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// `-m iprange` ranges (with `!`, next to `-s`) and `-m mac --mac-source`.
fn iprange_and_mac(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80]);
    // C1 is .1, C1_ALT .3.
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m iprange --src-range 198.18.1.2-198.18.1.3 -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.tcp(HOST1, 80).src(C1_ALT), Drop);
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -s 198.18.0.0/16 -m iprange ! --src-range 198.18.1.0-198.18.1.2 -m iprange --dst-range 198.18.1.2-198.18.1.3 -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.tcp(HOST1, 80).src(C1_ALT), Drop);
    lab.expect(&c1.tcp(HOST1_ALT, 80).src(C1_ALT), Pass);
    lab.expect(&c2.tcp(HOST2, 80), Pass);

    let mac = c1
        .exec(&["cat", "/sys/class/net/eth0/address"])
        .stdout
        .trim()
        .to_string();
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        &format!("-A INPUT -m mac --mac-source {mac} -j DROP"),
    );
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&c2.ping(HOST2), Pass);
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(
        &host,
        &format!(
            "-A INPUT -p icmp -m mac ! --mac-source {} -j DROP",
            mac.to_uppercase()
        ),
    );
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&c2.ping(HOST2), Drop);
    // The listing names c1's MAC, which differs between the two runs.
    record_masked(&mut t, &lab, &host, "host", Some(&mac.to_uppercase()));
    t.finish(&lab)
}

/// `-m length` (the IP total length: a UDP probe is 20 + 8 + 16 = 44 bytes) and `-m ttl`.
fn length_and_ttl(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80]);
    lab.ipt_ok(&host, "-A INPUT -p udp -m length --length 44 -j DROP");
    lab.expect(&c1.udp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p udp -m length --length 45:1500 -j DROP",
    );
    lab.expect(&c1.udp(HOST1, 80), Pass);
    lab.ipt_ok(&host, "-R INPUT 1 -m length ! --length 0:43 -p udp -j DROP");
    lab.expect(&c1.udp(HOST1, 80), Drop);

    // Linux sends with TTL 64.
    lab.ipt_ok(&host, "-F INPUT");
    lab.ipt_ok(&host, "-A INPUT -p icmp -m ttl --ttl-eq 64 -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp -m ttl --ttl-lt 64 -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp -m ttl --ttl-gt 63 -j DROP");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp -m ttl ! --ttl-eq 64 -j DROP");
    lab.expect(&c1.ping(HOST1), Pass);
    c1.sysctl("net.ipv4.ip_default_ttl=30");
    lab.expect(&c1.ping(HOST1), Drop);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// A ping too big for the link arrives in fragments: `-f` drops the later ones (and so the
/// ping), `! -f` the first.
fn fragments(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    let big_ping = |c: &Ns| {
        c.exec(&["ping", "-n", "-q", "-c1", "-W", "1", "-s", "3000", HOST1])
            .success()
    };
    let small_ping = |c: &Ns| {
        c.exec(&["ping", "-n", "-q", "-c1", "-W", "1", HOST1])
            .success()
    };
    lab.ipt_ok(&host, "-A INPUT -f -j DROP");
    t.text(
        "-f: big, small",
        format!("{} {}", big_ping(&c1), small_ping(&c1)),
    );
    lab.ipt_ok(&host, "-R INPUT 1 -p icmp ! -f -s 198.18.1.0/24 -j DROP");
    t.text(
        "! -f: big, small",
        format!("{} {}", big_ping(&c1), small_ping(&c1)),
    );
    lab.ipt_ok(&host, "-F INPUT");
    t.text(
        "none: big, small",
        format!("{} {}", big_ping(&c1), small_ping(&c1)),
    );
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// `-m addrtype`: the host's own addresses are LOCAL, a subnet's broadcast address is
/// BROADCAST, the clients' addresses UNICAST.
fn addrtype(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, c2 } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m addrtype --dst-type LOCAL -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c2.tcp(HOST2, 80), Drop);
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p tcp -m addrtype ! --src-type UNICAST,LOCAL -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.ipt_ok(&host, "-R INPUT 1 -p tcp -m addrtype --src-type UNICAST --dst-type LOCAL -s 198.18.2.0/24 -j DROP");
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c2.tcp(HOST2, 80), Drop);
    // The host's own connections leave through OUTPUT from a LOCAL source.
    lab.ipt_ok(&host, "-F INPUT");
    lab.serve(&c1, &[80]);
    lab.ipt_ok(
        &host,
        "-A OUTPUT -p tcp -m addrtype --src-type LOCAL --dst-type UNICAST -j DROP",
    );
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.ipt_ok(
        &host,
        "-R OUTPUT 1 -p tcp -m addrtype --dst-type BROADCAST,MULTICAST -j DROP",
    );
    lab.expect(&host.tcp(C1, 80), Pass);
    // A broadcast ping: c1 to its subnet's broadcast address, which the host answers when
    // asked to.
    host.sysctl("net.ipv4.icmp_echo_ignore_broadcasts=0");
    lab.ipt_ok(&host, "-F OUTPUT");
    lab.ipt_ok(
        &host,
        "-A INPUT -p icmp -m addrtype --dst-type BROADCAST -j DROP",
    );
    let broadcast_ping = |c: &Ns| {
        c.exec(&["ping", "-n", "-q", "-b", "-c1", "-W", "1", "198.18.1.255"])
            .success()
    };
    t.text("broadcast ping answered", broadcast_ping(&c1).to_string());
    lab.expect(&c1.ping(HOST1), Pass);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// `--limit-iface-in/out`: the host's address on c2's side is LOCAL through that interface
/// only; a packet from c1 to it, or the host's own packet from it to c1, sees it UNICAST.
fn addrtype_through_the_device(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp -m addrtype --dst-type LOCAL --limit-iface-in -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.tcp(HOST2, 80), Pass);
    lab.ipt_ok(
        &host,
        "-R INPUT 1 -p tcp -m addrtype ! --dst-type LOCAL --limit-iface-in -j DROP",
    );
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.tcp(HOST2, 80), Drop);
    // The source's type through the output device (and a rule in a chain OUTPUT jumps to).
    lab.ipt_ok(&host, "-F INPUT");
    lab.serve(&c1, &[80]);
    lab.ipt_ok(&host, "-N out");
    lab.ipt_ok(
        &host,
        "-A out -p tcp -m addrtype --src-type LOCAL --dst-type UNICAST --limit-iface-out -j DROP",
    );
    lab.ipt_ok(&host, "-A OUTPUT -j out");
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.expect(&host.tcp(C1, 80).src(HOST2), Pass);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// A comment is kept and printed; the rule matches as it would without it.
fn comment_changes_nothing(fw: Fw) -> Transcript {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&host, &[80]);
    let out = lab.ipt_args(
        &host,
        &[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "80",
            "-m",
            "comment",
            "--comment",
            "web: closed for now",
            "-j",
            "DROP",
        ],
    );
    t.text(
        "-A with a comment",
        format!("{:?} {}", out.code, out.stderr),
    );
    lab.expect(&c1.tcp(HOST1, 80), Drop);
    lab.expect(&c1.ping(HOST1), Pass);
    record(&mut t, &lab, &host, "host");
    t.finish(&lab)
}

/// In FORWARD, netfilter sees the TTL after the router's decrement.
fn forward_sees_the_decremented_ttl(fw: Fw) -> Transcript {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    let mut t = Transcript::new(&lab);
    lab.serve(&server, &[80]);
    lab.ipt_ok(&router, "-A FORWARD -p tcp -m ttl --ttl-eq 64 -j DROP");
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.ipt_ok(&router, "-R FORWARD 1 -p tcp -m ttl --ttl-eq 63 -j DROP");
    lab.expect(&client.tcp(SERVER, 80), Drop);
    // And -m length/-m multiport/--syn in FORWARD alike.
    lab.ipt_ok(
        &router,
        "-R FORWARD 1 -p tcp -m multiport --dports 80,81 --syn -j DROP",
    );
    lab.expect(&client.tcp(SERVER, 80), Drop);
    record(&mut t, &lab, &router, "router");
    t.finish(&lab)
}
