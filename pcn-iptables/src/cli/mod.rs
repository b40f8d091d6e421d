//! argv[0] dispatch, the tool's own management flags, and one iptables invocation from command
//! line to committed generation.

pub mod commit;
mod restore;
mod save;

use std::io::Write as _;

use clap::Parser;
use pcn_iptables_common::Counter;

use crate::{
    dataplane::{Dataplane, lock},
    error::{Error, RESOURCE_PROBLEM, Result},
    listing,
    ruleset::{self, model::BASE_CHAINS},
    syntax::{self, Command},
};

/// pcn-iptables' own flags, outside iptables' syntax.
#[derive(Parser, Debug)]
#[command(
    name = "pcn-iptables",
    version,
    about = "Management of the pcn-iptables installation in this network namespace"
)]
struct Manage {
    /// Remove every program, link and pinned map of pcn-iptables in this network namespace.
    #[arg(long)]
    uninstall: bool,
}

/// Flags that select the management interface instead of iptables' syntax.
const MANAGEMENT_FLAGS: [&str; 1] = ["--uninstall"];

/// Runs the program and returns its exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let prog = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pcn-iptables".into());
    let rest = &args[args.len().min(1)..];
    let result = if prog.ends_with("-save") {
        save::main(&prog, rest)
    } else if prog.ends_with("-restore") {
        restore::main(&prog, rest)
    } else if rest
        .first()
        .is_some_and(|a| MANAGEMENT_FLAGS.contains(&a.as_str()))
    {
        manage(&args)
    } else {
        run(rest)
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprint!("{}", e.render(&prog));
            e.code
        }
    }
}

/// Kernel-side failures: not the user's syntax, but something they must hear about.
fn internal(e: anyhow::Error) -> Error {
    Error::raw(RESOURCE_PROBLEM, format!("pcn-iptables: {e:#}\n"))
}

fn manage(args: &[String]) -> Result<()> {
    let m = Manage::try_parse_from(args).map_err(|e| Error::raw(2, e.to_string()))?;
    if m.uninstall {
        let dp = Dataplane::open().map_err(internal)?;
        let _lock = lock::acquire(&dp.lock_path(), &syntax::Wait::Forever)?;
        dp.uninstall().map_err(internal)?;
    }
    Ok(())
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

/// One iptables command: parse, lock, read the stored ruleset, apply, compile, commit.
pub fn run(args: &[String]) -> Result<()> {
    let invocation = syntax::parse_args(args)?;
    let dp = Dataplane::open().map_err(internal)?;
    let _lock = lock::acquire(&dp.lock_path(), &invocation.wait)?;
    let table = dp.read_table().map_err(internal)?;
    let echo = || -> Result<()> {
        if invocation.verbose {
            print(&listing::verbose_echo(&table, &invocation.command)?);
        }
        Ok(())
    };
    match &invocation.command {
        Command::List {
            chain,
            rulenum,
            options,
            zero,
        } => {
            let counters = dp.counters().map_err(internal)?;
            print(&listing::list(
                &table,
                chain.as_deref(),
                *rulenum,
                options,
                &counters,
            )?);
            if *zero {
                echo()?;
                dp.zero(ruleset::zero_slots(&table, chain.as_deref(), None)?)
                    .map_err(internal)?;
            }
        }
        Command::ListRules {
            chain,
            rulenum,
            verbose,
            zero,
        } => {
            let counters = dp.counters().map_err(internal)?;
            let counters: Option<&dyn Fn(u32) -> (u64, u64)> =
                if *verbose { Some(&counters) } else { None };
            print(&ruleset::list_rules(
                &table,
                chain.as_deref(),
                *rulenum,
                counters,
            )?);
            if *zero {
                echo()?;
                dp.zero(ruleset::zero_slots(&table, chain.as_deref(), None)?)
                    .map_err(internal)?;
            }
        }
        Command::Check { chain, rules } => {
            echo()?;
            for rule in rules {
                ruleset::check(&table, chain, rule)?;
            }
        }
        Command::Zero { chain, rulenum } => {
            echo()?;
            dp.zero(ruleset::zero_slots(&table, chain.as_deref(), *rulenum)?)
                .map_err(internal)?;
        }
        command => {
            echo()?;
            let mut new = table.clone();
            let mut slots = commit::Slots::new(&table);
            ruleset::apply(&mut new, command, &mut || slots.alloc(Counter::default()))?;
            // iptables-legacy restarts the base chains' policy counters on every change.
            for chain in BASE_CHAINS {
                slots.set_policy(&new, chain, Counter::default());
            }
            commit::install(&dp, &new, &slots)?;
        }
    }
    Ok(())
}
