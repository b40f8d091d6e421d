//! The ruleset: the model, iptables' semantics for changing it, and its canonical `-S` text.

mod apply;
pub(crate) mod extensions;
pub mod model;
pub(crate) mod print;

pub(crate) use apply::resolve_targets;
pub use apply::{apply, check, commit_checks, zero_slots};
pub use model::*;
pub use print::{list_rules, rule_spec};

use crate::error::{Error, OTHER_PROBLEM};

/// libiptc's answer for a chain that does not exist.
pub(crate) fn no_chain() -> Error {
    Error::plain(OTHER_PROBLEM, "No chain/target/match by that name")
}

/// The name `-m` gives a port match (the model only has tcp and udp ones).
pub(crate) fn port_match_name(proto: u8) -> &'static str {
    if proto == IPPROTO_TCP { "tcp" } else { "udp" }
}

/// A state match's module and option as `-S` and `-L` name them.
pub(crate) fn state_match_names(module: StateModule) -> (&'static str, &'static str) {
    match module {
        StateModule::Conntrack => ("conntrack", "ctstate"),
        StateModule::State => ("state", "state"),
    }
}

/// A set of conntrack states as libxt_conntrack's `print_state` lists them: INVALID, NEW,
/// RELATED, ESTABLISHED, UNTRACKED, comma-separated.
pub(crate) fn state_names(states: u8) -> String {
    use pcn_iptables_common::conntrack::ctstate;
    [
        (ctstate::INVALID, "INVALID"),
        (ctstate::NEW, "NEW"),
        (ctstate::RELATED, "RELATED"),
        (ctstate::ESTABLISHED, "ESTABLISHED"),
        (ctstate::UNTRACKED, "UNTRACKED"),
    ]
    .iter()
    .filter(|(state, _)| states & (1 << state) != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// The name iptables shows for a target: the verdict, or the chain jumped to.
pub(crate) fn target_name(target: &Target) -> &str {
    match target {
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Jump(chain) | Target::Goto(chain) => chain,
        Target::Reject(_) => "REJECT",
        Target::Log(_) => "LOG",
    }
}
