//! The compiler's output and what it builds on: the program for one generation (chains,
//! actions, trie entries, bitmap writes), its layout, and the running generation it may start from.

use pcn_iptables_common::{Action, ChainConfig, FieldKey, MAX_CHAINS, MAX_RULES_PER_CHAIN};
use serde::{Deserialize, Serialize};

use crate::model::{Rule, Table};

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
    pub(super) fn new(key: FieldKey, prefix_len: u32, index: u32) -> Self {
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
    /// Words of every bitmap (`bitmap::Shape`): set by a full build, for its longest chain.
    pub words: u32,
    /// A hash of what else the bitmaps depend on: the interfaces and the address types.
    pub inputs: u64,
    /// Trie entries after the last full build (stale atoms pile up past it; see `program`).
    pub entries_at_full: u32,
}

pub(super) fn stored(c: &ChainConfig) -> [u32; 8] {
    [
        c.nwords,
        c.fields,
        c.action_base,
        c.policy,
        c.policy_counter,
        c.checked,
        c.rules,
        c.count_only,
    ]
}

pub(super) fn config(a: &[u32; 8]) -> ChainConfig {
    ChainConfig {
        nwords: a[0],
        fields: a[1],
        action_base: a[2],
        policy: a[3],
        policy_counter: a[4],
        checked: a[5],
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
    pub(super) fn first_change(&self, name: &str, new: &[Rule]) -> Option<usize> {
        let k = match self {
            Old::Table(t) => {
                let old = super::tables::chain(t, name).map(|c| c.rules.as_slice());
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
