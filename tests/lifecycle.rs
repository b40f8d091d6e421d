//! pcn-iptables' own life cycle, which iptables has no counterpart for: no daemon, the same
//! state however the namespace is entered, the lock, `--uninstall`, and the state of
//! namespaces deleted without it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Ns, Pair, Pass, cmd};

/// pcn-iptables's `dataplane::bpffs::LAYOUT` directory.
const STATE_ROOT: &str = "/run/pcn-iptables/bpffs/v22";
const LOCKS: &str = "/run/pcn-iptables/locks";

/// The state directory of `ns` in this layout, named by its network namespace cookie.
fn state_dir(ns: &Ns) -> PathBuf {
    Path::new(STATE_ROOT).join(format!("net-{}", ns.netns_cookie()))
}

/// Processes running the binary under test inside `ns`.
fn our_processes_in(fw: &Fw, ns: &Ns) -> Vec<u32> {
    let netns = fs::metadata(format!("/run/netns/{}", ns.name))
        .unwrap()
        .ino();
    let exe = fs::canonicalize(&fw.bin).unwrap();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe)
                && fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == netns)
        })
        .collect()
}

fn bpf_links_on(ns: &Ns) -> String {
    ns.exec(&["bpftool", "net", "show"]).expect_ok().stdout
}

#[test]
fn rules_keep_working_with_no_process_left() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.ipt_ok(host, &format!("-A INPUT -s {C1} -p icmp -j DROP"));
    // A change leaves a helper behind for one RCU grace period (a few milliseconds): it
    // marks the new generation for the next change. Nothing of ours stays longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !our_processes_in(&fw, host).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        our_processes_in(&fw, host),
        Vec::<u32>::new(),
        "nothing of ours runs"
    );
    lab.expect(&c1.ping(HOST1), Drop);
    lab.check();
}

#[test]
fn every_way_into_the_namespace_sees_the_same_state() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    let netns = format!("--net=/run/netns/{}", host.name);
    // Added through nsenter (our mount namespace), seen and deleted through ip netns exec
    // (a private one with /sys remounted), and the other way round.
    cmd::must(
        "nsenter",
        &[&netns, fw.bin_str(), "-A", "INPUT", "-s", C1, "-j", "DROP"],
    );
    lab.expect(&c1.ping(HOST1), Drop);
    assert!(
        lab.rules(host)
            .contains(&format!("-A INPUT -s {C1}/32 -j DROP"))
    );
    lab.ipt_ok(host, &format!("-D INPUT -s {C1} -j DROP"));
    let listed = cmd::must("nsenter", &[&netns, fw.bin_str(), "-S", "INPUT"]).stdout;
    assert_eq!(listed, "-P INPUT ACCEPT\n");
    lab.expect(&c1.ping(HOST1), Pass);
    lab.check();
}

/// What another version (another state layout) left in a namespace: its programs stay
/// attached and keep ours out. pcn-iptables names it and changes nothing; `--uninstall`
/// removes it.
#[test]
fn an_install_by_another_version_is_named_and_uninstalled() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.ipt_ok(host, &format!("-A INPUT -s {C1} -j DROP"));
    // The install, moved to another layout's directory, is what an older binary leaves.
    struct Remove(PathBuf);
    impl std::ops::Drop for Remove {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let layout =
        Remove(Path::new(STATE_ROOT).with_file_name(format!("vtest-{}", std::process::id())));
    fs::create_dir(&layout.0).unwrap();
    let dir = state_dir(host);
    let other = layout.0.join(dir.file_name().unwrap());
    fs::rename(&dir, &other).unwrap();

    let out = host.exec(&[fw.bin_str(), "-A", "INPUT", "-s", C2, "-j", "DROP"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr.contains(&other.display().to_string()),
        "the other install is not named: {}",
        out.stderr
    );
    assert!(!dir.exists(), "{} made", dir.display());
    lab.expect(&c1.ping(HOST1), Drop);

    host.exec(&[fw.bin_str(), "--uninstall"]).expect_ok();
    assert!(
        !other.exists(),
        "{} left after --uninstall",
        other.display()
    );
    lab.expect(&c1.ping(HOST1), Pass);
    lab.ipt_ok(host, &format!("-A INPUT -s {C1} -j DROP"));
    lab.expect(&c1.ping(HOST1), Drop);
    lab.check();
}

#[test]
fn uninstall_removes_programs_links_and_state() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.ipt_ok(host, &format!("-A INPUT -s {C1} -j DROP"));
    lab.ipt_ok(host, &format!("-A OUTPUT -d {C2} -j DROP"));
    let dir = state_dir(host);
    assert!(dir.exists(), "{}", dir.display());
    let links = bpf_links_on(host);
    // XDP on lo, eth1 and eth2 (bpftool lists no TCX links: OUTPUT's traffic tells instead;
    // classic TC filters, on kernels without TCX, it lists under "tc:").
    let xdp = links.split("tc:").next().unwrap_or_default();
    assert_eq!(xdp.matches(" id ").count(), 3, "{links}");
    lab.expect(&c1.ping(HOST1), Drop);
    lab.expect(&host.ping(C2), Drop);

    host.exec(&[fw.bin_str(), "--uninstall"]).expect_ok();
    let links = bpf_links_on(host);
    assert!(
        !links.contains(" id "),
        "links left after --uninstall: {links}"
    );
    assert!(!dir.exists(), "{} left after --uninstall", dir.display());
    lab.expect(&c1.ping(HOST1), Pass);
    lab.expect(&host.ping(C2), Pass);
    assert_eq!(
        lab.rules(host),
        "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"
    );
    lab.check();
}

#[test]
fn state_of_a_deleted_namespace_is_collected() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, c2, host) = (&pair.lab, &pair.c2, &pair.host);
    // A namespace of its own, so that deleting it leaves the lab's alone.
    let doomed = format!("{}-doomed", c2.name);
    cmd::must("ip", &["netns", "add", &doomed]);
    let doomed_ns = Ns {
        name: doomed.clone(),
        role: "doomed".into(),
    };
    doomed_ns.ip("link set lo up");
    doomed_ns
        .exec(&[fw.bin_str(), "-w", "-A", "INPUT", "-j", "DROP"])
        .expect_ok();
    let dir = state_dir(&doomed_ns);
    assert!(dir.exists(), "{}", dir.display());
    cmd::must("ip", &["netns", "del", &doomed]);
    // Changes in a running install leave it: collecting is a first install's job.
    lab.ipt_ok(host, "-A INPUT -s 198.18.9.1 -j DROP");
    // The kernel tears a namespace down asynchronously; a first install after that collects.
    let gone = (0..50).any(|_| {
        first_install_in(&fw, &format!("{}-probe", c2.name));
        !dir.exists() || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(
        gone,
        "{} still there after its namespace was deleted",
        dir.display()
    );
}

/// A first install of `fw` in a namespace `name` made for it, which is uninstalled and deleted
/// again, even when the install fails.
fn first_install_in(fw: &Fw, name: &str) {
    struct Probe<'a>(Ns, &'a Fw);
    impl std::ops::Drop for Probe<'_> {
        fn drop(&mut self) {
            let _ = self.0.exec(&[self.1.bin_str(), "--uninstall"]);
            let _ = cmd::run("ip", &["netns", "del", &self.0.name]);
        }
    }
    cmd::must("ip", &["netns", "add", name]);
    let probe = Probe(
        Ns {
            name: name.into(),
            role: "probe".into(),
        },
        fw,
    );
    probe.0.ip("link set lo up");
    probe
        .0
        .exec(&[fw.bin_str(), "-w", "-A", "INPUT", "-j", "ACCEPT"])
        .expect_ok();
}

/// A first install killed before it attached, in a namespace gone since, leaves a state
/// directory without links: collected once it has been left alone long enough, not before.
#[test]
fn an_abandoned_install_is_collected() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host) = (&pair.lab, &pair.host);
    lab.ipt_ok(host, "-A INPUT -s 198.18.9.1 -j DROP");
    // Cookies are counted up from 1: these name no namespace.
    struct Remove(PathBuf);
    impl std::ops::Drop for Remove {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let fake = |n: u64| Remove(Path::new(STATE_ROOT).join(format!("net-{}", u64::MAX - n)));
    let (old, recent) = (
        fake(std::process::id() as u64 * 2),
        fake(std::process::id() as u64 * 2 + 1),
    );
    for d in [&old, &recent] {
        fs::create_dir(&d.0).unwrap();
        fs::create_dir(d.0.join("gen-0")).unwrap();
    }
    cmd::must("touch", &["-d", "1 hour ago", old.0.to_str().unwrap()]);
    lab.ipt_ok(host, "-A INPUT -s 198.18.9.2 -j DROP");
    first_install_in(&fw, &format!("{}-probe", host.name));
    assert!(!old.0.exists(), "{} left", old.0.display());
    assert!(recent.0.exists(), "{} removed at once", recent.0.display());
    assert!(state_dir(host).exists());
}

fn hold_lock(dir: &Path) -> Flock<fs::File> {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let file = fs::File::options()
        .write(true)
        .open(format!("{LOCKS}/{name}.lock"))
        .unwrap();
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

#[test]
fn a_busy_lock_is_an_error_without_wait_and_awaited_with_it() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host) = (&pair.lab, &pair.host);
    lab.ipt_ok(host, "-A INPUT -s 198.18.9.1 -j DROP");
    let dir = state_dir(host);
    let lock = hold_lock(&dir);

    // Without the harness's -w: these must meet the busy lock.
    let add = |wait: &str| {
        let line = format!("{wait} -A INPUT -s 198.18.9.2 -j DROP");
        let mut args = vec![fw.bin_str()];
        args.extend(line.split_whitespace());
        host.exec(&args)
    };
    let out = add("");
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(
        out.stderr,
        "Another app is currently holding the xtables lock. Perhaps you want to use the -w option?\n"
    );
    let out = add("-w 1");
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(
        out.stderr,
        "Another app is currently holding the xtables lock. Stopped waiting after 1s.\n"
    );

    // -w without a limit waits until the lock is free, then does its job.
    let waiter = cmd::spawn(
        "ip",
        &[
            "netns",
            "exec",
            &host.name,
            fw.bin_str(),
            "-w",
            "-A",
            "INPUT",
            "-s",
            "198.18.9.3",
            "-j",
            "DROP",
        ],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(lock);
    let out = cmd::wait(waiter, "-w -A".into(), Duration::from_secs(30));
    assert!(out.success(), "{out}");
    assert_eq!(
        lab.rules(host)
            .lines()
            .filter(|l| l.starts_with("-A"))
            .collect::<Vec<_>>(),
        [
            "-A INPUT -s 198.18.9.1/32 -j DROP",
            "-A INPUT -s 198.18.9.3/32 -j DROP"
        ]
    );
}

#[test]
fn the_connection_table_size_is_set_at_install() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.note_fw_use(host);
    host.exec(&[fw.bin_str(), "--conntrack-size", "1024"])
        .expect_ok();
    let map = state_dir(host).join("PCN_CONNTRACK");
    let shown = cmd::must("bpftool", &["map", "show", "pinned", map.to_str().unwrap()]).stdout;
    assert!(shown.contains("max_entries 1024"), "{shown}");
    // Installed: traffic is tracked, rules work, and the size stays until --uninstall.
    lab.ipt_ok(
        host,
        &format!("-A INPUT -s {C1} -m conntrack --ctstate NEW -p icmp -j DROP"),
    );
    lab.expect(&c1.ping(HOST1), Drop);
    let out = host.exec(&[fw.bin_str(), "--conntrack-size", "2048"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("holds 1024 connections"), "{out}");
    host.exec(&[fw.bin_str(), "--conntrack-size", "1024"])
        .expect_ok();
    host.exec(&[fw.bin_str(), "--uninstall"]).expect_ok();
    host.exec(&[fw.bin_str(), "--conntrack-size", "2048"])
        .expect_ok();
    let shown = cmd::must("bpftool", &["map", "show", "pinned", map.to_str().unwrap()]).stdout;
    assert!(shown.contains("max_entries 2048"), "{shown}");
    lab.check();
}

/// The flow cache's size is set at install too, and both keep theirs until --uninstall.
#[test]
fn the_flow_cache_size_is_set_at_install() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host) = (&pair.lab, &pair.host);
    lab.note_fw_use(host);
    host.exec(&[fw.bin_str(), "--flow-cache-size", "4096"])
        .expect_ok();
    let map = state_dir(host).join("PCN_FLOWS");
    let shown = cmd::must("bpftool", &["map", "show", "pinned", map.to_str().unwrap()]).stdout;
    assert!(shown.contains("max_entries 4096"), "{shown}");
    let out = host.exec(&[fw.bin_str(), "--flow-cache-size", "8192"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("flow cache here holds 4096 flows"),
        "{out}"
    );
    lab.check();
}

/// A full table makes room for a translated connection as for any other: early drop takes
/// an unassured connection with its aliases (the keys that lead its replies back), so the new
/// connection and its own alias both fit.
#[test]
fn a_full_connection_table_takes_new_translated_connections() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.note_fw_use(host);
    // Room for four translated connections (each is stored under two keys).
    host.exec(&[fw.bin_str(), "--conntrack-size", "8"])
        .expect_ok();
    lab.ipt_ok(
        host,
        "-t nat -A PREROUTING -p udp --dport 7001 -j REDIRECT --to-ports 7000",
    );
    lab.ipt_ok(
        host,
        "-t nat -A PREROUTING -p udp --dport 7100 -j REDIRECT --to-ports 7101",
    );
    lab.serve(host, &[7000]);
    // Four translated connections no reply assures (nothing listens on 7101).
    for sport in 42001..=42004 {
        assert!(
            !c1.udp(HOST1, 7100)
                .sport(sport)
                .attempt(Duration::from_millis(300))
        );
    }
    for sport in 42010..=42013 {
        lab.expect(&c1.udp(HOST1, 7001).sport(sport), Pass);
    }
    lab.check();
}

/// A full connection table makes room as netfilter's early_drop does: a connection not yet
/// assured (no reply; for UDP, no traffic two seconds after a reply) goes for a new one; when
/// every connection is assured, the new connection's packet is dropped, and the connections
/// already there go on.
#[test]
fn a_full_connection_table_drops_unassured_connections_first() {
    let fw = Fw::pcn();
    let pair = Pair::new(fw.clone());
    let (lab, host, c1) = (&pair.lab, &pair.host, &pair.c1);
    lab.note_fw_use(host);
    host.exec(&[fw.bin_str(), "--conntrack-size", "4"])
        .expect_ok();
    lab.ipt_ok(host, "-A INPUT -m conntrack --ctstate INVALID -j DROP");
    lab.serve(host, &[7000]);
    let tracked = |sport: u16| {
        let out = host.exec(&[fw.bin_str(), "--conntrack"]).expect_ok().stdout;
        out.lines()
            .any(|l| l.contains(&format!(" {sport} ")) || l.contains(&format!("┆ {sport} ")))
    };
    // Four connections no reply assured (nothing listens on 7001).
    for sport in 41001..=41004 {
        assert!(
            !c1.udp(HOST1, 7001)
                .sport(sport)
                .attempt(Duration::from_millis(300))
        );
    }
    // Full: each new connection takes the place of one of those.
    for sport in 41010..=41013 {
        lab.expect(&c1.udp(HOST1, 7000).sport(sport), Pass);
        assert!(tracked(sport), "{sport} not tracked");
    }
    assert!((41001..=41004).all(|s| !tracked(s)), "unassured ones kept");
    // Two seconds on, one more datagram each makes them UDP streams: assured.
    std::thread::sleep(Duration::from_millis(2100));
    for sport in 41010..=41013 {
        lab.expect(&c1.udp(HOST1, 7000).sport(sport), Pass);
    }
    // Full of assured connections: a new one is dropped, the others go on.
    lab.expect(&c1.udp(HOST1, 7000).sport(41020), Drop);
    lab.expect(&c1.udp(HOST1, 7000).sport(41010), Pass);
    lab.check();
}

/// Every command starts the binary: it needs no libgcc_s.so (pcn-iptables/build.rs links
/// gcc's unwinder statically), whose constructor probes the CPU with cpuid at each start, a
/// trap to the hypervisor on a VM. A dynamic dependency names the library in the binary.
#[test]
fn the_binary_needs_no_libgcc_s() {
    let elf = fs::read(&Fw::pcn().bin).unwrap();
    assert!(
        !elf.windows(11).any(|w| w == b"libgcc_s.so"),
        "the binary names libgcc_s.so"
    );
}

/// A first install's programs start loading before its commit: a change refused on the way
/// (a mark set in mangle OUTPUT while a routing rule selects by it and lo does not forward)
/// leaves the namespace as it was, without pcn-iptables.
#[test]
fn a_first_change_refused_at_its_commit_installs_nothing() {
    let pair = Pair::new(Fw::pcn());
    let host = &pair.host;
    host.exec(&["ip", "rule", "add", "fwmark", "1", "table", "100"])
        .expect_ok();
    let out = pair
        .lab
        .ipt(host, "-t mangle -A OUTPUT -j MARK --set-mark 1");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("mangle OUTPUT"), "{}", out.stderr);
    let dir = state_dir(host);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let links = bpf_links_on(host);
    assert!(!links.contains(" id "), "links left behind: {links}");
}
