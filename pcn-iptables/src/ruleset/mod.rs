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

/// Every match of the namespace's rules, filter's then the other tables', in order (the named
/// lists and tables belong to the namespace).
fn every_match(table: &crate::model::Table) -> impl Iterator<Item = &crate::model::Match> {
    let others = table.tables.others.iter().map(|(_, t)| t);
    std::iter::once(table)
        .chain(others)
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .flat_map(|r| &r.matches)
}
