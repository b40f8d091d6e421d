//! The ruleset: the model, iptables' semantics for changing it, and its canonical `-S` text.

mod apply;
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

/// The name iptables shows for a target: the verdict, or the chain jumped to.
pub(crate) fn target_name(target: &Target) -> &str {
    match target {
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Jump(chain) | Target::Goto(chain) => chain,
    }
}
