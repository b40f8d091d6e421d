//! The ruleset: iptables' semantics for changing the model, and its canonical `-S` text.

mod apply;
mod commit;
pub mod hashlimit;
mod names;
pub(crate) mod print;
pub mod recent;

pub(crate) use apply::resolve_targets;
pub use apply::{apply, check, zero_slots};
pub use commit::{commit_checks, summary};
pub(crate) use names::{kernel_target_name, no_chain};
pub use print::{list_rules, rule_spec};

/// Every match of the namespace's rules that may be `-m recent` or `-m hashlimit`, filter's
/// then the other tables', in order (the named lists and tables belong to the namespace).
fn named_matches(table: &crate::model::Table) -> impl Iterator<Item = &crate::model::Match> {
    let others = table.tables.others.iter().map(|(_, t)| t);
    std::iter::once(table)
        .chain(others)
        .flat_map(|t| &t.chains)
        .filter(|c| c.rules.summary().is_none_or(|s| s.named))
        .flat_map(|c| &c.rules)
        .flat_map(|r| &r.matches)
}
