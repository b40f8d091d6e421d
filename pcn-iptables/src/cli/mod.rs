//! argv[0] dispatch, the tool's own management flags, and one iptables invocation from command
//! line to committed generation.

mod restore;
mod save;

use std::io::Write as _;

use clap::Parser;
use pcn_iptables_common::Counter;

use crate::{
    IPTABLES_VERSION,
    dataplane::{self, Dataplane, State, lock},
    engine,
    error::{Error, PARAMETER_PROBLEM, RESOURCE_PROBLEM, Result, VERSION_PROBLEM},
    listing,
    model::{Command, Table, TableName, Tables, Wait, Zeroing},
    ruleset,
    syntax::{self, Invocation},
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
    /// List the connections pcn-iptables tracks in this network namespace.
    #[arg(long)]
    conntrack: bool,
    /// Install pcn-iptables in this network namespace with room for this many connections
    /// (default: netfilter's nf_conntrack_max for this machine's memory); the size of an
    /// installed table changes only after --uninstall.
    #[arg(long, value_name = "ENTRIES", value_parser = clap::value_parser!(u32).range(1..))]
    conntrack_size: Option<u32>,
    /// Install pcn-iptables in this network namespace with a flow cache of this many entries
    /// (default: a quarter of the connection table's default, at least 1024); as
    /// --conntrack-size, it changes only after --uninstall.
    #[arg(long, value_name = "ENTRIES", value_parser = clap::value_parser!(u32).range(1..))]
    flow_cache_size: Option<u32>,
    /// Print the packets that LOG rules log in this network namespace, one line each in the
    /// kernel's LOG format, until interrupted.
    #[arg(long)]
    log_follow: bool,
    /// Print the addresses of the -m recent list NAME, one a line as
    /// /proc/net/xt_recent/NAME shows them (times in nanoseconds of the monotonic clock, not
    /// jiffies). With +ADDRESS, -ADDRESS or /: add or update, remove, or forget every
    /// address, as writing to that file does.
    #[arg(long, value_name = "NAME")]
    recent: Option<String>,
    #[arg(
        requires = "recent",
        allow_hyphen_values = true,
        value_name = "+ADDRESS|-ADDRESS|/"
    )]
    recent_command: Option<String>,
    /// Print the buckets of the -m hashlimit table NAME, one a line as
    /// /proc/net/ipt_hashlimit/NAME shows them (seconds left, key, credit, cap, cost).
    #[arg(long, value_name = "NAME")]
    hashlimit: Option<String>,
}

/// Flags that select the management interface instead of iptables' syntax.
const MANAGEMENT_FLAGS: [&str; 7] = [
    "--uninstall",
    "--recent",
    "--hashlimit",
    "--conntrack",
    "--conntrack-size",
    "--flow-cache-size",
    "--log-follow",
];

/// Runs the program and returns its exit code.
pub fn main() -> i32 {
    // Big rulesets make big vectors: have malloc take memory in large steps and keep it, so
    // that allocating seldom needs the address space's lock, which mapping the maps' memory
    // (on another thread) holds for milliseconds.
    // SAFETY: mallopt only tunes glibc's allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // The heap grown once, now (memory not touched costs nothing), not under that lock.
    drop(Vec::<u8>::with_capacity(24 << 20));
    let _ = dataplane::START.set(std::time::Instant::now());
    let _t = dataplane::Timer("main", std::time::Instant::now());
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
        run(&prog, args.first().unwrap_or(&prog), rest)
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

fn manage(args: &[String]) -> Result<()> {
    let m = Manage::try_parse_from(args).map_err(|e| Error::raw(2, e.to_string()))?;
    if m.conntrack_size.is_some() || m.flow_cache_size.is_some() {
        install_sized(m.conntrack_size, m.flow_cache_size)?;
    }
    if m.conntrack {
        let dp = Dataplane::open()?;
        let entries = dataplane::conntrack::entries(dp.dir())?;
        print(&listing::conntrack::render(
            entries,
            dataplane::conntrack::now(),
        ));
    }
    if let Some(name) = &m.recent {
        recent_list(name, m.recent_command.as_deref())?;
    }
    if let Some(name) = &m.hashlimit {
        hashlimit_table(name)?;
    }
    if m.log_follow {
        let dp = Dataplane::open()?;
        let mut out = std::io::stdout().lock();
        dataplane::log::follow(dp.dir(), &mut out)?;
    }
    if m.uninstall {
        let dp = Dataplane::open()?;
        let _lock = lock::acquire(&dp.lock_path()?, &Wait::Forever)?;
        dp.uninstall()?;
    }
    Ok(())
}

/// `--recent NAME [COMMAND]`: list NAME's addresses, or change them.
fn recent_list(name: &str, command: Option<&str>) -> Result<()> {
    let dp = Dataplane::open()?;
    let lists = dp.read_table()?.tables.recent;
    let Some(list) = lists.iter().find(|l| l.name == name) else {
        return Err(Error::plain(
            1,
            format!("no -m recent list {name}: a list exists while a rule names it"),
        ));
    };
    match command {
        Some(c) => dataplane::recent::write(dp.dir(), list, c)?,
        None => print(&listing::recent::render(&dataplane::recent::entries(
            dp.dir(),
            list,
        )?)),
    }
    Ok(())
}

/// `--hashlimit NAME`: list NAME's buckets.
fn hashlimit_table(name: &str) -> Result<()> {
    let dp = Dataplane::open()?;
    let tables = dp.read_table()?.tables.hashlimit;
    let Some(t) = tables.iter().find(|t| t.config.name == name) else {
        return Err(Error::plain(
            1,
            format!("no -m hashlimit table {name}: a table exists while a rule names it"),
        ));
    };
    let (table, buckets) = dataplane::hashlimit::buckets(dp.dir(), t)?;
    let now = dataplane::hashlimit::jiffies()?;
    print(&listing::hashlimit::render(&table, &buckets, now));
    Ok(())
}

/// `--conntrack-size`, `--flow-cache-size`: installs with tables of these sizes (they are
/// pinned and shared by every generation, so an installed one keeps its size).
fn install_sized(conntrack: Option<u32>, flows: Option<u32>) -> Result<()> {
    let defaults = dataplane::sizes::Sizes::of_machine()?;
    let sizes = dataplane::sizes::Sizes {
        conntrack: conntrack.unwrap_or(defaults.conntrack),
        flows: flows.unwrap_or(defaults.flows),
    };
    let dp = Dataplane::open()?.with_sizes(sizes);
    let _lock = lock::acquire(&dp.lock_path()?, &Wait::Forever)?;
    let Some(installed) = dp.installed_sizes()? else {
        dp.start_grace();
        let state = dp.read_state()?;
        let mut table = state.table.clone();
        let mut slots = engine::Slots::new(&state.table);
        slots.count_tables(&mut table);
        return engine::install(&dp, &state, None, &table, &slots);
    };
    for (asked, has, what, entries) in [
        (
            conntrack,
            installed.conntrack,
            "connection table",
            "connections",
        ),
        (flows, installed.flows, "flow cache", "flows"),
    ] {
        if asked.is_some_and(|n| n != has) {
            return Err(Error::raw(
                PARAMETER_PROBLEM,
                format!(
                    "pcn-iptables: the {what} here holds {has} {entries}; \
                     its size changes only after --uninstall\n"
                ),
            ));
        }
    }
    Ok(())
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

/// What `-V` says after the program's name (and the help's first line): iptables' version
/// first, for the scripts that parse it, then ours.
fn version() -> String {
    format!(
        "{IPTABLES_VERSION} (pcn-iptables {}; eBPF)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Capability bits (linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability set, from /proc/self/status.
fn effective_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// Refuses, before anything touches the kernel, what iptables-legacy refuses for want of
/// privileges, with its messages: a user who cannot open the lock file (root's), then one
/// without the capabilities to change the firewall (iptables needs CAP_NET_ADMIN; loading and
/// pinning eBPF programs also needs CAP_SYS_ADMIN).
fn check_privileges(table: &str) -> Result<()> {
    let caps = effective_capabilities();
    let has = |cap: u32| caps & (1 << cap) != 0;
    if !nix::unistd::geteuid().is_root() && !has(CAP_DAC_OVERRIDE) {
        let path = lock::path()?;
        return Err(Error::raw(
            RESOURCE_PROBLEM,
            format!(
                "Fatal: can't open lock file {}: Permission denied\n",
                path.display()
            ),
        ));
    }
    if !has(CAP_NET_ADMIN) || !has(CAP_SYS_ADMIN) {
        return Err(Error::versioned(
            VERSION_PROBLEM,
            format!(
                "can't initialize iptables table `{table}': Permission denied (you must be root)\n\
                 Perhaps iptables or your kernel needs to be upgraded."
            ),
        ));
    }
    Ok(())
}

/// Zeroes counter `slots`. `-Z` commits the table, and iptables-legacy restarts the base
/// chains' policy counters on every commit: those go too.
fn zero(dp: &Dataplane, table: &Table, slots: Vec<u32>) -> Result<()> {
    let policies = table.chains.iter().filter(|c| c.policy.is_some());
    dp.zero(slots.into_iter().chain(policies.map(|c| c.policy_counter)))
        .map_err(Error::from)
}

/// `-Z` given with `-L` or `-S`, once they have listed.
fn zero_after_listing(
    dp: &Dataplane,
    table: &Table,
    chain: Option<&str>,
    rulenum: Option<usize>,
    zeroing: Option<Zeroing>,
    echo: impl Fn() -> Result<()>,
) -> Result<()> {
    match zeroing {
        Some(Zeroing::Chains) => {
            echo()?;
            zero(dp, table, ruleset::zero_slots(table, chain, None)?)
        }
        Some(Zeroing::Rule) => zero(dp, table, ruleset::zero_slots(table, chain, rulenum)?),
        None => Ok(()),
    }
}

/// Prints what `-h` and `-V` ask for; `false` for every other command.
fn informational(prog: &str, command: &Command) -> bool {
    match command {
        Command::Help { target, matches } => {
            print(&syntax::help(prog, &version(), *target, matches));
        }
        Command::Version { negated: false } => print(&format!("{prog} v{}\n", version())),
        Command::Version { negated: true } => print(&format!("Not {} ;-)\n", version())),
        _ => return false,
    }
    true
}

/// One iptables command: parse, lock, read the stored ruleset, apply, compile, commit. `prog`
/// is the name to answer as, `argv0` the program as invoked (some messages quote it).
pub fn run(prog: &str, argv0: &str, args: &[String]) -> Result<()> {
    let invocation = syntax::parse_args(argv0, args)?;
    if informational(prog, &invocation.command) {
        return Ok(());
    }
    check_privileges(&invocation.table)?;
    invocation.check_table()?;
    let name = TableName::by_name(&invocation.table).expect("check_table knows it");
    let dp = Dataplane::open()?;
    let _lock = lock::acquire(&dp.lock_path()?, &invocation.wait)?;
    if !matches!(
        invocation.command,
        Command::List { .. }
            | Command::ListRules { .. }
            | Command::Check { .. }
            | Command::Zero { .. }
    ) {
        dp.start_grace();
    }
    let state = dp.read_state()?;
    let loaded = state.table.tables.loaded.contains(&name);
    let result = match name {
        TableName::Filter => run_filter(&dp, state, &invocation),
        name => run_counted(&dp, state, name, &invocation),
    };
    // iptables-legacy has loaded the table by the time a command fails on it.
    if result.is_err() && !loaded {
        let _ = dp
            .read_state()
            .map_err(Error::from)
            .and_then(|state| record_loaded(&dp, state, name));
    }
    result
}

/// Prints `-L` or `-S` of `table`, whose counters `counters` reads; then what `-Z` given with
/// them zeroes: `(chain, rulenum, zeroing)`.
fn list<'a>(
    table: &Table,
    command: &'a Command,
    counters: &dyn Fn(u32) -> (u64, u64),
) -> Result<(Option<&'a str>, Option<usize>, Option<Zeroing>)> {
    match command {
        Command::List {
            chain,
            rulenum,
            options,
            zero,
        } => {
            print(&listing::list(
                table,
                chain.as_deref(),
                *rulenum,
                options,
                counters,
            )?);
            Ok((chain.as_deref(), *rulenum, *zero))
        }
        Command::ListRules {
            chain,
            rulenum,
            verbose,
            zero,
        } => {
            let counters = if *verbose { Some(counters) } else { None };
            print(&ruleset::list_rules(
                table,
                chain.as_deref(),
                *rulenum,
                counters,
            )?);
            Ok((chain.as_deref(), *rulenum, *zero))
        }
        _ => Ok((None, None, None)),
    }
}

/// Whether a command only reads the table (and zeroes counters, which commits nothing).
fn reads_only(table: &Table, command: &Command) -> bool {
    match command {
        Command::List { .. }
        | Command::ListRules { .. }
        | Command::Check { .. }
        | Command::Zero { .. } => true,
        // libiptc commits nothing when there is no user-defined chain to delete.
        Command::DeleteChain { chain: None } => table.chains.iter().all(|c| c.policy.is_some()),
        _ => false,
    }
}

/// A command on the filter table.
fn run_filter(dp: &Dataplane, mut state: State, invocation: &Invocation) -> Result<()> {
    let table = &state.table;
    let echo = || -> Result<()> {
        if invocation.verbose {
            print(&listing::verbose_echo(table, &invocation.command)?);
        }
        Ok(())
    };
    if reads_only(table, &invocation.command) {
        match &invocation.command {
            Command::List { .. } | Command::ListRules { .. } => {
                let counters = dp.counters()?;
                let (chain, rulenum, zeroing) = list(table, &invocation.command, &counters)?;
                zero_after_listing(dp, table, chain, rulenum, zeroing, echo)?;
            }
            Command::Check { .. } => {
                echo()?;
                ruleset::check(table, &invocation.command)?;
            }
            Command::Zero { chain, rulenum } => {
                echo()?;
                let slots = ruleset::zero_slots(table, chain.as_deref(), *rulenum)?;
                zero(dp, table, slots)?;
            }
            _ => echo()?,
        }
        return record_loaded(dp, state, TableName::Filter);
    }
    echo()?;
    let command = &invocation.command;
    let mut slots = engine::Slots::new(table);
    // The change goes into the table itself (no copy of a big ruleset); its rules' counter
    // slots tell the compiler which rules stayed.
    let old = crate::compile::slots_of(table);
    let mut new = std::mem::take(&mut state.table);
    // `-c` gives new rules their counts.
    let start = invocation.counters.unwrap_or_default();
    ruleset::apply(&mut new, command, &mut || slots.alloc(start))?;
    ruleset::commit_checks(&new, TableName::Filter)?;
    restart_policies(&mut slots, &new, TableName::Filter, invocation);
    new.tables.load(TableName::Filter);
    slots.count_tables(&mut new);
    let installed = engine::install(
        dp,
        &state,
        Some(crate::compile::Old::Slots(&old)),
        &new,
        &slots,
    );
    // The command ends here: the kernel takes back the tables' memory and mappings at exit,
    // faster than their destructors would (a free per rule and match).
    std::mem::forget((new, state, old));
    installed
}

/// iptables-legacy restarts the base chains' policy counters of a table on every change to it;
/// `-P` with `-c` sets its chain's.
fn restart_policies(slots: &mut engine::Slots, table: &Table, name: TableName, i: &Invocation) {
    for chain in name.base_chains() {
        let start = match &i.command {
            Command::Policy { chain: c, .. } if c == chain => i.counters.unwrap_or_default(),
            _ => Counter::default(),
        };
        slots.set_policy(table, chain, start);
    }
}

/// A command on the nat or mangle table, which count in the data plane as filter does: their
/// rules and policies have counter slots of their own, and a change compiles a new generation.
fn run_counted(
    dp: &Dataplane,
    state: State,
    name: TableName,
    invocation: &Invocation,
) -> Result<()> {
    let mut slots = engine::Slots::new(&state.table);
    let stored = state.table.tables.counted(name).is_some();
    let mut table = state
        .table
        .tables
        .counted_in(name, &mut |start| slots.alloc(start));
    let command = &invocation.command;
    let echo = |table: &Table| -> Result<()> {
        if invocation.verbose {
            print(&listing::verbose_echo(table, command)?);
        }
        Ok(())
    };
    if reads_only(&table, command) {
        // Slots new to the table read as they will start.
        let running = dp.counters()?;
        let counters = slots.reader(&running);
        match command {
            Command::List { .. } | Command::ListRules { .. } => {
                let (chain, rulenum, zeroing) = list(&table, command, &counters)?;
                zero_after_listing(dp, &table, chain, rulenum, zeroing, || echo(&table))?;
            }
            Command::Check { .. } => {
                echo(&table)?;
                ruleset::check(&table, command)?;
            }
            Command::Zero { chain, rulenum } => {
                echo(&table)?;
                let zeroed = ruleset::zero_slots(&table, chain.as_deref(), *rulenum)?;
                zero(dp, &table, zeroed)?;
            }
            _ => echo(&table)?,
        }
        if stored {
            return record_loaded(dp, state, name);
        }
        // First used: stored with its slots (where pcn-iptables is installed), as
        // iptables-legacy loads it.
        if state.base(None).is_none() {
            return Ok(());
        }
        // -Z commits the table, which restarts its policy counters: no count carried over.
        let zeroed = match command {
            Command::Zero { .. } => true,
            Command::List { zero, .. } | Command::ListRules { zero, .. } => zero.is_some(),
            _ => false,
        };
        if zeroed {
            for chain in name.base_chains() {
                slots.set_policy(&table, chain, Counter::default());
            }
        }
        dp.start_grace();
        return install_counted(dp, state, name, table, &slots);
    }
    echo(&table)?;
    let start = invocation.counters.unwrap_or_default();
    ruleset::apply(&mut table, command, &mut || slots.alloc(start))?;
    ruleset::commit_checks(&table, name)?;
    restart_policies(&mut slots, &table, name, invocation);
    install_counted(dp, state, name, table, &slots)
}

/// Installs `table` as table `name` (table or mangle), loaded, the rest as it runs; `slots` has
/// its new counters.
fn install_counted(
    dp: &Dataplane,
    mut state: State,
    name: TableName,
    table: Table,
    slots: &engine::Slots,
) -> Result<()> {
    let old = crate::compile::slots_of(&state.table);
    let mut new = std::mem::take(&mut state.table);
    new.tables.set_counted(name, table);
    new.tables.load(name);
    engine::install(
        dp,
        &state,
        Some(crate::compile::Old::Slots(&old)),
        &new,
        slots,
    )
}

/// iptables-legacy loads a table in the namespace the first time a command opens it, and
/// iptables-save prints the loaded ones: a command that changed nothing records the load,
/// where pcn-iptables is installed (a listing does not install it).
fn record_loaded(dp: &Dataplane, state: State, name: TableName) -> Result<()> {
    if state.table.tables.loaded.contains(&name) || state.base(None).is_none() {
        return Ok(());
    }
    dp.start_grace();
    commit_tables(dp, state, |tables| {
        tables.load(name);
    })
}

/// Commits a change to the tables other than filter (or to which are loaded): the filter table
/// goes on as it is, with its counters.
fn commit_tables(dp: &Dataplane, mut state: State, change: impl FnOnce(&mut Tables)) -> Result<()> {
    let old = crate::compile::slots_of(&state.table);
    let mut new = std::mem::take(&mut state.table);
    change(&mut new.tables);
    let mut slots = engine::Slots::new(&new);
    slots.count_tables(&mut new);
    let installed = engine::install(
        dp,
        &state,
        Some(crate::compile::Old::Slots(&old)),
        &new,
        &slots,
    );
    // The command ends here: the kernel takes back the tables' memory and mappings at exit,
    // faster than their destructors would (a free per rule and match).
    std::mem::forget((new, state, old));
    installed
}
