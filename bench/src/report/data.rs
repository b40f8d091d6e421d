//! The results of a run, as read from its TSV files, and the lookups the sections make.

use std::collections::BTreeSet;

use super::table::kpps;
use crate::tsv::{Row, num};

/// The rows of `rows` whose columns equal the given values.
pub(super) fn find<'a>(rows: &'a [Row], want: &[(&str, &str)]) -> Option<&'a Row> {
    rows.iter().find(|r| {
        want.iter()
            .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
    })
}

pub(super) fn sizes(rows: &[Row]) -> Vec<usize> {
    rows.iter()
        .filter_map(|r| r.get("rules")?.parse().ok())
        .filter(|&n| n > 0)
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .collect()
}

pub(super) struct Data {
    pub(super) cost: Vec<Row>,
    pub(super) insns: Vec<Row>,
    pub(super) fields: Vec<Row>,
    pub(super) conntrack: Vec<Row>,
    pub(super) flowcache: Vec<Row>,
    pub(super) rate: Vec<Row>,
}

impl Data {
    pub(super) fn cost(&self, proto: &str, n: usize, case: &str, column: &str) -> Option<f64> {
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
    pub(super) fn disturbed(&self, chain: &str, fw: &str, n: usize) -> bool {
        let n = n.to_string();
        self.rate.iter().any(|r| {
            r["chain"] == chain
                && r["firewall"] == fw
                && r["rules"] == n
                && num(r, "others_during").is_some_and(|o| o > 10.0)
        })
    }

    /// A rate in kpps, marked `*` when the run was disturbed.
    pub(super) fn rate_cell(&self, chain: &str, fw: &str, n: usize) -> String {
        let mark = if self.disturbed(chain, fw, n) {
            "*"
        } else {
            ""
        };
        format!("{}{mark}", kpps(self.rate(chain, fw, Some(n))))
    }

    pub(super) fn baseline_cost(&self) -> Option<f64> {
        num(find(&self.cost, &[("program", "baseline")])?, "ns")
    }

    /// The packet rate of `fw` in `chain` with `n` rules; with `None`, or when a firewall
    /// that has no rules (a baseline) was not measured at `n`, the median over its runs.
    pub(super) fn rate(&self, chain: &str, fw: &str, n: Option<usize>) -> Option<f64> {
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
