//! Model → classifier tables. Pure: no kernel, unit tested here.
//!
//! Per chain and per packet field, every value the field can take falls into one "atom" (the
//! longest prefix of the field's trie that contains it) and each atom carries the bitmap of the
//! rules that all of its values satisfy (bpf-iptables' linear bit-vector search). The data
//! plane ANDs the bitmaps of a packet's atoms and takes the lowest set bit.

mod addrtype;
mod fields;

pub use addrtype::AddressTypes;
mod interval;

use pcn_iptables_common::{
    Action, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, ChainConfig, FIELD_KEY_HEADER_BITS, FieldKey,
    LOG_PREFIX_LEN, MAX_CHAINS, MAX_RULES_PER_CHAIN, PER_PACKET_FIELDS, chain_flag, field,
    field_key6, verdict,
};

use std::collections::HashMap;

use crate::ruleset::model::{Limit, Match, Negatable, Policy, Rule, Table, Target};
use fields::*;
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
    TooManyRules {
        chain: String,
        rules: usize,
    },
    TooManyChains(usize),
    UnknownChain(String),
    /// A rule the data plane cannot evaluate.
    Unsupported(String),
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
            CompileError::Unsupported(what) => write!(f, "{what} is not supported by pcn-iptables"),
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

/// Compiles `table` for a namespace with these interfaces and this local routing table.
pub fn compile(
    table: &Table,
    links: &[Link],
    address_types: &AddressTypes,
) -> Result<Compiled, CompileError> {
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
            flags: 0,
            _pad: 0,
            epoch: 0,
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
        // LOG, like no target, lets the packet go on to the next rule.
        let count_only = rules
            .iter()
            .map(|r| matches!(r.target, None | Some(Target::Log(_))));
        cfg.count_only = intern(bitmap(nwords, count_only));
        let limited = rules
            .iter()
            .map(|r| r.matches.iter().any(|m| matches!(m, Match::Limit(_))));
        cfg.limited = intern(bitmap(nwords, limited));
        let fields = &mut out.fields;
        let mut push = |id: u8, len: u32, value: [u8; 6], bitmap: Words| {
            fields.push(TrieEntry {
                prefix_len: FIELD_KEY_HEADER_BITS + len,
                key: field_key6(id, chain, value),
                bitmap: intern(bitmap),
            })
        };

        // Value fields: id, width in bits, whether keyed under `[1]` with `[0]` for packets
        // without the header, and each rule's constraint.
        let value_fields: [(u8, u32, bool, Vec<Constraint>); 15] = [
            (field::SRC, 32, false, each(rules, |r| address(r, true))?),
            (field::DST, 32, false, each(rules, |r| address(r, false))?),
            (field::PROTO, 8, false, each(rules, proto)?),
            (field::CTSTATE, 8, false, each(rules, ctstates)?),
            (field::SPORT, 16, true, each(rules, |r| ports(r, true))?),
            (field::DPORT, 16, true, each(rules, |r| ports(r, false))?),
            (field::ANY_PORT_SRC, 16, true, each(rules, any_port)?),
            (field::ANY_PORT_DST, 16, true, each(rules, any_port)?),
            (field::ICMP, 16, true, each(rules, icmp)?),
            (field::TCP_FLAGS, 8, true, each(rules, tcp_flags)?),
            (field::LENGTH, 16, false, each(rules, length)?),
            (field::TTL, 8, false, each(rules, ttl)?),
            (field::FRAGMENT, 8, false, each(rules, fragment)?),
            (
                field::SRC_TYPE,
                32,
                false,
                each(rules, |r| addrtype(r, true, address_types))?,
            ),
            (
                field::DST_TYPE,
                32,
                false,
                each(rules, |r| addrtype(r, false, address_types))?,
            ),
        ];
        for (id, width, keyed, constraints) in value_fields {
            let Some(entries) = trie_field(nwords, &constraints, width) else {
                continue;
            };
            cfg.fields |= field::bit(id);
            if keyed {
                // Packets without this header look up `[0]`: only rules without a constraint
                // on the field match them.
                let unconstrained = constraints.iter().map(Option::is_none);
                push(id, 8, [0; 6], bitmap(nwords, unconstrained));
            }
            let lead: &[u8] = if keyed { &[1] } else { &[] };
            for (len, v, bitmap) in entries {
                let bytes = &v.to_be_bytes()[4 - width as usize / 8..];
                let mut value = [0u8; 6];
                for (slot, b) in value.iter_mut().zip(lead.iter().chain(bytes)) {
                    *slot = *b;
                }
                push(id, lead.len() as u32 * 8 + len, value, bitmap);
            }
        }
        let macs: Vec<_> = rules.iter().map(mac).collect();
        if macs.iter().any(|m| !m.is_empty()) {
            cfg.fields |= field::bit(field::MAC_SRC);
            // Every `--mac-source` of a rule must hold.
            let holds = |addr: [u8; 6]| {
                macs.iter()
                    .map(move |m| m.iter().all(|m| (m.value == addr) != m.negated))
            };
            // The default entry: addresses no rule names.
            let other = bitmap(nwords, macs.iter().map(|m| m.iter().all(|m| m.negated)));
            push(field::MAC_SRC, 0, [0; 6], other);
            let mut named: Vec<[u8; 6]> = macs.iter().flatten().map(|m| m.value).collect();
            named.sort_unstable();
            named.dedup();
            named.retain(|a| *a != [0; 6]);
            for addr in named {
                push(field::MAC_SRC, 48, addr, bitmap(nwords, holds(addr)));
            }
            // All zeros is what the data plane reads where there is no Ethernet header
            // (OUTPUT, lo): xt_mac matches nothing there, `!` or not.
            let none = macs.iter().map(Vec::is_empty);
            push(field::MAC_SRC, 48, [0; 6], bitmap(nwords, none));
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
                let i = ifindex.unwrap_or_default().to_be_bytes();
                let len = if ifindex.is_some() { 32 } else { 0 };
                push(
                    id,
                    len,
                    [i[0], i[1], i[2], i[3], 0, 0],
                    bitmap(nwords, bits),
                );
            }
        }
        if cacheable(cfg.fields, rules) {
            cfg.flags |= chain_flag::CACHEABLE;
        }
        out.chains.push(cfg);
    }
    Ok(out)
}

/// Whether every packet of a flow meets the same outcome in this chain: no field that varies
/// within a flow, and no rule whose effect is per packet (a log line, a token bucket).
fn cacheable(fields: u32, rules: &[Rule]) -> bool {
    let per_packet = |r: &Rule| {
        matches!(r.target, Some(Target::Log(_)))
            || r.matches.iter().any(|m| matches!(m, Match::Limit(_)))
    };
    fields & PER_PACKET_FIELDS == 0 && !rules.iter().any(per_packet)
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
        Some(Target::Reject(with)) => {
            action.reject_with = *with;
            (verdict::REJECT, 0)
        }
        Some(Target::Log(log)) => {
            action.log_level = log.level;
            action.log_flags = log.flags;
            let prefix = log.prefix.as_bytes();
            let n = prefix.len().min(LOG_PREFIX_LEN - 1);
            action.log_prefix[..n].copy_from_slice(&prefix[..n]);
            (verdict::LOG, 0)
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
