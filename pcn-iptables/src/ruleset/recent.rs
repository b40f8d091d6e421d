//! The namespace's `-m recent` lists as xt_recent keeps them: a list is made when a rule
//! first names it, with that rule's mask; it keeps more stamps per address (and is emptied)
//! when a rule's `--hitcount` needs them; it goes when no rule names it any more.

use pcn_iptables_common::recent::{LISTS, stamp_mask};

use crate::error::{Error, RESOURCE_PROBLEM, Result};
use crate::model::{Match, Recent, RecentList, Table};

/// Every `-m recent` of the namespace's rules, filter's then the other tables', in order.
fn matches(table: &Table) -> impl Iterator<Item = &Recent> {
    super::named_matches(table).filter_map(|m| match m {
        Match::Recent(r) => Some(r),
        _ => None,
    })
}

/// The lists of `table`'s rules, given those of the running ruleset (`old`): a list keeps its
/// slot, mask and stamps; a new one takes a slot neither has, so that packets of the outgoing
/// generation never meet another list in it.
pub fn lists(old: &[RecentList], table: &Table) -> Result<Vec<RecentList>> {
    let mut new: Vec<RecentList> = Vec::new();
    for r in matches(table) {
        let stamps = stamp_mask(r.hitcount).min(u16::MAX as u32) as u16;
        if let Some(l) = new.iter_mut().find(|l| l.name == r.name) {
            l.stamp_mask = l.stamp_mask.max(stamps);
            continue;
        }
        let list = match old.iter().find(|l| l.name == r.name) {
            Some(l) => RecentList {
                stamp_mask: l.stamp_mask.max(stamps),
                ..l.clone()
            },
            None => {
                let taken = |s: u16| old.iter().chain(&new).any(|l| l.slot == s);
                let slot = (0..LISTS as u16).find(|s| !taken(*s)).ok_or_else(|| {
                    Error::plain(
                        RESOURCE_PROBLEM,
                        format!("too many -m recent lists: pcn-iptables keeps {LISTS}"),
                    )
                })?;
                RecentList {
                    name: r.name.clone(),
                    slot,
                    mask: r.mask,
                    stamp_mask: stamps,
                }
            }
        };
        new.push(list);
    }
    Ok(new)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::{Chain, Rule};

    /// A table whose INPUT has a rule of each of `matches`.
    pub(in crate::ruleset) fn input_of(matches: impl Iterator<Item = Match>) -> Table {
        let rules = matches
            .map(|m| Rule {
                src: None,
                dst: None,
                in_iface: None,
                out_iface: None,
                proto: None,
                fragment: None,
                matches: vec![m],
                target: None,
                counter: 0,
            })
            .collect();
        Table::of_chains(vec![Chain {
            name: "INPUT".into(),
            policy: None,
            policy_counter: 0,
            rules,
        }])
    }

    fn table(recents: &[(&str, u32, u32)]) -> Table {
        input_of(recents.iter().map(|(name, hitcount, mask)| {
            Match::Recent(Recent {
                name: name.to_string(),
                hitcount: *hitcount,
                mask: *mask,
                ..Recent::default()
            })
        }))
    }

    fn list(name: &str, slot: u16, mask: u32, stamp_mask: u16) -> RecentList {
        RecentList {
            name: name.into(),
            slot,
            mask,
            stamp_mask,
        }
    }

    #[test]
    fn the_first_rule_makes_the_list_and_the_hitcount_grows_it() {
        let t = table(&[("A", 0, !0xff), ("B", 4, !0), ("A", 40, !0), ("B", 2, 0)]);
        assert_eq!(
            lists(&[], &t).unwrap(),
            [list("A", 0, !0xff, 63), list("B", 1, !0, 3)]
        );
    }

    #[test]
    fn lists_keep_slot_mask_and_stamps_and_new_ones_take_a_free_slot() {
        let old = [list("A", 0, !0xff, 63), list("B", 1, !0, 3)];
        let t = table(&[("C", 0, !0), ("B", 1, 0)]);
        // A goes; its slot stays unused while the outgoing generation may still use it.
        assert_eq!(
            lists(&old, &t).unwrap(),
            [list("C", 2, !0, 31), list("B", 1, !0, 3)]
        );
    }
}
