//! iptables' command line: argv → [`Invocation`], with iptables 1.8.9's options, value grammars,
//! checks and messages; and the line grammar of the stored `-S` text.

mod build;
mod command;
mod getopt;
mod help;
mod matches;
mod names;
mod options;
pub mod restore;
mod state;
mod words;

use pcn_iptables_common::Counter;

use crate::error::{Error, Result};
use crate::model::{Command, Rule, Wait};
use crate::xtables::netdb::NameDb;

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
        names::check_table(&self.table)
    }
}

/// Parses the arguments after the program name, as iptables-legacy 1.8.9 does. The warnings
/// iptables prints while parsing (deprecated `-W`, odd interface names) go to stderr here too.
pub fn parse_args(argv0: &str, args: &[String]) -> Result<Invocation> {
    let (result, warnings) = command::parse(NameDb::system(), argv0, args);
    for warning in warnings {
        eprint!("{warning}");
    }
    result
}

/// Parses one `-A chain rule...` line, as `-S` prints it, into the chain and the rule.
pub fn parse_rule_line(words: &[String]) -> Result<(String, Rule)> {
    parse_rule_line_with(NameDb::system(), words)
}

pub(crate) fn parse_rule_line_with(db: &NameDb, words: &[String]) -> Result<(String, Rule)> {
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
