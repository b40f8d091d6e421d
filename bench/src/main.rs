//! Benchmarks of pcn-iptables against iptables (issue 7). `scripts/bench.sh` builds the network
//! namespaces and runs the steps of this tool inside them, then the report:
//!
//! - `cost`: per-packet cost of the XDP path by BPF_PROG_TEST_RUN against the rule count;
//! - `rate`: one end-to-end packet-rate measurement (one firewall, one chain, one rule count);
//! - `report`: the tables (stdout and `latest.md`) and the plot (`bench.png`);
//! - `rules`: the rule set as iptables-restore input, to look at or load by hand.

mod bpf;
mod cost;
mod packet;
mod rate;
mod report;
mod rules;
mod tsv;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pcn-iptables-bench",
    about = "pcn-iptables benchmarks (run scripts/bench.sh)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Seconds as a `Duration`, for the command line.
fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s}: not a number of seconds"))
}

#[derive(Subcommand)]
enum Cmd {
    /// Per-packet cost by BPF_PROG_TEST_RUN (run in a namespace where the rule sets'
    /// destinations are local); appends to OUT/cost.tsv and OUT/insns.tsv.
    Cost {
        /// Interface the test packets arrive on.
        #[arg(long)]
        iface: String,
        /// Packets per run.
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Runs per measurement (the median is kept).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1,10,100,1000,5000,10000,16384"
        )]
        sizes: Vec<usize>,
        #[arg(long)]
        out: PathBuf,
    },
    /// One packet-rate measurement (run in the receiving namespace); appends to
    /// OUT/rate-CHAIN.tsv.
    Rate {
        #[arg(long, value_enum)]
        firewall: rate::Firewall,
        #[arg(long, default_value = "INPUT")]
        chain: String,
        #[arg(long)]
        rules: usize,
        /// The generator's network namespace (as `ip netns` names it) and interface.
        #[arg(long)]
        gen_ns: String,
        #[arg(long)]
        gen_iface: String,
        /// MAC address of the receiving interface, where the frames go.
        #[arg(long)]
        dst_mac: String,
        /// Interface the packets arrive on, in this namespace.
        #[arg(long)]
        rx_iface: String,
        /// trafgen processes (one per CPU).
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// More trafgen options (e.g. "-q" for the qdisc path).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        trafgen_opts: String,
        /// Seconds to wait, at most, for other work on the machine to quiet down first.
        #[arg(long, value_parser = seconds, default_value = "0")]
        quiet_wait: Duration,
        #[arg(long, value_parser = seconds, default_value = "1")]
        warmup: Duration,
        #[arg(long, value_parser = seconds, default_value = "2")]
        window: Duration,
        #[arg(long, default_value_t = 3)]
        windows: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Tables and plot from the results in DIR.
    Report {
        #[arg(long)]
        dir: PathBuf,
        /// Seconds the whole run took.
        #[arg(long)]
        elapsed: Option<f64>,
        /// The command to quote as the one that produced the results.
        #[arg(long, default_value = "bash scripts/bench.sh")]
        command: String,
    },
    /// Prints a rule set as iptables-restore input.
    Rules {
        #[arg(long)]
        rules: usize,
        #[arg(long, value_enum, default_value = "udp")]
        proto: rules::Proto,
        #[arg(long, default_value = "INPUT")]
        chain: String,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Cost {
            iface,
            repeat,
            runs,
            sizes,
            out,
        } => cost::run(&cost::Options {
            iface,
            repeat,
            runs: runs.max(1),
            sizes,
            out,
        }),
        Cmd::Rate {
            firewall,
            chain,
            rules,
            gen_ns,
            gen_iface,
            dst_mac,
            rx_iface,
            cpus,
            trafgen_opts,
            quiet_wait,
            warmup,
            window,
            windows,
            out,
        } => rate::run(&rate::Options {
            firewall,
            chain,
            rules,
            gen_ns,
            gen_iface,
            dst_mac,
            rx_iface,
            cpus,
            trafgen_opts,
            quiet_wait,
            warmup,
            window,
            windows: windows.max(1),
            out,
        }),
        Cmd::Report {
            dir,
            elapsed,
            command,
        } => report::run(&report::Options {
            dir,
            elapsed,
            command,
        }),
        Cmd::Rules {
            rules,
            proto,
            chain,
        } => {
            print!(
                "{}",
                rules::RuleSet::new(rules, proto, &chain)?.restore_text()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcn-iptables-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
