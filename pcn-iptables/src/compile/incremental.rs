//! The incremental build on the running generation: for each chain, only the words from its
//! first changed rule on; atoms and bitmap indexes stay.

use pcn_iptables_common::{ChainConfig, MAX_CHAINS};

use super::chain::{
    ChainBase, Made, OWN_CHECKED, OWN_COUNT_ONLY, OWN_RULES, chain_bitmaps, entries_of_chain,
};
use super::config::{Ctx, actions, chain_config, chain_of, tracks};
use super::tables;
use super::types::{
    Base, Change, CompileError, Entry, Layout, Program, SRC_ZERO, TrieUpdate, Write, config, stored,
};
use crate::model::Table;

/// The build on the running generation; `None` when it cannot be (chain ids run out).
pub(super) fn incremental(
    ctx: &Ctx,
    table: &Table,
    base: &Base,
) -> Result<Option<Program>, CompileError> {
    let track = tracks(table);
    let layout = base.layout;
    let names = chain_names(layout, table);
    if names.len() > MAX_CHAINS as usize {
        return Ok(None);
    }
    let old_cfg = |id: usize| layout.chains.get(id).map(config);
    let (actions, bases) = actions(table, &names, |id, name| {
        let cfg = old_cfg(id).filter(|_| layout.chain_names.get(id).is_some_and(|n| n == name))?;
        Some((cfg.action_base, base.old.slots(name)?))
    })?;
    let changed = changes(&names, base, table);
    let changed_id = |e: &Entry| {
        let id = u16::from_be_bytes([e.key[1], e.key[2]]) as usize;
        changed.get(id).is_some_and(|c| c.is_some()) && !names[id].is_empty()
    };
    let entries: Vec<Entry> = layout
        .entries
        .iter()
        .filter(|e| !changed_id(e))
        .copied()
        .collect();
    let mut placing = Placing {
        taken: kept_indexes(layout, &changed, &changed_id),
        next_index: layout.next_index,
        kept: entries.len(),
        entries,
        updates: Vec::new(),
        writes: Vec::new(),
    };
    let mut made = Vec::new();
    let mut words = Vec::new();
    let mut chains = Vec::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        if name.is_empty() {
            chains.push(ChainConfig::default());
            continue;
        }
        let (rules, policy, policy_counter) = chain_of(table, name);
        let mut cfg = chain_config(rules, bases[id], policy, policy_counter, track);
        let Some(change) = changed[id] else {
            let old = old_cfg(id).unwrap_or_default();
            cfg.fields = old.fields;
            cfg.rules = old.rules;
            cfg.count_only = old.count_only;
            cfg.checked = old.checked;
            chains.push(cfg);
            continue;
        };
        let chain_entries;
        let chain_base = match old_cfg(id) {
            Some(cfg) if layout.chain_names.get(id) == Some(name) => {
                chain_entries = entries_of_chain(&layout.entries, id as u32);
                Some(ChainBase {
                    cfg,
                    entries: &chain_entries,
                })
            }
            _ => None,
        };
        // Only a chain the running generation has can be changed in part.
        let change = match chain_base {
            Some(_) => change,
            None => Change::From(0),
        };
        made.clear();
        cfg.fields = chain_bitmaps(
            ctx,
            id as u32,
            rules,
            change,
            chain_base.as_ref(),
            &mut made,
            &mut words,
        )?;
        let own_index = placing.place(&made, &words);
        cfg.rules = own_index[OWN_RULES as usize];
        cfg.count_only = own_index[OWN_COUNT_ONLY as usize];
        cfg.checked = own_index[OWN_CHECKED as usize];
        chains.push(cfg);
    }
    let Placing {
        next_index,
        entries,
        kept,
        updates,
        writes,
        ..
    } = placing;
    // Mostly new atoms (a ruleset replaced by another): built anew, without the stale ones.
    if updates.len() > 4096 && updates.len() * 2 > entries.len() {
        return Ok(None);
    }
    let entries = in_order(entries, kept);
    Ok(Some(Program {
        layout: Layout {
            chain_names: names,
            chains: chains.iter().map(stored).collect(),
            entries,
            next_index,
            words: layout.words,
            inputs: layout.inputs,
            entries_at_full: layout.entries_at_full,
        },
        chains,
        actions,
        writes,
        words,
        updates: Some(updates),
    }))
}

/// `entries` in `Entry::order`, of which the first `kept` are: the rest sorted and merged in
/// place from the back, where sorting all of a big ruleset's entries, or copying them to
/// another vector, would cost more than the change.
fn in_order(mut entries: Vec<Entry>, kept: usize) -> Vec<Entry> {
    let mut new = entries.split_off(kept);
    new.sort_unstable_by_key(Entry::order);
    let first = entries.partition_point(|e| new.first().is_some_and(|n| e.order() <= n.order()));
    let mut at = entries.len() + new.len();
    let mut old = entries.len();
    entries.resize(at, Entry::default());
    while let Some(n) = new.last() {
        at -= 1;
        if old > first && entries[old - 1].order() > n.order() {
            old -= 1;
            entries[at] = entries[old];
        } else {
            entries[at] = new.pop().expect("looked at");
        }
    }
    entries
}

/// The chains' ids: they keep theirs (a chain gone leaves an empty name); new ones get new
/// ids, never one with entries in the trie.
fn chain_names(layout: &Layout, table: &Table) -> Vec<String> {
    let mut names = layout.chain_names.clone();
    for name in &mut names {
        if tables::chain(table, name).is_none() && !tables::is_fixed(name) {
            name.clear();
        }
    }
    for chain in tables::user_chains(table) {
        if !names.contains(&chain) {
            names.push(chain);
        }
    }
    names
}

/// Which chains change, and how (`None`: unchanged).
fn changes(names: &[String], base: &Base, table: &Table) -> Vec<Option<Change>> {
    let layout = base.layout;
    names
        .iter()
        .enumerate()
        .map(|(id, name)| {
            let (new, ..) = chain_of(table, name);
            if layout.chain_names.get(id) == Some(name) {
                base.old.change(name, new)
            } else {
                // Not in the running generation: new (its id is fresh).
                Some(Change::From(0))
            }
        })
        .collect()
}

/// The bitmap indexes the unchanged chains (and chains gone) keep.
fn kept_indexes(
    layout: &Layout,
    changed: &[Option<Change>],
    changed_id: &impl Fn(&Entry) -> bool,
) -> Vec<bool> {
    let mut taken = vec![false; layout.next_index as usize];
    for e in &layout.entries {
        if !changed_id(e) {
            taken[e.index as usize] = true;
        }
    }
    for (id, c) in changed.iter().enumerate() {
        if c.is_none()
            && let Some(cfg) = layout.chains.get(id).map(config)
        {
            for i in [cfg.rules, cfg.count_only, cfg.checked] {
                if let Some(t) = taken.get_mut(i as usize) {
                    *t = true;
                }
            }
        }
    }
    taken
}

/// Bitmap indexes handed out to a change's bitmaps: the running one's where it is free,
/// new ones otherwise; and what the data plane must write.
struct Placing {
    taken: Vec<bool>,
    next_index: u32,
    /// The running layout's entries that stay, in order, then the changed chains' entries.
    entries: Vec<Entry>,
    /// How many stay.
    kept: usize,
    updates: Vec<TrieUpdate>,
    writes: Vec<Write>,
}

impl Placing {
    /// Places one chain's bitmaps (`made`, words in `words`); returns the indexes of its own
    /// bitmaps, by `OWN_*`.
    fn place(&mut self, made: &[Made], words: &[u64]) -> [u32; 4] {
        let mut own_index = [0u32; 4];
        for m in made {
            // A chain without checked rules: its checked bitmap is its count-only one (the
            // classifier then saves a lookup).
            if m.own == OWN_CHECKED
                && words[m.at..m.at + m.len as usize]
                    == words[made[1].at..made[1].at + made[1].len as usize]
            {
                own_index[OWN_CHECKED as usize] = own_index[OWN_COUNT_ONLY as usize];
                continue;
            }
            let keep = (m.old as usize) < self.taken.len() && !self.taken[m.old as usize];
            let index = if keep {
                self.taken[m.old as usize] = true;
                m.old
            } else {
                self.next_index += 1;
                self.next_index - 1
            };
            match m.entry {
                Some((key, len)) => {
                    let entry = Entry::new(key, len, index);
                    self.entries.push(entry);
                    if !keep {
                        self.updates.push(TrieUpdate {
                            entry,
                            src: m.src,
                            running: m.running,
                        });
                    }
                    self.writes.push(Write {
                        index,
                        src: m.src,
                        from: m.from,
                        at: m.at,
                        len: m.len,
                        whole: false,
                        shift: m.shift,
                    });
                }
                None => {
                    own_index[m.own as usize] = index;
                    self.writes.push(Write {
                        index,
                        src: SRC_ZERO,
                        from: 0,
                        at: m.at,
                        len: m.len,
                        whole: true,
                        shift: None,
                    });
                }
            }
        }
        own_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_entries_are_in_order() {
        let mut rng = crate::compile::tests::Rng(7);
        let entry = |rng: &mut crate::compile::tests::Rng| {
            let key = std::array::from_fn(|_| rng.below(3) as u8);
            Entry::new(key, rng.below(64) as u32, rng.below(1000) as u32)
        };
        for kept in [0, 1, 50, 200] {
            let mut entries: Vec<Entry> = (0..kept).map(|_| entry(&mut rng)).collect();
            entries.sort_unstable_by_key(Entry::order);
            entries.extend((0..(200 - kept / 2)).map(|_| entry(&mut rng)));
            let mut want = entries.clone();
            want.sort_by_key(Entry::order);
            let got = in_order(entries, kept);
            let order = |v: &[Entry]| v.iter().map(Entry::order).collect::<Vec<_>>();
            assert_eq!(order(&got), order(&want), "{kept} kept");
        }
    }
}
