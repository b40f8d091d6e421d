//! Per-packet cost by BPF_PROG_TEST_RUN: the kernel runs a program on one crafted packet
//! `repeat` times and reports the mean time per run; the median of `runs` such runs is kept.
//!
//! Two programs per rule set and packet: the XDP entry program as a packet meets it (parse,
//! `bpf_fib_lookup` to pick INPUT, tail call, classifier) and the classifier alone. The
//! classifier reads what the entry stored in a per-CPU map, so the process is pinned to one CPU
//! and runs the entry once before timing the classifier on the same packet. Every run is
//! checked: the verdict the program returns, and the counter of the rule (or the policy) that
//! must have seen exactly the packets run.

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};
use aya::programs::{TestRun as _, TestRunOptions, Xdp};
use nix::{
    sched::{CpuSet, sched_setaffinity},
    unistd::Pid,
};

use pcn_iptables::model::{Match, Negatable, Policy, PortRange, Rule, Target};

use crate::{
    bpf::{self, Baseline},
    packet::{FRAME_LEN, SPORT, frame},
    rules::{Case, Proto, RuleSet},
    tsv,
};

/// XDP return codes.
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

pub struct Options {
    /// The interface the packets seem to arrive on; the rule sets' destinations must be local
    /// in this namespace (so the entry picks INPUT).
    pub iface: String,
    pub repeat: u32,
    pub runs: usize,
    pub sizes: Vec<usize>,
    pub out: PathBuf,
}

pub const COLUMNS: [&str; 12] = [
    "program",
    "proto",
    "rules",
    "case",
    "ns",
    "ns_min",
    "ns_max",
    "classifier_ns",
    "classifier_ns_min",
    "classifier_ns_max",
    "install_ms",
    "check",
];

/// Timings of one program on one packet.
struct Timing {
    median: u64,
    min: u64,
    max: u64,
    /// Packets the program ran on, the verdict check included.
    packets: u64,
}

/// `struct xdp_md` for BPF_PROG_TEST_RUN: the packet is all data (no metadata) and arrives on
/// `ifindex`, queue 0.
fn xdp_md(ifindex: u32) -> Vec<u8> {
    [0, FRAME_LEN as u32, 0, ifindex, 0, 0]
        .iter()
        .flat_map(|v: &u32| v.to_ne_bytes())
        .collect()
}

/// Runs `prog` on `pkt`: once to check the verdict, then `runs` timed runs of `repeat`.
fn measure(
    prog: &Xdp,
    pkt: &[u8],
    ctx: &[u8],
    repeat: u32,
    runs: usize,
    verdict: u32,
) -> Result<Timing> {
    let run = |repeat| {
        prog.test_run(TestRunOptions {
            data_in: Some(pkt),
            ctx_in: Some(ctx),
            repeat,
            ..Default::default()
        })
        .context("BPF_PROG_TEST_RUN")
    };
    let first = run(1)?;
    ensure!(
        first.return_value == verdict,
        "the program returned {} where {verdict} was expected",
        first.return_value
    );
    let mut ns = Vec::with_capacity(runs);
    for _ in 0..runs {
        let r = run(repeat)?;
        ensure!(r.return_value == verdict, "verdict changed between runs");
        ns.push(r.duration.as_nanos() as u64);
    }
    ns.sort_unstable();
    Ok(Timing {
        median: ns[ns.len() / 2],
        min: ns[0],
        max: ns[ns.len() - 1],
        packets: 1 + repeat as u64 * runs as u64,
    })
}

/// The entry program, then the classifier alone on the packet the entry left in this CPU's
/// state.
fn measure_path(
    installed: &bpf::Installed,
    pkt: &[u8],
    ctx: &[u8],
    opts: &Options,
    verdict: u32,
) -> Result<(Timing, Timing)> {
    let e = measure(
        &installed.entry()?,
        pkt,
        ctx,
        opts.repeat,
        opts.runs,
        verdict,
    )?;
    let c = measure(
        &installed.classifier()?,
        pkt,
        ctx,
        opts.repeat,
        opts.runs,
        verdict,
    )?;
    Ok((e, c))
}

/// Keeps this process on the last CPU: the classifier's per-CPU packet state must be the one
/// the entry filled, and one CPU gives steadier numbers.
fn pin_to_one_cpu() -> Result<usize> {
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set).context("pinning to one CPU")?;
    Ok(cpu)
}

pub fn run(opts: &Options) -> Result<()> {
    let cpu = pin_to_one_cpu()?;
    // The tables time the way a flow's first packet takes: the flow cache stays out of the
    // rule sets installed here (`flow_cache` below times a known flow's packets).
    set_flow_cache(false);
    let ifindex = nix::net::if_::if_nametoindex(opts.iface.as_str())
        .with_context(|| format!("no interface {}", opts.iface))?;
    let ctx = xdp_md(ifindex);
    let out = opts.out.join("cost.tsv");
    eprintln!(
        "cost: BPF_PROG_TEST_RUN on CPU {cpu}, {} runs of {} packets each, median kept",
        opts.runs, opts.repeat
    );

    // The baseline: a program that only drops.
    let baseline = Baseline::load()?;
    let rs = RuleSet::new(1, Proto::Udp, "INPUT")?;
    let t = measure(
        baseline.program()?,
        &frame(&rs.flow(Case::First), Proto::Udp),
        &ctx,
        opts.repeat,
        opts.runs,
        XDP_DROP,
    )?;
    eprintln!("cost: baseline (XDP_DROP only): {} ns/packet", t.median);
    let dash = || "-".to_string();
    tsv::append(
        &out,
        &COLUMNS,
        &[
            "baseline".into(),
            "udp".into(),
            "0".into(),
            dash(),
            t.median.to_string(),
            t.min.to_string(),
            t.max.to_string(),
            dash(),
            dash(),
            dash(),
            dash(),
            "ok".into(),
        ],
    )?;
    drop(baseline);

    for proto in [Proto::Udp, Proto::Tcp] {
        for &n in &opts.sizes {
            let rs = RuleSet::new(n, proto, "INPUT")?;
            let installed = bpf::install(&rs)?;
            let entry = installed.entry()?;
            let classifier = installed.classifier()?;
            for case in Case::ALL {
                let pkt = frame(&rs.flow(case), proto);
                let (slot, verdict) = match rs.expected_rule(case) {
                    Some(i) => (installed.rule_counters[i], XDP_DROP),
                    None => (installed.policy_counter, XDP_PASS),
                };
                // Rule 0, rule N-1 and the policy: exactly the expected one must count.
                let mut watched = vec![
                    installed.rule_counters[0],
                    installed.rule_counters[n - 1],
                    installed.policy_counter,
                ];
                watched.dedup();
                let before = watched
                    .iter()
                    .map(|&s| installed.packets(s))
                    .collect::<Result<Vec<_>>>()?;

                let e = measure(&entry, &pkt, &ctx, opts.repeat, opts.runs, verdict)?;
                // The entry run in `measure` left this packet in this CPU's state: the
                // classifier alone now judges the same packet.
                let c = measure(&classifier, &pkt, &ctx, opts.repeat, opts.runs, verdict)?;

                let mut check = "ok".to_string();
                for (&s, b) in watched.iter().zip(&before) {
                    let got = installed.packets(s)? - b;
                    let want = if s == slot { e.packets + c.packets } else { 0 };
                    if got != want {
                        check = format!("counter {s}: {got} packets, {want} expected");
                    }
                }
                eprintln!(
                    "cost: {:>5} {} rules, {:<5} entry {:>4} ns, classifier {:>4} ns, counters {check}",
                    n,
                    proto.name(),
                    case.name(),
                    e.median,
                    c.median
                );
                tsv::append(
                    &out,
                    &COLUMNS,
                    &[
                        "pcn".into(),
                        proto.name().into(),
                        n.to_string(),
                        case.name().into(),
                        e.median.to_string(),
                        e.min.to_string(),
                        e.max.to_string(),
                        c.median.to_string(),
                        c.min.to_string(),
                        c.max.to_string(),
                        format!("{:.1}", installed.took.as_secs_f64() * 1e3),
                        check,
                    ],
                )?;
            }
            record_program_sizes(&installed, proto, n, &opts.out)?;
        }
    }
    fields(opts, &ctx)?;
    conntrack(opts, &ctx)?;
    flow_cache(opts, &ctx)
}

/// Whether the rule sets installed from now on use the flow cache (read by pcn-iptables when
/// it installs a generation).
fn set_flow_cache(on: bool) {
    // SAFETY: the benchmark is single-threaded while it sets this.
    unsafe {
        if on {
            std::env::remove_var("PCN_IPTABLES_FLOW_CACHE");
        } else {
            std::env::set_var("PCN_IPTABLES_FLOW_CACHE", "off");
        }
    }
}

/// A packet of a flow whose verdict the entry program already knows (the flow cache, as in
/// traffic): udp, matching the last rule. The rule's counter must count every packet run,
/// those the cache answered included.
fn flow_cache(opts: &Options, ctx: &[u8]) -> Result<()> {
    set_flow_cache(true);
    for &n in &opts.sizes {
        let rs = RuleSet::new(n, Proto::Udp, "INPUT")?;
        let installed = bpf::install(&rs)?;
        let pkt = frame(&rs.flow(Case::Last), Proto::Udp);
        let rule = installed.rule_counters[n - 1];
        let before = installed.packets(rule)?;
        let e = measure(
            &installed.entry()?,
            &pkt,
            ctx,
            opts.repeat,
            opts.runs,
            XDP_DROP,
        )?;
        let matched = installed.packets(rule)? - before;
        let check = if matched == e.packets {
            "ok".to_string()
        } else {
            format!("last rule: {matched} packets, {} expected", e.packets)
        };
        eprintln!(
            "cost: flow cache, {n:>5} udp rules, last: entry {:>4} ns, counters {check}",
            e.median
        );
        tsv::append(
            &opts.out.join("flowcache.tsv"),
            &["rules", "ns", "check"],
            &[n.to_string(), e.median.to_string(), check],
        )?;
    }
    set_flow_cache(false);
    Ok(())
}

/// Issue 6's line: a packet of an established flow, through the entry (which finds the flow's
/// connection and updates it in place) and a classifier whose first rule is the firewall's
/// usual `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`. The rule's counter must count
/// every packet run: the lookup really found the connection.
fn conntrack(opts: &Options, ctx: &[u8]) -> Result<()> {
    use pcn_iptables::model::StateModule;
    use pcn_iptables_common::conntrack::{Tuple, ctstate, status};

    let rs = RuleSet::new(1, Proto::Udp, "INPUT")?;
    let flow = rs.flow(Case::First);
    let pkt = frame(&flow, Proto::Udp);
    let states = (1 << ctstate::ESTABLISHED) | (1 << ctstate::RELATED);
    let installed = bpf::install_with(&rs, Policy::Accept, |counter| {
        vec![Rule {
            src: None,
            dst: None,
            in_iface: None,
            out_iface: None,
            fragment: None,
            proto: None,
            matches: vec![Match::Conntrack {
                module: StateModule::Conntrack,
                states: Negatable::plain(states),
            }],
            target: Some(Target::Accept),
            counter: counter(),
        }]
    })?;
    let tuple = Tuple {
        src: flow.src.octets(),
        dst: flow.dst.octets(),
        sport: SPORT,
        dport: flow.dport,
        proto: Proto::Udp.number(),
        _pad: 0,
    };
    let (key, src_end) = tuple.key();
    // Opened by the other end and answered: the packet is a reply.
    let entry = pcn_iptables_common::conntrack::CtEntry {
        origin: 1 - src_end,
        status: status::SEEN_REPLY,
        expires: pcn_iptables::dataplane::conntrack::now() + 3600 * 1_000_000_000,
        ..Default::default()
    };
    pcn_iptables::dataplane::conntrack::insert(installed.dp.dir(), key, entry)?;
    let rule = installed.rule_counters[0];
    let before = installed.packets(rule)?;
    let (e, c) = measure_path(&installed, &pkt, ctx, opts, XDP_PASS)?;
    let matched = installed.packets(rule)? - before;
    let want = e.packets + c.packets;
    let check = if matched == want {
        "ok".to_string()
    } else {
        format!("ESTABLISHED rule: {matched} packets, {want} expected")
    };
    eprintln!(
        "cost: conntrack established flow: entry {:>4} ns, classifier {:>4} ns, counters {check}",
        e.median, c.median
    );
    tsv::append(
        &opts.out.join("conntrack.tsv"),
        &["case", "ns", "classifier_ns", "check"],
        &[
            "established".to_string(),
            e.median.to_string(),
            c.median.to_string(),
            check,
        ],
    )
}

/// The match fields of the ablation, added one at a time.
const FIELD_STEPS: [&str; 6] = ["none", "-s", "-d", "-p udp", "--dport", "--sport"];

/// Where the time goes: one rule, matched by the packet, using more and more fields (step 0 is
/// an empty chain: the policy alone). Each field the chain uses is one more lookup in the
/// generation's field trie, so the differences are the price of one lookup. Every step drops
/// the packet (the policy is DROP), so that they all take the same way out.
fn fields(opts: &Options, ctx: &[u8]) -> Result<()> {
    let rs = RuleSet::new(1, Proto::Udp, "INPUT")?;
    let flow = rs.flow(Case::First);
    let pkt = frame(&flow, Proto::Udp);
    let (src, dst, dport) = rs.rule(0);
    for (step, name) in FIELD_STEPS.iter().enumerate() {
        let installed = bpf::install_with(&rs, Policy::Drop, |counter| {
            if step == 0 {
                return Vec::new();
            }
            let udp = Some(Negatable::plain(Proto::Udp.number()));
            let port = |p: u16| Some(Negatable::plain(PortRange { first: p, last: p }));
            vec![Rule {
                src: Some(Negatable::plain(src.into())),
                dst: (step >= 2).then(|| Negatable::plain(dst.into())),
                in_iface: None,
                out_iface: None,
                fragment: None,
                proto: if step >= 3 { udp } else { None },
                matches: if step >= 4 {
                    vec![Match::Ports {
                        proto: Proto::Udp.number(),
                        tcp_flags: None,
                        tcp_option: None,
                        sport: if step >= 5 { port(SPORT) } else { None },
                        dport: port(dport),
                    }]
                } else {
                    Vec::new()
                },
                target: Some(Target::Drop),
                counter: counter(),
            }]
        })?;
        let (e, c) = measure_path(&installed, &pkt, ctx, opts, XDP_DROP)?;
        let label = if step == 0 {
            "(no rule)".to_string()
        } else {
            FIELD_STEPS[1..=step].join(" ")
        };
        eprintln!(
            "cost: fields {label:<28} entry {:>4} ns, classifier {:>4} ns",
            e.median, c.median
        );
        tsv::append(
            &opts.out.join("fields.tsv"),
            &["step", "added", "ns", "classifier_ns"],
            &[
                step.to_string(),
                name.to_string(),
                e.median.to_string(),
                c.median.to_string(),
            ],
        )?;
    }
    Ok(())
}

/// Instructions the verifier processed for the entry and the classifier (both loaded once per
/// build of the eBPF object, whatever the rules), and the entries of the generation's field
/// trie, which every field lookup walks.
fn record_program_sizes(
    installed: &bpf::Installed,
    proto: Proto,
    n: usize,
    out: &std::path::Path,
) -> Result<()> {
    let entry = bpf::entry_info(installed.dp.dir())?;
    let classifier = bpf::active_classifier_info(installed.dp.dir())?;
    let count = |i: &aya::programs::ProgramInfo| {
        i.verified_instruction_count()
            .map_or("-".to_string(), |c| c.to_string())
    };
    let size = |i: &aya::programs::ProgramInfo| {
        i.size_translated()
            .map_or("-".to_string(), |c| (c / 8).to_string())
    };
    // The running generation's LPM trie (FIELDS) is sized to the entries it holds.
    let trie_entries = bpf::active_inner_map(installed.dp.dir(), &classifier, "FIELDS")?
        .max_entries()
        .to_string();
    tsv::append(
        &out.join("insns.tsv"),
        &[
            "proto",
            "rules",
            "entry_verified",
            "entry_insns",
            "classifier_verified",
            "classifier_insns",
            "trie_entries",
        ],
        &[
            proto.name().into(),
            n.to_string(),
            count(&entry),
            size(&entry),
            count(&classifier),
            size(&classifier),
            trie_entries,
        ],
    )
}
