//! LOG: the packet goes on to the next rule (same verdicts as iptables-legacy), and with
//! pcn-iptables a line in the kernel's LOG format reaches `pcn-iptables --log-follow`, after
//! the rule's `--log-level` as the kernel log shows it (`<4>`), with `UID= GID=` where the
//! kernel prints them. (iptables-legacy logs to the kernel log, and not at all from a network
//! namespace other than the first unless net.netfilter.nf_log_all_netns is set: only its
//! verdicts are compared.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::udp_as;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, scenarios};

/// The owner `--log-uid` must show: a socket opened with these fsuid and fsgid.
const FSUID: u32 = 4321;
const FSGID: u32 = 8765;

scenarios!(log_and_go_on);

fn log_and_go_on(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw.clone());
    lab.serve(&host, &[80]);
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j LOG --log-prefix fw-in: --log-tcp-sequence",
    );
    lab.ipt_ok(&host, "-A INPUT -p icmp -j MARK --set-mark 0x2a");
    lab.ipt_ok(&host, "-A INPUT -p icmp -j LOG --log-prefix ping:");
    lab.ipt_ok(&host, "-A INPUT -p icmp -j DROP");
    lab.ipt_ok(
        &host,
        "-A INPUT -p tcp --dport 80 -j LOG --log-prefix in-uid: --log-uid --log-level debug",
    );
    lab.ipt_ok(
        &host,
        &format!("-A OUTPUT -d {C1} -p udp --dport 53 -j LOG"),
    );
    lab.ipt_ok(
        &host,
        &format!(
            "-A OUTPUT -d {C1} -p udp --dport 54 -j LOG --log-prefix out-uid: --log-uid \
             --log-level 6"
        ),
    );
    // Started before the traffic: the reader sees records written from then on.
    let follower = fw.is_pcn().then(|| {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &host.name, fw.bin_str(), "--log-follow"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("pcn-iptables --log-follow");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        (child, rx)
    });
    lab.expect(&c1.tcp(HOST1, 80), Pass);
    lab.expect(&c1.ping(HOST1), Drop);
    lab.serve(&c1, &[53, 54]);
    lab.expect(&host.udp(C1, 53), Pass);
    udp_as(&host, C1, 54, FSUID, FSGID);
    lab.check();
    let Some((mut child, rx)) = follower else {
        return;
    };
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(l);
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = lines.join("\n");
    let syn = lines
        .iter()
        .find(|l| l.starts_with("<4>fw-in:IN=eth1 OUT= MAC=") && l.contains(" SYN "))
        .unwrap_or_else(|| panic!("no SYN line in:\n{all}"));
    for field in [
        format!("SRC={C1} DST={HOST1} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID="),
        " DF PROTO=TCP SPT=".into(),
        " DPT=80 SEQ=".into(),
        " ACK=0 WINDOW=".into(),
        " RES=0x00 SYN URGP=0 ".into(),
    ] {
        assert!(syn.contains(&field), "{field:?} not in {syn:?}");
    }
    let ping = lines
        .iter()
        .find(|l| l.starts_with("<4>ping:IN=eth1 OUT= MAC="))
        .unwrap_or_else(|| panic!("no ping line in:\n{all}"));
    assert!(
        ping.contains(&format!("SRC={C1} DST={HOST1} LEN=84 "))
            && ping.contains(" PROTO=ICMP TYPE=8 CODE=0 ID=")
            && ping.ends_with(" MARK=0x2a "),
        "{ping:?}"
    );
    let udp = lines
        .iter()
        .find(|l| l.starts_with("<4>IN= OUT=eth1 SRC="))
        .unwrap_or_else(|| panic!("no OUTPUT line in:\n{all}"));
    assert!(
        udp.contains(&format!("SRC={HOST1} DST={C1} LEN=44 "))
            && udp.contains(" PROTO=UDP SPT=")
            && udp.ends_with(" DPT=53 LEN=24 "),
        "{udp:?}"
    );
    // --log-uid: the owner of the socket's file, on OUTPUT; on INPUT the SYN has no socket
    // yet (nf_log prints nothing either).
    let owned = lines
        .iter()
        .find(|l| l.starts_with("<6>out-uid:IN= OUT=eth1 SRC="))
        .unwrap_or_else(|| panic!("no --log-uid line in:\n{all}"));
    assert!(
        owned.ends_with(&format!(" DPT=54 LEN=13 UID={FSUID} GID={FSGID} ")),
        "{owned:?}"
    );
    let in_uid = lines
        .iter()
        .find(|l| l.starts_with("<7>in-uid:IN=eth1 ") && l.contains(" SYN "))
        .unwrap_or_else(|| panic!("no INPUT --log-uid line in:\n{all}"));
    assert!(in_uid.ends_with(" SYN URGP=0 "), "{in_uid:?}");
    // The LOG rules counted what they logged.
    let listing = lab.ipt_ok(&host, "-L INPUT 2 -v -x -n").stdout;
    assert!(listing.trim_start().starts_with('1'), "{listing}");
}
