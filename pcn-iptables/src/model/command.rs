//! The command vocabulary: what an iptables invocation asks for, once parsed, whoever parsed
//! it (the command line, a restore file) and whoever carries it out.

use super::rule::Rule;
use super::table::Policy;

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
