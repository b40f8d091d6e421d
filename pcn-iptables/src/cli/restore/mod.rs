//! `pcn-iptables-restore`, also answering as `iptables-restore`: iptables-save's text from a
//! file or stdin, each table applied at its COMMIT as one atomic swap, with the flags, output,
//! messages and exit codes of iptables-legacy-restore 1.8.9.

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};

use pcn_iptables_common::Counter;

use super::{check_privileges, version};
use crate::engine;
use crate::{
    dataplane::{Dataplane, State, lock},
    error::{Error, OTHER_PROBLEM, Result, Style},
    listing,
    model::{Chain, Command, Policy, Table, TableName, Zeroing},
    ruleset,
    syntax::{
        self,
        restore::{Line, policy_counters, rule_counters},
    },
};

/// xtables' `XT_TABLE_MAXNAMELEN`: iptables-restore remembers this much of a table's name.
const TABLE_NAME_MAX: usize = 32;
/// xtables' `XT_EXTENSION_MAXNAMELEN`: chain names are shorter.
const CHAIN_NAME_MAX: usize = 29;
/// Names libiptc refuses for a new chain besides existing ones.
const STANDARD_TARGETS: [&str; 4] = ["ACCEPT", "DROP", "QUEUE", "RETURN"];

mod options;

pub(super) use options::version_line;
use options::{Options, parse_options};

pub fn main(prog: &str, args: &[String]) -> Result<()> {
    let Some(options) = parse_options(prog, args)? else {
        return Ok(());
    };
    let input: Box<dyn BufRead> = match &options.file {
        Some(path) => Box::new(BufReader::new(File::open(path).map_err(|e| {
            Error::raw(
                OTHER_PROBLEM,
                format!("Can't open {path}: {}\n", strerror(&e)),
            )
        })?)),
        None => Box::new(std::io::stdin().lock()),
    };
    Restore {
        prog,
        options,
        current: String::new(),
        open: None,
        committed: false,
    }
    .run(input)
}

/// `strerror(errno)`, as C prints it.
pub(super) fn strerror(e: &std::io::Error) -> &'static str {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)).desc()
}

/// iptables-restore names the line of a parameter problem before its "Try" hint.
fn at_line(e: Error, prog: &str, number: usize) -> Error {
    if !matches!(e.style, Style::Parameter | Style::TryHelp) {
        return e;
    }
    let text = e.render(prog);
    let hint = text.rfind("Try `").unwrap_or(text.len());
    Error::raw(
        e.code,
        format!(
            "{}Error occurred at line: {number}\n{}",
            &text[..hint],
            &text[hint..]
        ),
    )
}

/// What iptables-restore prints when a line's command or the table's commit fails.
fn line_failed(prog: &str, number: usize) -> Error {
    Error::raw(OTHER_PROBLEM, format!("{prog}: line {number} failed\n"))
}

/// Whether the input goes on after a command line: iptables' `-h` and `-V` print and exit, as
/// they do on the command line, committing nothing more.
enum Flow {
    Next,
    Exit,
}

/// A table between its `*` line and its COMMIT.
enum Open {
    /// filter, nat, mangle or raw: each reaches the compiler and counts.
    Kept {
        name: TableName,
        dp: Box<Dataplane>,
        _lock: lock::Lock,
        /// What runs (the ruleset as it was at the `*` line).
        running: Box<State>,
        /// The table as restored so far (for filter, the whole ruleset, the other tables
        /// with it).
        table: Table,
        /// The counter slots of every table.
        slots: Box<engine::Slots>,
        /// The running counters, read by listings inside the table.
        counters: Box<dyn Fn(u32) -> (u64, u64)>,
        /// The filter rules' counter slots when `table` took the running ruleset's rules
        /// (`--noflush`): how the compiler tells the rules the file left alone.
        old: Option<Vec<(String, Vec<u32>)>>,
    },
    /// security, which pcn-iptables does not have: accepted empty (what iptables-save prints
    /// where it was loaded but unused), anything in it refused.
    Empty {
        name: String,
        builtins: &'static [&'static str],
    },
}

struct Restore<'a> {
    prog: &'a str,
    options: Options,
    /// The last `*` line's table (what `-T` compares with).
    current: String,
    open: Option<Open>,
    /// A table was committed.
    committed: bool,
}

/// The refusal of anything in a table pcn-iptables does not have.
fn not_empty(table: &str) -> Error {
    Error::parameter(format!(
        "table `{table}' is not supported by pcn-iptables (only empty, with ACCEPT policies)"
    ))
}

impl Restore<'_> {
    fn run(mut self, input: Box<dyn BufRead>) -> Result<()> {
        let result = self.lines(input);
        // A failed first restore leaves no installation behind (see `table`).
        if result.is_err()
            && !self.committed
            && let Some(Open::Kept { dp, .. }) = &self.open
        {
            dp.abandon_setup();
        }
        result
    }

    fn lines(&mut self, mut input: Box<dyn BufRead>) -> Result<()> {
        let prog = self.prog;
        let mut bytes = Vec::new();
        let mut number = 0;
        loop {
            bytes.clear();
            let read = input
                .read_until(b'\n', &mut bytes)
                .map_err(|e| Error::raw(OTHER_PROBLEM, format!("{prog}: reading input: {e}\n")))?;
            if read == 0 {
                break;
            }
            number += 1;
            let line = String::from_utf8_lossy(&bytes);
            match Line::parse(&line, self.open.is_some()) {
                Line::Blank => {}
                Line::Comment => {
                    if self.options.verbose > 0 {
                        print(&line);
                    }
                }
                Line::Table(name) => self.table(name, number)?,
                Line::Chain {
                    name,
                    policy,
                    counters,
                } => self.chain(name, policy, counters, number)?,
                Line::Commit => self.commit(number)?,
                Line::Command(text) => {
                    if let Flow::Exit = self.command(text, number)? {
                        return Ok(());
                    }
                }
                // Lines outside the table `-T` picks are skipped, whatever they are.
                Line::Stray
                    if self
                        .options
                        .table
                        .as_ref()
                        .is_none_or(|t| *t == self.current) =>
                {
                    return Err(line_failed(prog, number));
                }
                Line::Stray => {}
            }
        }
        if self.open.is_some() {
            return Err(Error::raw(
                OTHER_PROBLEM,
                format!("{prog}: COMMIT expected at line {}\n", number + 1),
            ));
        }
        Ok(())
    }

    /// `*TABLE`: takes the lock, then starts from the running table, flushed unless `-n`.
    fn table(&mut self, name: Option<&str>, number: usize) -> Result<()> {
        let prog = self.prog;
        check_privileges(name.unwrap_or_default())?;
        let dp = Dataplane::open()?;
        let lock = lock::acquire(&dp.lock_path()?, &self.options.wait)?;
        let Some(name) = name else {
            return Err(at_line(
                Error::parameter(format!("{prog}: line {number} table name invalid")),
                prog,
                number,
            ));
        };
        self.current = name.chars().take(TABLE_NAME_MAX).collect();
        if self
            .options
            .table
            .as_ref()
            .is_some_and(|t| *t != self.current)
        {
            return Ok(());
        }
        let flush = !self.options.noflush;
        let verbose = self.options.verbose > 0;
        match TableName::by_name(name) {
            Some(kept) if kept.is_kept() => {
                dp.start_grace();
                // The programs load (a first install) while the table is read.
                if !self.options.test {
                    dp.start_setup();
                }
                let mut running = Box::new(dp.read_state()?);
                let mut slots = Box::new(engine::Slots::new(&running.table));
                let mut old = None;
                let mut table = match kept {
                    // Flushed: the running rules are not copied only to be dropped.
                    TableName::Filter if flush => {
                        let (table, echo) = flushed(&running.table);
                        if verbose {
                            print(&echo);
                        }
                        table
                    }
                    // Changed in place: the running rules are taken, not copied (`--test`
                    // records the running table, whole).
                    TableName::Filter if !self.options.test => {
                        old = Some(crate::compile::slots_of(&running.table));
                        std::mem::take(&mut running.table)
                    }
                    TableName::Filter => running.table.clone(),
                    counted => running
                        .table
                        .tables
                        .counted_in(counted, &mut |start| slots.alloc(start)),
                };
                if flush && kept != TableName::Filter {
                    let echo = flush_table(&mut table);
                    if verbose {
                        print(&echo);
                    }
                }
                let counters = Box::new(dp.counters()?);
                self.open = Some(Open::Kept {
                    name: kept,
                    dp: Box::new(dp),
                    _lock: lock,
                    running,
                    table,
                    slots,
                    counters,
                    old,
                });
            }
            Some(other) => {
                let builtins = other.base_chains();
                if flush && verbose {
                    for chain in builtins {
                        print(&format!("Flushing chain `{chain}'\n"));
                    }
                }
                self.open = Some(Open::Empty {
                    name: name.to_string(),
                    builtins,
                });
            }
            None => {
                return Err(at_line(
                    Error::parameter(format!("{prog}: unable to initialize table '{name}'")),
                    prog,
                    number,
                ));
            }
        }
        Ok(())
    }

    /// `:CHAIN POLICY [packets:bytes]`: creates a user chain (with `-n`, flushes it if it
    /// exists), sets a base chain's policy and its counters.
    fn chain(
        &mut self,
        name: Option<&str>,
        policy: Option<&str>,
        counters: Option<&str>,
        number: usize,
    ) -> Result<()> {
        let prog = self.prog;
        let parameter = |message: String| at_line(Error::parameter(message), prog, number);
        let Some(name) = name else {
            return Err(parameter(format!(
                "{prog}: line {number} chain name invalid"
            )));
        };
        if name.len() >= CHAIN_NAME_MAX {
            return Err(parameter(format!(
                "Invalid chain name `{name}' ({} chars max)",
                CHAIN_NAME_MAX - 1
            )));
        }
        syntax::announce_chain(name);
        let noflush = self.options.noflush;
        let builtin = match self.open.as_mut().expect("inside a table") {
            Open::Kept { table, .. } => match table.chain_mut(name) {
                Some(chain) if chain.policy.is_some() => true,
                Some(chain) if noflush => {
                    chain.rules.clear();
                    false
                }
                existing => {
                    if existing.is_some() || STANDARD_TARGETS.contains(&name) {
                        return Err(parameter(format!(
                            "error creating chain '{name}':File exists"
                        )));
                    }
                    table.add_chain(Chain {
                        name: name.to_string(),
                        policy: None,
                        // A user chain's end returns to its caller, counting nothing.
                        policy_counter: 0,
                        rules: Default::default(),
                    });
                    false
                }
            },
            Open::Empty {
                name: table,
                builtins,
            } => {
                if !builtins.contains(&name) {
                    return Err(at_line(not_empty(table), prog, number));
                }
                true
            }
        };
        let Some(policy) = policy else {
            return Err(parameter(format!("{prog}: line {number} policy invalid")));
        };
        if policy == "-" {
            return Ok(());
        }
        let start = if self.options.counters {
            counters
                .and_then(policy_counters)
                .ok_or_else(|| parameter(format!("invalid policy counters for chain '{name}'")))?
        } else {
            Counter::default()
        };
        let cant = |why: &str| {
            Error::versioned(
                OTHER_PROBLEM,
                format!("Can't set policy `{policy}' on `{name}' line {number}: {why}"),
            )
        };
        if !builtin {
            return Err(cant("Bad built-in chain name"));
        }
        let policy = match policy {
            "ACCEPT" => Policy::Accept,
            "DROP" => Policy::Drop,
            _ => return Err(cant("Bad policy name")),
        };
        match self.open.as_mut().expect("inside a table") {
            Open::Kept { table, slots, .. } => {
                slots.set_policy(table, name, start);
                if let Some(chain) = table.chain_mut(name) {
                    chain.policy = Some(policy);
                }
            }
            Open::Empty { name: table, .. } => {
                if policy != Policy::Accept {
                    return Err(at_line(not_empty(table), prog, number));
                }
            }
        }
        Ok(())
    }

    /// An iptables command line, maybe after `[packets:bytes]`, run against the open table as
    /// iptables-restore runs it: `-t` refused, `-v` added for `-v` without `-n`, the counters
    /// given as `--set-counters` with `-c`. The errors libiptc would return only fail the line.
    fn command(&mut self, text: &str, number: usize) -> Result<Flow> {
        let prog = self.prog;
        let fail = |e: Error| match e.style {
            Style::Plain => line_failed(prog, number),
            _ => at_line(e, prog, number),
        };
        let (counters, text) = rule_counters(text, number).map_err(fail)?;
        let mut args = Vec::new();
        if !self.options.noflush {
            args.resize(self.options.verbose, "-v".to_string());
        }
        if let (Some((packets, bytes)), true) = (counters, self.options.counters) {
            args.extend(["--set-counters", packets, bytes].map(String::from));
        }
        args.extend(syntax::split_words(text).map_err(fail)?);
        if args
            .iter()
            .any(|w| w.starts_with("-t") || w.starts_with("--table"))
        {
            return Err(fail(Error::parameter(format!(
                "The -t option cannot be used in {prog}.\n"
            ))));
        }
        let (name, table, slots, running) = match self.open.as_mut().expect("inside a table") {
            Open::Kept {
                name,
                table,
                slots,
                counters,
                ..
            } => (*name, table, slots, counters),
            Open::Empty { name, .. } => return Err(fail(not_empty(name))),
        };
        // The command is parsed for its table, as iptables-restore does (-P's chains, nat's
        // refusal of DROP).
        if name != TableName::Filter {
            args.splice(0..0, ["-t".to_string(), name.name().to_string()]);
        }
        let invocation = syntax::parse_args(prog, &args).map_err(fail)?;
        match &invocation.command {
            Command::Help { target, matches } => {
                print(&syntax::help(prog, &version(), *target, matches));
                return Ok(Flow::Exit);
            }
            Command::Version { negated } => {
                print(&version_line(prog, *negated));
                return Ok(Flow::Exit);
            }
            _ => {}
        }
        apply(table, slots, &invocation, running, fail)?;
        Ok(Flow::Next)
    }

    /// COMMIT: the table goes live as one atomic swap (with `--test`, it is only compiled).
    fn commit(&mut self, number: usize) -> Result<()> {
        let prog = self.prog;
        let failed = |e: Error| {
            Error::raw(
                OTHER_PROBLEM,
                format!("{}{prog}: line {number} failed\n", e.render(prog)),
            )
        };
        if let Some(Open::Kept {
            name,
            dp,
            running,
            table,
            mut slots,
            old: taken,
            ..
        }) = self.open.take()
        {
            // iptables-legacy restarts the base chains' policy counters on every commit, where
            // the file does not set them.
            for chain in name.base_chains() {
                if let Some(c) = table.chain(chain)
                    && !slots
                        .fresh
                        .iter()
                        .any(|&(slot, _)| slot == c.policy_counter)
                {
                    slots.set_policy(&table, chain, Counter::default());
                }
            }
            // The kernel's own checks fail the COMMIT line, with nothing but that to say;
            // `--test` commits nothing, so the kernel checks nothing.
            if !self.options.test {
                ruleset::commit_checks(&table, name).map_err(|_| line_failed(prog, number))?;
            }
            // nat and mangle go live with the rest as it runs.
            let old = match taken {
                Some(taken) => taken,
                None if name != TableName::Filter => crate::compile::slots_of(&running.table),
                None => Vec::new(),
            };
            let (mut table, old) = match name {
                TableName::Filter if !old.is_empty() => {
                    (table, Some(crate::compile::Old::Slots(&old)))
                }
                TableName::Filter => (table, None),
                _ => {
                    let mut new = running.table.clone();
                    new.tables.set_counted(name, table);
                    (new, Some(crate::compile::Old::Slots(&old)))
                }
            };
            table.tables.load(name);
            slots.count_tables(&mut table);
            if self.options.test {
                engine::compile(&table, &slots).map_err(failed)?;
                super::record_loaded(&dp, *running, name).map_err(failed)?;
            } else {
                engine::install(&dp, &running, old, &table, &slots).map_err(failed)?;
                self.committed = true;
            }
        }
        Ok(())
    }
}

/// Applies a command line's `invocation` to the open `table`, whose counters `slots` sets
/// (over what `running` reads). As libiptc zeroes only the counters it read from the kernel,
/// those this restore set keep their counts.
fn apply(
    table: &mut Table,
    slots: &mut engine::Slots,
    invocation: &syntax::Invocation,
    running: &dyn Fn(u32) -> (u64, u64),
    fail: impl Fn(Error) -> Error,
) -> Result<()> {
    let start = invocation.counters.unwrap_or_default();
    let echo = |table: &Table| -> Result<()> {
        if invocation.verbose {
            print(&listing::verbose_echo(table, &invocation.command).map_err(&fail)?);
        }
        Ok(())
    };
    let result = match &invocation.command {
        Command::List {
            chain,
            rulenum,
            zero: zeroing,
            ..
        }
        | Command::ListRules {
            chain,
            rulenum,
            zero: zeroing,
            ..
        } => {
            let text = list(table, &invocation.command, &slots.reader(running));
            print(&text.map_err(&fail)?);
            let zeroed = match zeroing {
                Some(Zeroing::Chains) => {
                    echo(table)?;
                    ruleset::zero_slots(table, chain.as_deref(), None)
                }
                Some(Zeroing::Rule) => ruleset::zero_slots(table, chain.as_deref(), *rulenum),
                None => Ok(Vec::new()),
            };
            zeroed.map(|z| slots.zero(z))
        }
        Command::Check { .. } => {
            echo(table)?;
            ruleset::check(table, &invocation.command)
        }
        Command::Zero { chain, rulenum } => {
            echo(table)?;
            ruleset::zero_slots(table, chain.as_deref(), *rulenum).map(|z| slots.zero(z))
        }
        command => {
            echo(table)?;
            ruleset::apply(table, command, &mut || slots.alloc(start)).map(|()| {
                // `-P` sets its chain's counters, to zero without `-c`.
                if let Command::Policy { chain, .. } = command {
                    slots.set_policy(table, chain, start);
                }
            })
        }
    };
    result.map_err(fail)
}

/// iptables-restore's flush of a table at its `*` line (without `--noflush`): every chain
/// emptied, the user-defined ones deleted; what `-v` says about it.
/// `table` flushed as `flush_table` flushes it, its rules not copied.
fn flushed(table: &Table) -> (Table, String) {
    let mut copy = Table {
        chains: Vec::new(),
        tables: table.tables.clone(),
    };
    copy.chains = table
        .chains
        .iter()
        .map(|c| Chain {
            name: c.name.clone(),
            policy: c.policy,
            policy_counter: c.policy_counter,
            rules: Default::default(),
        })
        .collect();
    let echo = flush_table(&mut copy);
    (copy, echo)
}

fn flush_table(table: &mut Table) -> String {
    let mut echo = String::new();
    for chain in &mut table.chains {
        echo += &format!("Flushing chain `{}'\n", chain.name);
        chain.rules.clear();
    }
    for chain in table.chains.iter().filter(|c| c.policy.is_none()) {
        echo += &format!("Deleting chain `{}'\n", chain.name);
    }
    table.chains.retain(|c| c.policy.is_some());
    echo
}

/// The text of `-L` or `-S` inside a restore: the table as it stands, with the counters it will
/// start from.
fn list(table: &Table, command: &Command, counters: &dyn Fn(u32) -> (u64, u64)) -> Result<String> {
    match command {
        Command::List {
            chain,
            rulenum,
            options,
            ..
        } => listing::list(table, chain.as_deref(), *rulenum, options, counters),
        Command::ListRules {
            chain,
            rulenum,
            verbose,
            ..
        } => ruleset::list_rules(
            table,
            chain.as_deref(),
            *rulenum,
            verbose.then_some(counters),
        ),
        _ => Ok(String::new()),
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
