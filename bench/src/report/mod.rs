//! The results as tables (printed, and written to `latest.md`) and a PNG plot (gnuplot).
//! A benchmark reports; nothing here passes or fails. The targets of issue 7 are shown beside
//! the numbers they concern.
//!
//! One file a concern: `data` reads the results, `table` lays out cells and tables, then a
//! file per kind of section (`cost`: BPF_PROG_TEST_RUN; `rate`: packet rates; `targets`:
//! issue 7's; `profile`: where the time goes), and `plot` the PNG.

mod cost;
mod data;
mod plot;
mod profile;
mod rate;
mod table;
mod targets;

use std::{fmt::Write as _, fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result};

use crate::tsv::{self, num};
use cost::{conntrack_section, cost_section, fields_section, flow_cache_section};
use data::Data;
use plot::plot;
use profile::{perf_section, profile_section};
use rate::rate_section;
use targets::targets_section;

pub struct Options {
    pub dir: PathBuf,
    /// How long the whole run took, in seconds (from the script).
    pub elapsed: Option<f64>,
    /// The command that produced the results.
    pub command: String,
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
