//! SIGKILL in the middle of a command: the ruleset stays whole and the data plane follows it.
//!
//! Meant for pcn-iptables (whose update goes through several steps: lock, maps, program swap,
//! persisted state); the `legacy` variant proves the test itself on the reference, whose
//! commit is a single system call. The kill delays are random: the seed is printed and
//! `PCNT_SEED=<n>` replays a run.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, cmd, scenarios};

scenarios!(sigkill_during_append);

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const ROUNDS: u32 = 20;

fn rule_for(i: u32) -> String {
    format!("-A INPUT -s 198.18.10.{i}/32 -j DROP")
}

fn sigkill_during_append(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let label = lab.fw.label();
    for i in 1..=ROUNDS + 1 {
        c1.ip(&format!("addr add 198.18.10.{i}/32 dev eth0"));
    }
    host.ip("route add 198.18.10.0/24 dev eth1");
    // One rule in place before the storm: it must survive it.
    lab.ipt_ok(&host, "-A INPUT -s 198.18.10.100 -j DROP");
    c1.ip("addr add 198.18.10.100/32 dev eth0");

    let seed = std::env::var("PCNT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("[{label}] sigkill seed: PCNT_SEED={seed}");
    let mut rng = XorShift(seed);

    // Kill anywhere in the life of one invocation: delays spread over 0..1.5 times the time an
    // uninterrupted `-A` takes (at least 0..10 ms, at most 0..2 s).
    let t0 = Instant::now();
    lab.ipt_ok(&host, "-A INPUT -s 198.18.10.200 -j DROP");
    let one = t0.elapsed();
    lab.ipt_ok(&host, "-D INPUT -s 198.18.10.200 -j DROP");
    let max_delay = (one * 3 / 2).clamp(Duration::from_millis(10), Duration::from_secs(2));
    eprintln!("[{label}] one -A takes {one:?}: kill delays in 0..{max_delay:?}");

    let mut completed: Vec<u32> = Vec::new();
    let mut killed: Vec<u32> = Vec::new();
    lab.note_fw_use(&host);
    for i in 1..=ROUNDS {
        let delay = Duration::from_micros(rng.next() % (max_delay.as_micros() as u64 + 1));
        let src = format!("198.18.10.{i}");
        let args = [
            "netns",
            "exec",
            &host.name,
            lab.fw.bin_str(),
            "-w",
            "-A",
            "INPUT",
            "-s",
            &src,
            "-j",
            "DROP",
        ];
        let line = cmd::render("ip", &args);
        let child = cmd::spawn("ip", &args).expect("spawn");
        let pid = Pid::from_raw(child.id() as i32);
        let t0 = Instant::now();
        std::thread::sleep(delay);
        // `ip netns exec` execs the binary: this pid is the firewall itself. If it has exited
        // already it is a zombie until waited for, and the signal is harmless.
        let _ = kill(pid, Signal::SIGKILL);
        let out = cmd::wait(child, line, Duration::from_secs(60));
        match (out.code, out.signal) {
            (Some(0), _) => completed.push(i),
            (None, Some(9)) => killed.push(i),
            _ => panic!(
                "[{label}] round {i}: the command failed on its own (before the kill): {out}"
            ),
        }
        eprintln!(
            "[{label}] round {i}: kill after {:?} (process ran {:?}): {}",
            delay,
            t0.elapsed(),
            if out.code == Some(0) {
                "had completed"
            } else {
                "killed"
            }
        );

        // After every round the ruleset must read back whole and consistent.
        let s = lab.ipt(&host, "-S");
        assert!(s.success(), "[{label}] -S after round {i}: {s}");
        let lines: Vec<&str> = s.stdout.lines().collect();
        assert_eq!(
            &lines[..4],
            &[
                "-P INPUT ACCEPT",
                "-P FORWARD ACCEPT",
                "-P OUTPUT ACCEPT",
                "-A INPUT -s 198.18.10.100/32 -j DROP"
            ],
            "[{label}] -S after round {i}:\n{}",
            s.stdout
        );
        let mut expected_order: Vec<String> = Vec::new();
        for j in 1..=i {
            let r = rule_for(j);
            let n = lines.iter().filter(|l| **l == r).count();
            assert!(
                n <= 1,
                "[{label}] after round {i}: {r:?} present {n} times:\n{}",
                s.stdout
            );
            if completed.contains(&j) {
                assert_eq!(
                    n, 1,
                    "[{label}] after round {i}: completed {r:?} missing:\n{}",
                    s.stdout
                );
            }
            if n == 1 {
                expected_order.push(r);
            }
        }
        let got: Vec<String> = lines[4..].iter().map(|l| l.to_string()).collect();
        assert_eq!(
            got, expected_order,
            "[{label}] after round {i}: unexpected rules or order:\n{}",
            s.stdout
        );
    }
    eprintln!("[{label}] completed {completed:?}, killed {killed:?}");

    // The lock is free again and the tool still works.
    let t0 = Instant::now();
    lab.ipt_ok(
        &host,
        &format!("-A INPUT -s 198.18.10.{} -j DROP", ROUNDS + 1),
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "[{label}] -A after the kills took {:?}",
        t0.elapsed()
    );
    let listing = lab.listing(&host);
    pcn_iptables_tests::Listing::parse(&listing)
        .unwrap_or_else(|e| panic!("[{label}] -L -v -x -n: {e}\n{listing}"));

    // Verdicts follow -S.
    let s = lab.rules(&host);
    std::thread::scope(|sc| {
        for i in 1..=ROUNDS + 1 {
            let present = s.lines().any(|l| l == rule_for(i));
            let (lab, c1) = (&lab, &c1);
            sc.spawn(move || {
                let src = format!("198.18.10.{i}");
                lab.expect(&c1.ping(HOST1).src(&src), if present { Drop } else { Pass });
            });
        }
    });
    lab.expect(&c1.ping(HOST1).src("198.18.10.100"), Drop);
    lab.expect(&c1.ping(HOST1), Pass);
    lab.check();
}
