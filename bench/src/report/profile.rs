//! Where the time goes in the packet-rate runs: perf's samples by kernel symbol, and the
//! kernel's BPF statistics.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{
    data::Data,
    table::{kpps, ns, table},
};
use crate::tsv::num;

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

pub(super) fn perf_section(dir: &Path, md: &mut String) {
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

pub(super) fn profile_section(d: &Data, md: &mut String) {
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
