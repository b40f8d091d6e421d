//! The nat table with real packets (issue 15, "How it is shown"): MASQUERADE, SNAT, DNAT and
//! REDIRECT on a container host ([`Gateway`]: two containers behind a router, one outside
//! host with no route to the containers), run against iptables-legacy (netfilter) and
//! pcn-iptables in sibling namespaces.
//!
//! Each scenario has three tests: `<name>::legacy` and `<name>::pcn` check the scenario's own
//! expectations (what netfilter gives); `<name>::diff_pcn` runs both side by side and demands
//! the same verdicts and the same recorded outputs. `cargo test --test nat -- legacy` runs the
//! reference only; `-- masquerade_out::` one scenario's three tests; `-- ::pcn` every
//! scenario on pcn-iptables alone. Every check made is printed on stderr (shown on failure, or
//! with `--nocapture`).
//!
//! Addresses: the [`Gateway`] networks (198.18.20.0/22 inside, 198.18.30.0/24 outside),
//! addresses nobody has for OUTPUT DNAT (198.18.99.0/24), and kube-proxy's ClusterIPs
//! (198.19.0.0/16) and absent endpoints (198.18.128.0/18): all in 198.18.0.0/15.
//!
//! The observations are real: what address and port the server saw (a [`Whoami`] server tells
//! each client, and remembers), whether the answers came back, which error a socket got
//! (ECONNREFUSED from a translated RST or ICMP error), and the nat chains' counters. Port
//! numbers the kernel picks at random (ephemeral ports, SNAT's choice in a range) never go
//! into the transcript as such: only what must hold of them (kept, distinct, in range).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pcn_iptables_tests::gateway::*;
use pcn_iptables_tests::lab::ip4;
use pcn_iptables_tests::whoami::{
    Reply, Whoami, errno_name, tcp_ask, tcp_open, tcp_open_many, udp_ask, udp_ask_no_checksum,
    udp_ask_retry,
};
use pcn_iptables_tests::{Drop, Fw, Lab, Listing, Ns, Pass, Transcript, differential_scenarios};

differential_scenarios!(
    masquerade_out,
    published_port,
    snat_port_range,
    redirect_local,
    dnat_to_local_address,
    output_dnat,
    icmp_through_nat,
    masquerade_after_renumbering,
    nat_counters,
    kube_proxy_scale,
    docker_bridge,
    conntrack_nat_matches,
    conntrack_nat_first_packets,
    udp_zero_checksum,
    netmap_and_ranges,
);

/// The transcripts hold nothing that varies from run to run (random ports, timings): two
/// reference runs side by side compare equal, so a `diff_pcn` failure is a real difference.
/// Ignored by default (it doubles the reference runs): `cargo test --test nat -- --ignored`.
#[test]
#[ignore]
fn transcripts_are_deterministic() {
    type Scenario = fn(Fw) -> Transcript;
    let all: [(&str, Scenario); 15] = [
        ("masquerade_out", masquerade_out),
        ("published_port", published_port),
        ("snat_port_range", snat_port_range),
        ("redirect_local", redirect_local),
        ("dnat_to_local_address", dnat_to_local_address),
        ("output_dnat", output_dnat),
        ("icmp_through_nat", icmp_through_nat),
        ("masquerade_after_renumbering", masquerade_after_renumbering),
        ("nat_counters", nat_counters),
        ("kube_proxy_scale", kube_proxy_scale),
        ("docker_bridge", docker_bridge),
        ("conntrack_nat_matches", conntrack_nat_matches),
        ("conntrack_nat_first_packets", conntrack_nat_first_packets),
        ("udp_zero_checksum", udp_zero_checksum),
        ("netmap_and_ranges", netmap_and_ranges),
    ];
    for (name, scenario) in all {
        eprintln!("{name}: two iptables-legacy runs side by side");
        pcn_iptables_tests::differential(Fw::legacy(), Fw::legacy(), scenario);
    }
}

/// Expected answers wait this long (a lost SYN is sent again after 1 s).
const PASS_WAIT: Duration = Duration::from_secs(4);
/// Expected silences wait this long.
const DROP_WAIT: Duration = Duration::from_millis(1200);

/// The server's view of a TCP connection from `ns` to `dst:port`: (address it saw the client
/// come from, whether it saw the client's own port, where it saw the client arrive).
fn tcp_view(ns: &Ns, dst: &str, port: u16) -> Result<(Ipv4Addr, bool, SocketAddrV4), String> {
    tcp_ask(ns, dst, port, None, PASS_WAIT).map(view)
}

/// [`tcp_view`] for one UDP datagram (retried while nothing comes back).
fn udp_view(ns: &Ns, dst: &str, port: u16) -> Result<(Ipv4Addr, bool, SocketAddrV4), String> {
    udp_ask_retry(ns, dst, port, 0).map(view)
}

fn view(r: Reply) -> (Ipv4Addr, bool, SocketAddrV4) {
    (*r.peer.ip(), r.port_kept(), r.local)
}

/// What `tcp_view`/`udp_view` should give: the server saw `peer` (the client's port kept when
/// `kept`) arrive at `local:port`.
fn saw(
    peer: &str,
    kept: bool,
    local: &str,
    port: u16,
) -> Result<(Ipv4Addr, bool, SocketAddrV4), String> {
    Ok((ip4(peer), kept, SocketAddrV4::new(ip4(local), port)))
}

fn sa(a: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip4(a), port)
}

/// The distinct source addresses of the echo requests `srv` saw, once its raw socket's reader
/// has caught up: the echo reply can reach the client before that thread records the
/// request, so the set is read until two reads 100 ms apart agree (1 s at most).
fn icmp_sources(srv: &Whoami) -> Vec<Ipv4Addr> {
    let read = || -> Vec<Ipv4Addr> {
        let s: BTreeSet<Ipv4Addr> = srv.seen_of("icmp").iter().map(|s| *s.peer.ip()).collect();
        s.into_iter().collect()
    };
    let mut last = read();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// The packet counts of the rules of `-t nat -L chain -v -x -n`, and its policy's.
fn nat_counts(lab: &Lab, ns: &Ns, chain: &str) -> (Vec<u64>, u64) {
    let text = lab
        .ipt_ok(ns, &format!("-t nat -L {chain} -v -x -n"))
        .stdout;
    let l = Listing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let c = &l.chains[0];
    (
        c.rules.iter().map(|r| r.pkts).collect(),
        c.policy.as_ref().map(|p| p.1).unwrap_or(0),
    )
}

/// 1. A container's connections out through `MASQUERADE`: the outside server sees the
///    router's address (and the container's own source port, as nf_nat keeps a port that
///    clashes with nothing); the answers come back. Two containers using the same source port
///    to the same server: the second is given another port.
fn masquerade_out(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let srv = Whoami::start(&ext, &[80], true);

    // Without the rule nothing comes back (ext has no route to the containers), and the
    // server sees the container's own address: what follows can tell the difference.
    k.check(
        "no nat: tcp c1 -> ext:80",
        tcp_ask(&c1, EXT, 80, None, DROP_WAIT).map(view),
        Err("timeout".into()),
    );
    lab.expect(&c1.ping(EXT), Drop);
    k.check(
        "no nat: echo requests ext saw from",
        icmp_sources(&srv),
        vec![ip4(C1)],
    );
    srv.clear();

    lab.ipt_ok(
        &router,
        &format!("-t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE"),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);

    for (who, ns) in [("c1", &c1), ("c2", &c2)] {
        k.check(
            &format!("tcp {who} -> ext:80"),
            tcp_view(ns, EXT, 80),
            saw(ROUTER_OUT, true, EXT, 80),
        );
        k.check(
            &format!("udp {who} -> ext:80"),
            udp_view(ns, EXT, 80),
            saw(ROUTER_OUT, true, EXT, 80),
        );
        lab.expect(&ns.ping(EXT), Pass);
    }
    k.check(
        "echo requests ext saw from",
        icmp_sources(&srv),
        vec![ip4(ROUTER_OUT)],
    );
    k.check(
        "every tcp/udp peer ext saw",
        srv.seen()
            .iter()
            .filter(|s| s.proto != "icmp")
            .map(|s| *s.peer.ip())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([ip4(ROUTER_OUT)]),
    );

    // c1 and c2 both from port 40000 to ext:80, at the same time: one tuple after
    // translation would be the same, so the second connection gets another port.
    let a = tcp_open(&c1, EXT, 80, Some(("", 40000)), PASS_WAIT);
    let b = tcp_open(&c2, EXT, 80, Some(("", 40000)), PASS_WAIT);
    k.check(
        "tcp c1:40000 -> ext:80, ext saw",
        a.as_ref().map(|(_, r)| r.peer),
        Ok(sa(ROUTER_OUT, 40000)),
    );
    k.check_that(
        "tcp c2:40000 -> ext:80 at the same time: ext saw the router, another port",
        matches!(&b, Ok((_, r)) if *r.peer.ip() == ip4(ROUTER_OUT) && r.peer.port() != 40000),
        b.as_ref().map(|(_, r)| r.peer),
    );
    drop((a, b));
    // UDP alike (the first datagram's entry lives on for 30 s).
    let a = udp_ask(&c1, EXT, 80, 40001, PASS_WAIT);
    let b = udp_ask(&c2, EXT, 80, 40001, PASS_WAIT);
    k.check(
        "udp c1:40001 -> ext:80, ext saw",
        a.map(|r| r.peer),
        Ok(sa(ROUTER_OUT, 40001)),
    );
    k.check_that(
        "udp c2:40001 -> ext:80 next: ext saw the router, another port",
        matches!(&b, Ok(r) if *r.peer.ip() == ip4(ROUTER_OUT) && r.peer.port() != 40001),
        b,
    );

    // MASQUERADE opens nothing inward.
    k.check(
        "tcp ext -> router:40000",
        tcp_view(&ext, ROUTER_OUT, 40000),
        Err("ECONNREFUSED".into()),
    );
    drop(srv);
    k.finish(t, &lab)
}

/// Docker's filter rules around a published port: FORWARD policy DROP, established traffic
/// back to the bridge, new connections to the container's port only.
const DOCKER_FILTER: &str = "-P FORWARD DROP
    -N DOCKER
    -A FORWARD -o eth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A FORWARD -o eth0 -j DOCKER
    -A FORWARD -i eth0 ! -o eth0 -j ACCEPT";

/// 2. A published port, as Docker writes it (the DNAT in a `DOCKER` chain of the nat table,
///    MASQUERADE for the container's own connections): an outside client reaches the
///    container's port 80 via router:8080, and the container sees the client's real address;
///    the filter FORWARD chain sees the translated destination.
fn published_port(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], false);
    lab.ipt_lines(&router, DOCKER_FILTER);
    let accept_c1 = format!("-d {C1}/32 ! -i eth0 -o eth0 -p tcp -m tcp --dport 80 -j ACCEPT");
    lab.ipt_ok(&router, &format!("-A DOCKER {accept_c1}"));
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -N DOCKER
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -j DOCKER
             -t nat -A POSTROUTING -s 198.18.20.0/24 ! -o eth0 -j MASQUERADE
             -t nat -A DOCKER ! -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {C1}:80"
        ),
    );
    t.text("-S", lab.rules(&router));
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);

    for i in 1..=3 {
        k.check(
            &format!("tcp ext -> router:8080 ({i})"),
            tcp_view(&ext, ROUTER_OUT, 8080),
            saw(EXT, true, C1, 80),
        );
    }
    k.check(
        "peers the container saw",
        web.seen().iter().map(|s| *s.peer.ip()).collect::<Vec<_>>(),
        vec![ip4(EXT); 3],
    );
    // The DOCKER chain's ACCEPT took the first packet of each connection (the rest were
    // ESTABLISHED): the filter table saw the translated destination.
    let (counts, _) = filter_counts(&lab, &router, "DOCKER");
    k.check("filter DOCKER rule packets", counts, vec![3]);

    // Not published: the router itself answers.
    k.check(
        "tcp ext -> router:8081",
        tcp_view(&ext, ROUTER_OUT, 8081),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "udp ext -> router:8080 (only tcp published)",
        udp_view(&ext, ROUTER_OUT, 8080),
        Err("ECONNREFUSED".into()),
    );
    // From another inside network (eth2): translated too, the container sees c2's address.
    k.check(
        "tcp c2 -> router:8080",
        tcp_view(&c2, ROUTER_OUT, 8080),
        saw(C2, true, C1, 80),
    );
    // The container's own connection out: masqueraded, allowed by `-i eth0 ! -o eth0`.
    k.check(
        "tcp c1 -> ext:80",
        tcp_view(&c1, EXT, 80),
        saw(ROUTER_OUT, true, EXT, 80),
    );

    // A FORWARD rule written for the original destination lets nothing through: FORWARD
    // comes after the translation.
    lab.ipt_ok(
        &router,
        &format!("-R DOCKER 1 -d {ROUTER_OUT}/32 -p tcp -m tcp --dport 8080 -j ACCEPT"),
    );
    k.check(
        "FORWARD accepts router:8080 only: tcp ext -> router:8080",
        tcp_ask(&ext, ROUTER_OUT, 8080, None, DROP_WAIT).map(view),
        Err("timeout".into()),
    );
    lab.ipt_ok(&router, &format!("-R DOCKER 1 {accept_c1}"));
    k.check(
        "Docker's rule back: tcp ext -> router:8080",
        tcp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, C1, 80),
    );
    drop(web);
    k.finish(t, &lab)
}

/// The packet counts of the rules of `-L chain -v -x -n` (filter table).
fn filter_counts(lab: &Lab, ns: &Ns, chain: &str) -> (Vec<u64>, u64) {
    let text = lab.ipt_ok(ns, &format!("-L {chain} -v -x -n")).stdout;
    let l = Listing::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let c = &l.chains[0];
    (
        c.rules.iter().map(|r| r.pkts).collect(),
        c.policy.as_ref().map(|p| p.1).unwrap_or(0),
    )
}

/// Connections per container in [`snat_port_range`].
const PER_CONTAINER: u16 = 25;

/// 3. `SNAT --to-source ADDR:20000-20099` with 50 connections at once, 25 from each container,
///    both containers using the same 25 source ports: ext sees 50 distinct (address, port)
///    pairs, all from the router's address, all ports in the range. A source port already in
///    the range (and free) is kept, as nf_nat does. With `--random-fully`, the same, and the
///    ports are not one consecutive run.
fn snat_port_range(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _srv = Whoami::start(&ext, &[80, 81], false);
    let range = 20000..=20099u16;

    lab.ipt_ok(
        &router,
        &format!(
            "-t nat -A POSTROUTING -o eth1 -p tcp -j SNAT --to-source {ROUTER_OUT}:20000-20099"
        ),
    );
    t.text("-t nat -S (range)", lab.ipt_ok(&router, "-t nat -S").stdout);
    // In the range and free: kept.
    let kept = tcp_open(&c1, EXT, 80, Some(("", 20042)), PASS_WAIT);
    k.check(
        "tcp c1:20042 -> ext:80, ext saw",
        kept.as_ref().map(|(_, r)| r.peer),
        Ok(sa(ROUTER_OUT, 20042)),
    );
    let mapped = many_through_snat(&mut k, "range", &c1, &c2, 80, 40000);
    let ports: Vec<u16> = mapped.iter().map(|a| a.port()).collect();
    k.check_that(
        "range: every port in 20000-20099",
        ports.iter().all(|p| range.contains(p)),
        &ports,
    );
    k.check_that(
        "range: 20042 (held by the first connection) given to no other",
        !ports.contains(&20042),
        &ports,
    );
    drop(kept);

    // --random-fully, to another server port (the tuples above linger in CLOSE state).
    lab.ipt_ok(
        &router,
        &format!(
            "-t nat -R POSTROUTING 1 -o eth1 -p tcp -j SNAT --to-source {ROUTER_OUT}:20000-20099 --random-fully"
        ),
    );
    t.text(
        "-t nat -S (random-fully)",
        lab.ipt_ok(&router, "-t nat -S").stdout,
    );
    let mapped = many_through_snat(&mut k, "random-fully", &c1, &c2, 81, 40100);
    let mut ports: Vec<u16> = mapped.iter().map(|a| a.port()).collect();
    ports.sort_unstable();
    k.check_that(
        "random-fully: every port in 20000-20099",
        ports.iter().all(|p| range.contains(p)),
        &ports,
    );
    k.check_that(
        "random-fully: the ports are not one consecutive run",
        ports.len() > 1 && usize::from(ports[ports.len() - 1] - ports[0]) + 1 > ports.len(),
        &ports,
    );
    k.finish(t, &lab)
}

/// 25 connections from each of c1 and c2 (source ports `sport0`.., the same in both) to
/// ext:`port`, all open at once: checks they all got answers, from the router's address, with
/// distinct mapped tuples; returns the tuples ext saw.
fn many_through_snat(
    k: &mut Checks,
    what: &str,
    c1: &Ns,
    c2: &Ns,
    port: u16,
    sport0: u16,
) -> Vec<SocketAddrV4> {
    let sports: Vec<u16> = (sport0..sport0 + PER_CONTAINER).collect();
    let (r1, r2) = std::thread::scope(|s| {
        let h1 = s.spawn(|| tcp_open_many(c1, EXT, port, &sports, Duration::from_secs(8)));
        let h2 = s.spawn(|| tcp_open_many(c2, EXT, port, &sports, Duration::from_secs(8)));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    let all: Vec<&Result<(OwnedFd, Reply), String>> = r1.iter().chain(&r2).collect();
    let errors: Vec<&String> = all.iter().filter_map(|r| r.as_ref().err()).collect();
    let mapped: Vec<SocketAddrV4> = all
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(_, r)| r.peer))
        .collect();
    k.check(
        &format!("{what}: connections answered of 50"),
        mapped.len(),
        50,
    );
    k.check_that(&format!("{what}: no errors"), errors.is_empty(), &errors);
    k.check(
        &format!("{what}: addresses ext saw"),
        mapped.iter().map(|a| *a.ip()).collect::<BTreeSet<_>>(),
        BTreeSet::from([ip4(ROUTER_OUT)]),
    );
    k.check(
        &format!("{what}: distinct tuples ext saw"),
        mapped.iter().collect::<BTreeSet<_>>().len(),
        mapped.len(),
    );
    mapped
}

/// 4. `REDIRECT --to-ports 80` in PREROUTING: connections to port 8080 reach the router's
///    own server on 80, at the primary address of the interface they came in on (also those
///    that were going elsewhere: a transparent proxy); the router's own connections are not
///    redirected (PREROUTING does not see them).
fn redirect_local(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let local = Whoami::start(&router, &[80], false);
    let outside = Whoami::start(&ext, &[8080], false);
    lab.ipt_lines(
        &router,
        "-t nat -A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 80
         -t nat -A PREROUTING -p udp --dport 8080 -j REDIRECT --to-ports 80",
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);

    k.check(
        "tcp ext -> router:8080",
        tcp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, ROUTER_OUT, 80),
    );
    k.check(
        "udp ext -> router:8080",
        udp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, ROUTER_OUT, 80),
    );
    k.check(
        "tcp c1 -> router-in:8080",
        tcp_view(&c1, ROUTER_IN, 8080),
        saw(C1, true, ROUTER_IN, 80),
    );
    // To the router's outside address, coming in on eth0: redirected to eth0's address.
    k.check(
        "tcp c1 -> router-out:8080",
        tcp_view(&c1, ROUTER_OUT, 8080),
        saw(C1, true, ROUTER_IN, 80),
    );
    // Going through the router to ext: caught all the same.
    k.check(
        "tcp c1 -> ext:8080",
        tcp_view(&c1, EXT, 8080),
        saw(C1, true, ROUTER_IN, 80),
    );
    k.check(
        "udp c1 -> ext:8080",
        udp_view(&c1, EXT, 8080),
        saw(C1, true, ROUTER_IN, 80),
    );
    k.check("what ext's server saw", outside.seen().len(), 0);
    // The router's own connection: OUTPUT, not PREROUTING; nothing listens on 8080.
    k.check(
        "tcp router -> router-out:8080",
        tcp_view(&router, ROUTER_OUT, 8080),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "connections the router's server saw",
        local.seen_of("tcp").len(),
        4,
    );
    k.finish(t, &lab)
}

/// 4b. DNAT in PREROUTING to another local address of the router (and to a port only,
///     keeping the address): the router's own server gets the connection at the new address.
fn dnat_to_local_address(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _local = Whoami::start(&router, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8080 -j DNAT --to-destination {ROUTER_IN}:80
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p udp --dport 8080 -j DNAT --to-destination {ROUTER_IN}:80
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8081 -j DNAT --to-destination :80"
        ),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);
    k.check(
        "tcp ext -> router-out:8080",
        tcp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, ROUTER_IN, 80),
    );
    k.check(
        "udp ext -> router-out:8080",
        udp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, ROUTER_IN, 80),
    );
    k.check(
        "tcp ext -> router-out:8081 (port only)",
        tcp_view(&ext, ROUTER_OUT, 8081),
        saw(EXT, true, ROUTER_OUT, 80),
    );
    k.check(
        "tcp c1 -> router-out:8080",
        tcp_view(&c1, ROUTER_OUT, 8080),
        saw(C1, true, ROUTER_IN, 80),
    );
    // Not matched: straight to the router's port 80, and to 8080 on its inside address.
    k.check(
        "tcp ext -> router-out:80",
        tcp_view(&ext, ROUTER_OUT, 80),
        saw(EXT, true, ROUTER_OUT, 80),
    );
    k.check(
        "tcp c1 -> router-in:8080",
        tcp_view(&c1, ROUTER_IN, 8080),
        Err("ECONNREFUSED".into()),
    );
    k.finish(t, &lab)
}

/// 5. DNAT in OUTPUT: a process on the router connecting to an address nobody has reaches the
///    server the rule names: on the interface the original route took (ext), on another one
///    (c1: the packet is routed again), or on the router itself; answers come back from the
///    original address (the UDP socket is connected to it). Forwarded traffic to the same
///    address is not translated (OUTPUT sees local traffic only).
fn output_dnat(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _ext_srv = Whoami::start(&ext, &[80], false);
    let _c1_srv = Whoami::start(&c1, &[80], false);
    let _local = Whoami::start(&router, &[8080], false);
    // The original addresses need a route, as on any host: a default route via ext.
    router.ip(&format!("route add default via {EXT}"));
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A OUTPUT -d 198.18.99.99/32 -p tcp --dport 80 -j DNAT --to-destination {EXT}:80
             -t nat -A OUTPUT -d 198.18.99.99/32 -p udp --dport 80 -j DNAT --to-destination {EXT}:80
             -t nat -A OUTPUT -d 198.18.99.98/32 -p tcp --dport 80 -j DNAT --to-destination {C1}:80
             -t nat -A OUTPUT -d 198.18.99.97/32 -p tcp --dport 80 -j DNAT --to-destination {ROUTER_IN}:8080"
        ),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);
    k.check(
        "tcp router -> 198.18.99.99:80 (to ext)",
        tcp_view(&router, "198.18.99.99", 80),
        saw(ROUTER_OUT, true, EXT, 80),
    );
    k.check(
        "udp router -> 198.18.99.99:80 (to ext)",
        udp_view(&router, "198.18.99.99", 80),
        saw(ROUTER_OUT, true, EXT, 80),
    );
    // Source chosen for the original route (eth1), the packet rerouted to eth0.
    k.check(
        "tcp router -> 198.18.99.98:80 (to c1)",
        tcp_view(&router, "198.18.99.98", 80),
        saw(ROUTER_OUT, true, C1, 80),
    );
    k.check(
        "tcp router -> 198.18.99.97:80 (to itself)",
        tcp_view(&router, "198.18.99.97", 80),
        saw(ROUTER_OUT, true, ROUTER_IN, 8080),
    );
    k.check(
        "tcp router -> 198.18.99.99:81 (no rule)",
        tcp_ask(&router, "198.18.99.99", 81, None, DROP_WAIT).map(view),
        Err("timeout".into()),
    );
    k.check(
        "tcp c1 -> 198.18.99.99:80 (forwarded, not translated)",
        tcp_ask(&c1, "198.18.99.99", 80, None, DROP_WAIT).map(view),
        Err("timeout".into()),
    );
    k.finish(t, &lab)
}

/// What a TCP connect to a closed port gets, and whether it got it within a second (an RST
/// that comes back at once, not a retransmission or a timeout).
fn refused_quickly(ns: &Ns, dst: &str, port: u16) -> (Result<(), String>, bool) {
    let t0 = Instant::now();
    let r = tcp_ask(ns, dst, port, None, Duration::from_secs(3)).map(|_| ());
    (r, t0.elapsed() < Duration::from_millis(900))
}

/// 6. ICMP and errors through nat: ping through MASQUERADE (the server sees the router);
///    a TCP connection through DNAT to a closed port gets the container's RST back, translated
///    (refused at once, not a timeout); a UDP datagram through DNAT to a closed port gets the
///    container's ICMP port unreachable back with the quoted header translated (the client's
///    connected socket sees ECONNREFUSED); the same for the container's connections out
///    through MASQUERADE to closed ports of the server.
fn icmp_through_nat(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let srv = Whoami::start(&ext, &[80], true);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8080 -j DNAT --to-destination {C1}:81
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p udp --dport 8080 -j DNAT --to-destination {C1}:81"
        ),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);

    lab.expect(&c1.ping(EXT), Pass);
    lab.expect(&c2.ping(EXT), Pass);
    k.check(
        "echo requests ext saw from",
        icmp_sources(&srv),
        vec![ip4(ROUTER_OUT)],
    );
    // Two pings at once from both containers (each its own echo id).
    let (p1, p2) = std::thread::scope(|s| {
        let a = s.spawn(|| c1.exec(&["ping", "-n", "-q", "-c3", "-i0.2", "-W2", EXT]));
        let b = s.spawn(|| c2.exec(&["ping", "-n", "-q", "-c3", "-i0.2", "-W2", EXT]));
        (a.join().unwrap(), b.join().unwrap())
    });
    k.check(
        "3 pings each from c1 and c2 at once, all answered",
        (p1.success(), p2.success()),
        (true, true),
    );

    let (r, quick) = refused_quickly(&ext, ROUTER_OUT, 8080);
    k.check(
        "tcp ext -> router:8080 -> c1:81 (closed)",
        r,
        Err("ECONNREFUSED".into()),
    );
    k.check("... refused within a second", quick, true);
    k.check(
        "udp ext -> router:8080 -> c1:81 (closed)",
        udp_ask(&ext, ROUTER_OUT, 8080, 0, Duration::from_secs(2)).map(view),
        Err("ECONNREFUSED".into()),
    );
    let (r, quick) = refused_quickly(&c1, EXT, 9);
    k.check(
        "tcp c1 -> ext:9 (closed) through MASQUERADE",
        r,
        Err("ECONNREFUSED".into()),
    );
    k.check("... refused within a second", quick, true);
    k.check(
        "udp c1 -> ext:9 (closed) through MASQUERADE",
        udp_ask(&c1, EXT, 9, 0, Duration::from_secs(2)).map(view),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "udp c2 -> ext:9 (closed) through MASQUERADE",
        udp_ask(&c2, EXT, 9, 0, Duration::from_secs(2)).map(view),
        Err("ECONNREFUSED".into()),
    );
    drop(srv);
    k.finish(t, &lab)
}

/// What a held-open TCP connection gets when the client sends on it after a while: the data
/// cannot tell whether it arrived, so this reads: `"reset"` (an RST came back), `"closed"`,
/// `"silent"` (nothing within `wait`), or `"answer"`.
fn send_and_listen(fd: &OwnedFd, wait: Duration) -> String {
    let raw = fd.as_raw_fd();
    let msg = b"still there?";
    // SAFETY: send from a live buffer.
    unsafe { libc::send(raw, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: raw,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one live pollfd.
        if unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) } <= 0 {
            return "silent".into();
        }
        // SAFETY: recv into a live buffer of the given size.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => return "closed".into(),
            n if n > 0 => return "answer".into(),
            _ => {
                let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if e == libc::EAGAIN || e == libc::EINTR {
                    continue;
                }
                return if e == libc::ECONNRESET {
                    "reset".into()
                } else {
                    errno_name(e)
                };
            }
        }
    }
}

/// 7. MASQUERADE when the router's outside address changes (DHCP renumbering: `ip addr del`,
///    `ip addr add`): new connections use the new address; the old connections' entries are
///    dropped (netfilter's masquerade notifier), so the next datagram of an old UDP flow goes
///    out from the new address, and an old TCP connection is reset.
fn masquerade_after_renumbering(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let srv = Whoami::start(&ext, &[80], true);
    lab.ipt_ok(
        &router,
        &format!("-t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE"),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);
    k.check(
        "before: tcp c1 -> ext:80",
        tcp_view(&c1, EXT, 80),
        saw(ROUTER_OUT, true, EXT, 80),
    );
    let old = tcp_open(&c1, EXT, 80, None, PASS_WAIT);
    k.check(
        "before: held-open tcp c1 -> ext:80",
        old.as_ref().map(|(_, r)| *r.peer.ip()),
        Ok(ip4(ROUTER_OUT)),
    );
    k.check(
        "before: udp c1:40005 -> ext:80",
        udp_ask_retry(&c1, EXT, 80, 40005).map(|r| r.peer),
        Ok(sa(ROUTER_OUT, 40005)),
    );

    router.ip(&format!("addr del {ROUTER_OUT}/24 dev eth1"));
    router.ip(&format!("addr add {ROUTER_OUT2}/24 dev eth1"));
    // netfilter drops the old entries from a work queue: give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    srv.clear();

    k.check(
        "after: tcp c1 -> ext:80",
        tcp_view(&c1, EXT, 80),
        saw(ROUTER_OUT2, true, EXT, 80),
    );
    k.check(
        "after: udp c1 -> ext:80",
        udp_view(&c1, EXT, 80),
        saw(ROUTER_OUT2, true, EXT, 80),
    );
    lab.expect(&c1.ping(EXT), Pass);
    k.check(
        "after: echo requests ext saw from",
        icmp_sources(&srv),
        vec![ip4(ROUTER_OUT2)],
    );
    // The old UDP flow (same source port): its entry is gone, the next datagram goes out anew.
    k.check(
        "after: udp c1:40005 -> ext:80 again (old flow)",
        udp_ask_retry(&c1, EXT, 80, 40005).map(|r| r.peer),
        Ok(sa(ROUTER_OUT2, 40005)),
    );
    if let Ok((fd, _)) = &old {
        k.check(
            "after: data on the old tcp connection",
            send_and_listen(fd, Duration::from_secs(3)),
            "reset".to_string(),
        );
    }
    drop(srv);
    k.finish(t, &lab)
}

/// 8. The nat chains count the first packet of each connection only: N TCP connections and M
///    UDP flows through DNAT rules, K connections out through MASQUERADE; the rules' and the
///    policies' packet counts, and the whole `-t nat -L -v -x -n` (byte counts included: the
///    packets are the same kernel's on both sides); `-Z` zeroes them, and counting resumes.
fn nat_counters(fw: Fw) -> Transcript {
    const N: usize = 5;
    const M: usize = 3;
    const K: usize = 4;
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8080 -j DNAT --to-destination {C1}:80
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p udp --dport 8080 -j DNAT --to-destination {C1}:80
             -t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE"
        ),
    );
    let once = Duration::from_secs(3);
    let mut answered = 0;
    for _ in 0..N {
        answered += usize::from(tcp_ask(&ext, ROUTER_OUT, 8080, None, once).is_ok());
    }
    for _ in 0..M {
        answered += usize::from(udp_ask(&ext, ROUTER_OUT, 8080, 0, once).is_ok());
    }
    for _ in 0..K {
        answered += usize::from(tcp_ask(&c1, EXT, 80, None, once).is_ok());
    }
    k.check("connections answered", answered, N + M + K);
    // A SYN sent again would still be the same connection: wait for things to settle.
    std::thread::sleep(Duration::from_millis(200));
    k.check(
        "PREROUTING (rules, policy) packets",
        nat_counts(&lab, &router, "PREROUTING"),
        (vec![N as u64, M as u64], K as u64),
    );
    k.check(
        "POSTROUTING (rules, policy) packets",
        nat_counts(&lab, &router, "POSTROUTING"),
        (vec![K as u64], (N + M) as u64),
    );
    k.check(
        "INPUT (policy) packets",
        nat_counts(&lab, &router, "INPUT"),
        (vec![], 0),
    );
    k.check(
        "OUTPUT (policy) packets",
        nat_counts(&lab, &router, "OUTPUT"),
        (vec![], 0),
    );
    t.text(
        "-t nat -L -v -x -n",
        lab.ipt_ok(&router, "-t nat -L -v -x -n").stdout,
    );

    // A connection to the router itself: nat INPUT counts it (and PREROUTING's policy).
    k.check(
        "tcp ext -> router:80 (closed)",
        tcp_ask(&ext, ROUTER_OUT, 80, None, once).map(|_| ()),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "INPUT after one local connection",
        nat_counts(&lab, &router, "INPUT"),
        (vec![], 1),
    );

    lab.ipt_ok(&router, "-t nat -Z");
    k.check(
        "PREROUTING after -Z",
        nat_counts(&lab, &router, "PREROUTING"),
        (vec![0, 0], 0),
    );
    k.check(
        "tcp ext -> router:8080 after -Z",
        tcp_ask(&ext, ROUTER_OUT, 8080, None, once).is_ok(),
        true,
    );
    k.check(
        "PREROUTING after -Z and one connection",
        nat_counts(&lab, &router, "PREROUTING"),
        (vec![1, 0], 0),
    );
    t.text(
        "-t nat -L -v -x -n after -Z",
        lab.ipt_ok(&router, "-t nat -L -v -x -n").stdout,
    );
    k.finish(t, &lab)
}

/// Services in [`kube_proxy_ruleset`]: with 2 endpoints each, 5 rules a service.
const SERVICES: usize = 2000;

/// A service's ClusterIP (in 198.19.0.0/16).
fn cluster_ip(i: usize) -> String {
    format!("198.19.{}.{}", i / 250, i % 250 + 1)
}

/// A kube-proxy-style nat ruleset, as `iptables-restore` input: KUBE-SERVICES (jumped to from
/// PREROUTING and OUTPUT) has one rule per service, each jumping to the service's KUBE-SVC-*
/// chain, which jumps to one KUBE-SEP-* chain per endpoint, each with its DNAT. The comments
/// are kube-proxy's; no `-m statistic` (so the first endpoint always wins), and no
/// KUBE-MARK-MASQ (MARK is not a nat target). The first and the last service have real
/// endpoints, c2 then c1 for the first, c1 then c2 for the last; the others' endpoints are
/// addresses nobody has. 5 × SERVICES + 2 rules.
fn kube_proxy_ruleset() -> String {
    let mut s = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n",
    );
    let endpoints = |i: usize| -> [String; 2] {
        if i == 0 {
            [C2.to_string(), C1.to_string()]
        } else if i == SERVICES - 1 {
            [C1.to_string(), C2.to_string()]
        } else {
            [
                format!("198.18.{}.{}", 128 + i / 250, i % 250 + 1),
                format!("198.18.{}.{}", 160 + i / 250, i % 250 + 1),
            ]
        }
    };
    let svc_chain = |i: usize| format!("KUBE-SVC-{:016X}", 0x5EED_0000_0000_0000u64 + i as u64);
    let sep_chain = |i: usize, e: usize| {
        format!(
            "KUBE-SEP-{:016X}",
            0x0E9D_0000_0000_0000u64 + (i as u64) * 2 + e as u64
        )
    };
    for i in 0..SERVICES {
        s.push_str(&format!(":{} - [0:0]\n", svc_chain(i)));
        for e in 0..2 {
            s.push_str(&format!(":{} - [0:0]\n", sep_chain(i, e)));
        }
    }
    s.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    s.push_str("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    for i in 0..SERVICES {
        let name = format!("default/svc-{i}:http");
        let eps = endpoints(i);
        s.push_str(&format!(
            "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{name} cluster IP\" -m tcp --dport 80 -j {}\n",
            cluster_ip(i),
            svc_chain(i)
        ));
        for (e, ep) in eps.iter().enumerate() {
            s.push_str(&format!(
                "-A {} -m comment --comment \"{name} -> {ep}:8080\" -j {}\n",
                svc_chain(i),
                sep_chain(i, e)
            ));
        }
        for (e, ep) in eps.iter().enumerate() {
            s.push_str(&format!(
                "-A {} -p tcp -m comment --comment \"{name}\" -m tcp -j DNAT --to-destination {ep}:8080\n",
                sep_chain(i, e)
            ));
        }
    }
    s.push_str("COMMIT\n");
    s
}

/// A stable digest of a text (FNV-1a), to compare 10,000-line outputs without listing them.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// 9. A kube-proxy-style ruleset of 10,002 nat rules in 6,001 chains, restored at once; a
///    connection to the last service's ClusterIP:80 reaches its first endpoint (no
///    `-m statistic`: the rule order decides), from outside (PREROUTING) and from the node
///    itself (OUTPUT); the first service's too.
fn kube_proxy_scale(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let ep1 = Whoami::start(&c1, &[8080], false);
    let ep2 = Whoami::start(&c2, &[8080], false);
    // ClusterIPs are routed to the node; the node's own connections need a route too.
    ext.ip(&format!("route add 198.19.0.0/16 via {ROUTER_OUT}"));
    router.ip(&format!("route add 198.19.0.0/16 via {EXT}"));
    let rules = kube_proxy_ruleset();
    let t0 = Instant::now();
    lab.restore_ok(&router, "", &rules);
    let took = t0.elapsed();
    eprintln!(
        "[{}] restore of {} rules took {took:?}",
        lab.fw.label(),
        rules.lines().filter(|l| l.starts_with("-A")).count()
    );
    k.check_that("restore within 60 s", took < Duration::from_secs(60), took);
    let saved = lab.saved(&router, "-t nat");
    let rule_lines = saved.lines().filter(|l| l.starts_with("-A ")).count();
    k.check(
        "rules in iptables-save -t nat",
        rule_lines,
        5 * SERVICES + 2,
    );
    t.text("iptables-save -t nat (digest)", digest(&saved));

    let last = cluster_ip(SERVICES - 1);
    k.check(
        "tcp ext -> last service",
        tcp_view(&ext, &last, 80),
        saw(EXT, true, C1, 8080),
    );
    k.check(
        "tcp ext -> first service",
        tcp_view(&ext, &cluster_ip(0), 80),
        saw(EXT, true, C2, 8080),
    );
    k.check(
        "tcp router -> last service",
        tcp_view(&router, &last, 80),
        saw(ROUTER_OUT, true, C1, 8080),
    );
    k.check("connections endpoint c1 saw", ep1.seen_of("tcp").len(), 2);
    k.check("connections endpoint c2 saw", ep2.seen_of("tcp").len(), 1);
    k.finish(t, &lab)
}

/// What Docker (24, default bridge network, iptables backend) runs for one container
/// (`docker0` 172.17.0.1/16 here 198.18.20.1/24, the container 198.18.20.2) publishing port
/// 80 as 8080, in the order it runs them.
const DOCKER_RULES: &str = "-t nat -N DOCKER
    -t filter -N DOCKER
    -t filter -N DOCKER-ISOLATION-STAGE-1
    -t filter -N DOCKER-ISOLATION-STAGE-2
    -t filter -N DOCKER-USER
    -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
    -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
    -t nat -A POSTROUTING -s 198.18.20.0/24 ! -o docker0 -j MASQUERADE
    -t nat -I DOCKER -i docker0 -j RETURN
    -t filter -P FORWARD DROP
    -t filter -A DOCKER-USER -j RETURN
    -t filter -A FORWARD -j DOCKER-USER
    -t filter -A FORWARD -j DOCKER-ISOLATION-STAGE-1
    -t filter -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -t filter -A FORWARD -o docker0 -j DOCKER
    -t filter -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
    -t filter -A FORWARD -i docker0 -o docker0 -j ACCEPT
    -t filter -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
    -t filter -A DOCKER-ISOLATION-STAGE-1 -j RETURN
    -t filter -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
    -t filter -A DOCKER-ISOLATION-STAGE-2 -j RETURN
    -t filter -A DOCKER -d 198.18.20.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
    -t nat -A POSTROUTING -s 198.18.20.2/32 -d 198.18.20.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
    -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.18.20.2:80";

/// 10. Docker's own rules on Docker's layout (both containers on the bridge `docker0`):
///     the containers' connections out are masqueraded; the published port is reached from
///     outside (the container sees the client) and from the host itself (OUTPUT, through
///     `-m addrtype --dst-type LOCAL`); from the bridge, router:8080 is not translated. Only
///     traffic the router routes: bridged container-to-container traffic (br_netfilter, the
///     hairpin MASQUERADE) is another matter.
fn docker_bridge(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::with_bridge(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], true);
    lab.ipt_lines(&router, DOCKER_RULES);
    t.text("-S", lab.rules(&router));
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);

    for (who, ns) in [("c1", &c1), ("c2", &c2)] {
        k.check(
            &format!("tcp {who} -> ext:80"),
            tcp_view(ns, EXT, 80),
            saw(ROUTER_OUT, true, EXT, 80),
        );
        k.check(
            &format!("udp {who} -> ext:80"),
            udp_view(ns, EXT, 80),
            saw(ROUTER_OUT, true, EXT, 80),
        );
        lab.expect(&ns.ping(EXT), Pass);
    }
    k.check(
        "tcp ext -> router:8080",
        tcp_view(&ext, ROUTER_OUT, 8080),
        saw(EXT, true, C1, 80),
    );
    k.check(
        "tcp router -> router:8080 (the host itself)",
        tcp_view(&router, ROUTER_OUT, 8080),
        saw(ROUTER_OUT, true, C1, 80),
    );
    k.check(
        "tcp c2 -> router:8080 (from the bridge: not translated)",
        tcp_view(&c2, ROUTER_OUT, 8080),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "tcp ext -> router:8081 (not published)",
        tcp_view(&ext, ROUTER_OUT, 8081),
        Err("ECONNREFUSED".into()),
    );
    k.check(
        "peers the container saw",
        web.seen().iter().map(|s| *s.peer.ip()).collect::<Vec<_>>(),
        vec![ip4(EXT), ip4(ROUTER_OUT)],
    );
    let (counts, _) = filter_counts(&lab, &router, "DOCKER");
    k.check("filter DOCKER rule packets", counts, vec![1]);
    k.finish(t, &lab)
}

/// 11. The filter table's view of translated connections: `-m conntrack --ctstate DNAT` /
///     `SNAT`, `--ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst` in FORWARD, each as
///     a DROP rule in turn, against one published connection (ext -> router:8080 -> c1:80)
///     and one masqueraded one (c1 -> ext:80): each rule stops the one it names, not the
///     other.
fn conntrack_nat_matches(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8080 -j DNAT --to-destination {C1}:80
             -t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE"
        ),
    );
    // An expected pass waits longer than an expected drop.
    let wait = |pass: bool| if pass { PASS_WAIT } else { DROP_WAIT };
    let published = |pass: bool| {
        tcp_ask(&ext, ROUTER_OUT, 8080, None, wait(pass))
            .map(|r| r.local == sa(C1, 80))
            .is_ok_and(|b| b)
    };
    let masqueraded = |pass: bool| {
        tcp_ask(&c1, EXT, 80, None, wait(pass))
            .map(|r| *r.peer.ip() == ip4(ROUTER_OUT))
            .is_ok_and(|b| b)
    };
    // (match, published connection passes, masqueraded connection passes)
    let cases = [
        ("--ctstate DNAT".to_string(), false, true),
        ("--ctstate SNAT".to_string(), true, false),
        (format!("--ctorigsrc {C1}"), true, false),
        (format!("--ctorigdst {ROUTER_OUT}"), false, true),
        (format!("--ctreplsrc {C1}"), false, true),
        (format!("--ctrepldst {ROUTER_OUT}"), true, false),
        (
            format!("--ctstate DNAT --ctorigdst {ROUTER_OUT}"),
            false,
            true,
        ),
        (
            format!("! --ctstate DNAT --ctrepldst {ROUTER_OUT}"),
            true,
            false,
        ),
    ];
    k.check(
        "no FORWARD rule: (published, masqueraded) pass",
        (published(true), masqueraded(true)),
        (true, true),
    );
    for (m, want_published, want_masqueraded) in cases {
        lab.ipt_ok(&router, "-F FORWARD");
        lab.ipt_ok(&router, &format!("-A FORWARD -m conntrack {m} -j DROP"));
        t.text(
            &format!("-S FORWARD ({m})"),
            lab.ipt_ok(&router, "-S FORWARD").stdout,
        );
        k.check(
            &format!("-m conntrack {m} -j DROP: (published, masqueraded) pass"),
            (published(want_published), masqueraded(want_masqueraded)),
            (want_published, want_masqueraded),
        );
    }
    k.finish(t, &lab)
}

/// 11b. What the filter table sees of a translated connection's first packet and of its
///     RELATED errors, by counters of rules that only count: a published connection's SYN
///     is already DNAT in FORWARD (netfilter sets IPS_DST_NAT in PREROUTING), with its reply
///     tuple's source the container; a masqueraded connection's first packet is not SNAT yet
///     (POSTROUTING comes after FORWARD), nor is its reply tuple translated; the ICMP error
///     of a closed published UDP port is RELATED and DNAT; no packet of a connection has no
///     original source, `!` or not.
fn conntrack_nat_first_packets(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A PREROUTING -d {ROUTER_OUT}/32 -p tcp --dport 8080 -j DNAT --to-destination {C1}:80
             -t nat -A PREROUTING -d {ROUTER_OUT}/32 -p udp --dport 8081 -j DNAT --to-destination {C1}:81
             -t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE
             -A FORWARD -m conntrack --ctstate NEW -m conntrack --ctstate DNAT
             -A FORWARD -m conntrack --ctstate NEW -m conntrack --ctstate SNAT
             -A FORWARD -m conntrack --ctstate NEW --ctreplsrc {C1}
             -A FORWARD -m conntrack --ctstate NEW --ctrepldst {ROUTER_OUT}
             -A FORWARD -m conntrack --ctstate RELATED -m conntrack --ctstate DNAT --ctorigdst {ROUTER_OUT}
             -A FORWARD -m conntrack ! --ctorigsrc 0.0.0.0/0
             -A FORWARD -m conntrack --ctorigsrc 0.0.0.0/0 -m conntrack --ctstate INVALID"
        ),
    );
    t.text("-S FORWARD", lab.ipt_ok(&router, "-S FORWARD").stdout);
    k.check(
        "tcp ext -> router:8080 (published)",
        tcp_ask(&ext, ROUTER_OUT, 8080, None, PASS_WAIT).map(|r| r.local),
        Ok(sa(C1, 80)),
    );
    k.check(
        "tcp c1 -> ext:80 (masqueraded)",
        tcp_view(&c1, EXT, 80).map(|v| v.0),
        Ok(ip4(ROUTER_OUT)),
    );
    k.check(
        "udp ext -> router:8081 (published, closed)",
        udp_ask(&ext, ROUTER_OUT, 8081, 40002, PASS_WAIT).map(|r| r.local),
        Err("ECONNREFUSED".into()),
    );
    let (counts, _) = filter_counts(&lab, &router, "FORWARD");
    // NEW and DNAT: the published SYN and datagram; NEW and SNAT: none; NEW with reply
    // source c1: the same two; NEW with reply destination the router: none; the error: 1.
    k.check("FORWARD rule packets", counts, vec![2, 0, 2, 0, 1, 0, 0]);
    k.finish(t, &lab)
}

/// Runs `f`, and returns with its result the UDP checksums of the datagrams to `port` that
/// reached `ns` meanwhile (seen by a raw socket there).
fn udp_checksums_seen<T: Send>(ns: &Ns, port: u16, f: impl FnOnce() -> T + Send) -> (T, Vec<u16>) {
    let fd = ns.in_ns(|| {
        // SAFETY: plain socket(2); owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::IPPROTO_UDP,
            )
        };
        assert!(
            fd >= 0,
            "raw udp socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd is fresh and ours.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    });
    let r = f();
    std::thread::sleep(Duration::from_millis(100));
    let mut sums = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: recv into a live buffer of the given size.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            break;
        }
        let p = &buf[..n as usize];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() >= ihl + 8 && u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]) == port {
            sums.push(u16::from_be_bytes([p[ihl + 6], p[ihl + 7]]));
        }
    }
    (r, sums)
}

/// 12. UDP datagrams sent without a checksum (0, which IPv4 allows) through MASQUERADE and
///     through DNAT: they arrive, still with checksum 0 (nf_nat leaves a zero checksum alone),
///     and the answers come back; datagrams with a checksum arrive with one (a right one:
///     the receivers verify it, and `Checks` counts the drops).
fn udp_zero_checksum(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        router,
        ext,
        ..
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let _web = Whoami::start(&c1, &[80], false);
    let _outside = Whoami::start(&ext, &[80], false);
    lab.ipt_lines(
        &router,
        &format!(
            "-t nat -A PREROUTING -d {ROUTER_OUT}/32 -p udp --dport 8080 -j DNAT --to-destination {C1}:80
             -t nat -A POSTROUTING -s {INSIDE} -o eth1 -j MASQUERADE"
        ),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);
    let (r, sums) = udp_checksums_seen(&ext, 80, || {
        udp_ask_no_checksum(&c1, EXT, 80, PASS_WAIT).map(view)
    });
    k.check(
        "udp c1 -> ext:80 without checksum",
        r,
        saw(ROUTER_OUT, true, EXT, 80),
    );
    k.check("... checksums of what reached ext", sums, vec![0]);
    let (r, sums) = udp_checksums_seen(&c1, 80, || {
        udp_ask_no_checksum(&ext, ROUTER_OUT, 8080, PASS_WAIT).map(view)
    });
    k.check(
        "udp ext -> router:8080 -> c1:80 without checksum",
        r,
        saw(EXT, true, C1, 80),
    );
    k.check("... checksums of what reached c1", sums, vec![0]);
    let (r, sums) = udp_checksums_seen(&c1, 80, || {
        udp_ask(&ext, ROUTER_OUT, 8080, 0, PASS_WAIT).map(view)
    });
    k.check(
        "udp ext -> router:8080 -> c1:80 with a checksum",
        r,
        saw(EXT, true, C1, 80),
    );
    k.check_that(
        "... what reached c1 had a checksum",
        sums.len() == 1 && sums[0] != 0,
        &sums,
    );
    k.finish(t, &lab)
}

/// 14. NETMAP and address ranges: the containers' networks mapped one to one onto
///     198.18.40.0/22 on the way out (NETMAP in POSTROUTING keeps the host part), routed back
///     by ext; a range of one address with `--persistent` (SNAT); DNAT to a range of ports,
///     where the connection's own port is kept when it lies in the range (nf_nat keeps it),
///     else the range's first.
fn netmap_and_ranges(fw: Fw) -> Transcript {
    let Gateway {
        lab,
        c1,
        c2,
        router,
        ext,
    } = Gateway::new(fw);
    let mut t = Transcript::new(&lab);
    let mut k = Checks::new(&lab);
    let srv = Whoami::start(&ext, &[80], true);
    let inner = Whoami::start(&c1, &[80, 81], false);
    ext.ip(&format!("route add 198.18.40.0/22 via {ROUTER_OUT}"));
    lab.ipt_ok(
        &router,
        &format!("-t nat -A POSTROUTING -s {INSIDE} -o eth1 -j NETMAP --to 198.18.40.0/22"),
    );
    for (who, ns, mapped) in [("c1", &c1, "198.18.40.2"), ("c2", &c2, "198.18.42.2")] {
        k.check(
            &format!("netmap: tcp {who} -> ext:80"),
            tcp_view(ns, EXT, 80),
            saw(mapped, true, EXT, 80),
        );
        lab.expect(&ns.ping(EXT), Pass);
    }
    k.check(
        "netmap: echo requests ext saw from",
        icmp_sources(&srv),
        vec![ip4("198.18.40.2"), ip4("198.18.42.2")],
    );

    lab.ipt_ok(&router, "-t nat -F POSTROUTING");
    lab.ipt_ok(
        &router,
        &format!("-t nat -A POSTROUTING -o eth1 -j SNAT --to-source {ROUTER_OUT2}-{ROUTER_OUT2} --persistent"),
    );
    router.ip(&format!("addr add {ROUTER_OUT2}/24 dev eth1"));
    k.check(
        "snat --persistent: tcp c1 -> ext:80",
        tcp_view(&c1, EXT, 80),
        saw(ROUTER_OUT2, true, EXT, 80),
    );

    lab.ipt_ok(
        &router,
        &format!("-t nat -A PREROUTING -d {ROUTER_OUT} -p tcp --dport 80:81 -j DNAT --to-destination {C1}:80-81"),
    );
    lab.ipt_ok(
        &router,
        &format!("-t nat -A PREROUTING -d {ROUTER_OUT} -p tcp --dport 9000 -j DNAT --to-destination {C1}:80-81"),
    );
    t.text("-t nat -S", lab.ipt_ok(&router, "-t nat -S").stdout);
    k.check(
        "dnat to ports 80-81: tcp ext -> router:81",
        tcp_view(&ext, ROUTER_OUT, 81),
        saw(EXT, true, C1, 81),
    );
    k.check(
        "dnat to ports 80-81: tcp ext -> router:9000",
        tcp_view(&ext, ROUTER_OUT, 9000),
        saw(EXT, true, C1, 80),
    );
    drop(inner);
    k.finish(t, &lab)
}
