//! The namespace's `-m hashlimit` tables as xt_hashlimit keeps them: a table is made by the
//! first rule that names it, with that rule's configuration, and keeps it while any rule
//! names it (iptables-legacy checks a new ruleset's rules while the old ones still hold
//! their tables, so a changed rate takes effect only under a new name); it goes when no rule
//! names it. The kernel refuses a rule whose `--hashlimit-rate-match` differs from its
//! table's.

use pcn_iptables_common::hashlimit::{TABLES, mode};

use crate::error::{Error, OTHER_PROBLEM, RESOURCE_PROBLEM, Result};
use crate::model::{Hashlimit, HashlimitTable, Match, Table};

/// Every `-m hashlimit` of the namespace's rules, filter's then the other tables', in order.
fn matches(table: &Table) -> impl Iterator<Item = &Hashlimit> {
    super::named_matches(table).filter_map(|m| match m {
        Match::Hashlimit(h) => Some(h),
        _ => None,
    })
}

/// The tables of `table`'s rules, given those of the running ruleset (`old`): a table keeps
/// its slot and configuration; a new one takes a slot neither has, so that packets of the
/// outgoing generation never meet another table in it.
pub fn tables(old: &[HashlimitTable], table: &Table) -> Result<Vec<HashlimitTable>> {
    let mut new: Vec<HashlimitTable> = Vec::new();
    for h in matches(table) {
        let existing = new
            .iter()
            .chain(old)
            .find(|t| t.config.name == h.name)
            .cloned();
        if let Some(t) = existing {
            if (t.config.mode ^ h.mode) & mode::RATE_MATCH != 0 {
                return Err(Error::plain(
                    OTHER_PROBLEM,
                    "Invalid argument. Run `dmesg' for more information",
                ));
            }
            if !new.iter().any(|n| n.slot == t.slot) {
                new.push(t);
            }
            continue;
        }
        let taken = |s: u16| old.iter().chain(&new).any(|t| t.slot == s);
        let slot = (0..TABLES as u16).find(|s| !taken(*s)).ok_or_else(|| {
            Error::plain(
                RESOURCE_PROBLEM,
                format!("too many -m hashlimit tables: pcn-iptables keeps {TABLES}"),
            )
        })?;
        new.push(HashlimitTable {
            slot,
            config: h.clone(),
        });
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(limits: &[(&str, u64, u32)]) -> Table {
        crate::ruleset::recent::tests::input_of(limits.iter().map(|(name, avg, mode)| {
            Match::Hashlimit(Hashlimit {
                name: name.to_string(),
                avg: *avg,
                mode: *mode,
                ..Hashlimit::default()
            })
        }))
    }

    #[test]
    fn the_first_rule_sets_a_table_and_it_stays() {
        let first = tables(&[], &table(&[("a", 100, 0), ("b", 7, 0), ("a", 200, 0)])).unwrap();
        let got: Vec<(&str, u16, u64)> = first
            .iter()
            .map(|t| (t.config.name.as_str(), t.slot, t.config.avg))
            .collect();
        assert_eq!(got, [("a", 0, 100), ("b", 1, 7)]);
        // A later ruleset keeps a's rate and slot; c takes a slot b's outgoing packets
        // cannot meet; b goes.
        let later = tables(&first, &table(&[("c", 5, 0), ("a", 300, 0)])).unwrap();
        let got: Vec<(&str, u16, u64)> = later
            .iter()
            .map(|t| (t.config.name.as_str(), t.slot, t.config.avg))
            .collect();
        assert_eq!(got, [("c", 2, 5), ("a", 0, 100)]);
    }

    #[test]
    fn rate_match_must_agree_with_the_table() {
        let r = tables(&[], &table(&[("a", 100, 0), ("a", 100, mode::RATE_MATCH)]));
        assert!(r.is_err());
        let old = tables(&[], &table(&[("a", 100, mode::RATE_MATCH)])).unwrap();
        assert!(tables(&old, &table(&[("a", 100, 0)])).is_err());
        assert!(tables(&[], &table(&[("a", 100, 0)])).is_ok());
    }
}
