//! The ruleset: iptables' semantics for changing the model, and its canonical `-S` text.

mod apply;
pub mod hashlimit;
mod names;
pub(crate) mod print;
pub mod recent;

pub(crate) use apply::resolve_targets;
pub use apply::{apply, check, commit_checks, zero_slots};
pub(crate) use names::{kernel_target_name, no_chain};
pub use print::{list_rules, rule_spec};
