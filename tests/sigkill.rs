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
use pcn_iptables_tests::{Drop, Fw, Lab, Ns, Pair, Pass, cmd, scenarios};

scenarios!(
    sigkill_during_append,
    sigkill_during_changes_to_a_large_ruleset
);

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

/// Runs the firewall (`-w` and `args`) in `host`, SIGKILLed after `delay`: `true` if it had
/// completed by then. A failure of its own fails the test.
fn run_killed(lab: &Lab, host: &Ns, args: &[&str], delay: Duration) -> bool {
    let label = lab.fw.label();
    let mut argv = vec!["netns", "exec", &host.name, lab.fw.bin_str(), "-w"];
    argv.extend(args);
    let line = cmd::render("ip", &argv);
    let child = cmd::spawn("ip", &argv).expect("spawn");
    let pid = Pid::from_raw(child.id() as i32);
    let t0 = Instant::now();
    std::thread::sleep(delay);
    // `ip netns exec` execs the binary: this pid is the firewall itself. If it has exited
    // already it is a zombie until waited for, and the signal is harmless.
    let _ = kill(pid, Signal::SIGKILL);
    let out = cmd::wait(child, line.clone(), Duration::from_secs(60));
    let completed = match (out.code, out.signal) {
        (Some(0), _) => true,
        (None, Some(9)) => false,
        _ => panic!("[{label}] {line}: the command failed on its own (before the kill): {out}"),
    };
    eprintln!(
        "[{label}] {}: kill after {delay:?} (process ran {:?}): {}",
        args.join(" "),
        t0.elapsed(),
        if completed { "had completed" } else { "killed" }
    );
    completed
}

/// The kill delays' random sequence, from `PCNT_SEED` or the clock.
fn seed(label: &str) -> XorShift {
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
    XorShift(seed)
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

    let mut rng = seed(label);

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
        match run_killed(
            &lab,
            &host,
            &["-A", "INPUT", "-s", &src, "-j", "DROP"],
            delay,
        ) {
            true => completed.push(i),
            false => killed.push(i),
        }

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

/// Rules loaded before the storm of the large-ruleset scenario: many bitmap words, so that a
/// change rewrites parts of the inactive generation in place. No test packet matches them
/// (TCP, other sources).
const FILLER: u32 = 3000;

/// The same with 3,000 rules loaded: `-A`, `-I` in the middle and `-D` by number, each killed
/// at a random point. After every round the ruleset reads back as it was before the command
/// or after it (after, if it completed); at the end the verdicts follow it.
fn sigkill_during_changes_to_a_large_ruleset(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let label = lab.fw.label();
    for i in 1..=ROUNDS {
        c1.ip(&format!("addr add 198.18.10.{i}/32 dev eth0"));
    }
    host.ip("route add 198.18.10.0/24 dev eth1");
    let mut rules: Vec<String> = (0..FILLER)
        .map(|i| {
            format!(
                "-A INPUT -s 198.19.{}.{}/32 -p tcp -m tcp --dport {} -j DROP",
                i / 250,
                i % 250,
                1000 + i
            )
        })
        .collect();
    let file = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{}\nCOMMIT\n",
        rules.join("\n")
    );
    lab.restore_ok(&host, "", &file);
    let read = || -> Vec<String> {
        let s = lab.ipt(&host, "-S");
        assert!(s.success(), "[{label}] -S: {s}");
        s.stdout.lines().skip(3).map(str::to_string).collect()
    };
    assert_eq!(read(), rules, "[{label}] the restored ruleset");

    let mut rng = seed(label);
    // The first change after a restore prepares the other generation: the median of three.
    let mut times: Vec<Duration> = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            lab.ipt_ok(&host, "-I INPUT 1500 -s 198.18.10.200 -j DROP");
            let one = t0.elapsed();
            lab.ipt_ok(&host, "-D INPUT 1500");
            one
        })
        .collect();
    times.sort();
    let one = times[1];
    let max_delay = (one * 3 / 2).clamp(Duration::from_millis(10), Duration::from_secs(2));
    eprintln!("[{label}] one -I takes {one:?}: kill delays in 0..{max_delay:?}");

    lab.note_fw_use(&host);
    let (mut completed, mut killed, mut applied) = (0, 0, 0);
    for i in 1..=ROUNDS {
        let delay = Duration::from_micros(rng.next() % (max_delay.as_micros() as u64 + 1));
        let victim = format!("-s 198.18.10.{i}/32 -j DROP");
        let (op, at) = match rng.next() % 3 {
            0 => ("-A", rules.len() + 1),
            1 => ("-I", 1 + (rng.next() % rules.len() as u64) as usize),
            _ => ("-D", 1 + (rng.next() % rules.len() as u64) as usize),
        };
        let at_arg = at.to_string();
        let mut args = vec![op, "INPUT"];
        let mut after = rules.clone();
        match op {
            "-D" => {
                args.push(&at_arg);
                after.remove(at - 1);
            }
            _ => {
                if op == "-I" {
                    args.push(&at_arg);
                }
                args.extend(victim.split(' '));
                after.insert(at - 1, format!("-A INPUT {victim}"));
            }
        }
        let done = run_killed(&lab, &host, &args, delay);
        let now = read();
        let what = args.join(" ");
        if done {
            completed += 1;
            assert!(
                now == after,
                "[{label}] round {i}: {what} completed, not applied"
            );
        } else {
            killed += 1;
            assert!(
                now == after || now == rules,
                "[{label}] round {i}: {what} killed: the ruleset is neither before nor after it"
            );
            applied += (now == after) as u32;
            // The change after a kill may start over (pcn-iptables builds anew): two uninterrupted
            // ones, so that the next kill again meets a change made in place.
            lab.ipt_ok(&host, "-A INPUT -s 198.18.11.1 -j DROP");
            lab.ipt_ok(&host, "-D INPUT -s 198.18.11.1 -j DROP");
        }
        rules = now;
    }
    eprintln!("[{label}] {completed} completed, {killed} killed ({applied} of them applied)");

    // The tool still works, and the verdicts follow -S.
    lab.ipt_ok(&host, "-A INPUT -s 198.18.10.250 -j DROP");
    rules.push("-A INPUT -s 198.18.10.250/32 -j DROP".into());
    assert_eq!(read(), rules, "[{label}] after the storm");
    std::thread::scope(|sc| {
        for i in 1..=ROUNDS {
            let present = rules.contains(&format!("-A INPUT -s 198.18.10.{i}/32 -j DROP"));
            let (lab, c1) = (&lab, &c1);
            sc.spawn(move || {
                let src = format!("198.18.10.{i}");
                lab.expect(&c1.ping(HOST1).src(&src), if present { Drop } else { Pass });
            });
        }
    });
    lab.expect(&c1.ping(HOST1), Pass);
    lab.check();
}
