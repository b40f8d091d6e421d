//! Concurrent invocations with `-w`: every one must get its turn and land exactly once.

use std::time::Duration;

use pcn_iptables_tests::cmd;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Out, Pair, Pass, scenarios};

scenarios!(concurrent_appends, concurrent_mixed_commands);

/// Starts all `commands` at once (each `ip netns exec NS <binary> -w ...`) and waits for all.
fn all_at_once(lab: &Lab, ns: &Ns, commands: &[String]) -> Vec<Out> {
    lab.note_fw_use(ns);
    let children: Vec<_> = commands
        .iter()
        .map(|c| {
            let mut args = vec!["netns", "exec", &ns.name, lab.fw.bin_str(), "-w"];
            args.extend(c.split_whitespace());
            let line = cmd::render("ip", &args);
            (cmd::spawn("ip", &args).expect("spawn"), line)
        })
        .collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = children
            .into_iter()
            .map(|(child, line)| s.spawn(move || cmd::wait(child, line, Duration::from_secs(300))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_all_ok(lab: &Lab, outs: &[Out]) {
    let bad: Vec<String> = outs
        .iter()
        .filter(|o| !o.success())
        .map(|o| o.to_string())
        .collect();
    assert!(
        bad.is_empty(),
        "[{}] concurrent invocations failed:\n{}",
        lab.fw.label(),
        bad.join("\n")
    );
}

fn a_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_string)
        .collect()
}

/// 20 concurrent `-w -A INPUT -s 198.18.9.N -j DROP`: all 20 present exactly once.
fn concurrent_appends(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    c1.ip("addr add 198.18.9.5/32 dev eth0");
    c1.ip("addr add 198.18.9.50/32 dev eth0");
    host.ip("route add 198.18.9.0/24 dev eth1");
    let cmds: Vec<String> = (1..=20)
        .map(|n| format!("-A INPUT -s 198.18.9.{n} -j DROP"))
        .collect();
    let outs = all_at_once(&lab, &host, &cmds);
    assert_all_ok(&lab, &outs);
    let rules = a_lines(&lab.rules(&host));
    assert_eq!(
        rules.len(),
        20,
        "[{}] -S after 20 appends:\n{}",
        lab.fw.label(),
        rules.join("\n")
    );
    for n in 1..=20 {
        let want = format!("-A INPUT -s 198.18.9.{n}/32 -j DROP");
        let count = rules.iter().filter(|r| **r == want).count();
        assert_eq!(
            count,
            1,
            "[{}] {want:?} present {count} times",
            lab.fw.label()
        );
    }
    lab.expect(&c1.ping(HOST1).src("198.18.9.5"), Drop);
    lab.expect(&c1.ping(HOST1).src("198.18.9.50"), Pass);
    lab.expect(&c1.ping(HOST1), Pass);
    lab.check();
}

/// Deletes, inserts and appends racing each other, on top of 20 rules.
fn concurrent_mixed_commands(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    for n in [2, 3, 10, 11] {
        c1.ip(&format!("addr add 198.18.9.{n}/32 dev eth0"));
        c1.ip(&format!("addr add 198.18.10.{n}/32 dev eth0"));
    }
    host.ip("route add 198.18.9.0/24 dev eth1");
    host.ip("route add 198.18.10.0/24 dev eth1");
    let cmds: Vec<String> = (1..=20)
        .map(|n| format!("-A INPUT -s 198.18.9.{n} -j DROP"))
        .collect();
    assert_all_ok(&lab, &all_at_once(&lab, &host, &cmds));
    let first_order = a_lines(&lab.rules(&host)); // whatever order the lock gave them

    let mut cmds: Vec<String> = Vec::new();
    for n in 1..=10 {
        cmds.push(format!("-D INPUT -s 198.18.9.{} -j DROP", 2 * n)); // the even ones go
        cmds.push(format!("-I INPUT -s 198.18.10.{n} -j DROP"));
        cmds.push(format!("-A OUTPUT -d 198.18.11.{n} -j DROP"));
    }
    assert_all_ok(&lab, &all_at_once(&lab, &host, &cmds));

    let rules = a_lines(&lab.rules(&host));
    let mut want: Vec<String> = Vec::new();
    want.extend((1..=10).map(|n| format!("-A INPUT -s 198.18.10.{n}/32 -j DROP")));
    want.extend((1..=10).map(|n| format!("-A INPUT -s 198.18.9.{}/32 -j DROP", 2 * n - 1)));
    want.extend((1..=10).map(|n| format!("-A OUTPUT -d 198.18.11.{n}/32 -j DROP")));
    let mut got = rules.clone();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "[{}] -S after the mixed batch:\n{}",
        lab.fw.label(),
        rules.join("\n")
    );
    // The surviving 9.x rules keep their relative order, after all the inserted 10.x rules.
    let nine: Vec<&String> = rules.iter().filter(|r| r.contains("198.18.9.")).collect();
    let expected_nine: Vec<&String> = first_order.iter().filter(|r| want.contains(r)).collect();
    assert_eq!(
        nine,
        expected_nine,
        "[{}] order of the 9.x rules",
        lab.fw.label()
    );
    let first_nine = rules.iter().position(|r| r.contains("198.18.9.")).unwrap();
    assert!(
        rules[..first_nine].iter().all(|r| r.contains("198.18.10.")),
        "[{}] inserted rules come first:\n{}",
        lab.fw.label(),
        rules.join("\n")
    );

    lab.expect(&c1.ping(HOST1).src("198.18.9.2"), Pass);
    lab.expect(&c1.ping(HOST1).src("198.18.9.3"), Drop);
    lab.expect(&c1.ping(HOST1).src("198.18.10.10"), Drop);
    lab.expect(&c1.ping(HOST1).src("198.18.10.11"), Pass);
    lab.expect(&c1.ping(HOST1).src("198.18.9.11"), Drop);
    lab.expect(&c1.ping(HOST1).src("198.18.9.10"), Pass);
    lab.check();
}
