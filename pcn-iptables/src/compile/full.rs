//! The full build: every chain anew, new bitmap indexes and trie entries.

use pcn_iptables_common::{ChainConfig, MAX_CHAINS, Shape};
use rustc_hash::FxHashMap;

use super::chain::{OWN_COUNT_ONLY, OWN_RULES, chain_bitmaps};
use super::config::{Ctx, actions, chain_config, chain_ids, chain_of, tracks};
use super::types::{Change, CompileError, Entry, Layout, Program, SRC_ZERO, Write, stored};
use crate::model::Table;

/// The full build: every chain, every bitmap, equal bitmaps stored once.
pub(super) fn full(ctx: &Ctx, table: &Table, shape: Shape) -> Result<Program, CompileError> {
    let track = tracks(table);
    let names = chain_ids(table);
    if names.len() > MAX_CHAINS as usize {
        return Err(CompileError::TooManyChains(names.len()));
    }
    let (actions, bases) = actions(table, &names, |_, _| None)?;
    let mut made = Vec::new();
    let mut words = Vec::new();
    let mut chains = Vec::with_capacity(names.len());
    let mut spans = Vec::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        let (rules, policy, policy_counter) = chain_of(table, name);
        let first = made.len();
        let fields = chain_bitmaps(
            ctx,
            id as u32,
            rules,
            Change::From(0),
            None,
            &mut made,
            &mut words,
        )?;
        spans.push(first..made.len());
        chains.push(ChainConfig {
            fields,
            ..chain_config(rules, bases[id], policy, policy_counter, track)
        });
    }
    // Equal bitmaps share an index, in the order they were made.
    let mut index: FxHashMap<&[u64], u32> =
        FxHashMap::with_capacity_and_hasher(made.len(), Default::default());
    let mut writes = Vec::new();
    let mut entries = Vec::new();
    for (cfg, span) in chains.iter_mut().zip(spans) {
        for m in &made[span] {
            let w = &words[m.at..m.at + m.len as usize];
            let next = index.len() as u32;
            let i = *index.entry(w).or_insert_with(|| {
                writes.push(Write {
                    index: next,
                    src: SRC_ZERO,
                    from: 0,
                    at: m.at,
                    len: m.len,
                    whole: true,
                    shift: None,
                });
                next
            });
            match (m.entry, m.own) {
                (Some((key, len)), _) => entries.push(Entry::new(key, len, i)),
                (None, OWN_RULES) => cfg.rules = i,
                (None, OWN_COUNT_ONLY) => cfg.count_only = i,
                (None, _) => cfg.checked = i,
            }
        }
    }
    let next_index = index.len() as u32;
    drop(index);
    entries.sort_unstable_by_key(Entry::order);
    Ok(Program {
        layout: Layout {
            chain_names: names,
            chains: chains.iter().map(stored).collect(),
            entries_at_full: entries.len() as u32,
            entries,
            next_index,
            words: shape.words,
            inputs: 0,
        },
        chains,
        actions,
        writes,
        words,
        updates: None,
    })
}
