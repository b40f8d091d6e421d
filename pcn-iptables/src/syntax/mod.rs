//! iptables' command line: argv → [`Invocation`], with iptables 1.8.9's options, checks and
//! messages (the value grammars are libxtables', in `crate::xtables`; the extensions' options
//! in `crate::ext`); and the line grammar of the stored `-S` text and of restore files.

mod build;
mod command;
mod getopt;
mod help;
mod invocation;
mod matches;
mod names;
mod options;
pub mod restore;
mod state;
mod words;

use crate::error::{Error, Result};
use crate::model::{Command, Rule};
use crate::xtables::netdb::NameDb;

pub use help::help;
pub use invocation::Invocation;
pub use words::split_words;

/// Parses the arguments after the program name, as iptables-legacy 1.8.9 does. The warnings
/// iptables prints while parsing (deprecated `-W`, odd interface names) go to stderr here too.
/// The chains iptables-restore declared (libxtables' `xtables_announce_chain`): `-j NAME`
/// jumps to such a chain even where a target extension has its name.
static ANNOUNCED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Records a chain a restore file declares.
pub fn announce_chain(name: &str) {
    let mut announced = ANNOUNCED.lock().unwrap_or_else(|e| e.into_inner());
    if !announced.iter().any(|n| n == name) {
        announced.push(name.to_string());
    }
}

fn is_announced_chain(name: &str) -> bool {
    let announced = ANNOUNCED.lock().unwrap_or_else(|e| e.into_inner());
    announced.iter().any(|n| n == name)
}

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
