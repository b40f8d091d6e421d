//! The section on the end-to-end packet rate of one chain.

use std::fmt::Write as _;

use super::{
    data::{Data, sizes},
    table::{kpps, ratio, table},
};
use crate::tsv::{Row, num};

pub(super) fn rate_section(d: &Data, md: &mut String, chain: &str, number: u32) {
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
