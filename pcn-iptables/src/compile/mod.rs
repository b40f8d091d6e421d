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
mod fields;

pub use addrtype::AddressTypes;
mod interval;

use pcn_iptables_common::{
    Action, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, ChainConfig, FIELD_KEY_HEADER_BITS, FieldKey,
    MAX_CHAINS, MAX_RULES_PER_CHAIN, chain_flag, classifier, field, field_key6, verdict,
};

use std::hash::{Hash as _, Hasher as _};

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use crate::model::{Limit, Negatable, Policy, Rule, Table, Target};
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

/// Everything one generation's maps hold (the full build, as plain vectors).
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

/// One trie entry as a generation's layout keeps it: 16 bytes, stored as they are.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub key: FieldKey,
    /// Bits, the key's header included.
    pub prefix_len: u8,
    pub _pad: [u8; 2],
    pub index: u32,
}

impl Entry {
    fn new(key: FieldKey, prefix_len: u32, index: u32) -> Self {
        Entry {
            key,
            prefix_len: prefix_len as u8,
            _pad: [0; 2],
            index,
        }
    }

    /// The order of a layout's entries: by field, chain, value, then shorter prefixes first
    /// (a parent before its children).
    pub fn order(&self) -> (FieldKey, u8) {
        (self.key, self.prefix_len)
    }
}

/// What the maps of a generation hold besides the bitmap words: where an incremental compile
/// starts from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Layout {
    /// Chain names by chain id; "" for an id whose chain is gone.
    pub chain_names: Vec<String>,
    /// `ChainConfig`s by chain id, as arrays (`config`/`stored`).
    pub chains: Vec<[u32; 8]>,
    /// The trie, in `Entry::order`. Kept apart from the rest (stored raw).
    #[serde(skip)]
    pub entries: Vec<Entry>,
    /// Bitmap indexes in use are below this.
    pub next_index: u32,
    /// A hash of what else the bitmaps depend on: the interfaces and the address types.
    pub inputs: u64,
    /// Trie entries after the last full build (stale atoms pile up past it; see `program`).
    pub entries_at_full: u32,
}

fn stored(c: &ChainConfig) -> [u32; 8] {
    [
        c.nwords,
        c.fields,
        c.action_base,
        c.policy,
        c.policy_counter,
        c.limited,
        c.rules,
        c.count_only,
    ]
}

fn config(a: &[u32; 8]) -> ChainConfig {
    ChainConfig {
        nwords: a[0],
        fields: a[1],
        action_base: a[2],
        policy: a[3],
        policy_counter: a[4],
        limited: a[5],
        rules: a[6],
        count_only: a[7],
        ..Default::default()
    }
}

/// `Write::src`: the words before `from` are zero.
pub const SRC_ZERO: u32 = u32::MAX;
/// `Write::src`: the words before `from` are all ones (rules that do not look at the field).
pub const SRC_ONES: u32 = u32::MAX - 1;

/// One bitmap of the new generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub index: u32,
    /// Where words `0..from` come from: the running generation's bitmap `src`, or `SRC_*`.
    pub src: u32,
    pub from: u32,
    /// The computed words `from..from + len`, at `at` in `Program::words`.
    pub at: usize,
    pub len: u32,
    /// Words past `from + len` are cleared: a chain's own bitmaps (its rules bound every
    /// scan, so words past a chain's end elsewhere are never looked at).
    pub whole: bool,
}

/// A trie entry a change adds (or points to another bitmap), in the trie that both
/// generations share. When the running generation looks this field up in this chain
/// (`running`), its bitmap `entry.index` must first become a copy of its bitmap `src` (what
/// the entry's values found before), so that it classifies as before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrieUpdate {
    pub entry: Entry,
    pub src: u32,
    pub running: bool,
}

/// A generation to install: its chains and actions, the bitmaps to write and its layout.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub layout: Layout,
    pub chains: Vec<ChainConfig>,
    pub actions: Vec<Action>,
    pub writes: Vec<Write>,
    pub words: Vec<u64>,
    /// `Some`: built on the running generation (its trie plus these updates, bitmaps not in
    /// `writes` unchanged); `None`: a full build (every bitmap written, a new trie).
    pub updates: Option<Vec<TrieUpdate>>,
}

impl Program {
    pub fn is_full(&self) -> bool {
        self.updates.is_none()
    }

    /// The words of a write.
    pub fn words_of(&self, w: &Write) -> &[u64] {
        &self.words[w.at..w.at + w.len as usize]
    }
}

/// The running generation an incremental compile builds on.
pub struct Base<'a> {
    pub old: Old<'a>,
    pub layout: &'a Layout,
}

/// What the running generation was compiled from, to tell the rules a change left alone.
pub enum Old<'a> {
    /// The running ruleset: rules compare by what they match.
    Table(&'a Table),
    /// Each chain's rules' counter slots, by chain name. A rule keeps its slot for life and
    /// a new rule never gets one the running ruleset uses, so a rule in the same place with
    /// the same slot is the same rule.
    Slots(&'a [(String, Vec<u32>)]),
}

impl Old<'_> {
    /// The first rule of chain `name` that differs from the running ruleset's (its length
    /// if none but some were added or removed); `None` when the chain is the same, and
    /// `Some(0)` when the running ruleset lacks it.
    fn first_change(&self, name: &str, new: &[Rule]) -> Option<usize> {
        let k = match self {
            Old::Table(t) => {
                let old = t.chain(name).map(|c| c.rules.as_slice());
                let Some(old) = old else { return Some(0) };
                let k = old
                    .iter()
                    .zip(new)
                    .take_while(|(a, b)| a.counter == b.counter || a.same_spec(b))
                    .count();
                (k, old.len())
            }
            Old::Slots(chains) => {
                let Some((_, old)) = chains.iter().find(|(n, _)| n == name) else {
                    return Some(0);
                };
                let k = old
                    .iter()
                    .zip(new)
                    .take_while(|(a, b)| **a == b.counter)
                    .count();
                (k, old.len())
            }
        };
        (k.0 < k.1 || k.0 < new.len()).then_some(k.0)
    }
}

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

/// A bitmap the compiler made for one chain.
struct Made {
    /// The trie entry pointing to it (`None`: one of the chain's own bitmaps).
    entry: Option<(FieldKey, u32)>,
    /// Which of the chain's own bitmaps (`OWN_*`), for those.
    own: u8,
    /// The bitmap index the running generation has for it (`SRC_ZERO` if none).
    old: u32,
    /// Where the words before `from` come from when it gets another index than `old`.
    src: u32,
    from: u32,
    at: usize,
    len: u32,
    /// The running generation looks this entry's field up in this chain.
    running: bool,
}

const OWN_RULES: u8 = 1;
const OWN_COUNT_ONLY: u8 = 2;
const OWN_LIMITED: u8 = 3;

/// The running generation's view of one chain.
struct ChainBase<'a> {
    cfg: ChainConfig,
    /// Its trie entries (in `Entry::order`, so grouped by field).
    entries: &'a [Entry],
}

impl ChainBase<'_> {
    fn uses(&self, id: u8) -> bool {
        self.cfg.fields & field::bit(id) != 0
    }

    fn field(&self, id: u8) -> &[Entry] {
        if !self.uses(id) {
            return &[];
        }
        let lo = self.entries.partition_point(|e| e.key[0] < id);
        let hi = self.entries.partition_point(|e| e.key[0] <= id);
        &self.entries[lo..hi]
    }
}

/// The entries of `chain` among a layout's entries, in order.
fn entries_of_chain(entries: &[Entry], chain: u32) -> Vec<Entry> {
    let c = (chain as u16).to_be_bytes();
    entries
        .iter()
        .filter(|e| e.key[1..3] == c)
        .copied()
        .collect()
}

/// Computes one chain's bitmaps: words `from..nwords` of each, on the running generation's
/// view of the chain (`base`) when there is one. Returns the chain's `fields`.
fn chain_bitmaps(
    ctx: &Ctx,
    chain: u32,
    rules: &[Rule],
    from: usize,
    base: Option<&ChainBase>,
    made: &mut Vec<Made>,
    words: &mut Vec<u64>,
) -> Result<u32, CompileError> {
    let nwords = rules.len().div_ceil(64);
    let from = from.min(nwords);
    let wlen = nwords - from;
    let window = &rules[(from * 64).min(rules.len())..];
    // The chain's own bitmaps, whole.
    let own = [
        (OWN_RULES, base.map(|b| b.cfg.rules)),
        (OWN_COUNT_ONLY, base.map(|b| b.cfg.count_only)),
        (OWN_LIMITED, base.map(|b| b.cfg.limited)),
    ];
    for (kind, old) in own {
        let at = words.len();
        match kind {
            OWN_RULES => push_bits(words, nwords, rules.iter().map(|_| true)),
            // The scan counts these as it goes instead of stopping at them.
            // LOG, like no target, lets the packet go on to the next rule.
            OWN_COUNT_ONLY => push_bits(
                words,
                nwords,
                rules
                    .iter()
                    .map(|r| matches!(r.target, None | Some(Target::Log(_)))),
            ),
            _ => push_bits(
                words,
                nwords,
                rules.iter().map(|r| r.matches.iter().any(fields::limited)),
            ),
        }
        made.push(Made {
            entry: None,
            own: kind,
            old: old.unwrap_or(SRC_ZERO),
            src: SRC_ZERO,
            from: 0,
            at,
            len: nwords as u32,
            running: false,
        });
    }

    let mut fields = 0;
    let add = |made: &mut Vec<Made>,
               id: u8,
               len: u32,
               value: [u8; 6],
               at: usize,
               old: u32,
               src: u32,
               running: bool| {
        made.push(Made {
            entry: Some((field_key6(id, chain, value), FIELD_KEY_HEADER_BITS + len)),
            own: 0,
            old,
            src: if old != SRC_ZERO { old } else { src },
            from: from as u32,
            at,
            len: wlen as u32,
            running,
        });
    };
    // Where the words before the window come from for entries new to a field: all ones
    // when the field is new to the chain (the rules before the window do not look at it).
    let fill = if from > 0 { SRC_ONES } else { SRC_ZERO };

    // Value fields and each rule's constraint; their width in bits, and whether they are keyed
    // under `[1]` with `[0]` for packets without the header, are the field table's.
    let value_fields: [(u8, Vec<Constraint>); 15] = [
        (field::SRC, each(window, |r| address(r, true))?),
        (field::DST, each(window, |r| address(r, false))?),
        (field::PROTO, each(window, proto)?),
        (field::CTSTATE, each(window, ctstates)?),
        (field::SPORT, each(window, |r| ports(r, true))?),
        (field::DPORT, each(window, |r| ports(r, false))?),
        (field::ANY_PORT_SRC, each(window, any_port)?),
        (field::ANY_PORT_DST, each(window, any_port)?),
        (field::ICMP, each(window, icmp)?),
        (field::TCP_FLAGS, each(window, tcp_flags)?),
        (field::LENGTH, each(window, length)?),
        (field::TTL, each(window, ttl)?),
        (field::FRAGMENT, each(window, fragment)?),
        (
            field::SRC_TYPE,
            each(window, |r| addrtype(r, true, ctx.address_types))?,
        ),
        (
            field::DST_TYPE,
            each(window, |r| addrtype(r, false, ctx.address_types))?,
        ),
    ];
    for (id, constraints) in value_fields {
        let classifier::Field {
            width,
            optional: keyed,
            ..
        } = classifier::spec(id);
        let running = base.is_some_and(|b| b.uses(id));
        if !running && constraints.iter().all(Option::is_none) {
            continue;
        }
        fields |= field::bit(id);
        let entries = base.map_or(&[][..], |b| b.field(id));
        let lead = keyed as u32;
        let mut atoms_base = Vec::with_capacity(entries.len());
        let mut missing = SRC_ZERO;
        for e in entries {
            let v = &e.key[3 + lead as usize..];
            if keyed && e.key[3] == 0 {
                missing = e.index;
                continue;
            }
            let value = match width {
                8 => v[0] as u32,
                16 => u16::from_be_bytes([v[0], v[1]]) as u32,
                _ => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            };
            let len = e.prefix_len as u32 - FIELD_KEY_HEADER_BITS - lead * 8;
            atoms_base.push((len, value, e.index));
        }
        if keyed {
            // Packets without this header look up `[0]`: only rules without a constraint
            // on the field match them.
            let at = words.len();
            push_bits(words, wlen, constraints.iter().map(Option::is_none));
            add(made, id, 8, [0; 6], at, missing, fill, running);
        }
        for atom in walk(words, wlen, &constraints, width, &atoms_base, fill) {
            let bytes = &atom.value.to_be_bytes()[4 - width as usize / 8..];
            let mut value = [0u8; 6];
            let lead_bytes: &[u8] = if keyed { &[1] } else { &[] };
            for (slot, b) in value.iter_mut().zip(lead_bytes.iter().chain(bytes)) {
                *slot = *b;
            }
            add(
                made,
                id,
                lead * 8 + atom.len,
                value,
                atom.at,
                atom.own,
                atom.src,
                running,
            );
        }
    }

    let macs: Vec<_> = window.iter().map(mac).collect();
    let running = base.is_some_and(|b| b.uses(field::MAC_SRC));
    if running || macs.iter().any(|m| !m.is_empty()) {
        fields |= field::bit(field::MAC_SRC);
        let entries = base.map_or(&[][..], |b| b.field(field::MAC_SRC));
        let old = |len: u32, addr: [u8; 6]| {
            entries
                .iter()
                .find(|e| e.prefix_len as u32 == FIELD_KEY_HEADER_BITS + len && e.key[3..] == addr)
                .map_or(SRC_ZERO, |e| e.index)
        };
        // The default entry: addresses no rule names.
        let default = old(0, [0; 6]);
        let at = words.len();
        push_bits(
            words,
            wlen,
            macs.iter().map(|m| m.iter().all(|m| m.negated)),
        );
        add(made, field::MAC_SRC, 0, [0; 6], at, default, fill, running);
        let mut named: Vec<[u8; 6]> = macs.iter().flatten().map(|m| m.value).collect();
        for e in entries
            .iter()
            .filter(|e| e.prefix_len as u32 > FIELD_KEY_HEADER_BITS)
        {
            let mut addr = [0u8; 6];
            addr.copy_from_slice(&e.key[3..]);
            named.push(addr);
        }
        named.sort_unstable();
        named.dedup();
        named.retain(|a| *a != [0; 6]);
        // A new address found the default entry before.
        let src = if default != SRC_ZERO { default } else { fill };
        for addr in named {
            let at = words.len();
            // Every `--mac-source` of a rule must hold.
            push_bits(
                words,
                wlen,
                macs.iter()
                    .map(|m| m.iter().all(|m| (m.value == addr) != m.negated)),
            );
            add(
                made,
                field::MAC_SRC,
                48,
                addr,
                at,
                old(48, addr),
                src,
                running,
            );
        }
        // All zeros is what the data plane reads where there is no Ethernet header
        // (OUTPUT, lo): xt_mac matches nothing there, `!` or not.
        let at = words.len();
        push_bits(words, wlen, macs.iter().map(Vec::is_empty));
        add(
            made,
            field::MAC_SRC,
            48,
            [0; 6],
            at,
            old(48, [0; 6]),
            fill,
            running,
        );
    }

    for id in [field::IN_IFACE, field::OUT_IFACE] {
        let constraints: Vec<_> = window
            .iter()
            .map(|r| {
                if id == field::IN_IFACE {
                    &r.in_iface
                } else {
                    &r.out_iface
                }
            })
            .collect();
        let running = base.is_some_and(|b| b.uses(id));
        if !running && constraints.iter().all(|c| c.is_none()) {
            continue;
        }
        fields |= field::bit(id);
        let entries = base.map_or(&[][..], |b| b.field(id));
        let old = |len: u32, i: [u8; 4]| {
            entries
                .iter()
                .find(|e| e.prefix_len as u32 == FIELD_KEY_HEADER_BITS + len && e.key[3..7] == i)
                .map_or(SRC_ZERO, |e| e.index)
        };
        // The default entry stands for interfaces unknown at compile time, named "" for
        // matching, so only `+` and negated names match them.
        let unknown = std::iter::once((None, ""));
        for (ifindex, name) in
            unknown.chain(ctx.links.iter().map(|l| (Some(l.ifindex), l.name.as_str())))
        {
            let at = words.len();
            push_bits(
                words,
                wlen,
                constraints.iter().map(|c| match c {
                    None => true,
                    Some(c) => c.value.matches(name) != c.negated,
                }),
            );
            let i = ifindex.unwrap_or_default().to_be_bytes();
            let len = if ifindex.is_some() { 32 } else { 0 };
            add(
                made,
                id,
                len,
                [i[0], i[1], i[2], i[3], 0, 0],
                at,
                old(len, i),
                fill,
                running,
            );
        }
    }
    Ok(fields)
}

/// The full build: every chain, every bitmap, equal bitmaps stored once.
fn full(ctx: &Ctx, table: &Table) -> Result<Program, CompileError> {
    let track = tracks(table);
    let names = chain_ids(table);
    if names.len() > MAX_CHAINS as usize {
        return Err(CompileError::TooManyChains(names.len()));
    }
    let (actions, bases) = actions(table, &names)?;
    let mut made = Vec::new();
    let mut words = Vec::new();
    let mut chains = Vec::with_capacity(names.len());
    let mut spans = Vec::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        let (rules, policy, policy_counter) = chain_of(table, name, id as u32);
        let first = made.len();
        let fields = chain_bitmaps(ctx, id as u32, rules, 0, None, &mut made, &mut words)?;
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
                });
                next
            });
            match (m.entry, m.own) {
                (Some((key, len)), _) => entries.push(Entry::new(key, len, i)),
                (None, OWN_RULES) => cfg.rules = i,
                (None, OWN_COUNT_ONLY) => cfg.count_only = i,
                (None, _) => cfg.limited = i,
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
            inputs: 0,
        },
        chains,
        actions,
        writes,
        words,
        updates: None,
    })
}

/// The build on the running generation; `None` when it cannot be (chain ids run out).
fn incremental(ctx: &Ctx, table: &Table, base: &Base) -> Result<Option<Program>, CompileError> {
    let track = tracks(table);
    let layout = base.layout;
    // Chains keep their ids; new ones get new ids, never one with entries in the trie.
    let mut names = layout.chain_names.clone();
    for name in &mut names {
        if table.chain(name).is_none() && !["INPUT", "FORWARD", "OUTPUT"].contains(&name.as_str()) {
            name.clear();
        }
    }
    for chain in &table.chains {
        if !names.contains(&chain.name) {
            names.push(chain.name.clone());
        }
    }
    if names.len() > MAX_CHAINS as usize {
        return Ok(None);
    }
    let (actions, bases) = actions(table, &names)?;
    let old_cfg = |id: usize| layout.chains.get(id).map(config);

    // Which chains change, and from which word.
    let mut changed: Vec<Option<usize>> = Vec::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        let new = table.chain(name).map_or(&[][..], |c| c.rules.as_slice());
        let change = if layout.chain_names.get(id) == Some(name) {
            base.old.first_change(name, new).map(|k| k / 64)
        } else {
            // Not in the running generation: new (its id is fresh).
            Some(0)
        };
        changed.push(change);
    }

    // Indexes the unchanged chains (and chains gone) keep.
    let mut taken = vec![false; layout.next_index as usize];
    let changed_id = |e: &Entry| {
        let id = u16::from_be_bytes([e.key[1], e.key[2]]) as usize;
        changed.get(id).is_some_and(|c| c.is_some()) && !names[id].is_empty()
    };
    for e in &layout.entries {
        if !changed_id(e) {
            taken[e.index as usize] = true;
        }
    }
    for (id, c) in changed.iter().enumerate() {
        if c.is_none()
            && let Some(cfg) = old_cfg(id)
        {
            for i in [cfg.rules, cfg.count_only, cfg.limited] {
                if let Some(t) = taken.get_mut(i as usize) {
                    *t = true;
                }
            }
        }
    }

    let mut made = Vec::new();
    let mut words = Vec::new();
    let mut chains = Vec::with_capacity(names.len());
    let mut writes = Vec::new();
    let mut updates = Vec::new();
    let mut entries: Vec<Entry> = layout
        .entries
        .iter()
        .filter(|e| !changed_id(e))
        .copied()
        .collect();
    let mut next_index = layout.next_index;
    for (id, name) in names.iter().enumerate() {
        if name.is_empty() {
            chains.push(ChainConfig::default());
            continue;
        }
        let (rules, policy, policy_counter) = chain_of(table, name, id as u32);
        let mut cfg = chain_config(rules, bases[id], policy, policy_counter, track);
        let Some(from) = changed[id] else {
            let old = old_cfg(id).unwrap_or_default();
            cfg.fields = old.fields;
            cfg.rules = old.rules;
            cfg.count_only = old.count_only;
            cfg.limited = old.limited;
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
        made.clear();
        cfg.fields = chain_bitmaps(
            ctx,
            id as u32,
            rules,
            from,
            chain_base.as_ref(),
            &mut made,
            &mut words,
        )?;
        let mut own_index = [0u32; 4];
        for m in &made {
            // A chain without limited rules: its limited bitmap is its count-only one (the
            // classifier then saves a lookup).
            if m.own == OWN_LIMITED
                && words[m.at..m.at + m.len as usize]
                    == words[made[1].at..made[1].at + made[1].len as usize]
            {
                own_index[OWN_LIMITED as usize] = own_index[OWN_COUNT_ONLY as usize];
                continue;
            }
            let keep = (m.old as usize) < taken.len() && !taken[m.old as usize];
            let index = if keep {
                taken[m.old as usize] = true;
                m.old
            } else {
                next_index += 1;
                next_index - 1
            };
            match m.entry {
                Some((key, len)) => {
                    let entry = Entry::new(key, len, index);
                    entries.push(entry);
                    if !keep {
                        updates.push(TrieUpdate {
                            entry,
                            src: m.src,
                            running: m.running,
                        });
                    }
                    writes.push(Write {
                        index,
                        src: m.src,
                        from: m.from,
                        at: m.at,
                        len: m.len,
                        whole: false,
                    });
                }
                None => {
                    own_index[m.own as usize] = index;
                    writes.push(Write {
                        index,
                        src: SRC_ZERO,
                        from: 0,
                        at: m.at,
                        len: m.len,
                        whole: true,
                    });
                }
            }
        }
        cfg.rules = own_index[OWN_RULES as usize];
        cfg.count_only = own_index[OWN_COUNT_ONLY as usize];
        cfg.limited = own_index[OWN_LIMITED as usize];
        chains.push(cfg);
    }
    // Mostly new atoms (a ruleset replaced by another): built anew, without the stale ones.
    if updates.len() > 4096 && updates.len() * 2 > entries.len() {
        return Ok(None);
    }
    entries.sort_unstable_by_key(Entry::order);
    Ok(Some(Program {
        layout: Layout {
            chain_names: names,
            chains: chains.iter().map(stored).collect(),
            entries,
            next_index,
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

/// Appends an `nwords`-word bitmap with bit i set where the i-th of `bits` is.
fn push_bits(words: &mut Vec<u64>, nwords: usize, bits: impl Iterator<Item = bool>) {
    let at = words.len();
    words.resize(at + nwords, 0);
    for (i, set) in bits.enumerate() {
        if set {
            words[at + i / 64] |= 1 << (i % 64);
        }
    }
}

fn bitmap(nwords: usize, bits: impl Iterator<Item = bool>) -> Words {
    let mut words = Vec::with_capacity(nwords);
    push_bits(&mut words, nwords, bits);
    words
}

/// An atom of a field's trie.
struct Atom {
    len: u32,
    value: u32,
    /// Its window words, in the arena.
    at: usize,
    /// Its bitmap index in the running generation (`SRC_ZERO`: a new atom).
    own: u32,
    /// The running generation's bitmap of its closest atom there, itself included: what its
    /// words before the window are.
    src: u32,
}

/// The atoms of one field of one chain in a `width`-bit value space, with the `wlen` words of
/// each one's bitmap that the window's rules (`constraints`, bit i for the window's rule i)
/// decide, written to `words`. `base`: the running generation's atoms `(length, value,
/// index)`, in order; `fill`: what the words before the window are where no base atom
/// contains an atom.
///
/// The atoms are the base atoms, the prefixes of every rule's interval, and the whole space.
/// An atom's bitmap has rule i set when the atom lies inside rule i's interval (flipped by
/// `!`): since every rule's interval is a union of atoms, the longest atom containing a value
/// lies inside the interval exactly when the value does.
///
/// An atom lies inside an interval exactly when it or one of its ancestors is one of the
/// interval's prefixes, so walking the atoms as a prefix tree, each bitmap is its parent's
/// with the rules decomposed right there flipped: linear in atoms and rules, not their product.
fn walk(
    words: &mut Vec<u64>,
    wlen: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
    base: &[(u32, u32, u32)],
    fill: u32,
) -> Vec<Atom> {
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
    if base.is_empty() {
        decomposed.push((0, 0, usize::MAX));
    }
    // Parents before children: by first value, then shorter prefixes first.
    decomposed.sort_unstable();
    // The root: rules without a constraint, and negated ones (nothing is inside them yet).
    let root = bitmap(
        wlen,
        constraints
            .iter()
            .map(|c| c.as_ref().is_none_or(|c| c.negated)),
    );
    let mut atoms: Vec<Atom> = Vec::with_capacity(base.len() + decomposed.len());
    // Indexes into `atoms` of the atoms containing the current one.
    let mut ancestors: Vec<usize> = Vec::new();
    let (mut b, mut d) = (0, 0);
    words.reserve((base.len() + decomposed.len()) * wlen);
    while b < base.len() || d < decomposed.len() {
        // The next atom in order, and whether the base has it.
        let next_d = decomposed.get(d).map(|&(v, l, _)| (v, l));
        let next_b = base.get(b).map(|&(l, v, _)| (v, l));
        let (value, len) = match (next_b, next_d) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (None, None) => unreachable!(),
        };
        let own = if next_b == Some((value, len)) {
            b += 1;
            base[b - 1].2
        } else {
            SRC_ZERO
        };
        let group_start = d;
        while decomposed
            .get(d)
            .is_some_and(|&(v, l, _)| (v, l) == (value, len))
        {
            d += 1;
        }
        let atom = Interval::of_prefix(value, len, width);
        while let Some(&top) = ancestors.last() {
            let t = &atoms[top];
            if atom.within(Interval::of_prefix(t.value, t.len, width)) {
                break;
            }
            ancestors.pop();
        }
        let at = words.len();
        let src = match ancestors.last() {
            Some(&parent) => {
                let p = &atoms[parent];
                words.extend_from_within(p.at..p.at + wlen);
                p.src
            }
            None => {
                words.extend_from_slice(&root);
                fill
            }
        };
        for &(_, _, rule) in decomposed[group_start..d]
            .iter()
            .filter(|d| d.2 != usize::MAX)
        {
            let bit = 1u64 << (rule % 64);
            if constraints[rule].as_ref().is_some_and(|c| c.negated) {
                words[at + rule / 64] &= !bit;
            } else {
                words[at + rule / 64] |= bit;
            }
        }
        ancestors.push(atoms.len());
        atoms.push(Atom {
            len,
            value,
            at,
            own,
            src: if own != SRC_ZERO { own } else { src },
        });
    }
    atoms
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
mod incremental_tests {
    //! The incremental build against the full one: a model of the two generation slots (the
    //! words each bitmap index holds, and one trie) goes through random changes the way the
    //! data plane applies them, and classifies every packet as a full build of the same table.
    use super::tests::Rng;
    use super::*;
    use crate::model::{Chain, Match, PortRange};
    use pcn_iptables_common::MAX_WORDS;
    use std::net::Ipv4Addr;

    const MACS: [[u8; 6]; 3] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]];

    /// `macs`: whether it may have `--mac-source` (not in the first build, so that changes
    /// bring the field to chains with rules before the change).
    fn rule(rng: &mut Rng, counter: u32, macs: bool) -> Rule {
        let net = |rng: &mut Rng, first: u8| {
            let len = [8u8, 16, 24, 32][rng.below(4) as usize];
            let a = Ipv4Addr::new(
                first,
                rng.below(4) as u8,
                rng.below(4) as u8,
                rng.below(4) as u8,
            );
            let n = ipnetwork::Ipv4Network::new(a, len).unwrap();
            Negatable {
                value: ipnetwork::Ipv4Network::new(n.network(), len).unwrap(),
                negated: rng.below(5) == 0,
            }
        };
        let port = |rng: &mut Rng| {
            let first = rng.below(40) as u16;
            Negatable {
                value: PortRange {
                    first,
                    last: first + rng.below(3) as u16 * 7,
                },
                negated: rng.below(6) == 0,
            }
        };
        let proto = [6u8, 17][rng.below(2) as usize];
        let ports = rng.below(3) != 0;
        Rule {
            src: (rng.below(3) != 0).then(|| net(rng, 10)),
            dst: (rng.below(2) != 0).then(|| net(rng, 172)),
            in_iface: None,
            out_iface: None,
            proto: (ports || rng.below(2) == 0).then(|| Negatable::plain(proto)),
            fragment: None,
            matches: {
                let mut matches = Vec::new();
                if ports {
                    matches.push(Match::Ports {
                        proto,
                        sport: (rng.below(3) == 0).then(|| port(rng)),
                        dport: (rng.below(3) != 0).then(|| port(rng)),
                        tcp_flags: None,
                    });
                }
                // Sometimes one `--mac-source`, rarely two.
                for _ in 0..[0, 0, 0, 0, 0, 1, 1, 2][rng.below(8) as usize] * macs as usize {
                    matches.push(Match::Mac(Negatable {
                        value: MACS[rng.below(2) as usize],
                        negated: rng.below(3) == 0,
                    }));
                }
                matches
            },
            target: match rng.below(5) {
                0 => None,
                1 => Some(Target::Accept),
                2 => Some(Target::Jump("web".into())),
                _ => Some(Target::Drop),
            },
            counter,
        }
    }

    /// A slot's bitmaps as the classifier sees them (full MAX_WORDS words each).
    type Slot = Vec<Vec<u64>>;

    fn classify(
        layout: &Layout,
        chains: &[ChainConfig],
        slot: &Slot,
        trie: &[Entry],
        chain: u32,
        pkt: &[(u8, [u8; 6], u32)],
    ) -> Option<usize> {
        let cfg = chains[chain as usize];
        let lookup = |id: u8, value: [u8; 6], bits: u32| -> Option<&Vec<u64>> {
            let key = field_key6(id, chain, value);
            let bit = |k: &[u8], i: u32| k[(i / 8) as usize] & (0x80 >> (i % 8)) != 0;
            trie.iter()
                .filter(|e| {
                    e.prefix_len as u32 <= FIELD_KEY_HEADER_BITS + bits
                        && (0..e.prefix_len as u32).all(|i| bit(&e.key, i) == bit(&key, i))
                })
                .max_by_key(|e| e.prefix_len)
                .map(|e| &slot[e.index as usize])
        };
        let _ = layout;
        let mut maps = vec![&slot[cfg.rules as usize]];
        for &(id, value, bits) in pkt {
            if cfg.fields & field::bit(id) != 0 {
                maps.push(lookup(id, value, bits)?);
            }
        }
        (0..MAX_WORDS).find_map(|i| {
            let w = maps.iter().fold(u64::MAX, |acc, m| acc & m[i]);
            (w != 0).then(|| i * 64 + w.trailing_zeros() as usize)
        })
    }

    /// Applies `p` to the inactive slot `slots[1 - active]` as the data plane does.
    fn apply(
        slots: &mut [Slot; 2],
        trie: &mut Vec<Entry>,
        active: usize,
        p: &Program,
        delta: &[(u32, u32, u32)],
        running_chains: &[ChainConfig],
    ) -> Vec<(u32, u32, u32)> {
        let n = p.layout.next_index as usize;
        for s in slots.iter_mut() {
            s.resize(n, vec![0; MAX_WORDS]);
        }
        let (a, b) = if active == 0 {
            let (x, y) = slots.split_at_mut(1);
            (&mut x[0], &mut y[0])
        } else {
            let (x, y) = slots.split_at_mut(1);
            (&mut y[0], &mut x[0])
        };
        let _ = running_chains;
        let updates = p.updates.as_ref().unwrap();
        for u in updates {
            if u.running {
                a[u.entry.index as usize] = a[u.src as usize].clone();
            }
        }
        let mut written = vec![false; n];
        let mut new_delta = Vec::new();
        for w in &p.writes {
            written[w.index as usize] = true;
            let dst = &mut b[w.index as usize];
            let from = w.from as usize;
            let end = from + w.len as usize;
            let lo = if w.src == w.index {
                let d = delta.iter().find(|d| d.0 == w.index);
                let lo = d.map_or(from, |d| (d.1 as usize).min(from));
                if let Some(d) = d
                    && end < d.2 as usize
                {
                    dst[end..d.2 as usize].copy_from_slice(&a[w.index as usize][end..d.2 as usize]);
                }
                lo
            } else {
                0
            };
            for i in lo..from {
                dst[i] = match w.src {
                    SRC_ZERO => 0,
                    SRC_ONES => u64::MAX,
                    s => a[s as usize][i],
                };
            }
            dst[from..end].copy_from_slice(p.words_of(w));
            if w.whole {
                for x in &mut dst[end..] {
                    *x = 0;
                }
            }
            new_delta.push((
                w.index,
                if w.src == w.index { w.from } else { 0 },
                if w.whole {
                    MAX_WORDS as u32
                } else {
                    end as u32
                },
            ));
        }
        for &(i, f, t) in delta {
            if !written[i as usize] {
                for x in f..t {
                    b[i as usize][x as usize] = a[i as usize][x as usize];
                }
            }
        }
        for u in updates {
            trie.retain(|e| e.order() != u.entry.order());
            trie.push(u.entry);
        }
        new_delta
    }

    fn packets(rng: &mut Rng) -> Vec<Vec<(u8, [u8; 6], u32)>> {
        (0..200)
            .map(|_| {
                let mut addr = |first| {
                    let mut next = || rng.below(5) as u8;
                    Ipv4Addr::new(first, next(), next(), next()).octets()
                };
                let (src, dst) = (addr(10), addr(172));
                let proto = [6u8, 17, 1][rng.below(3) as usize];
                let sp = (rng.below(60) as u16).to_be_bytes();
                let dp = (rng.below(60) as u16).to_be_bytes();
                let port = |p: [u8; 2]| {
                    if proto == 1 {
                        ([0, 0, 0, 0, 0, 0], 8)
                    } else {
                        ([1, p[0], p[1], 0, 0, 0], 24)
                    }
                };
                let (s, sb) = port(sp);
                let (d, db) = port(dp);
                // A named address, another one, or none (no Ethernet header).
                let mac = [MACS[0], MACS[1], MACS[2], [0; 6]][rng.below(4) as usize];
                vec![
                    (field::MAC_SRC, mac, 48),
                    (field::SRC, [src[0], src[1], src[2], src[3], 0, 0], 32),
                    (field::DST, [dst[0], dst[1], dst[2], dst[3], 0, 0], 32),
                    (field::PROTO, [proto, 0, 0, 0, 0, 0], 8),
                    (field::SPORT, s, sb),
                    (field::DPORT, d, db),
                ]
            })
            .collect()
    }

    #[test]
    fn incremental_generations_classify_like_full_builds() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let ctx_links: Vec<Link> = Vec::new();
        let at = AddressTypes::default();
        for round in 0..12 {
            let mut table = Table::default();
            table.add_chain(Chain {
                name: "web".into(),
                policy: None,
                policy_counter: 0,
                rules: Vec::new(),
            });
            let mut counter = 10;
            let n = [0usize, 5, 70, 200][round % 4];
            for _ in 0..n {
                counter += 1;
                let r = rule(&mut rng, counter, false);
                table.chains[0].rules.push(r);
            }
            let first = program(&table, &ctx_links, &at, None).unwrap();
            assert!(first.is_full());
            // Both slots hold the first build (as after a full install and its copy).
            let mut slots: [Slot; 2] = [Vec::new(), Vec::new()];
            for s in slots.iter_mut() {
                s.resize(first.layout.next_index as usize, vec![0; MAX_WORDS]);
                for w in &first.writes {
                    let d = &mut s[w.index as usize];
                    d[..w.len as usize].copy_from_slice(first.words_of(w));
                }
            }
            let mut trie = first.layout.entries.clone();
            let mut layout = first.layout.clone();
            let mut chains = first.chains.clone();
            let mut active = 0;
            let mut delta: Vec<(u32, u32, u32)> = Vec::new();
            for step in 0..40 {
                let old = table.clone();
                let chain = if rng.below(4) == 0 { 3 } else { 0 };
                let rules = &mut table.chains[chain].rules;
                counter += 1;
                match rng.below(6) {
                    0 | 1 => rules.push(rule(&mut rng, counter, true)),
                    2 if !rules.is_empty() => {
                        rules.pop();
                    }
                    3 if !rules.is_empty() => {
                        let i = rng.below(rules.len() as u64) as usize;
                        rules.remove(i);
                    }
                    4 => {
                        let i = rng.below(rules.len() as u64 + 1) as usize;
                        rules.insert(i, rule(&mut rng, counter, true));
                    }
                    _ if !rules.is_empty() => {
                        let i = rules.len() - 1 - rng.below(rules.len().min(70) as u64) as usize;
                        rules[i] = rule(&mut rng, counter, true);
                    }
                    _ => {}
                }
                if step % 7 == 3 {
                    table.chains[1].policy = Some(Policy::Drop);
                }
                let counters = slots_of(&old);
                let base = Base {
                    old: if step % 2 == 0 {
                        Old::Table(&old)
                    } else {
                        Old::Slots(&counters)
                    },
                    layout: &layout,
                };
                let p = program(&table, &ctx_links, &at, Some(&base)).unwrap();
                assert!(!p.is_full(), "round {round} step {step}");
                let want = program(&table, &ctx_links, &at, None).unwrap();
                delta = apply(&mut slots, &mut trie, active, &p, &delta, &chains);
                // The running generation still classifies as before the change.
                let pk = packets(&mut rng);
                let old_full = program(&old, &ctx_links, &at, None).unwrap();
                let mut old_slot: Slot =
                    vec![vec![0; MAX_WORDS]; old_full.layout.next_index as usize];
                for w in &old_full.writes {
                    old_slot[w.index as usize][..w.len as usize]
                        .copy_from_slice(old_full.words_of(w));
                }
                let mut want_slot: Slot = vec![vec![0; MAX_WORDS]; want.layout.next_index as usize];
                for w in &want.writes {
                    want_slot[w.index as usize][..w.len as usize].copy_from_slice(want.words_of(w));
                }
                for chain in [0u32, 3] {
                    for pkt in &pk {
                        assert_eq!(
                            classify(&layout, &chains, &slots[active], &trie, chain, pkt),
                            classify(
                                &old_full.layout,
                                &old_full.chains,
                                &old_slot,
                                &old_full.layout.entries,
                                chain,
                                pkt
                            ),
                            "round {round} step {step}: the running generation changed"
                        );
                        assert_eq!(
                            classify(&p.layout, &p.chains, &slots[1 - active], &trie, chain, pkt),
                            classify(
                                &want.layout,
                                &want.chains,
                                &want_slot,
                                &want.layout.entries,
                                chain,
                                pkt
                            ),
                            "round {round} step {step}: chain {chain}"
                        );
                    }
                }
                assert_eq!(p.actions.len(), want.actions.len());
                let flags =
                    |chains: &[ChainConfig]| chains.iter().map(|c| c.flags).collect::<Vec<_>>();
                assert_eq!(
                    flags(&p.chains),
                    flags(&want.chains),
                    "round {round} step {step}"
                );
                let mut sorted = trie.clone();
                sorted.sort_unstable_by_key(Entry::order);
                assert_eq!(sorted, p.layout.entries, "the layout lists the trie");
                layout = p.layout.clone();
                chains = p.chains.clone();
                active = 1 - active;
            }
        }
    }
}
