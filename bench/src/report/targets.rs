//! Issue 7's targets beside what the run measured.

use super::{
    data::{Data, sizes},
    table::table,
};

pub(super) fn targets_section(d: &Data, md: &mut String) {
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
