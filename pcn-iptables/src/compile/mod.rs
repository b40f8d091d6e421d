//! Model → classifier tables. Pure: no kernel, unit tested here.
//!
//! Per chain and per packet field, every value the field can take falls into one "atom" (the
//! longest prefix of the field's trie that contains it) and each atom carries the bitmap of the
//! rules that all of its values satisfy (bpf-iptables' linear bit-vector search). The data
//! plane ANDs the bitmaps of a packet's atoms and takes the lowest set bit.
//!
//! A change usually touches few rules, and bit i of every bitmap depends on rule i alone. So
//! besides the full build ([`program`] without a base), the compiler works incrementally on
//! the running generation's [`Layout`] (its trie entries, which bitmap each one points to, the
//! chains' configs): for a chain whose first changed rule is k, only the bitmap words from
//! k / 64 on are computed; the words before come from the running generation's bitmaps (the
//! data plane copies them). The atoms of the running generation stay atoms (an atom no rule
//! needs any more is harmless: its bitmap is its parent's), new ones are added, and every
//! trie entry keeps its bitmap index, so the trie itself rarely changes at all.

mod addrtype;
mod atoms;
mod chain;
mod config;
mod fields;
mod full;
mod incremental;
mod interval;
mod tables;
mod types;

pub use addrtype::AddressTypes;
pub use config::{rule_flags, summarize};
pub use types::*;

use std::hash::{Hash as _, Hasher as _};

use rustc_hash::FxHasher;

use crate::model::Table;
use config::Ctx;
use full::full;
use incremental::incremental;
use pcn_iptables_common::Shape;

/// Each chain's rules' counter slots (see `Old::Slots`).
pub fn slots_of(table: &Table) -> Vec<(String, Vec<u32>)> {
    tables::chains(table)
        .map(|(name, c)| (name, c.rules.counters().collect()))
        .collect()
}

/// Compiles `table` for a namespace with these interfaces and this local routing table.
pub fn compile(
    table: &Table,
    links: &[Link],
    address_types: &AddressTypes,
) -> Result<Compiled, CompileError> {
    let p = program(table, links, address_types, None)?;
    let mut bitmaps = vec![Vec::new(); p.layout.next_index as usize];
    for w in &p.writes {
        bitmaps[w.index as usize] = p.words_of(w).to_vec();
    }
    Ok(Compiled {
        chain_names: p.layout.chain_names.clone(),
        chains: p.chains,
        actions: p.actions.all(&[]),
        fields: p
            .layout
            .entries
            .iter()
            .map(|e| TrieEntry {
                prefix_len: e.prefix_len as u32,
                key: e.key,
                bitmap: e.index,
            })
            .collect(),
        bitmaps,
    })
}

/// A hash of the inputs besides the rules that bitmaps depend on.
fn inputs(links: &[Link], address_types: &AddressTypes) -> u64 {
    let mut h = FxHasher::default();
    for l in links {
        (l.ifindex, &l.name).hash(&mut h);
    }
    address_types.hash(&mut h);
    h.finish()
}

/// The longest chain of `table`.
fn longest(table: &Table) -> usize {
    tables::chains(table)
        .map(|(_, c)| c.rules.len())
        .max()
        .unwrap_or(0)
}

/// The bitmaps' shape a full build gives `table`: room for its longest chain to grow by an
/// eighth and 16 rules, so that a chain just under a power of two of words does not need
/// another full build a few rules later. The classifier reads only the words that hold
/// rules (their summary bits), so the room costs memory, never packet time.
fn roomy(longest: usize) -> Shape {
    Shape::for_rules(longest + longest / 8 + 16)
}

/// Compiles `table` into a generation: on `base` (the running one) when it allows, else in
/// full.
pub fn program(
    table: &Table,
    links: &[Link],
    address_types: &AddressTypes,
    base: Option<&Base>,
) -> Result<Program, CompileError> {
    let inputs = inputs(links, address_types);
    let ctx = Ctx {
        links,
        address_types,
    };
    let longest = longest(table);
    let shape = Shape::for_rules(longest);
    if let Some(base) = base {
        let layout = base.layout;
        // Stale atoms only grow the trie; past this, a full build sweeps them away.
        let swollen = layout.entries.len() > 2 * layout.entries_at_full as usize + 4096;
        // Bitmaps too short for a chain, or four times longer than any needs (a ruleset
        // replaced by a smaller one): built anew.
        let fits = shape.words <= layout.words && layout.words / 4 < shape.words;
        if layout.inputs == inputs
            && !swollen
            && fits
            && let Some(p) = incremental(&ctx, table, base)?
        {
            return Ok(Program {
                layout: Layout { inputs, ..p.layout },
                ..p
            });
        }
    }
    let mut p = full(&ctx, table, roomy(longest))?;
    p.layout.inputs = inputs;
    Ok(p)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod incremental_tests;
