//! Model → classifier tables. Pure: no kernel, unit tested here.
//!
//! Per chain and per packet field, every value the field can take falls into one "atom" (the
//! longest prefix of the field's trie that contains it) and each atom carries the bitmap of the
//! rules that all of its values satisfy (bpf-iptables' linear bit-vector search). The data
//! plane ANDs the bitmaps of a packet's atoms and takes the lowest set bit.

mod field;

use pcn_iptables_common::{
    Action, AddrKey, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_KEY_BITS, CHAIN_OUTPUT, ChainConfig,
    IfaceKey, MAX_CHAINS, MAX_RULES_PER_CHAIN, PortKey, ProtoKey, field as fbit, verdict,
};

use crate::ruleset::model::{Match, Negatable, Policy, Rule, Table, Target};
use field::{Interval, prefixes};

/// A rule bitmap of one chain, `ChainConfig::nwords` long.
pub type Words = Vec<u64>;

/// An LPM trie entry: prefix length in bits (chain bits included), key data, bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrieEntry<K> {
    pub prefix_len: u32,
    pub key: K,
    pub bitmap: Words,
}

/// Everything one generation's maps hold.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    /// Chain names by chain id.
    pub chain_names: Vec<String>,
    pub chains: Vec<ChainConfig>,
    /// Per chain: the bitmap of the rules it has.
    pub rules: Vec<Words>,
    pub actions: Vec<Action>,
    pub src: Vec<TrieEntry<AddrKey>>,
    pub dst: Vec<TrieEntry<AddrKey>>,
    pub proto: Vec<TrieEntry<ProtoKey>>,
    pub sport: Vec<TrieEntry<PortKey>>,
    pub dport: Vec<TrieEntry<PortKey>>,
    pub in_iface: Vec<(IfaceKey, Words)>,
    pub out_iface: Vec<(IfaceKey, Words)>,
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
    for (id, name) in names.iter().enumerate() {
        let id = id as u32;
        let (rules, policy, policy_counter) = match table.chain(name) {
            Some(c) => (c.rules.as_slice(), c.policy, c.policy_counter),
            None => (&[][..], Some(Policy::Accept), id),
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
            _pad: 0,
        };
        for rule in rules {
            out.actions.push(action(rule, &id_of)?);
        }
        out.rules.push(bitmap(nwords, rules.iter().map(|_| true)));
        let chain_key = (id as u16).to_be_bytes();

        let src: Vec<_> = rules
            .iter()
            .map(|r| r.src.as_ref().map(addr_interval))
            .collect();
        if let Some(entries) = trie_field(nwords, &src, 32) {
            cfg.fields |= fbit::SRC;
            out.src
                .extend(entries.into_iter().map(|(len, v, bitmap)| TrieEntry {
                    prefix_len: CHAIN_KEY_BITS + len,
                    key: addr_key(chain_key, v),
                    bitmap,
                }));
        }
        let dst: Vec<_> = rules
            .iter()
            .map(|r| r.dst.as_ref().map(addr_interval))
            .collect();
        if let Some(entries) = trie_field(nwords, &dst, 32) {
            cfg.fields |= fbit::DST;
            out.dst
                .extend(entries.into_iter().map(|(len, v, bitmap)| TrieEntry {
                    prefix_len: CHAIN_KEY_BITS + len,
                    key: addr_key(chain_key, v),
                    bitmap,
                }));
        }
        let proto: Vec<_> = rules
            .iter()
            .map(|r| {
                r.proto.as_ref().map(|p| Negatable {
                    value: Interval::single(p.value as u32),
                    negated: p.negated,
                })
            })
            .collect();
        if let Some(entries) = trie_field(nwords, &proto, 8) {
            cfg.fields |= fbit::PROTO;
            out.proto
                .extend(entries.into_iter().map(|(len, v, bitmap)| TrieEntry {
                    prefix_len: CHAIN_KEY_BITS + len,
                    key: [chain_key[0], chain_key[1], v as u8],
                    bitmap,
                }));
        }
        let sport: Vec<_> = rules.iter().map(|r| port_interval(r, true)).collect();
        if let Some(entries) = port_field(nwords, &sport, chain_key) {
            cfg.fields |= fbit::SPORT;
            out.sport.extend(entries);
        }
        let dport: Vec<_> = rules.iter().map(|r| port_interval(r, false)).collect();
        if let Some(entries) = port_field(nwords, &dport, chain_key) {
            cfg.fields |= fbit::DPORT;
            out.dport.extend(entries);
        }
        if rules.iter().any(|r| r.in_iface.is_some()) {
            cfg.fields |= fbit::IN_IFACE;
            out.in_iface.extend(iface_field(
                id,
                nwords,
                links,
                rules.iter().map(|r| &r.in_iface),
            ));
        }
        if rules.iter().any(|r| r.out_iface.is_some()) {
            cfg.fields |= fbit::OUT_IFACE;
            out.out_iface.extend(iface_field(
                id,
                nwords,
                links,
                rules.iter().map(|r| &r.out_iface),
            ));
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
        _pad: 0,
    })
}

fn addr_key(chain: [u8; 2], v: u32) -> AddrKey {
    let a = v.to_be_bytes();
    [chain[0], chain[1], a[0], a[1], a[2], a[3]]
}

fn addr_interval(net: &Negatable<ipnetwork::Ipv4Network>) -> Negatable<Interval> {
    let first = u32::from(net.value.network());
    let last = u32::from(net.value.broadcast());
    Negatable {
        value: Interval { first, last },
        negated: net.negated,
    }
}

/// The rule's source or destination port constraint, from its tcp/udp match.
fn port_interval(rule: &Rule, source: bool) -> Option<Negatable<Interval>> {
    rule.matches.iter().find_map(|m| match m {
        Match::Ports { sport, dport, .. } => {
            let p = if source { sport } else { dport };
            p.as_ref().map(|p| Negatable {
                value: Interval {
                    first: p.value.first as u32,
                    last: p.value.last as u32,
                },
                negated: p.negated,
            })
        }
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
fn trie_field(
    nwords: usize,
    constraints: &[Option<Negatable<Interval>>],
    width: u32,
) -> Option<Vec<(u32, u32, Words)>> {
    if constraints.iter().all(Option::is_none) {
        return None;
    }
    let mut atoms = vec![(0u32, 0u32)];
    for c in constraints.iter().flatten() {
        atoms.extend(prefixes(c.value, width));
    }
    atoms.sort_unstable();
    atoms.dedup();
    Some(
        atoms
            .into_iter()
            .map(|(len, value)| {
                let atom = Interval::of_prefix(value, len, width);
                let bits = constraints.iter().map(|c| match c {
                    None => true,
                    Some(c) => atom.within(c.value) != c.negated,
                });
                (len, value, bitmap(nwords, bits))
            })
            .collect(),
    )
}

/// Port tries have two halves: `[chain, 1, port]` for packets with ports, and the single entry
/// `[chain, 0]` for packets without (other protocols, fragments), which only rules without a
/// port constraint match.
fn port_field(
    nwords: usize,
    constraints: &[Option<Negatable<Interval>>],
    chain: [u8; 2],
) -> Option<Vec<TrieEntry<PortKey>>> {
    let with_ports = trie_field(nwords, constraints, 16)?;
    let mut entries = vec![TrieEntry {
        prefix_len: CHAIN_KEY_BITS + 8,
        key: [chain[0], chain[1], 0, 0, 0],
        bitmap: bitmap(nwords, constraints.iter().map(Option::is_none)),
    }];
    entries.extend(with_ports.into_iter().map(|(len, v, bitmap)| {
        let p = (v as u16).to_be_bytes();
        TrieEntry {
            prefix_len: CHAIN_KEY_BITS + 8 + len,
            key: [chain[0], chain[1], 1, p[0], p[1]],
            bitmap,
        }
    }));
    Some(entries)
}

/// One entry per interface of the namespace, and ifindex 0 for any other (named "" for
/// matching, so only `+` and negated names match it).
fn iface_field<'a>(
    chain: u32,
    nwords: usize,
    links: &[Link],
    constraints: impl Iterator<Item = &'a Option<Negatable<crate::ruleset::model::Interface>>> + Clone,
) -> Vec<(IfaceKey, Words)> {
    std::iter::once((0u32, ""))
        .chain(links.iter().map(|l| (l.ifindex, l.name.as_str())))
        .map(|(ifindex, name)| {
            let bits = constraints.clone().map(|c| match c {
                None => true,
                Some(c) => c.value.matches(name) != c.negated,
            });
            (IfaceKey { chain, ifindex }, bitmap(nwords, bits))
        })
        .collect()
}

#[cfg(test)]
mod tests;
