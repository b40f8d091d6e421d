//! The results as tables (printed, and written to `latest.md`) and a PNG plot (gnuplot).
//! A benchmark reports; nothing here passes or fails. The targets of issue 7 are shown beside
//! the numbers they concern.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

use crate::tsv::{self, Row, num};

pub struct Options {
    pub dir: PathBuf,
    /// How long the whole run took, in seconds (from the script).
    pub elapsed: Option<f64>,
    /// The command that produced the results.
    pub command: String,
}

/// A Markdown table with its columns padded, readable as plain text too. The first column is
/// left-aligned, the others (numbers) right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    // `:---` left-aligns, `---:` right-aligns; each cell is as wide as its padded text.
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, w)| {
            if c == 0 {
                format!(":{}", "-".repeat(w + 1))
            } else {
                format!("{}:", "-".repeat(w + 1))
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

fn kpps(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}", v / 1e3))
}

fn ns(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// The rows of `rows` whose columns equal the given values.
fn find<'a>(rows: &'a [Row], want: &[(&str, &str)]) -> Option<&'a Row> {
    rows.iter().find(|r| {
        want.iter()
            .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
    })
}

fn sizes(rows: &[Row]) -> Vec<usize> {
    rows.iter()
        .filter_map(|r| r.get("rules")?.parse().ok())
        .filter(|&n| n > 0)
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .collect()
}

struct Data {
    cost: Vec<Row>,
    insns: Vec<Row>,
    fields: Vec<Row>,
    conntrack: Vec<Row>,
    flowcache: Vec<Row>,
    rate: Vec<Row>,
}

impl Data {
    fn cost(&self, proto: &str, n: usize, case: &str, column: &str) -> Option<f64> {
        let n = n.to_string();
        num(
            find(
                &self.cost,
                &[
                    ("program", "pcn"),
                    ("proto", proto),
                    ("rules", &n),
                    ("case", case),
                ],
            )?,
            column,
        )
    }

    /// Whether other work took more than a tenth of the CPUs during the windows of the run of
    /// `fw` in `chain` with `n` rules (its rate is then lower and less certain).
    fn disturbed(&self, chain: &str, fw: &str, n: usize) -> bool {
        let n = n.to_string();
        self.rate.iter().any(|r| {
            r["chain"] == chain
                && r["firewall"] == fw
                && r["rules"] == n
                && num(r, "others_during").is_some_and(|o| o > 10.0)
        })
    }

    /// A rate in kpps, marked `*` when the run was disturbed.
    fn rate_cell(&self, chain: &str, fw: &str, n: usize) -> String {
        let mark = if self.disturbed(chain, fw, n) {
            "*"
        } else {
            ""
        };
        format!("{}{mark}", kpps(self.rate(chain, fw, Some(n))))
    }

    fn baseline_cost(&self) -> Option<f64> {
        num(find(&self.cost, &[("program", "baseline")])?, "ns")
    }

    /// The packet rate of `fw` in `chain` with `n` rules; with `None`, or when a firewall
    /// that has no rules (a baseline) was not measured at `n`, the median over its runs.
    fn rate(&self, chain: &str, fw: &str, n: Option<usize>) -> Option<f64> {
        let runs: Vec<&Row> = self
            .rate
            .iter()
            .filter(|r| r["chain"] == chain && r["firewall"] == fw)
            .collect();
        if let Some(n) = n {
            let n = n.to_string();
            if let Some(r) = runs.iter().find(|r| r["rules"] == n) {
                return num(r, "pps");
            }
            if !fw.starts_with("baseline") {
                return None;
            }
        }
        let mut all: Vec<f64> = runs.iter().filter_map(|r| num(r, "pps")).collect();
        all.sort_by(f64::total_cmp);
        all.get(all.len() / 2).copied()
    }
}

fn cost_section(d: &Data, md: &mut String) {
    let base = d.baseline_cost();
    let _ = writeln!(
        md,
        "## 1. Per-packet cost by BPF_PROG_TEST_RUN (ns/packet)\n\n\
         64-byte packets, INPUT chain, every rule `-s SRC -d DST -p PROTO --dport PORT -j DROP`; \
         median of the runs. *first*/*last*: the packet matches rule 1 / rule N; *none*: no rule \
         (the policy; the last rule's addresses with a port no rule names). \
         Baseline (XDP that only drops): **{} ns**.\n",
        ns(base)
    );
    for (title, column) in [
        (
            "The XDP path as a packet meets it: the entry program (parse, connection tracking, \
             bpf_fib_lookup) and the classifier it tail-calls",
            "ns",
        ),
        (
            "Classifier alone (the tail-called program)",
            "classifier_ns",
        ),
    ] {
        let _ = writeln!(md, "### {title}\n");
        let mut rows = Vec::new();
        let sizes = sizes(&d.cost);
        for &n in &sizes {
            let mut r = vec![n.to_string()];
            for proto in ["udp", "tcp"] {
                for case in ["first", "last", "none"] {
                    r.push(ns(d.cost(proto, n, case, column)));
                }
            }
            let last = d.cost("udp", n, "last", column);
            r.push(ratio(last, d.cost("udp", 1, "last", column)));
            r.push(ratio(last, base));
            if column == "ns" {
                r.push(
                    d.cost("udp", n, "last", "install_ms")
                        .map_or("-".into(), |v| format!("{v:.0}")),
                );
            }
            rows.push(r);
        }
        let mut header = vec![
            "rules",
            "udp first",
            "udp last",
            "udp none",
            "tcp first",
            "tcp last",
            "tcp none",
            "udp last ÷ 1 rule",
            "udp last ÷ baseline",
        ];
        if column == "ns" {
            header.push("install ms");
        }
        md.push_str(&table(&header, &rows));
        md.push('\n');
    }
    let bad: Vec<String> = d
        .cost
        .iter()
        .filter(|r| r.get("check").is_some_and(|c| c != "ok"))
        .map(|r| {
            format!(
                "{} {} rules {}: {}",
                r["proto"], r["rules"], r["case"], r["check"]
            )
        })
        .collect();
    if bad.is_empty() {
        md.push_str(
            "Every run returned the expected verdict, and only the expected rule's (or the \
             policy's) counter counted exactly the packets run.\n\n",
        );
    } else {
        let _ = writeln!(md, "**Counter check failed:** {}\n", bad.join("; "));
    }
}

fn rate_section(d: &Data, md: &mut String, chain: &str, number: u32) {
    let rows_here: Vec<Row> = d
        .rate
        .iter()
        .filter(|r| r.get("chain").map(String::as_str) == Some(chain))
        .cloned()
        .collect();
    if rows_here.is_empty() {
        return;
    }
    let base = d.rate(chain, "baseline", None);
    let skb = d.rate(chain, "baseline-skb", None);
    let sent = rows_here
        .iter()
        .filter_map(|r| num(r, "sent_pps"))
        .fold(0.0, f64::max);
    let how = if chain == "INPUT" {
        "generator → receiver (rules in INPUT)"
    } else {
        "client → router (rules in FORWARD, ip_forward=1) → server"
    };
    let _ = writeln!(
        md,
        "## {number}. {chain}: packet rate, kpps\n\n{how}; 64-byte UDP from trafgen on both \
         CPUs, 64,512 flows (source ports), every packet matching the last rule (DROP); rate = \
         packets the receiving veth took in per second, median of the windows. Bare-XDP \
         baseline (native mode, as pcn-iptables attaches; measured in every round, median): \
         **{} kpps**{}; the most the generator sent in any run: {} kpps.\n",
        kpps(base),
        skb.map_or(String::new(), |v| format!(
            "; the same program in generic (SKB) mode: {} kpps",
            kpps(Some(v))
        )),
        kpps(Some(sent)),
    );
    let mut rows = Vec::new();
    for n in sizes(&rows_here) {
        let [pcn, legacy, nft, base] =
            ["pcn", "legacy", "nft", "baseline"].map(|fw| d.rate(chain, fw, Some(n)));
        rows.push(vec![
            n.to_string(),
            d.rate_cell(chain, "pcn", n),
            d.rate_cell(chain, "legacy", n),
            d.rate_cell(chain, "nft", n),
            d.rate_cell(chain, "baseline", n),
            ratio(pcn, legacy),
            ratio(nft, legacy),
            ratio(pcn, base),
            ratio(legacy, base),
            ratio(nft, base),
            ratio(pcn, d.rate(chain, "pcn", Some(1))),
        ]);
    }
    md.push_str(&table(
        &[
            "rules",
            "pcn-iptables",
            "iptables-legacy",
            "iptables-nft",
            "bare XDP",
            "pcn ÷ legacy",
            "nft ÷ legacy",
            "pcn ÷ baseline",
            "legacy ÷ baseline",
            "nft ÷ baseline",
            "pcn ÷ pcn@1",
        ],
        &rows,
    ));
    md.push('\n');
    let sizes_here = sizes(&rows_here);
    if ["pcn", "legacy", "nft", "baseline"]
        .iter()
        .any(|fw| sizes_here.iter().any(|&n| d.disturbed(chain, fw, n)))
    {
        md.push_str(
            "\\* other work took more than 10% of the CPUs during that run's windows: its rate is \
             lower than the machine can do, and so are ratios involving it.\n\n",
        );
    }
    let bad: Vec<String> = rows_here
        .iter()
        .filter(|r| r.get("check").is_some_and(|c| c != "ok"))
        .map(|r| format!("{} {} rules: {}", r["firewall"], r["rules"], r["check"]))
        .collect();
    if bad.is_empty() {
        md.push_str(
            "In every run the firewall's last rule counted what the interface took in \
             (within 10%).\n\n",
        );
    } else {
        let _ = writeln!(md, "**Check:** {}\n", bad.join("; "));
    }
}

fn targets_section(d: &Data, md: &mut String) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut add = |target: &str, ok: Option<bool>, shown: String| {
        rows.push(vec![
            target.to_string(),
            shown,
            match ok {
                Some(true) => "met".into(),
                Some(false) => "**missed**".into(),
                None => "-".into(),
            },
        ]);
    };
    for chain in ["INPUT", "FORWARD"] {
        let one = d.rate(chain, "pcn", Some(1));
        for n in [10_000, 16_384] {
            let r = d.rate(chain, "pcn", Some(n)).zip(one).map(|(a, b)| a / b);
            add(
                &format!("{chain}: pcn rate at {n} rules ≥ 90% of its rate at 1"),
                r.map(|r| r >= 0.9),
                r.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
            );
        }
        let worst = sizes(&d.rate)
            .into_iter()
            .filter_map(|n| {
                Some((
                    n,
                    d.rate(chain, "pcn", Some(n))? / d.rate(chain, "baseline", Some(n))?,
                ))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        add(
            &format!("{chain}: pcn ≥ 50% of the bare-XDP baseline at every rule count"),
            worst.map(|w| w.1 >= 0.5),
            worst.map_or("-".into(), |(n, r)| {
                format!("lowest {:.0}% ({n} rules)", r * 100.0)
            }),
        );
        for (n, want) in [(1_000, 2.5), (10_000, 18.0)] {
            let r = d
                .rate(chain, "pcn", Some(n))
                .zip(d.rate(chain, "legacy", Some(n)))
                .map(|(a, b)| a / b);
            add(
                &format!("{chain}: pcn ≥ {want}× iptables-legacy at {n} rules"),
                r.map(|r| r >= want),
                r.map_or("-".into(), |r| format!("{r:.1}×")),
            );
        }
    }
    for (what, column) in [
        ("classifier alone", "classifier_ns"),
        ("entry program", "ns"),
    ] {
        let r = d
            .cost("udp", 10_000, "last", column)
            .zip(d.cost("udp", 1, "last", column))
            .map(|(a, b)| a / b);
        add(
            &format!("cost at 10,000 rules ≤ 4× the cost at 1 ({what}, udp, last rule)"),
            r.map(|r| r <= 4.0),
            r.map_or("-".into(), |r| format!("{r:.2}×")),
        );
    }
    md.push_str("## Issue 7's targets (for information: a benchmark does not pass or fail)\n\n");
    md.push_str(&table(&["target", "measured", ""], &rows));
    md.push('\n');
}

fn fields_section(d: &Data, md: &mut String) {
    if d.fields.is_empty() {
        return;
    }
    md.push_str(
        "## Where the time goes: one rule, more and more fields\n\n\
         BPF_PROG_TEST_RUN, udp, the packet matching the one rule, which drops it (first row: \
         an empty chain whose policy drops it). Every field a chain uses costs the classifier one more lookup in the \
         generation's field trie.\n\n",
    );
    let mut rows = Vec::new();
    let mut fields = String::new();
    let mut prev: Option<f64> = None;
    for r in &d.fields {
        if r["step"] != "0" {
            fields = format!("{fields} {}", r["added"]).trim().to_string();
        }
        let c = num(r, "classifier_ns");
        rows.push(vec![
            if fields.is_empty() {
                "(no rule)".into()
            } else {
                fields.clone()
            },
            ns(num(r, "ns")),
            ns(c),
            match (c, prev) {
                (Some(c), Some(p)) => format!("{:+.0}", c - p),
                _ => "-".into(),
            },
        ]);
        prev = c;
    }
    md.push_str(&table(
        &[
            "fields of the rule",
            "entry ns",
            "classifier ns",
            "classifier Δ ns",
        ],
        &rows,
    ));
    md.push('\n');
}

fn conntrack_section(d: &Data, md: &mut String) {
    let Some(r) = d.conntrack.iter().find(|r| r["case"] == "established") else {
        return;
    };
    let _ = writeln!(
        md,
        "## Connection tracking: a packet of an established flow\n\n\
         BPF_PROG_TEST_RUN, a 64-byte UDP reply of a known connection, the chain's one rule \
         `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT` (the packet matches it; its \
         counter checked: {}): the entry program, which looks the connection up and updates it \
         in place, costs **{} ns**; the classifier alone {} ns.\n",
        r["check"],
        ns(num(r, "ns")),
        ns(num(r, "classifier_ns")),
    );
}

fn flow_cache_section(d: &Data, md: &mut String) {
    if d.flowcache.is_empty() {
        return;
    }
    md.push_str(
        "## The flow cache: a packet of a known flow

         BPF_PROG_TEST_RUN, udp, the packet matching the last rule. Once a flow's way through          the chains depends on the flow alone, the entry program remembers its verdict and the          counters it bumped, for this generation, and answers the flow's next packets without          the classifier. The tables above keep the cache out (`PCN_IPTABLES_FLOW_CACHE=off`):          they time a flow's first packet. Counters checked: the last rule counts every packet          run.\n\n",
    );
    let rows: Vec<Vec<String>> = d
        .flowcache
        .iter()
        .map(|r| {
            let n: usize = r["rules"].parse().unwrap_or(0);
            vec![
                r["rules"].clone(),
                ns(num(r, "ns")),
                ns(d.cost("udp", n, "last", "ns")),
                ns(d.cost("udp", n, "last", "classifier_ns")),
                r["check"].clone(),
            ]
        })
        .collect();
    md.push_str(&table(
        &[
            "rules",
            "known flow: entry ns",
            "first packet: entry ns",
            "classifier alone ns",
            "counters",
        ],
        &rows,
    ));
    md.push('\n');
}

/// Groups of kernel symbols that tell where the packet path's time goes.
const SYMBOL_GROUPS: [(&str, &[&str]); 5] = [
    ("field trie (LPM) lookups", &["trie_lookup_elem"]),
    ("BPF programs", &["bpf_prog_"]),
    (
        "bpf_fib_lookup",
        &[
            "bpf_ipv4_fib_lookup",
            "fib_table_lookup",
            "bpf_xdp_fib_lookup",
        ],
    ),
    (
        "veth: skb copy for native XDP",
        &[
            "skb_pp_cow_data",
            "skb_copy_ubufs",
            "skb_copy_bits",
            "veth_xdp_rcv",
            "veth_convert",
        ],
    ),
    (
        "netfilter rule walk",
        &["ipt_do_table", "nft_do_chain", "nft_"],
    ),
];

/// `perf report` lines (`  10.44%  [k] trie_lookup_elem`) as (share, symbol).
fn perf_lines(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter_map(|l| {
            let (pct, rest) = l.trim().split_once('%')?;
            let sym = rest
                .trim()
                .trim_start_matches("[k]")
                .trim_start_matches("[.]")
                .trim();
            Some((pct.trim().parse().ok()?, sym.to_string()))
        })
        .collect()
}

fn perf_section(dir: &Path, md: &mut String) {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("profile"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        return;
    }
    // baseline, pcn by rule count, legacy
    files.sort_by_key(|p| {
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut parts = name.rsplitn(2, '-');
        let n: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let fw = parts.next().unwrap_or_default().to_string();
        let order = ["INPUT-baseline", "INPUT-pcn", "INPUT-legacy"]
            .iter()
            .position(|f| *f == fw)
            .unwrap_or(9);
        (order, n)
    });
    md.push_str(
        "## Where the packet path spends its time (perf, INPUT)\n\n\
         `perf record -e cpu-clock -a` for 3 s during one more run of each (this VM has no \
         hardware counters, so `bpftool prog profile` cannot run); shares of the samples taken \
         in trafgen's and ksoftirqd's names, which carry both the sending and the receive \
         softirq. Kernel symbols by group, then the top five.\n\n",
    );
    let mut header = vec!["run"];
    header.extend(SYMBOL_GROUPS.iter().map(|(g, _)| *g));
    header.push("top symbols");
    let mut rows = Vec::new();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let lines = perf_lines(&text);
        if lines.is_empty() {
            continue;
        }
        let name = file.file_stem().unwrap_or_default().to_string_lossy();
        let mut row = vec![name.trim_start_matches("INPUT-").replace('-', " ")];
        for (_, prefixes) in SYMBOL_GROUPS {
            let share: f64 = lines
                .iter()
                .filter(|(_, s)| prefixes.iter().any(|p| s.starts_with(p)))
                .fold(0.0, |sum, (v, _)| sum + v);
            row.push(format!("{share:.1}%"));
        }
        row.push(
            lines
                .iter()
                .take(5)
                .map(|(v, s)| format!("{s} {v:.1}%"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        rows.push(row);
    }
    md.push_str(&table(&header, &rows));
    md.push('\n');
}

fn profile_section(d: &Data, md: &mut String) {
    let mut rows = Vec::new();
    for r in d.rate.iter().filter(|r| r["firewall"] == "pcn") {
        let n: usize = r["rules"].parse().unwrap_or(0);
        let insns = d
            .insns
            .iter()
            .find(|i| i["proto"] == "udp" && i["rules"] == r["rules"]);
        let get = |k: &str| insns.and_then(|i| i.get(k)).cloned().unwrap_or("-".into());
        rows.push(vec![
            format!("{} {}", r["chain"], n),
            kpps(num(r, "entry_runs_pps")),
            r.get("entry_ns").cloned().unwrap_or("-".into()),
            ns(d.cost("udp", n, "last", "ns")),
            get("entry_verified"),
            get("classifier_verified"),
            get("classifier_insns"),
            get("trie_entries"),
            r.get("load_ms").cloned().unwrap_or("-".into()),
        ]);
    }
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "## Profile of pcn-iptables in the packet-rate runs\n\n\
         Kernel BPF statistics (`kernel.bpf_stats_enabled`, one extra second of traffic): runs \
         of the XDP entry program per second and nanoseconds per run, the tail-called classifier \
         included, next to the same path under BPF_PROG_TEST_RUN; the verifier's processed \
         instructions and the classifier's size (one `bpf_loop` body, whatever the rule count); \
         the entries of the generation's field trie, which every field lookup walks; the time to \
         install the rule set.\n\n",
    );
    md.push_str(&table(
        &[
            "chain, rules",
            "entry kruns/s",
            "ns/run in traffic",
            "ns/run test_run",
            "entry verified insns",
            "classifier verified insns",
            "classifier insns",
            "field trie entries",
            "install ms",
        ],
        &rows,
    ));
    md.push('\n');
}

/// Writes the gnuplot data and script and renders `bench.png`.
fn plot(d: &Data, dir: &Path) -> Result<Option<PathBuf>> {
    let mut cost = String::from("# rules udp_first udp_last udp_none classifier_last baseline\n");
    for n in sizes(&d.cost) {
        let v = |x: Option<f64>| x.map_or("NaN".into(), |v| format!("{v}"));
        let _ = writeln!(
            cost,
            "{n} {} {} {} {} {}",
            v(d.cost("udp", n, "first", "ns")),
            v(d.cost("udp", n, "last", "ns")),
            v(d.cost("udp", n, "none", "ns")),
            v(d.cost("udp", n, "last", "classifier_ns")),
            v(d.baseline_cost()),
        );
    }
    fs::write(dir.join("cost.dat"), cost)?;
    for chain in ["INPUT", "FORWARD"] {
        let mut data = String::from("# rules pcn legacy nft baseline (kpps)\n");
        for n in sizes(&d.rate) {
            let v = |x: Option<f64>| x.map_or("NaN".into(), |v| format!("{:.1}", v / 1e3));
            let _ = writeln!(
                data,
                "{n} {} {} {} {}",
                v(d.rate(chain, "pcn", Some(n))),
                v(d.rate(chain, "legacy", Some(n))),
                v(d.rate(chain, "nft", Some(n))),
                v(d.rate(chain, "baseline", Some(n))),
            );
        }
        fs::write(dir.join(format!("rate-{chain}.dat")), data)?;
    }
    let chains: Vec<&str> = ["INPUT", "FORWARD"]
        .into_iter()
        .filter(|c| d.rate.iter().any(|r| r["chain"] == *c))
        .collect();
    let panels = chains.len() + usize::from(!d.cost.is_empty());
    if panels == 0 {
        return Ok(None);
    }
    let mut script = format!(
        "set terminal pngcairo size {},560 font \"sans,11\"\nset output \"bench.png\"\n\
         set multiplot layout 1,{panels} title \"pcn-iptables vs iptables \
         (64-byte packets; rate panels: last rule matches)\"\n",
        600 * panels
    );
    script.push_str(
        r#"set logscale x
set xlabel "rules in the chain"
set xrange [0.8:25000]
set grid
set key bottom right
"#,
    );
    if !d.cost.is_empty() {
        script.push_str(
            r#"set title "Per-packet cost, BPF\\_PROG\\_TEST\\_RUN (udp)"
set ylabel "ns/packet"
set yrange [0:*]
set key top left
set offsets 0, 0, graph 0.4, 0
plot "cost.dat" u 1:2 w lp lw 2 t "pcn: first rule", \
     "" u 1:3 w lp lw 2 t "pcn: last rule", \
     "" u 1:4 w lp lw 2 t "pcn: no rule (policy)", \
     "" u 1:5 w lp lw 2 dt 2 t "pcn classifier alone: last rule", \
     "" u 1:6 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
"#,
        );
    }
    script.push_str("set ylabel \"kpps\"\nset key bottom left\nset offsets 0, 0, 0, 0\nset logscale y\nset yrange [*:*]\n");
    for chain in chains {
        let _ = write!(
            script,
            r#"set title "{chain} chain: packet rate over veth"
plot "rate-{chain}.dat" u 1:2 w lp lw 2 t "pcn-iptables", \
     "" u 1:3 w lp lw 2 t "iptables-legacy", \
     "" u 1:4 w lp lw 2 t "iptables-nft", \
     "" u 1:5 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
"#
        );
    }
    script.push_str("unset multiplot\n");
    fs::write(dir.join("bench.gp"), script)?;
    match Command::new("gnuplot")
        .arg("bench.gp")
        .current_dir(dir)
        .status()
    {
        Ok(s) if s.success() => Ok(Some(dir.join("bench.png"))),
        Ok(s) => {
            eprintln!("report: gnuplot failed ({s}); no plot");
            Ok(None)
        }
        Err(e) => {
            eprintln!("report: no gnuplot ({e}); no plot");
            Ok(None)
        }
    }
}

fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("kernel {}, {cpus} × {cpu}", kernel.trim())
}

pub fn run(opts: &Options) -> Result<()> {
    let d = Data {
        cost: tsv::read(&opts.dir.join("cost.tsv"))?,
        insns: tsv::read(&opts.dir.join("insns.tsv"))?,
        fields: tsv::read(&opts.dir.join("fields.tsv"))?,
        conntrack: tsv::read(&opts.dir.join("conntrack.tsv"))?,
        flowcache: tsv::read(&opts.dir.join("flowcache.tsv"))?,
        rate: [
            tsv::read(&opts.dir.join("rate-INPUT.tsv"))?,
            tsv::read(&opts.dir.join("rate-FORWARD.tsv"))?,
        ]
        .concat(),
    };
    let mut md = String::from("# pcn-iptables benchmark\n\n");
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "`{}` on {date}; {}{}.\n",
        opts.command,
        machine(),
        opts.elapsed.map_or(String::new(), |s| format!(
            "; the run took {}m{:02.0}s",
            (s / 60.0).floor(),
            s % 60.0
        )),
    );
    if !d.cost.is_empty() {
        cost_section(&d, &mut md);
    }
    rate_section(&d, &mut md, "INPUT", 2);
    rate_section(&d, &mut md, "FORWARD", 3);
    if !d.rate.is_empty() && !d.cost.is_empty() {
        targets_section(&d, &mut md);
    }
    fields_section(&d, &mut md);
    conntrack_section(&d, &mut md);
    flow_cache_section(&d, &mut md);
    profile_section(&d, &mut md);
    perf_section(&opts.dir, &mut md);
    let mut busy: Vec<f64> = d
        .rate
        .iter()
        .filter_map(|r| num(r, "others_during"))
        .collect();
    busy.sort_by(f64::total_cmp);
    if let (Some(median), Some(max)) = (busy.get(busy.len() / 2), busy.last()) {
        let _ = writeln!(
            md,
            "Other work on the machine (neither the generator nor the benchmark) during the \
             windows that count: median {median:.0}%, at most {max:.0}% of the CPUs; it lowers \
             and scatters the rates (every window, with its share, is in `rate-CHAIN.tsv`).\n",
        );
    }
    if let Some(png) = plot(&d, &opts.dir)? {
        let _ = writeln!(
            md,
            "![benchmark plot](bench.png)\n\nPlot: `{}`",
            png.display()
        );
    }
    print!("{md}");
    let path = opts.dir.join("latest.md");
    fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("report: {}", path.display());
    Ok(())
}
