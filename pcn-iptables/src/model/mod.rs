//! The model, at the bottom of the house: tables and families, chains, rules, matches,
//! targets, policies, counters, and the command vocabulary. It imports nothing else of the
//! crate; every stage above speaks it.

mod command;
mod matches;
mod rule;
mod rules;
mod table;
mod value;

pub use command::*;
pub use matches::*;
pub use pcn_iptables_common::Counter;
pub use rule::*;
pub use rules::{Encoded, Rules, Shared, Summary, encode as encode_rules};
pub use table::*;
pub use value::*;
