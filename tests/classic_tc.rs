//! The classic TC hook (clsact qdisc + cls_bpf filter), which kernels before 6.6 (no TCX) get:
//! forced here by `PCN_IPTABLES_TC_HOOK=classic` on the install's first command, so that it
//! runs on any kernel. Later commands go without it: an install keeps its hook.
//! OUTPUT filters real packets, REJECT is answered (by `pcn_answer` on the ingress hook), and
//! `--uninstall` leaves no qdisc or filter of ours, but leaves everyone else's.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use pcn_iptables_tests::lab::FW_TIMEOUT;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Out, Pair, Pass};

const HOOK_ENV: &str = "PCN_IPTABLES_TC_HOOK=classic";
/// Our filters' preference (`tc` prints it in decimal).
const PREF: &str = "pref 20547 ";
const DEVICES: [&str; 3] = ["lo", "eth1", "eth2"];

/// The first command of an install, on the classic hook.
fn ipt_classic(lab: &Lab, ns: &Ns, args: &str) -> Out {
    lab.note_fw_use(ns);
    let mut v = vec!["env", HOOK_ENV, lab.fw.bin_str(), "-w"];
    v.extend(args.split_whitespace());
    ns.exec_timeout(&v, FW_TIMEOUT)
}

/// `tc ARGS` in `ns`, which must work: its output.
fn tc(ns: &Ns, args: &str) -> String {
    let mut v = vec!["tc"];
    v.extend(args.split_whitespace());
    ns.exec(&v).expect_ok().stdout
}

/// Our two filters are on `dev`, each on its side, in direct-action mode.
#[track_caller]
fn assert_attached(ns: &Ns, dev: &str) {
    assert!(
        tc(ns, &format!("qdisc show dev {dev}")).contains("clsact"),
        "no clsact qdisc on {dev}"
    );
    for (side, prog) in [("egress", "pcn_egress"), ("ingress", "pcn_answer")] {
        let filters = tc(ns, &format!("filter show dev {dev} {side}"));
        assert!(
            filters
                .lines()
                .any(|l| l.contains(PREF) && l.contains(prog) && l.contains("direct-action")),
            "{prog} not on {dev} {side}: {filters}"
        );
    }
}

/// Nothing of ours on `dev`: none of our filters, and no clsact qdisc unless `clsact_kept`.
#[track_caller]
fn assert_clean(ns: &Ns, dev: &str, clsact_kept: bool) {
    let qdiscs = tc(ns, &format!("qdisc show dev {dev}"));
    assert_eq!(
        qdiscs.contains("clsact"),
        clsact_kept,
        "qdiscs of {dev} after --uninstall: {qdiscs}"
    );
    for side in ["egress", "ingress"] {
        let filters = tc(ns, &format!("filter show dev {dev} {side}"));
        assert!(
            !filters.contains("pcn_") && !filters.contains(PREF),
            "filters left on {dev} {side} after --uninstall: {filters}"
        );
        if !clsact_kept {
            assert_eq!(filters.trim(), "", "filters on {dev} {side}");
        }
    }
}

/// A TCP connect from `ns`: "connected", "refused" (a RST came back) or "timeout".
fn tcp(ns: &Ns, dst: &str, port: u16) -> &'static str {
    let addr: SocketAddr = format!("{dst}:{port}").parse().unwrap();
    ns.in_ns(
        move || match TcpStream::connect_timeout(&addr, Duration::from_millis(1500)) {
            Ok(_) => "connected",
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused",
            Err(_) => "timeout",
        },
    )
}

/// A UDP datagram from a connected socket in `ns`: "echo", "refused" (an ICMP port
/// unreachable came back) or "timeout".
fn udp(ns: &Ns, dst: &str, port: u16) -> &'static str {
    let addr: SocketAddr = format!("{dst}:{port}").parse().unwrap();
    ns.in_ns(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        sock.send(b"pcn-classic-tc-probe").unwrap();
        let mut buf = [0u8; 64];
        match sock.recv(&mut buf) {
            Ok(_) => "echo",
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused",
            Err(_) => "timeout",
        }
    })
}

/// Packets counted by the first rule of `chain` (from `-L -v -x -n`).
fn first_rule_packets(lab: &Lab, ns: &Ns, chain: &str) -> u64 {
    let out = lab.ipt_ok(ns, &format!("-L {chain} -v -x -n")).stdout;
    let line = out.lines().nth(2).unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn output_and_reject_on_the_classic_hook() {
    let Pair { lab, host, c1, .. } = Pair::new(Fw::pcn());
    lab.serve(&c1, &[80, 81]);
    lab.serve(&host, &[80, 81]);
    let out = ipt_classic(
        &lab,
        &host,
        &format!("-A OUTPUT -d {C1} -p tcp --dport 80 -j DROP"),
    );
    assert!(out.success(), "{out}");
    for dev in DEVICES {
        assert_attached(&host, dev);
    }

    // OUTPUT, with real packets.
    lab.expect(&host.tcp(C1, 80), Drop);
    lab.expect(&host.tcp(C1, 81), Pass);
    lab.expect(&host.ping(C1), Pass);
    lab.ipt_ok(&host, "-D OUTPUT 1");
    lab.expect(&host.tcp(C1, 80), Pass);
    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C2} -j DROP"));
    lab.expect(&host.ping(C2), Drop);
    lab.expect(&host.udp(C2, 80), Drop);
    lab.ipt_ok(&host, "-F OUTPUT");
    lab.expect(&host.ping(C2), Pass);

    // Judged once: the commands since the first kept the classic hook, and added no TCX
    // link beside it (OUTPUT would count each packet twice).
    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C2} -p icmp"));
    host.exec(&["ping", "-n", "-q", "-c3", "-i0.2", "-W1", C2])
        .expect_ok();
    assert_eq!(first_rule_packets(&lab, &host, "OUTPUT"), 3);

    // REJECT: the host serves both ports, so only the answers sent by the TC ingress program
    // make the client see a refusal (without that program it sees a timeout).
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j REJECT --reject-with tcp-reset",
    );
    lab.ipt_ok(&host, "-A INPUT -p udp --dport 81 -j REJECT");
    assert_eq!(tcp(&c1, HOST1, 81), "connected");
    assert_eq!(udp(&c1, HOST1, 80), "echo");
    assert_eq!(tcp(&c1, HOST1, 80), "refused", "tcp-reset");
    assert_eq!(udp(&c1, HOST1, 81), "refused", "icmp-port-unreachable");
    lab.check();

    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C1} -j DROP"));
    host.exec(&[lab.fw.bin_str(), "--uninstall"]).expect_ok();
    for dev in DEVICES {
        assert_clean(&host, dev, false);
    }
    let programs = host.exec(&["bpftool", "net", "show"]).expect_ok().stdout;
    assert!(!programs.contains(" id "), "left: {programs}");
    lab.expect(&host.ping(C1), Pass);
    assert_eq!(tcp(&c1, HOST1, 80), "connected");
    lab.check();
}

/// A clsact qdisc that was there before (with a filter of someone else's) stays, with that
/// filter; ours go.
#[test]
fn uninstall_leaves_what_is_not_ours() {
    let Pair { lab, host, c1, .. } = Pair::new(Fw::pcn());
    lab.serve(&c1, &[80]);
    tc(&host, "qdisc add dev eth2 clsact");
    // u32 may not be in every kernel: then the bare qdisc must stay all the same.
    let foreign = host
        .exec(&[
            "tc", "filter", "add", "dev", "eth2", "egress", "prio", "10", "protocol", "all", "u32",
            "match", "u32", "0", "0",
        ])
        .success();
    let out = ipt_classic(&lab, &host, &format!("-A OUTPUT -d {C1} -p tcp -j DROP"));
    assert!(out.success(), "{out}");
    for dev in DEVICES {
        assert_attached(&host, dev);
    }
    lab.expect(&host.tcp(C1, 80), Drop);

    host.exec(&[lab.fw.bin_str(), "--uninstall"]).expect_ok();
    for dev in ["lo", "eth1"] {
        assert_clean(&host, dev, false);
    }
    assert_clean(&host, "eth2", true);
    if foreign {
        let filters = tc(&host, "filter show dev eth2 egress");
        assert!(
            filters.contains("u32"),
            "the foreign filter went: {filters}"
        );
    }
    lab.expect(&host.tcp(C1, 80), Pass);
    lab.check();
}

/// The id of the program of our filter on `dev`'s egress.
fn egress_program(ns: &Ns, dev: &str) -> Option<String> {
    let filters = tc(ns, &format!("filter show dev {dev} egress"));
    let line = filters.lines().find(|l| l.contains("pcn_egress"))?;
    line.split(" id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string)
}

/// Classic filters outlive the state (removed by hand here): the next install takes them over,
/// on either hook, and never judges a packet twice.
#[test]
fn filters_left_without_their_state_are_taken_over() {
    let Pair { lab, host, .. } = Pair::new(Fw::pcn());
    let out = ipt_classic(&lab, &host, &format!("-A OUTPUT -d {C1} -j DROP"));
    assert!(out.success(), "{out}");
    let first = egress_program(&host, "eth1").expect("our filter on eth1");
    // Their programs stay, passing everything (the program arrays empty once unpinned).
    std::fs::remove_dir_all(host.state_dir()).unwrap();

    // Again on the classic hook: the filters get the new programs.
    let out = ipt_classic(&lab, &host, &format!("-A OUTPUT -d {C1} -p icmp"));
    assert!(out.success(), "{out}");
    let second = egress_program(&host, "eth1").expect("our filter on eth1");
    assert_ne!(
        first, second,
        "the filter still runs the lost install's program"
    );
    host.exec(&["ping", "-n", "-q", "-c3", "-i0.2", "-W1", C1])
        .expect_ok();
    assert_eq!(first_rule_packets(&lab, &host, "OUTPUT"), 3);

    // Then on the kernel's own choice (TCX where there is TCX): ours are replaced or gone.
    std::fs::remove_dir_all(host.state_dir()).unwrap();
    lab.ipt_ok(&host, &format!("-A OUTPUT -d {C1} -p icmp"));
    if let Some(third) = egress_program(&host, "eth1") {
        assert_ne!(
            third, second,
            "the filter still runs the lost install's program"
        );
    }
    host.exec(&["ping", "-n", "-q", "-c3", "-i0.2", "-W1", C1])
        .expect_ok();
    assert_eq!(first_rule_packets(&lab, &host, "OUTPUT"), 3);
    lab.ipt_ok(&host, &format!("-I OUTPUT -d {C1} -j DROP"));
    lab.expect(&host.ping(C1), Drop);
    lab.check();
}

/// Where the classic hook cannot go (an `ingress` qdisc holds the place of clsact), the
/// command fails with exit 4 and says which interface and which kernel, and takes back what it
/// attached elsewhere; once there is room, the next command attaches.
#[test]
fn no_room_for_the_hook_is_a_clear_error() {
    let Pair { lab, host, .. } = Pair::new(Fw::pcn());
    tc(&host, "qdisc add dev eth2 ingress");
    let out = ipt_classic(&lab, &host, &format!("-A OUTPUT -d {C2} -j DROP"));
    assert_eq!(out.code, Some(4), "{out}");
    for word in ["eth2", "Linux ", "ingress", "clsact"] {
        assert!(out.stderr.contains(word), "{word:?} not in {out}");
    }
    assert!(
        !tc(&host, "filter show dev eth2 egress").contains("pcn_egress"),
        "the egress program went on the ingress qdisc"
    );
    // Nothing changed: no filter, no qdisc of ours, no XDP program.
    for dev in ["lo", "eth1"] {
        assert!(
            !tc(&host, &format!("qdisc show dev {dev}")).contains("clsact"),
            "{dev}"
        );
    }
    let net = host.exec(&["bpftool", "net", "show"]).expect_ok().stdout;
    assert!(!net.contains("pcn_"), "left attached: {net}");
    tc(&host, "qdisc del dev eth2 ingress");
    lab.ipt_ok(&host, "-S");
    let out = ipt_classic(&lab, &host, &format!("-A OUTPUT -d {C2} -j DROP"));
    assert_eq!(out.code, Some(0), "{out}");
    assert_attached(&host, "eth2");
    lab.expect(&host.ping(C2), Drop);
    lab.check();
}
