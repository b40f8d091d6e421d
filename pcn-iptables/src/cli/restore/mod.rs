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
    model::{BASE_CHAINS, Chain, Command, Policy, Table, Wait, Zeroing},
    ruleset,
    syntax::{
        self,
        restore::{
            Flags, Line, RESTORE_OPTIONS, policy_counters, rule_counters, scan_int, scan_uint,
        },
    },
};

/// xtables' `XT_TABLE_MAXNAMELEN`: iptables-restore remembers this much of a table's name.
const TABLE_NAME_MAX: usize = 32;
/// xtables' `XT_EXTENSION_MAXNAMELEN`: chain names are shorter.
const CHAIN_NAME_MAX: usize = 29;
/// Names libiptc refuses for a new chain besides existing ones.
const STANDARD_TARGETS: [&str; 4] = ["ACCEPT", "DROP", "QUEUE", "RETURN"];

/// The other tables of iptables' set and their built-in chains, in iptables' order. A restore
/// file may hold them empty (what iptables-save prints where they were loaded but unused):
/// that is pcn-iptables' state already, so it is accepted; anything in them is refused.
pub(super) const OTHER_TABLES: [(&str, &[&str]); 4] = [
    ("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]),
    (
        "mangle",
        &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    ),
    ("raw", &["PREROUTING", "OUTPUT"]),
    ("security", &["INPUT", "FORWARD", "OUTPUT"]),
];

struct Options {
    counters: bool,
    verbose: usize,
    test: bool,
    noflush: bool,
    wait: Wait,
    /// `-T`: restore only this table.
    table: Option<String>,
    file: Option<String>,
}

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

/// The flags, acted on in order as iptables-restore does; `None` when one of them (`-h`, `-V`)
/// was all there was to do.
fn parse_options(prog: &str, args: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        counters: false,
        verbose: 0,
        test: false,
        noflush: false,
        wait: Wait::NoWait,
        table: None,
        file: None,
    };
    let mut interval = false;
    let mut flags = Flags::new(prog, &RESTORE_OPTIONS, args);
    while let Some(flag) = flags.next() {
        let (c, value) = flag.map_err(|message| {
            Error::raw(
                OTHER_PROBLEM,
                format!("{message}\nTry `{prog} -h' for more information.\n"),
            )
        })?;
        // Values given apart (`-w 5`) are taken as iptables' `parse_wait_time` takes them.
        let mut value = || value.or_else(|| flags.take_value());
        match c {
            'b' => eprintln!("-b/--binary option is not implemented"),
            'c' => options.counters = true,
            'v' => options.verbose += 1,
            'V' => {
                print(&version_line(prog, false));
                return Ok(None);
            }
            't' => options.test = true,
            'h' => {
                eprint!("{}", usage(prog));
                return Ok(None);
            }
            'n' => options.noflush = true,
            'w' => options.wait = wait_time(value()).map_err(|e| at_line(e, prog, 0))?,
            'W' => {
                wait_interval(value()).map_err(|e| at_line(e, prog, 0))?;
                interval = true;
            }
            'T' => options.table = value().map(str::to_string),
            // -M names a modprobe program: pcn-iptables loads no kernel modules.
            _ => {}
        }
    }
    match flags.operands().as_slice() {
        [] => {}
        [file] => options.file = Some(file.to_string()),
        _ => {
            return Err(Error::raw(
                OTHER_PROBLEM,
                "Unknown arguments found on commandline\n",
            ));
        }
    }
    if interval && options.wait == Wait::NoWait {
        return Err(Error::raw(
            OTHER_PROBLEM,
            "Option --wait-interval requires option --wait\n",
        ));
    }
    Ok(Some(options))
}

/// iptables' `parse_wait_time`: `-w` alone waits for ever, `-w 0` not at all.
fn wait_time(value: Option<&str>) -> Result<Wait> {
    Ok(match value.map(scan_int) {
        None => Wait::Forever,
        Some(None) => return Err(Error::parameter("wait seconds not numeric")),
        Some(Some(0)) => Wait::NoWait,
        Some(Some(seconds)) if seconds > 0 => Wait::Seconds(seconds as u64),
        // A negative count becomes a never-ending alarm in iptables.
        Some(Some(_)) => Wait::Forever,
    })
}

/// iptables' `parse_wait_interval`: checked, then ignored (the lock is polled).
fn wait_interval(value: Option<&str>) -> Result<()> {
    let value = value.ok_or_else(|| Error::parameter("wait interval value required"))?;
    match scan_uint(value) {
        None => Err(Error::parameter("wait interval not numeric")),
        Some(usec) if usec > 999_999 => Err(Error::parameter(format!(
            "too long usec wait {usec} > 999999 usec"
        ))),
        Some(_) => {
            eprintln!("Ignoring deprecated --wait-interval option.");
            Ok(())
        }
    }
}

/// What `-V` prints (`! -V` on a command line: `negated`).
pub(super) fn version_line(prog: &str, negated: bool) -> String {
    if negated {
        format!("Not {} ;-)\n", version())
    } else {
        format!("{prog} v{}\n", version())
    }
}

fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-c] [-v] [-V] [-t] [-h] [-n] [-w secs] [-W usecs] [-T table] [-M command] [file]\n\
         \t   [ --counters ]\n\
         \t   [ --verbose ]\n\
         \t   [ --version]\n\
         \t   [ --test ]\n\
         \t   [ --help ]\n\
         \t   [ --noflush ]\n\
         \t   [ --wait=<seconds>\n\
         \t   [ --table=<TABLE> ]\n\
         \t   [ --modprobe=<command> ]\n"
    )
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
    Filter {
        dp: Box<Dataplane>,
        _lock: lock::Lock,
        /// What runs (the table as it was at the `*` line).
        running: Box<State>,
        table: Table,
        slots: engine::Slots,
    },
    /// One of [`OTHER_TABLES`], which must stay empty.
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
            && let Some(Open::Filter { dp, .. }) = &self.open
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
        if name == "filter" {
            dp.start_grace();
            // The programs load (a first install) while the table is read.
            if !self.options.test {
                dp.start_setup();
            }
            let running = Box::new(dp.read_state()?);
            let mut table = running.table.clone();
            let slots = engine::Slots::new(&table);
            if flush {
                let mut echo = String::new();
                for chain in &mut table.chains {
                    echo += &format!("Flushing chain `{}'\n", chain.name);
                    chain.rules.clear();
                }
                for chain in table.chains.iter().filter(|c| c.policy.is_none()) {
                    echo += &format!("Deleting chain `{}'\n", chain.name);
                }
                table.chains.retain(|c| c.policy.is_some());
                if verbose {
                    print(&echo);
                }
            }
            self.open = Some(Open::Filter {
                dp: Box::new(dp),
                _lock: lock,
                running,
                table,
                slots,
            });
        } else if let Some((_, builtins)) = OTHER_TABLES.iter().find(|(t, _)| *t == name) {
            if flush && verbose {
                for chain in *builtins {
                    print(&format!("Flushing chain `{chain}'\n"));
                }
            }
            self.open = Some(Open::Empty {
                name: name.to_string(),
                builtins,
            });
        } else {
            return Err(at_line(
                Error::parameter(format!("{prog}: unable to initialize table '{name}'")),
                prog,
                number,
            ));
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
        let noflush = self.options.noflush;
        let builtin = match self.open.as_mut().expect("inside a table") {
            Open::Filter { table, .. } => match table.chain_mut(name) {
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
                        rules: Vec::new(),
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
            Open::Filter { table, slots, .. } => {
                if let Some(chain) = table.chain_mut(name) {
                    chain.policy = Some(policy);
                }
                slots.set_policy(table, name, start);
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
        let (dp, table, slots) = match self.open.as_mut().expect("inside a table") {
            Open::Filter {
                dp, table, slots, ..
            } => (dp, table, slots),
            Open::Empty { name, .. } => return Err(fail(not_empty(name))),
        };
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
        let start = invocation.counters.unwrap_or_default();
        let echo = |table: &Table| -> Result<()> {
            if invocation.verbose {
                print(&listing::verbose_echo(table, &invocation.command).map_err(fail)?);
            }
            Ok(())
        };
        let result = match &invocation.command {
            Command::List {
                chain,
                rulenum,
                zero,
                ..
            }
            | Command::ListRules {
                chain,
                rulenum,
                zero,
                ..
            } => {
                let running = dp.counters()?;
                print(&list(table, &invocation.command, &slots.reader(&running)).map_err(fail)?);
                let zeroed = match zero {
                    Some(Zeroing::Chains) => {
                        echo(table)?;
                        ruleset::zero_slots(table, chain.as_deref(), None)
                    }
                    Some(Zeroing::Rule) => ruleset::zero_slots(table, chain.as_deref(), *rulenum),
                    None => Ok(Vec::new()),
                };
                zeroed.map(|z| slots.zero(z))
            }
            Command::Check { chain, rules } => {
                echo(table)?;
                rules
                    .iter()
                    .try_for_each(|rule| ruleset::check(table, chain, rule))
            }
            Command::Zero { chain, rulenum } => {
                echo(table)?;
                ruleset::zero_slots(table, chain.as_deref(), *rulenum).map(|z| slots.zero(z))
            }
            // `-P` sets its chain's counters, to zero without `-c`.
            Command::Policy { chain, .. } => {
                echo(table)?;
                ruleset::apply(table, &invocation.command, &mut || slots.alloc(start))
                    .map(|()| slots.set_policy(table, chain, start))
            }
            command => {
                echo(table)?;
                ruleset::apply(table, command, &mut || slots.alloc(start))
            }
        };
        result.map_err(fail).map(|()| Flow::Next)
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
        if let Some(Open::Filter {
            dp,
            running,
            table,
            mut slots,
            ..
        }) = self.open.take()
        {
            // iptables-legacy restarts the base chains' policy counters on every commit, where
            // the file does not set them.
            for chain in BASE_CHAINS {
                if let Some(c) = table.chain(chain)
                    && !slots
                        .fresh
                        .iter()
                        .any(|&(slot, _)| slot == c.policy_counter)
                {
                    slots.set_policy(&table, chain, Counter::default());
                }
            }
            // The kernel's own checks fail the COMMIT line, with nothing but that to say.
            ruleset::commit_checks(&table).map_err(|_| line_failed(prog, number))?;
            if self.options.test {
                engine::compile(&table, &slots).map_err(failed)?;
            } else {
                engine::install(&dp, &running, None, &table, &slots).map_err(failed)?;
                self.committed = true;
            }
        }
        Ok(())
    }
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
