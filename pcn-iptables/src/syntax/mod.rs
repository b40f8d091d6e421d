//! iptables' command line: argv → [`Invocation`], with iptables 1.8.9's options, value grammars,
//! checks and messages; and the line grammar of the stored `-S` text.

mod command;
pub(crate) mod extensions;
mod getopt;
mod help;
pub(crate) mod netdb;
pub mod restore;
pub(crate) mod value;
mod words;

use pcn_iptables_common::Counter;

use crate::error::{Error, Result};
use crate::ruleset::model::{Policy, Rule};

pub use command::MAX_CHAIN_LABEL;
pub use help::help;
pub use words::split_words;

/// One iptables command line, parsed.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub command: Command,
    pub wait: Wait,
    /// `-t`: checked by [`Invocation::check_table`] once the privileges are, as iptables
    /// checks it when it opens the table.
    pub table: String,
    /// `-v`: rule commands echo their rules, -F, -Z and -X name each chain (see
    /// [`crate::listing::verbose_echo`]).
    pub verbose: bool,
    /// `-c PKTS BYTES`: the counters new rules, or the policy of `-P`, start from.
    pub counters: Option<Counter>,
}

impl Invocation {
    /// Refuses tables other than filter, as iptables does when it opens the table (after the
    /// lock, so after the privilege check).
    pub fn check_table(&self) -> Result<()> {
        command::check_table(&self.table)
    }
}

/// What `-Z` zeroes after `-L` or `-S` have listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zeroing {
    /// `-Z [chain]`: the chain listed, or every chain, even when the listing named one rule.
    Chains,
    /// `-Z chain rulenum` (before `-L` or `-S`): that rule.
    Rule,
}

/// `-w [seconds]`: how long to wait for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    NoWait,
    Forever,
    Seconds(u64),
}

/// How `-L` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-n`
    pub numeric: bool,
    /// `-v`
    pub verbose: bool,
    /// `-x`
    pub exact: bool,
    /// `--line-numbers`
    pub line_numbers: bool,
}

/// The command of an invocation. Rule numbers are 1-based, as the user gives them. Commands
/// taking a rule specification carry one rule per source × destination address (source outer),
/// in the order iptables applies them.
#[derive(Clone, Debug)]
pub enum Command {
    /// `-A chain rule`
    Append { chain: String, rules: Vec<Rule> },
    /// `-I chain [rulenum] rule` (rulenum defaults to 1)
    Insert {
        chain: String,
        index: usize,
        rules: Vec<Rule>,
    },
    /// `-D chain rule`
    Delete { chain: String, rules: Vec<Rule> },
    /// `-D chain rulenum`
    DeleteNum { chain: String, index: usize },
    /// `-R chain rulenum rule`
    Replace {
        chain: String,
        index: usize,
        rule: Rule,
    },
    /// `-C chain rule`
    Check { chain: String, rules: Vec<Rule> },
    /// `-L [chain [rulenum]]`, with `-Z`: zero afterwards.
    List {
        chain: Option<String>,
        rulenum: Option<usize>,
        options: ListOptions,
        zero: Option<Zeroing>,
    },
    /// `-S [chain [rulenum]]`, `-v` adds counters; with `-Z`: zero afterwards.
    ListRules {
        chain: Option<String>,
        rulenum: Option<usize>,
        verbose: bool,
        zero: Option<Zeroing>,
    },
    /// `-F [chain]`
    Flush { chain: Option<String> },
    /// `-Z [chain [rulenum]]`
    Zero {
        chain: Option<String>,
        rulenum: Option<usize>,
    },
    /// `-P chain policy`
    Policy { chain: String, policy: Policy },
    /// `-N chain`
    NewChain { chain: String },
    /// `-X [chain]`: one user-defined chain, or every one.
    DeleteChain { chain: Option<String> },
    /// `-E old-chain new-chain`
    RenameChain { chain: String, new_name: String },
    /// `-h`: iptables' help, then that of the target (`standard`, `REJECT`, `LOG`), then of
    /// the match modules named, in iptables' order.
    Help {
        target: Option<&'static str>,
        matches: Vec<&'static str>,
    },
    /// `-V`, or `! -V`.
    Version { negated: bool },
}

/// Parses the arguments after the program name, as iptables-legacy 1.8.9 does. The warnings
/// iptables prints while parsing (deprecated `-W`, odd interface names) go to stderr here too.
pub fn parse_args(argv0: &str, args: &[String]) -> Result<Invocation> {
    let (result, warnings) = command::parse(netdb::NameDb::system(), argv0, args);
    for warning in warnings {
        eprint!("{warning}");
    }
    result
}

/// Parses one `-A chain rule...` line, as `-S` prints it, into the chain and the rule.
pub fn parse_rule_line(words: &[String]) -> Result<(String, Rule)> {
    parse_rule_line_with(netdb::NameDb::system(), words)
}

pub(crate) fn parse_rule_line_with(db: &netdb::NameDb, words: &[String]) -> Result<(String, Rule)> {
    match command::parse(db, "iptables", words).0?.command {
        Command::Append { chain, mut rules } if rules.len() == 1 => Ok((chain, rules.remove(0))),
        _ => Err(Error::parameter(format!(
            "not a single rule: {}",
            words.join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests;
