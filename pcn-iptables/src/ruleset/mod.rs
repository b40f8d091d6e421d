//! The ruleset: iptables' semantics for changing the model, and its canonical `-S` text.

mod apply;
pub mod hashlimit;
mod names;
pub(crate) mod print;
pub mod recent;

pub(crate) use apply::resolve_targets;
pub use apply::{apply, check, commit_checks, zero_slots};
pub(crate) use names::{no_chain, target_name};
pub use print::{list_rules, rule_spec};
