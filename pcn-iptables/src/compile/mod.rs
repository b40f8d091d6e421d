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
mod fields;
mod full;
mod incremental;
mod interval;
mod types;

pub use addrtype::AddressTypes;
pub use types::*;

use pcn_iptables_common::{
    Action, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, ChainConfig, FIELD_KEY_HEADER_BITS, FieldKey,
    MAX_CHAINS, MAX_RULES_PER_CHAIN, chain_flag, classifier, field, field_key6, verdict,
};

use std::hash::{Hash as _, Hasher as _};

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use crate::model::{Limit, Negatable, Policy, Rule, Table, Target};
use atoms::*;
use chain::*;
use fields::*;
use full::full;
use incremental::incremental;
use interval::{Interval, Values, prefixes};

/// Each chain's rules' counter slots (see `Old::Slots`).
pub fn slots_of(table: &Table) -> Vec<(String, Vec<u32>)> {
    table
        .chains
        .iter()
        .map(|c| (c.name.clone(), c.rules.iter().map(|r| r.counter).collect()))
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
        actions: p.actions,
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
    if let Some(base) = base {
        let layout = base.layout;
        // Stale atoms only grow the trie; past this, a full build sweeps them away.
        let swollen = layout.entries.len() > 2 * layout.entries_at_full as usize + 4096;
        if layout.inputs == inputs
            && !swollen
            && let Some(p) = incremental(&ctx, table, base)?
        {
            return Ok(Program {
                layout: Layout { inputs, ..p.layout },
                ..p
            });
        }
    }
    let mut p = full(&ctx, table)?;
    p.layout.inputs = inputs;
    Ok(p)
}

struct Ctx<'a> {
    links: &'a [Link],
    address_types: &'a AddressTypes,
}

/// Chain ids: the base chains have fixed ids, user chains follow in table order.
fn chain_ids(table: &Table) -> Vec<String> {
    let mut names: Vec<String> = ["INPUT", "FORWARD", "OUTPUT"].map(String::from).to_vec();
    debug_assert_eq!(
        (CHAIN_INPUT, CHAIN_FORWARD, CHAIN_OUTPUT),
        (0, 1, 2),
        "base chain ids follow BASE_CHAINS"
    );
    for chain in &table.chains {
        if !names.contains(&chain.name) {
            names.push(chain.name.clone());
        }
    }
    names
}

/// A chain's rules, policy and policy counter (a chain the table lacks: none, ACCEPT).
fn chain_of<'a>(table: &'a Table, name: &str, id: u32) -> (&'a [Rule], Option<Policy>, u32) {
    match table.chain(name) {
        Some(c) => (c.rules.as_slice(), c.policy, c.policy_counter),
        None => (&[][..], Some(Policy::Accept), id),
    }
}

fn policy_verdict(policy: Option<Policy>) -> u32 {
    match policy {
        Some(Policy::Accept) => verdict::ACCEPT,
        Some(Policy::Drop) => verdict::DROP,
        None => verdict::RETURN,
    }
}

/// The actions of every chain, in chain id order (`names`, "" for none), and each chain's
/// first action.
fn actions(table: &Table, names: &[String]) -> Result<(Vec<Action>, Vec<u32>), CompileError> {
    let ids: FxHashMap<&str, u32> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let id_of = |name: &str| -> Result<u32, CompileError> {
        ids.get(name)
            .copied()
            .ok_or_else(|| CompileError::UnknownChain(name.to_string()))
    };
    let mut out = Vec::new();
    let mut bases = Vec::with_capacity(names.len());
    for name in names {
        bases.push(out.len() as u32);
        if name.is_empty() {
            continue;
        }
        let rules = table.chain(name).map_or(&[][..], |c| c.rules.as_slice());
        if rules.len() > MAX_RULES_PER_CHAIN {
            return Err(CompileError::TooManyRules {
                chain: name.clone(),
                rules: rules.len(),
            });
        }
        for rule in rules {
            out.push(action(rule, &id_of)?);
        }
    }
    Ok((out, bases))
}

/// A chain's config before its bitmaps: size, actions, policy and flags.
fn chain_config(
    rules: &[Rule],
    action_base: u32,
    policy: Option<Policy>,
    policy_counter: u32,
    track: bool,
) -> ChainConfig {
    ChainConfig {
        nwords: rules.len().div_ceil(64) as u32,
        action_base,
        policy: policy_verdict(policy),
        policy_counter,
        flags: flags(rules, track),
        ..Default::default()
    }
}

/// `chain_flag`s: CACHEABLE when every packet of a flow meets the same outcome in this chain:
/// no rule looks at a field that can differ between the packets of one flow (length, TTL,
/// TCP flags, the MAC address a frame came from) or has an effect per packet (a log line, a
/// token bucket). From the rules alone, so that the full and incremental builds agree.
/// TRACK when `track` (see `tracks`).
fn flags(rules: &[Rule], track: bool) -> u32 {
    let per_packet = |r: &Rule| {
        matches!(r.target, Some(Target::Log(_))) || r.matches.iter().any(fields::per_packet)
    };
    let cacheable = if rules.iter().any(per_packet) {
        0
    } else {
        chain_flag::CACHEABLE
    };
    cacheable | if track { chain_flag::TRACK } else { 0 }
}

/// Whether connections are tracked under `table`: some rule looks at their state.
fn tracks(table: &Table) -> bool {
    table
        .chains
        .iter()
        .any(|c| c.rules.iter().any(|r| r.matches.iter().any(fields::tracks)))
}

fn action(
    rule: &Rule,
    id_of: &dyn Fn(&str) -> Result<u32, CompileError>,
) -> Result<Action, CompileError> {
    let mut action = Action {
        counter: rule.counter,
        ..Default::default()
    };
    (action.verdict, action.chain) = match &rule.target {
        None => (verdict::CONTINUE, 0),
        Some(Target::Accept) => (verdict::ACCEPT, 0),
        Some(Target::Drop) => (verdict::DROP, 0),
        Some(Target::Return) => (verdict::RETURN, 0),
        Some(Target::Jump(c)) => (verdict::JUMP, id_of(c)?),
        Some(Target::Goto(c)) => (verdict::GOTO, id_of(c)?),
        Some(t @ (Target::Reject(_) | Target::Log(_))) => {
            let ext = crate::ext::of_target(t).expect("a target extension");
            (ext.action(t, &mut action), 0)
        }
    };
    if let Some(l) = limit(rule)? {
        // xt_limit's avg counts 1/10000 s; the bucket starts full.
        action.limit_interval_ns = l.avg as u64 * (1_000_000_000 / Limit::SCALE as u64);
        action.limit_burst = l.burst;
        action.limit_credit_ns = action.limit_interval_ns * l.burst as u64;
    }
    Ok(action)
}

/// Trie entries `(prefix length, value, bitmap)` of one field of one chain, in a `width`-bit
/// value space; `None` when no rule of the chain looks at the field (see `walk`).
#[cfg(test)]
fn trie_field(
    nwords: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
) -> Option<Vec<(u32, u32, Words)>> {
    if constraints.iter().all(Option::is_none) {
        return None;
    }
    let mut words = Vec::new();
    let atoms = walk(&mut words, nwords, constraints, width, &[], SRC_ZERO);
    Some(
        atoms
            .into_iter()
            .map(|a| (a.len, a.value, words[a.at..a.at + nwords].to_vec()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod incremental_tests;
