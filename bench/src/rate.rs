//! End-to-end packet rate: trafgen floods the receiving namespace (where this runs) with
//! 64-byte UDP packets that match the last rule of the rule set, over many flows; the rate is
//! what the receiving interface took in per second, which in steady state is what its
//! firewall judged (what it cannot keep up with is dropped at the veth before anyone counts it).
//! The firewall's own counter of the last rule, read before and after, checks that the packets
//! really went where they should.

use std::{
    fs,
    io::Write as _,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use aya::programs::XdpMode;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use crate::{
    bpf::{self, Baseline, Installed},
    packet::trafgen_config,
    rules::{Case, Proto, RuleSet},
    tsv,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Firewall {
    /// pcn-iptables, installed through its library.
    Pcn,
    /// iptables-legacy, loaded with iptables-legacy-restore.
    Legacy,
    /// iptables-nft, loaded with iptables-nft-restore.
    Nft,
    /// XDP that only drops, on the receiving interface (native mode where the driver has it,
    /// as pcn-iptables attaches).
    Baseline,
    /// The same program in generic (SKB) mode, after the kernel has built the socket buffer.
    BaselineSkb,
}

impl Firewall {
    pub fn name(self) -> &'static str {
        match self {
            Firewall::Pcn => "pcn",
            Firewall::Legacy => "legacy",
            Firewall::Nft => "nft",
            Firewall::Baseline => "baseline",
            Firewall::BaselineSkb => "baseline-skb",
        }
    }

    fn iptables(self) -> &'static str {
        match self {
            Firewall::Legacy => "iptables-legacy",
            _ => "iptables-nft",
        }
    }
}

pub struct Options {
    pub firewall: Firewall,
    pub chain: String,
    pub rules: usize,
    /// The generator's namespace and interface, and the MAC its frames go to.
    pub gen_ns: String,
    pub gen_iface: String,
    pub dst_mac: String,
    /// The interface the packets arrive on here.
    pub rx_iface: String,
    pub cpus: u32,
    /// More trafgen options.
    pub trafgen_opts: String,
    /// How long to wait, at most, for the other work on the machine to quiet down first.
    pub quiet_wait: Duration,
    pub warmup: Duration,
    pub window: Duration,
    pub windows: usize,
    pub out: PathBuf,
}

pub const COLUMNS: [&str; 15] = [
    "chain",
    "firewall",
    "rules",
    "pps",
    "pps_min",
    "pps_max",
    "sent_pps",
    "fw_ratio",
    "load_ms",
    "entry_ns",
    "entry_runs_pps",
    "others_before",
    "others_during",
    "windows",
    "check",
];

/// A window in which other work took less than this share of the CPUs counts as clean.
const CLEAN: f64 = 0.1;

/// One measuring window: the packet rate, and the share of the CPUs that went to other work
/// meanwhile (neither the generator nor this process).
#[derive(Clone, Copy, Debug)]
struct Window {
    pps: f64,
    others: f64,
}

/// CPU time, in clock ticks: user and system time of the whole machine (`/proc/stat`, softirq
/// apart), all of it, and the part used by the generator's process group and this process.
struct CpuTime {
    busy: u64,
    total: u64,
    ours: u64,
}

impl CpuTime {
    fn now(group: i32) -> Result<Self> {
        let stat = fs::read_to_string("/proc/stat")?;
        let line = stat.lines().next().context("empty /proc/stat")?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().unwrap_or(0))
            .collect();
        ensure!(v.len() >= 5, "unexpected /proc/stat: {line}");
        let me = std::process::id() as i32;
        let mut ours = 0;
        for entry in fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command name: state ppid pgrp … utime (14th field) stime (15th).
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 12 && (pid == me || f[2].parse::<i32>() == Ok(group)) {
                ours += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
            }
        }
        Ok(CpuTime {
            busy: v[0] + v[1] + v[2],
            total: v.iter().sum(),
            ours,
        })
    }

    /// The share of the CPUs other work used since `earlier`.
    fn others_since(&self, earlier: &CpuTime) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let others = (self.busy.saturating_sub(earlier.busy))
            .saturating_sub(self.ours.saturating_sub(earlier.ours));
        if total == 0 {
            0.0
        } else {
            others as f64 / total as f64
        }
    }
}

/// A loaded firewall, able to tell how many packets its last rule has counted.
enum Loaded {
    Pcn(Installed),
    Iptables(Firewall),
    Baseline(#[allow(dead_code)] Baseline),
}

impl Loaded {
    fn load(opts: &Options, rules: &RuleSet) -> Result<Self> {
        Ok(match opts.firewall {
            Firewall::Pcn => Loaded::Pcn(bpf::install(rules)?),
            fw @ (Firewall::Legacy | Firewall::Nft) => {
                let restore = format!("{}-restore", fw.iptables());
                let mut child = Command::new(&restore)
                    .arg("-w")
                    .stdin(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("running {restore}"))?;
                child
                    .stdin
                    .take()
                    .context("stdin")?
                    .write_all(rules.restore_text().as_bytes())?;
                let status = child.wait()?;
                ensure!(status.success(), "{restore} failed: {status}");
                Loaded::Iptables(fw)
            }
            Firewall::Baseline | Firewall::BaselineSkb => {
                let mut b = Baseline::load()?;
                let mode = if opts.firewall == Firewall::Baseline {
                    XdpMode::Default
                } else {
                    XdpMode::Skb
                };
                b.attach(&opts.rx_iface, mode)?;
                Loaded::Baseline(b)
            }
        })
    }

    /// Packets the last rule has counted (`None`: the baseline counts nothing).
    fn last_rule_packets(&self, rules: &RuleSet) -> Result<Option<u64>> {
        match self {
            Loaded::Pcn(i) => Ok(Some(i.packets(i.rule_counters[rules.n - 1])?)),
            Loaded::Iptables(fw) => {
                // `-L CHAIN N` lists rule N alone; its first column is the packet count.
                let out = Command::new(fw.iptables())
                    .args([
                        "-w",
                        "-L",
                        &rules.chain,
                        &rules.n.to_string(),
                        "-v",
                        "-x",
                        "-n",
                    ])
                    .output()
                    .with_context(|| format!("running {}", fw.iptables()))?;
                ensure!(out.status.success(), "{} -L failed", fw.iptables());
                let text = String::from_utf8_lossy(&out.stdout);
                let packets = text
                    .split_whitespace()
                    .next()
                    .and_then(|w| w.parse().ok())
                    .with_context(|| format!("no packet count in {text:?}"))?;
                Ok(Some(packets))
            }
            Loaded::Baseline(_) => Ok(None),
        }
    }
}

/// Packets received and sent by `iface` in the namespace whose `/proc/.../net/dev` is `dev`
/// (`/proc/self/net/dev` for ours, `/proc/PID/net/dev` for another process's).
fn iface_packets(dev: &str, iface: &str) -> Result<(u64, u64)> {
    let text = fs::read_to_string(dev).with_context(|| format!("reading {dev}"))?;
    for line in text.lines() {
        let Some((name, stats)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == iface {
            let v: Vec<u64> = stats
                .split_whitespace()
                .map(|w| w.parse().unwrap_or(0))
                .collect();
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets …
            ensure!(v.len() >= 16, "unexpected {dev} line: {line}");
            // Sent: what the veth passed on plus what it dropped for a full peer queue.
            return Ok((v[1], v[9] + v[11]));
        }
    }
    bail!("no interface {iface} in {dev}")
}

/// trafgen in the generator's namespace, in a process group of its own so that stopping it
/// reaches its per-CPU children too.
struct Generator {
    child: Child,
    config: PathBuf,
}

impl Generator {
    fn start(opts: &Options, rules: &RuleSet) -> Result<Self> {
        let config = std::env::temp_dir().join(format!("pcn-bench-{}.trafgen", std::process::id()));
        fs::write(
            &config,
            trafgen_config(&rules.flow(Case::Last), &opts.dst_mac),
        )?;
        let log = fs::File::create(opts.out.join("trafgen.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &opts.gen_ns, "trafgen"])
            .args(["-o", &opts.gen_iface, "-c"])
            .arg(&config)
            .args(["--cpus", &opts.cpus.to_string(), "-Q", "-C"])
            .args(opts.trafgen_opts.split_whitespace())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting trafgen")?;
        Ok(Generator { child, config })
    }

    /// trafgen's process group (its own pid: it leads it).
    fn group(&self) -> i32 {
        self.child.id() as i32
    }

    /// `/proc/PID/net/dev` of trafgen, which shows the generator's namespace.
    fn net_dev(&self) -> String {
        format!("/proc/{}/net/dev", self.child.id())
    }

    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("trafgen exited early ({status}); see trafgen.log");
        }
        Ok(())
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        // SIGINT, as ^C would: trafgen stops its children and restores what it tuned.
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = self.child.wait();
        }
        let _ = fs::remove_file(&self.config);
    }
}

/// Runs of the entry program per second and nanoseconds per run while the traffic flows, from
/// the kernel's BPF statistics (enabled only for this extra second: they cost a little).
fn entry_stats(installed: &Installed) -> Result<(f64, f64)> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
    let dir = installed.dp.dir();
    let a = bpf::entry_info(dir)?;
    let start = Instant::now();
    sleep(Duration::from_secs(1));
    let b = bpf::entry_info(dir)?;
    let secs = start.elapsed().as_secs_f64();
    let runs = b.run_count().saturating_sub(a.run_count());
    let ns = b.run_time().saturating_sub(a.run_time()).as_nanos() as f64;
    Ok((
        runs as f64 / secs,
        if runs > 0 { ns / runs as f64 } else { 0.0 },
    ))
}

/// Busy and total jiffies of all CPUs so far (`/proc/stat`).
fn cpu_jiffies() -> Result<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    ensure!(v.len() >= 5, "unexpected /proc/stat: {line}");
    let total: u64 = v.iter().sum();
    // idle and iowait
    Ok((total - v[3] - v[4], total))
}

/// Share of the machine's CPU time that was busy over `span`. Between two measurements this
/// benchmark runs nothing, so this is other people's work.
fn busy_over(span: Duration) -> Result<f64> {
    let (b0, t0) = cpu_jiffies()?;
    sleep(span);
    let (b1, t1) = cpu_jiffies()?;
    Ok(if t1 > t0 {
        (b1 - b0) as f64 / (t1 - t0) as f64
    } else {
        0.0
    })
}

/// Waits, up to `limit`, until less than a fifth of the CPU time goes to other work; returns
/// the share last seen.
fn wait_for_quiet(limit: Duration) -> Result<f64> {
    let start = Instant::now();
    loop {
        let busy = busy_over(Duration::from_millis(500))?;
        if busy < 0.2 || start.elapsed() >= limit {
            return Ok(busy);
        }
    }
}

pub fn run(opts: &Options) -> Result<()> {
    let rules = RuleSet::new(opts.rules, Proto::Udp, &opts.chain)?;
    let others_busy = wait_for_quiet(opts.quiet_wait)?;
    let start = Instant::now();
    let loaded = Loaded::load(opts, &rules)?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;

    let mut generator = Generator::start(opts, &rules)?;
    sleep(opts.warmup);
    generator.check_running()?;

    let rx = || iface_packets("/proc/self/net/dev", &opts.rx_iface).map(|(rx, _)| rx);
    // The firewall's counter is read between two readings of the interface's (listing 16,384
    // nft rules takes a while): its counts are compared with their midpoints.
    let rx_fw_before = rx()?;
    let fw_before = loaded.last_rule_packets(&rules)?;
    let (rx_before, t_before) = (rx()?, Instant::now());
    let sent_before = iface_packets(&generator.net_dev(), &opts.gen_iface)?.1;
    // Windows until `windows` of them were undisturbed by other work, or twice as many were
    // tried; then the least disturbed ones count.
    let mut windows: Vec<Window> = Vec::new();
    while windows.len() < 2 * opts.windows
        && windows.iter().filter(|w| w.others < CLEAN).count() < opts.windows
    {
        let (a, ta, ca) = (rx()?, Instant::now(), CpuTime::now(generator.group())?);
        sleep(opts.window);
        let (b, tb, cb) = (rx()?, Instant::now(), CpuTime::now(generator.group())?);
        windows.push(Window {
            pps: (b - a) as f64 / (tb - ta).as_secs_f64(),
            others: cb.others_since(&ca),
        });
    }
    let sent_after = iface_packets(&generator.net_dev(), &opts.gen_iface)?.1;
    let (rx_after, t_after) = (rx()?, Instant::now());
    let fw_after = loaded.last_rule_packets(&rules)?;
    let rx_fw_after = rx()?;
    let secs = (t_after - t_before).as_secs_f64();
    let sent_pps = (sent_after - sent_before) as f64 / secs;

    // Did the firewall's last rule see what the interface took in?
    let rx_total = (rx_after + rx_fw_after) / 2 - (rx_fw_before + rx_before) / 2;
    let fw_ratio = match (fw_before, fw_after) {
        (Some(a), Some(b)) if rx_total > 0 => Some((b - a) as f64 / rx_total as f64),
        _ => None,
    };
    // A worker whose TX ring the receiving veth did not drain in time exits, and the rest
    // send less: the rate is then the generator's (its parent keeps running).
    let stalled = fs::read_to_string(opts.out.join("trafgen.log"))
        .is_ok_and(|log| log.contains("TX_RING failed"));
    let check = match fw_ratio {
        _ if stalled => "a trafgen worker stalled (TX_RING failed)".to_string(),
        Some(r) if !(0.9..=1.1).contains(&r) => format!("last rule counted {r:.2} of rx"),
        _ => "ok".to_string(),
    };
    let (entry_runs, entry_ns) = match &loaded {
        Loaded::Pcn(i) => {
            let (runs, ns) = entry_stats(i)?;
            (format!("{runs:.0}"), format!("{ns:.1}"))
        }
        _ => ("-".into(), "-".into()),
    };
    generator.check_running()?;
    drop(generator);

    let all = windows
        .iter()
        .map(|w| format!("{:.0}@{:.0}%", w.pps / 1e3, w.others * 100.0))
        .collect::<Vec<_>>()
        .join(",");
    let mut kept = windows.clone();
    kept.sort_by(|a, b| a.others.total_cmp(&b.others));
    kept.truncate(opts.windows);
    let others = kept.iter().map(|w| w.others).sum::<f64>() / kept.len() as f64;
    let mut rates: Vec<f64> = kept.iter().map(|w| w.pps).collect();
    rates.sort_by(f64::total_cmp);
    let pps = rates[rates.len() / 2];
    eprintln!(
        "rate: {:<7} {:<12} {:>5} rules: {:>9.0} pps (sent {:.0}), last rule/rx {}, \
         others' CPU before {:.0}%, during {:.0}% (windows, kpps@others: {all}), {check}",
        opts.chain,
        opts.firewall.name(),
        opts.rules,
        pps,
        sent_pps,
        fw_ratio.map_or("-".into(), |r| format!("{r:.3}")),
        others_busy * 100.0,
        others * 100.0,
    );
    tsv::append(
        &opts.out.join(format!("rate-{}.tsv", opts.chain)),
        &COLUMNS,
        &[
            opts.chain.clone(),
            opts.firewall.name().into(),
            opts.rules.to_string(),
            format!("{pps:.0}"),
            format!("{:.0}", rates[0]),
            format!("{:.0}", rates[rates.len() - 1]),
            format!("{sent_pps:.0}"),
            fw_ratio.map_or("-".into(), |r| format!("{r:.3}")),
            format!("{load_ms:.0}"),
            entry_ns,
            entry_runs,
            format!("{:.0}", others_busy * 100.0),
            format!("{:.0}", others * 100.0),
            all,
            check,
        ],
    )
}
