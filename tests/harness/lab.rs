//! Throwaway network namespaces, the firewall commands run in them, and the verdict checks.

use std::fmt::Write as _;
use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use crate::cmd::{self, Out};
use crate::fw::Fw;
use crate::traffic::{Flow, Server, Verdict};

static NEXT_NS: AtomicUsize = AtomicUsize::new(0);
static STALE_SWEEP: Once = Once::new();

/// Prefix of every namespace the harness makes.
pub const NS_PREFIX: &str = "pcnt-";

/// Deadline for one firewall invocation (generous: the lock may be busy with parallel tests).
pub const FW_TIMEOUT: Duration = Duration::from_secs(120);

/// A network namespace made by a [`Lab`] (the lab deletes it).
#[derive(Clone, Debug)]
pub struct Ns {
    /// `pcnt-<pid>-<n>`, its name under /run/netns.
    pub name: String,
    /// What the test calls it (`host`, `client`, `router`...), for messages.
    pub role: String,
}

impl Ns {
    /// `ip netns exec <ns> args...`, with a deadline.
    pub fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Out {
        let mut v = vec!["netns", "exec", &self.name];
        v.extend_from_slice(args);
        cmd::run_timeout("ip", &v, timeout)
    }

    /// `ip netns exec <ns> args...` (60 s deadline).
    pub fn exec(&self, args: &[&str]) -> Out {
        self.exec_timeout(args, Duration::from_secs(60))
    }

    /// `ip -n <ns> <args>`, which must succeed (`args` split on whitespace).
    #[track_caller]
    pub fn ip(&self, args: &str) {
        let mut v = vec!["-n", &self.name];
        v.extend(args.split_whitespace());
        cmd::must("ip", &v);
    }

    /// `sysctl -qw key=value` inside the namespace, which must succeed.
    #[track_caller]
    pub fn sysctl(&self, kv: &str) {
        self.exec(&["sysctl", "-qw", kv]).expect_ok();
    }

    /// Runs `f` on a new thread that has joined this network namespace, and returns its result.
    /// Sockets made there stay in the namespace whichever thread uses them later.
    pub fn in_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            });
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// The namespace's cookie (SO_NETNS_COOKIE), which names pcn-iptables' state directory.
    pub fn netns_cookie(&self) -> u64 {
        self.in_ns(|| {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut cookie = 0u64;
            let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
            const SO_NETNS_COOKIE: libc::c_int = 71;
            // SAFETY: cookie and len are valid for the size given.
            let rc = unsafe {
                libc::getsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    libc::SOL_SOCKET,
                    SO_NETNS_COOKIE,
                    (&mut cookie as *mut u64).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0, "SO_NETNS_COOKIE");
            cookie
        })
    }

    /// pcn-iptables' state directory of this namespace, `net-<cookie>` under whichever
    /// layout version's directory holds it.
    pub fn state_dir(&self) -> std::path::PathBuf {
        let cookie = self.netns_cookie();
        let root = std::path::Path::new("/run/pcn-iptables/bpffs");
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path().join(format!("net-{cookie}")))
            .find(|d| d.exists())
            .unwrap_or_else(|| panic!("no state directory of {self} under {}", root.display()))
    }

    /// A ping (one ICMP echo request) from this namespace to `dst`.
    pub fn ping(&self, dst: &str) -> Flow {
        Flow::new(self, crate::traffic::Proto::Icmp, dst)
    }

    /// A TCP connect from this namespace to `dst:port`.
    pub fn tcp(&self, dst: &str, port: u16) -> Flow {
        Flow::new(self, crate::traffic::Proto::Tcp(port), dst)
    }

    /// A UDP request/echo from this namespace to `dst:port`.
    pub fn udp(&self, dst: &str, port: u16) -> Flow {
        Flow::new(self, crate::traffic::Proto::Udp(port), dst)
    }
}

impl std::fmt::Display for Ns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.role)
    }
}

/// A set of namespaces with one firewall kind; cleans everything up on drop.
pub struct Lab {
    pub fw: Fw,
    namespaces: Vec<Ns>,
    /// Namespaces where the firewall binary ran (for `--uninstall` and failure dumps).
    fw_used: Mutex<Vec<Ns>>,
    servers: Mutex<Vec<Server>>,
    /// Every verdict observed, in order: (flow description, passed).
    verdicts: Mutex<Vec<(String, bool)>>,
    /// Verdict mismatches so far; reported (as a panic) at the latest when the lab drops.
    failures: Mutex<Vec<String>>,
}

impl Lab {
    pub fn new(fw: Fw) -> Lab {
        STALE_SWEEP.call_once(sweep_stale_namespaces);
        Lab {
            fw,
            namespaces: Vec::new(),
            fw_used: Mutex::new(Vec::new()),
            servers: Mutex::new(Vec::new()),
            verdicts: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// Makes a namespace (`lo` up, IPv6 off so that only the test's IPv4 packets flow).
    pub fn ns(&mut self, role: &str) -> Ns {
        let name = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            NEXT_NS.fetch_add(1, Ordering::Relaxed)
        );
        cmd::must("ip", &["netns", "add", &name]);
        let ns = Ns {
            name,
            role: role.to_string(),
        };
        self.namespaces.push(ns.clone());
        ns.ip("link set lo up");
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            "net.ipv6.conf.lo.disable_ipv6=1",
        ])
        .expect_ok();
        ns
    }

    /// Replaces `ns` by a new namespace of the same role, deleting it: a namespace as fresh
    /// as a new one (netfilter's tables, once loaded in a namespace, stay until it goes).
    pub fn renew(&mut self, ns: &Ns) -> Ns {
        let out = cmd::run("ip", &["netns", "del", &ns.name]);
        if !out.success() {
            eprintln!("renew: {out}");
        }
        self.namespaces.retain(|n| n.name != ns.name);
        self.fw_used.lock().unwrap().retain(|n| n.name != ns.name);
        self.ns(&ns.role)
    }

    /// A veth pair `a_if` (in `a`) — `b_if` (in `b`), both up.
    pub fn veth(&self, a: &Ns, a_if: &str, b: &Ns, b_if: &str) {
        cmd::must(
            "ip",
            &[
                "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if,
                "netns", &b.name,
            ],
        );
        a.ip(&format!("link set {a_if} up"));
        b.ip(&format!("link set {b_if} up"));
    }

    /// Runs the firewall in `ns`: `ip netns exec NS <binary> -w <args>` (args split on
    /// whitespace). Returns whatever happened; see [`Lab::ipt_ok`].
    pub fn ipt(&self, ns: &Ns, args: &str) -> Out {
        let v: Vec<&str> = args.split_whitespace().collect();
        self.ipt_args(ns, &v)
    }

    /// [`Lab::ipt`] with the arguments given one by one.
    pub fn ipt_args(&self, ns: &Ns, args: &[&str]) -> Out {
        self.note_fw_use(ns);
        let mut v = vec![self.fw.bin_str(), "-w"];
        v.extend_from_slice(args);
        ns.exec_timeout(&v, FW_TIMEOUT)
    }

    /// [`Lab::ipt`], which must exit 0.
    #[track_caller]
    pub fn ipt_ok(&self, ns: &Ns, args: &str) -> Out {
        let out = self.ipt(ns, args);
        if !out.success() {
            panic!("[{}] in {ns}: {out}", self.fw.label());
        }
        out
    }

    /// Several rules, one per line (blank lines and `#` lines skipped), each of which must work.
    #[track_caller]
    pub fn ipt_lines(&self, ns: &Ns, lines: &str) {
        for l in lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            self.ipt_ok(ns, l);
        }
    }

    /// `-S` (all chains of the filter table), which must work.
    #[track_caller]
    pub fn rules(&self, ns: &Ns) -> String {
        self.ipt_ok(ns, "-S").stdout
    }

    /// The packet counts of the rules of `chain` (`CHAIN -t TABLE` for another table's), in
    /// order.
    #[track_caller]
    pub fn counts(&self, ns: &Ns, chain: &str) -> Vec<u64> {
        self.ipt_ok(ns, &format!("-L {chain} -v -x -n"))
            .stdout
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    }

    /// `-L -v -x -n`, which must work.
    #[track_caller]
    pub fn listing(&self, ns: &Ns) -> String {
        self.ipt_ok(ns, "-L -v -x -n").stdout
    }

    /// Records that the firewall ran in `ns` (before it runs, so a crash still gets cleaned up).
    pub fn note_fw_use(&self, ns: &Ns) {
        let mut used = self.fw_used.lock().unwrap();
        if !used.iter().any(|n| n.name == ns.name) {
            used.push(ns.clone());
        }
    }

    /// Starts TCP listeners (accept, and hold) and UDP echo servers on `ports` in `ns`; they
    /// stop when the lab drops.
    pub fn serve(&self, ns: &Ns, ports: &[u16]) {
        let server = Server::start(ns, ports);
        self.servers.lock().unwrap().push(server);
    }

    /// Sends `flow` and compares the outcome with `want`. A mismatch does not stop the test at
    /// once: it is recorded, and all mismatches are reported together (by [`Lab::check`] or
    /// when the lab drops). Expected passes are retried briefly; an expected drop is a single
    /// attempt with a short timeout.
    pub fn expect(&self, flow: &Flow, want: Verdict) {
        let passed = match want {
            Verdict::Pass => [1000, 1000, 2000]
                .iter()
                .any(|&ms| flow.attempt(Duration::from_millis(ms))),
            Verdict::Drop => flow.attempt(Duration::from_millis(400)),
        };
        self.record(flow, passed, Some(want));
    }

    /// Sends `flow` once (no retry) and returns whether it got through; recorded in the
    /// transcript but not checked.
    pub fn observe(&self, flow: &Flow, timeout: Duration) -> bool {
        let passed = flow.attempt(timeout);
        self.record(flow, passed, None);
        passed
    }

    /// [`Lab::observe`] that also checks the result against `want` (single attempt, no retry:
    /// for counter tests, where every packet counts).
    pub fn expect_once(&self, flow: &Flow, want: Verdict, timeout: Duration) {
        let passed = flow.attempt(timeout);
        self.record(flow, passed, Some(want));
    }

    fn record(&self, flow: &Flow, passed: bool, want: Option<Verdict>) {
        let desc = flow.to_string();
        self.verdicts.lock().unwrap().push((desc.clone(), passed));
        if let Some(want) = want
            && passed != (want == Verdict::Pass)
        {
            let got = if passed { "PASSED" } else { "was DROPPED" };
            let mut msg = format!("[{}] {desc}: expected {want:?}, it {got}", self.fw.label());
            msg.push_str(&self.dump_rules());
            eprintln!("MISMATCH {msg}");
            self.failures.lock().unwrap().push(msg);
        }
    }

    /// `-S` of every namespace where the firewall ran, for failure messages.
    pub fn dump_rules(&self) -> String {
        let used = self.fw_used.lock().unwrap().clone();
        let mut s = String::new();
        for ns in used {
            let out = ns.exec_timeout(&[self.fw.bin_str(), "-w", "-S"], FW_TIMEOUT);
            let _ = write!(s, "\n  rules in {ns} (-S):");
            if out.success() {
                for l in out.stdout.lines() {
                    let _ = write!(s, "\n    {l}");
                }
            } else {
                let _ = write!(s, "\n    <{out}>");
            }
        }
        s
    }

    /// Every verdict observed so far: (flow, passed).
    pub fn verdicts(&self) -> Vec<(String, bool)> {
        self.verdicts.lock().unwrap().clone()
    }

    /// Hands over (and forgets) the verdict mismatches so far.
    pub fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *self.failures.lock().unwrap())
    }

    /// Panics if any verdict so far was not the expected one.
    #[track_caller]
    pub fn check(&self) {
        let f = self.take_failures();
        if !f.is_empty() {
            panic!(
                "{} verdict(s) differ from what was expected:\n{}",
                f.len(),
                f.join("\n")
            );
        }
    }

    /// The namespaces of this lab.
    pub fn namespaces(&self) -> &[Ns] {
        &self.namespaces
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in self
            .servers
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default()
        {
            drop(s);
        }
        if self.fw.is_pcn() {
            let used = self
                .fw_used
                .get_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            for ns in used {
                let out = ns.exec_timeout(&[self.fw.bin_str(), "--uninstall"], FW_TIMEOUT);
                if !out.success() {
                    eprintln!(
                        "cleanup: pcn-iptables --uninstall in {} failed: {out}",
                        ns.name
                    );
                }
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            let out = cmd::run("ip", &["netns", "del", &ns.name]);
            if !out.success() {
                eprintln!("cleanup: {out}");
            }
        }
        let failures = self
            .failures
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        if !failures.is_empty() && !std::thread::panicking() {
            panic!(
                "{} verdict(s) differ from what was expected:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    }
}

/// Deletes namespaces left behind by earlier test processes that were killed before they
/// could clean up (`pcnt-<pid>-*` whose pid is gone), after `pcn-iptables --uninstall` in each
/// when the binary is there.
fn sweep_stale_namespaces() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    // pcn-iptables may have been used there: let it remove its programs and pins first.
    let pcn = Fw::pcn_if_present();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            if let Some(fw) = &pcn {
                let args = ["netns", "exec", &name, fw.bin_str(), "--uninstall"];
                let _ = cmd::run_timeout("ip", &args, Duration::from_secs(30));
            }
            let _ = cmd::run("ip", &["netns", "del", &name]);
        }
    }
}

/// Parses a dotted IPv4 address, panicking on typos in tests.
pub fn ip4(s: &str) -> Ipv4Addr {
    s.parse()
        .unwrap_or_else(|_| panic!("bad IPv4 address {s:?}"))
}
