//! The sections on the per-packet cost by BPF_PROG_TEST_RUN: against the rule count, against
//! the fields a rule uses, with connection tracking, with the flow cache.

use std::fmt::Write as _;

use super::{
    data::{Data, sizes},
    table::{ns, ratio, table},
};
use crate::tsv::num;

pub(super) fn cost_section(d: &Data, md: &mut String) {
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

pub(super) fn fields_section(d: &Data, md: &mut String) {
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

pub(super) fn conntrack_section(d: &Data, md: &mut String) {
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

pub(super) fn flow_cache_section(d: &Data, md: &mut String) {
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
