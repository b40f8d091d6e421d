//! Model → classifier tables. Pure: no kernel, unit tested here.
//!
//! Per chain and per packet field, every value the field can take falls into one "atom" (the
//! longest prefix of the field's trie that contains it) and each atom carries the bitmap of the
//! rules that all of its values satisfy (bpf-iptables' linear bit-vector search). The data
//! plane ANDs the bitmaps of a packet's atoms and takes the lowest set bit.

mod addrtype;
mod interval;

use pcn_iptables_common::{
    Action, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, ChainConfig, FIELD_KEY_HEADER_BITS, FieldKey,
    MAX_CHAINS, MAX_RULES_PER_CHAIN, field, field_key, verdict,
};

use std::collections::HashMap;

use crate::ruleset::model::{Match, Negatable, Policy, Rule, Table, Target};
use interval::{Interval, Values, prefixes};

/// A rule bitmap of one chain, `ChainConfig::nwords` long.
pub type Words = Vec<u64>;

/// An entry of the field trie: prefix length in bits (key header included), key, and the
/// index of its bitmap in `Compiled::bitmaps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrieEntry {
    pub prefix_len: u32,
    pub key: FieldKey,
    pub bitmap: u32,
}

/// Everything one generation's maps hold.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    /// Chain names by chain id.
    pub chain_names: Vec<String>,
    pub chains: Vec<ChainConfig>,
    pub actions: Vec<Action>,
    /// Every chain's rule bitmap and field entries.
    pub fields: Vec<TrieEntry>,
    /// The distinct bitmaps the entries point to: the trie stays small (its values are
    /// indexes), and equal bitmaps are stored once.
    pub bitmaps: Vec<Words>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    TooManyRules { chain: String, rules: usize },
    TooManyChains(usize),
    UnknownChain(String),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::TooManyRules { chain, rules } => write!(
                f,
                "chain {chain} has {rules} rules; pcn-iptables supports at most {MAX_RULES_PER_CHAIN} per chain"
            ),
            CompileError::TooManyChains(n) => {
                write!(f, "{n} chains; pcn-iptables supports at most {MAX_CHAINS}")
            }
            CompileError::UnknownChain(c) => write!(f, "no chain named {c}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// An interface of the namespace, as the compiler needs it: the data plane only knows the
/// ifindex, rules name interfaces.
#[derive(Clone, Debug)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
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

pub fn compile(table: &Table, links: &[Link]) -> Result<Compiled, CompileError> {
    let names = chain_ids(table);
    if names.len() > MAX_CHAINS as usize {
        return Err(CompileError::TooManyChains(names.len()));
    }
    let id_of = |name: &str| -> Result<u32, CompileError> {
        names
            .iter()
            .position(|n| n == name)
            .map(|i| i as u32)
            .ok_or_else(|| CompileError::UnknownChain(name.to_string()))
    };
    let mut out = Compiled {
        chain_names: names.clone(),
        ..Default::default()
    };
    let mut bitmap_index: HashMap<Words, u32> = HashMap::new();
    for (chain, name) in names.iter().enumerate() {
        let chain = chain as u32;
        let (rules, policy, policy_counter) = match table.chain(name) {
            Some(c) => (c.rules.as_slice(), c.policy, c.policy_counter),
            None => (&[][..], Some(Policy::Accept), chain),
        };
        if rules.len() > MAX_RULES_PER_CHAIN {
            return Err(CompileError::TooManyRules {
                chain: name.clone(),
                rules: rules.len(),
            });
        }
        let nwords = rules.len().div_ceil(64);
        let mut cfg = ChainConfig {
            nwords: nwords as u32,
            fields: 0,
            action_base: out.actions.len() as u32,
            policy: match policy {
                Some(Policy::Accept) => verdict::ACCEPT,
                Some(Policy::Drop) => verdict::DROP,
                None => verdict::RETURN,
            },
            policy_counter,
            limited: 0,
            rules: 0,
            count_only: 0,
        };
        for rule in rules {
            out.actions.push(action(rule, &id_of)?);
        }
        let mut intern = |bitmap: Words| -> u32 {
            let bitmaps = &mut out.bitmaps;
            *bitmap_index.entry(bitmap).or_insert_with_key(|b| {
                bitmaps.push(b.clone());
                bitmaps.len() as u32 - 1
            })
        };
        cfg.rules = intern(bitmap(nwords, rules.iter().map(|_| true)));
        // The scan counts these as it goes instead of stopping at them.
        cfg.count_only = intern(bitmap(nwords, rules.iter().map(|r| r.target.is_none())));
        cfg.limited = intern(bitmap(nwords, rules.iter().map(|_| false)));
        let fields = &mut out.fields;
        let mut push = |id: u8, len: u32, value: [u8; 4], bitmap: Words| {
            fields.push(TrieEntry {
                prefix_len: FIELD_KEY_HEADER_BITS + len,
                key: field_key(id, chain, value),
                bitmap: intern(bitmap),
            })
        };

        let addrs = [
            (
                field::SRC,
                rules
                    .iter()
                    .map(|r| r.src.as_ref().map(addr_interval))
                    .collect(),
            ),
            (
                field::DST,
                rules
                    .iter()
                    .map(|r| r.dst.as_ref().map(addr_interval))
                    .collect(),
            ),
        ];
        for (id, constraints) in addrs {
            let constraints: Vec<_> = constraints;
            for (len, v, bitmap) in trie_field(nwords, &constraints, 32).into_iter().flatten() {
                cfg.fields |= field::bit(id);
                push(id, len, v.to_be_bytes(), bitmap);
            }
        }
        let proto: Vec<_> = rules
            .iter()
            .map(|r| {
                r.proto.as_ref().map(|p| Negatable {
                    value: Interval::single(p.value as u32).into(),
                    negated: p.negated,
                })
            })
            .collect();
        for (len, v, bitmap) in trie_field(nwords, &proto, 8).into_iter().flatten() {
            cfg.fields |= field::bit(field::PROTO);
            push(field::PROTO, len, [v as u8, 0, 0, 0], bitmap);
        }
        let states: Vec<_> = rules.iter().map(ctstates).collect();
        for (len, v, bitmap) in trie_field(nwords, &states, 8).into_iter().flatten() {
            cfg.fields |= field::bit(field::CTSTATE);
            push(field::CTSTATE, len, [v as u8, 0, 0, 0], bitmap);
        }
        for (id, source) in [(field::SPORT, true), (field::DPORT, false)] {
            let constraints: Vec<_> = rules.iter().map(|r| port_interval(r, source)).collect();
            let Some(with_ports) = trie_field(nwords, &constraints, 16) else {
                continue;
            };
            cfg.fields |= field::bit(id);
            // Packets without ports (other protocols, fragments) look up `[0]`: only rules
            // without a port constraint match them.
            push(
                id,
                8,
                [0; 4],
                bitmap(nwords, constraints.iter().map(Option::is_none)),
            );
            for (len, v, bitmap) in with_ports {
                let p = (v as u16).to_be_bytes();
                push(id, 8 + len, [1, p[0], p[1], 0], bitmap);
            }
        }
        let ifaces = [
            (
                field::IN_IFACE,
                rules.iter().map(|r| &r.in_iface).collect::<Vec<_>>(),
            ),
            (
                field::OUT_IFACE,
                rules.iter().map(|r| &r.out_iface).collect(),
            ),
        ];
        for (id, constraints) in ifaces {
            if constraints.iter().all(|c| c.is_none()) {
                continue;
            }
            cfg.fields |= field::bit(id);
            // The default entry stands for interfaces unknown at compile time, named "" for
            // matching, so only `+` and negated names match them.
            let unknown = std::iter::once((None, ""));
            for (ifindex, name) in
                unknown.chain(links.iter().map(|l| (Some(l.ifindex), l.name.as_str())))
            {
                let bits = constraints.iter().map(|c| match c {
                    None => true,
                    Some(c) => c.value.matches(name) != c.negated,
                });
                match ifindex {
                    Some(i) => push(id, 32, i.to_be_bytes(), bitmap(nwords, bits)),
                    None => push(id, 0, [0; 4], bitmap(nwords, bits)),
                }
            }
        }
        out.chains.push(cfg);
    }
    Ok(out)
}

fn action(
    rule: &Rule,
    id_of: &dyn Fn(&str) -> Result<u32, CompileError>,
) -> Result<Action, CompileError> {
    let (verdict, chain) = match &rule.target {
        None => (verdict::CONTINUE, 0),
        Some(Target::Accept) => (verdict::ACCEPT, 0),
        Some(Target::Drop) => (verdict::DROP, 0),
        Some(Target::Return) => (verdict::RETURN, 0),
        Some(Target::Jump(c)) => (verdict::JUMP, id_of(c)?),
        Some(Target::Goto(c)) => (verdict::GOTO, id_of(c)?),
    };
    Ok(Action {
        verdict,
        chain,
        counter: rule.counter,
        ..Default::default()
    })
}

fn addr_interval(net: &Negatable<ipnetwork::Ipv4Network>) -> Negatable<Values> {
    let first = u32::from(net.value.network());
    let last = u32::from(net.value.broadcast());
    Negatable {
        value: Interval { first, last }.into(),
        negated: net.negated,
    }
}

/// Every constraint a rule's matches put on one field, as one: several matches on the same
/// field must all hold, so their sets (complemented where negated) are intersected.
fn all_of(
    mut each: impl Iterator<Item = Negatable<Values>>,
    last: u32,
) -> Option<Negatable<Values>> {
    let first = each.next()?;
    let mut rest = each.peekable();
    if rest.peek().is_none() {
        return Some(first);
    }
    let set = |c: Negatable<Values>| {
        if c.negated {
            c.value.complement(last)
        } else {
            c.value
        }
    };
    let value = rest.fold(set(first), |acc, c| acc.intersect(&set(c)));
    Some(Negatable {
        value,
        negated: false,
    })
}

/// The rule's source or destination port constraint, from its tcp/udp matches.
fn port_interval(rule: &Rule, source: bool) -> Option<Negatable<Values>> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Ports { sport, dport, .. } => {
            let p = if source { sport } else { dport };
            p.as_ref().map(|p| Negatable {
                value: Interval {
                    first: p.value.first as u32,
                    last: p.value.last as u32,
                }
                .into(),
                negated: p.negated,
            })
        }
        Match::Conntrack { .. } => None,
    });
    all_of(each, u16::MAX as u32)
}

/// The rule's connection states, as a set of conntrack::ctstate values.
fn ctstates(rule: &Rule) -> Option<Negatable<Values>> {
    let each = rule.matches.iter().filter_map(|m| match m {
        Match::Conntrack { states, .. } => Some(Negatable {
            value: Values::new(
                (0..8u32)
                    .filter(|bit| states.value & (1 << bit) != 0)
                    .map(Interval::single)
                    .collect(),
            ),
            negated: states.negated,
        }),
        Match::Ports { .. } => None,
    });
    all_of(each, u8::MAX as u32)
}

fn bitmap(nwords: usize, bits: impl Iterator<Item = bool>) -> Words {
    let mut words = vec![0u64; nwords];
    for (i, set) in bits.enumerate() {
        if set {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    words
}

/// Trie entries `(prefix length, value, bitmap)` of one field of one chain, in a `width`-bit
/// value space; `None` when no rule of the chain looks at the field.
///
/// The atoms are the prefixes of every rule's interval plus the whole space. An atom's bitmap
/// has rule i set when the atom lies inside rule i's interval (flipped by `!`): since every
/// rule's interval is a union of atoms, the longest atom containing a value lies inside the
/// interval exactly when the value does.
///
/// An atom lies inside an interval exactly when it or one of its ancestors is one of the
/// interval's prefixes, so walking the atoms as a prefix tree, each bitmap is its parent's
/// with the rules decomposed right there flipped: linear in atoms and rules, not their product.
fn trie_field(
    nwords: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
) -> Option<Vec<(u32, u32, Words)>> {
    if constraints.iter().all(Option::is_none) {
        return None;
    }
    // (first value, prefix length, rule): the rule's interval has this prefix.
    let mut decomposed: Vec<(u32, u32, usize)> = constraints
        .iter()
        .enumerate()
        .filter_map(|(rule, c)| c.as_ref().map(|c| (rule, c)))
        .flat_map(|(rule, c)| {
            c.value.intervals().iter().flat_map(move |i| {
                prefixes(*i, width)
                    .into_iter()
                    .map(move |(len, v)| (v, len, rule))
            })
        })
        .collect();
    decomposed.push((0, 0, usize::MAX));
    // Parents before children: by first value, then shorter prefixes first.
    decomposed.sort_unstable();
    // The root: rules without a constraint, and negated ones (nothing is inside them yet).
    let root = bitmap(
        nwords,
        constraints
            .iter()
            .map(|c| c.as_ref().is_none_or(|c| c.negated)),
    );
    let mut entries: Vec<(u32, u32, Words)> = Vec::new();
    // Indexes into `entries` of the atoms containing the current one.
    let mut ancestors: Vec<usize> = Vec::new();
    for group in decomposed.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (value, len, _) = group[0];
        let atom = Interval::of_prefix(value, len, width);
        while let Some(&top) = ancestors.last() {
            let (tl, tv, _) = &entries[top];
            if atom.within(Interval::of_prefix(*tv, *tl, width)) {
                break;
            }
            ancestors.pop();
        }
        let mut words = match ancestors.last() {
            Some(&parent) => entries[parent].2.clone(),
            None => root.clone(),
        };
        for &(_, _, rule) in group.iter().filter(|d| d.2 != usize::MAX) {
            let bit = 1u64 << (rule % 64);
            if constraints[rule].as_ref().is_some_and(|c| c.negated) {
                words[rule / 64] &= !bit;
            } else {
                words[rule / 64] |= bit;
            }
        }
        ancestors.push(entries.len());
        entries.push((len, value, words));
    }
    Some(entries)
}

#[cfg(test)]
mod tests;
