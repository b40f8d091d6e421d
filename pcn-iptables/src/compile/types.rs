//! The compiler's output and what it builds on: the program for one generation (chains,
//! actions, trie entries, bitmap writes), its layout, and the running generation it may start from.

use pcn_iptables_common::{Action, ChainConfig, FieldKey, MAX_CHAINS, MAX_RULES_PER_CHAIN, owner};
use serde::{Deserialize, Serialize};

use crate::model::{Rule, Rules, Table};

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
    /// More distinct `--suppl-groups` GID ranges than a generation holds.
    TooManyGroupRanges,
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
            CompileError::TooManyGroupRanges => write!(
                f,
                "too many -m owner --suppl-groups GID ranges: pcn-iptables keeps {}",
                owner::GROUP_RANGES
            ),
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
    /// `Some`: words `from..shift.words` are `src`'s shifted by one rule instead (`len` is
    /// 1 or 0: the inserted rule's bit, in bit 0).
    pub shift: Option<Shift>,
}

impl Write {
    /// The words this write computes: `from..` this.
    pub fn end(&self) -> u32 {
        match self.shift {
            Some(s) => s.words,
            None => self.from + self.len,
        }
    }
}

/// A bitmap's words from rule `rule` on, one rule further to make room for a rule inserted
/// there (`insert`), or one closer over the rule removed from there; the chain's words
/// before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shift {
    pub rule: u32,
    pub insert: bool,
    pub old_words: u32,
    pub words: u32,
}

impl Shift {
    /// Word `x` of the shifted bitmap, from the source's words (`old`; zero from `old_words`
    /// on) and the inserted rule's bit.
    pub fn word(&self, x: usize, old: impl Fn(usize) -> u64, bit: u64) -> u64 {
        let old = |y: usize| {
            if y < self.old_words as usize {
                old(y)
            } else {
                0
            }
        };
        let (first, b) = (self.rule as usize / 64, self.rule % 64);
        let shifted = if self.insert {
            old(x) << 1 | if x > 0 { old(x - 1) >> 63 } else { 0 }
        } else {
            old(x) >> 1 | old(x + 1) << 63
        };
        if x != first {
            return shifted;
        }
        let below = (1u64 << b) - 1;
        if self.insert {
            old(x) & below | (bit & 1) << b | shifted & !below & !(1 << b)
        } else {
            old(x) & below | shifted & !below
        }
    }
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

/// A generation's actions, by index (a chain's `action_base` plus the rule's place), in runs:
/// computed, or kept from the running generation for the rules it has too. A rule that
/// stays does what it did: recomputing the actions of every rule at every change was half
/// of an incremental compile.
#[derive(Clone, Debug, Default)]
pub struct Actions {
    pub computed: Vec<Action>,
    pub runs: Vec<Run>,
    /// The kept jumps and gotos: their index and their target's chain id, set again (`-E`
    /// renames a rule's target in place).
    pub targets: Vec<(u32, u32)>,
    /// Some rule has `-m connlimit` (the data plane counts connections), or `-m addrtype
    /// --limit-iface-in/out` (it keeps the local routes).
    pub connlimit: bool,
    pub local_routes: bool,
    /// The distinct GID ranges of the `--suppl-groups` rules (`owner::GroupRanges`), which
    /// egress tests each packet's groups against; a rule's `owner_group` indexes them.
    pub owner_groups: Vec<[u32; 2]>,
}

/// Actions `at..at + len`, from `source` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub at: u32,
    pub len: u32,
    pub source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `Actions::computed`, from this index.
    Computed(u32),
    /// The running generation's actions, from this index (never one the data plane
    /// changes: rules with -m limit or -m statistic are computed).
    Running(u32),
}

impl Actions {
    pub fn len(&self) -> usize {
        self.runs.last().map_or(0, |r| (r.at + r.len) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some actions come from the running generation.
    pub fn keeps_any(&self) -> bool {
        self.runs
            .iter()
            .any(|r| matches!(r.source, Source::Running(_)))
    }

    /// The index of GID range `range` among `owner_groups`, added if new.
    pub(super) fn owner_group(&mut self, range: [u32; 2]) -> Result<u8, CompileError> {
        if let Some(k) = self.owner_groups.iter().position(|r| *r == range) {
            return Ok(k as u8);
        }
        if self.owner_groups.len() == owner::GROUP_RANGES {
            return Err(CompileError::TooManyGroupRanges);
        }
        self.owner_groups.push(range);
        Ok((self.owner_groups.len() - 1) as u8)
    }

    pub(super) fn compute(&mut self, action: Action) {
        let source = Source::Computed(self.computed.len() as u32);
        self.computed.push(action);
        self.push(source, |s| matches!(s, Source::Computed(_)));
    }

    pub(super) fn keep(&mut self, from: u32) {
        let before = from.checked_sub(1).map(Source::Running);
        self.push(Source::Running(from), |s| Some(s) == before);
    }

    /// One more action: the last run's next one when `follows` its last source.
    fn push(&mut self, source: Source, follows: impl Fn(Source) -> bool) {
        let at = self.len() as u32;
        match self.runs.last_mut() {
            Some(r) if follows(last_source(r)) => r.len += 1,
            _ => self.runs.push(Run { at, len: 1, source }),
        }
    }

    /// Where these actions differ from the running generation's at the same place, as
    /// `[from, to)` ranges in order: the computed ones, the kept ones that moved, and the
    /// kept jumps (their target's id set again). Elsewhere the two arrays hold the same.
    pub fn changed(&self) -> Vec<[u32; 2]> {
        let moved = self.runs.iter().filter_map(|r| match r.source {
            Source::Running(i) if i == r.at => None,
            _ => Some([r.at, r.at + r.len]),
        });
        let jumps = self.targets.iter().map(|&(i, _)| [i, i + 1]);
        let mut ranges: Vec<[u32; 2]> = moved.chain(jumps).collect();
        ranges.sort_unstable();
        union(ranges)
    }

    /// What to write into an array that holds the running generation's actions except at
    /// `stale` (its ranges; `None`: nothing known): `[from, to)` ranges in order, below
    /// `len()`.
    pub fn to_write(&self, stale: Option<&[[u32; 2]]>) -> Vec<[u32; 2]> {
        let len = self.len() as u32;
        let Some(stale) = stale else {
            return if len > 0 { vec![[0, len]] } else { Vec::new() };
        };
        let mut ranges = self.changed();
        ranges.extend(
            stale
                .iter()
                .filter(|r| r[0] < len)
                .map(|r| [r[0], r[1].min(len)]),
        );
        ranges.sort_unstable();
        union(ranges)
    }

    /// The running generation's actions that writing `ranges` reads: `[from, to)`.
    pub fn sources(&self, ranges: &[[u32; 2]]) -> Option<[u32; 2]> {
        let mut span: Option<[u32; 2]> = None;
        self.each_part(ranges, |source, _, len| {
            if let Source::Running(i) = source {
                let s = span.get_or_insert([i, i + len]);
                *s = [s[0].min(i), s[1].max(i + len)];
            }
        });
        span
    }

    /// Writes the actions in `ranges` into `out`, a window of the array from action
    /// `out_at` on, the kept ones from `running`, a window of the running generation's
    /// from action `running_at` on (`sources(ranges)` must lie inside it).
    pub fn write(
        &self,
        ranges: &[[u32; 2]],
        (out, out_at): (&mut [Action], usize),
        (running, running_at): (&[Action], usize),
    ) {
        self.each_part(ranges, |source, at, len| {
            let to = &mut out[at as usize - out_at..][..len as usize];
            match source {
                Source::Computed(i) => {
                    to.copy_from_slice(&self.computed[i as usize..][..len as usize])
                }
                Source::Running(i) => {
                    to.copy_from_slice(&running[i as usize - running_at..][..len as usize])
                }
            }
        });
        for &(i, chain) in &self.targets {
            if let Some(a) = (i as usize)
                .checked_sub(out_at)
                .and_then(|i| out.get_mut(i))
            {
                a.chain = chain;
            }
        }
    }

    /// Calls `f(source, at, len)` for each part of a run inside `ranges` (in order).
    fn each_part(&self, ranges: &[[u32; 2]], mut f: impl FnMut(Source, u32, u32)) {
        let mut runs = self.runs.iter().peekable();
        for &[from, to] in ranges {
            while runs.next_if(|r| r.at + r.len <= from).is_some() {}
            for r in runs.clone().take_while(|r| r.at < to) {
                let (lo, hi) = (r.at.max(from), (r.at + r.len).min(to));
                let source = match r.source {
                    Source::Computed(i) => Source::Computed(i + lo - r.at),
                    Source::Running(i) => Source::Running(i + lo - r.at),
                };
                f(source, lo, hi - lo);
            }
        }
    }

    /// Every action, the kept ones from `running`.
    pub fn all(&self, running: &[Action]) -> Vec<Action> {
        let mut out = vec![Action::default(); self.len()];
        self.write(&self.to_write(None), (&mut out, 0), (running, 0));
        out
    }
}

/// Sorted ranges, overlapping or touching ones joined.
fn union(sorted: Vec<[u32; 2]>) -> Vec<[u32; 2]> {
    let mut out: Vec<[u32; 2]> = Vec::with_capacity(sorted.len());
    for [from, to] in sorted {
        match out.last_mut() {
            Some(last) if last[1] >= from => last[1] = last[1].max(to),
            _ => out.push([from, to]),
        }
    }
    out
}

/// The source of a run's last action.
fn last_source(r: &Run) -> Source {
    match r.source {
        Source::Computed(i) => Source::Computed(i + r.len - 1),
        Source::Running(i) => Source::Running(i + r.len - 1),
    }
}

/// A generation to install: its chains and actions, the bitmaps to write and its layout.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub layout: Layout,
    pub chains: Vec<ChainConfig>,
    pub actions: Actions,
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

/// How one chain's rules differ from the running generation's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Rules from this one on may all differ: their words are computed.
    From(usize),
    /// Rules `first..end` replaced one for one, the others where they were.
    Replaced { first: usize, end: usize },
    /// One rule inserted at `at` (`insert`) or the one there removed; the rules after it
    /// are the running ones, one place further or closer.
    Shifted { at: usize, insert: bool },
}

impl Old<'_> {
    /// How chain `name` differs from the running ruleset's (`None`: the same; `From(0)`: the
    /// running ruleset lacks it).
    pub(super) fn change(&self, name: &str, new: &Rules) -> Option<Change> {
        match self {
            Old::Table(t) => match super::tables::chain(t, name) {
                Some(c) => {
                    let old = &c.rules;
                    diff(old.len(), new.len(), |i, j| {
                        old[i].counter == new[j].counter || old[i].same_spec(&new[j])
                    })
                }
                None => Some(Change::From(0)),
            },
            Old::Slots(chains) => match chains.iter().find(|(n, _)| n == name) {
                Some((_, old)) => {
                    let new: Vec<u32> = new.counters().collect();
                    diff(old.len(), new.len(), |i, j| old[i] == new[j])
                }
                None => Some(Change::From(0)),
            },
        }
    }
}

/// The counter slots of a chain's rules in the running generation.
pub(super) enum Slots<'a> {
    Rules(&'a [Rule]),
    Slots(&'a [u32]),
}

impl Slots<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Slots::Rules(r) => r.len(),
            Slots::Slots(s) => s.len(),
        }
    }

    pub(super) fn get(&self, i: usize) -> u32 {
        match self {
            Slots::Rules(r) => r[i].counter,
            Slots::Slots(s) => s[i],
        }
    }

    /// How many of `new`'s first rules, and then of its last ones, are the running ones
    /// (the same slot: the same rule).
    pub(super) fn same_ends(&self, new: &[u32]) -> (usize, usize) {
        let (old, n) = (self.len(), new.len());
        let head = (0..old.min(n))
            .take_while(|&i| self.get(i) == new[i])
            .count();
        let tail = (1..=old.min(n) - head)
            .take_while(|&t| self.get(old - t) == new[n - t])
            .count();
        (head, tail)
    }
}

impl Old<'_> {
    /// Chain `name`'s slots in the running generation, if it has the chain.
    pub(super) fn slots(&self, name: &str) -> Option<Slots<'_>> {
        match self {
            Old::Table(t) => super::tables::chain(t, name).map(|c| Slots::Rules(&c.rules)),
            Old::Slots(chains) => chains
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| Slots::Slots(s)),
        }
    }
}

/// How a chain of `old` rules became one of `new` (`same(i, j)`: old rule i has the bits of
/// new rule j). A change within the chain's last word of rules is a `From`: its words are few.
fn diff(old: usize, new: usize, same: impl Fn(usize, usize) -> bool) -> Option<Change> {
    let k = (0..old.min(new)).take_while(|&i| same(i, i)).count();
    if k == old && k == new {
        return None;
    }
    // The rules after the change, the same in both (apart from the common start).
    let tail = (1..=old.min(new) - k)
        .take_while(|&t| same(old - t, new - t))
        .count();
    let (old_end, new_end) = (old - tail, new - tail);
    Some(if tail == 0 || new.div_ceil(64) <= k / 64 + 1 {
        Change::From(k)
    } else if old_end == new_end {
        Change::Replaced {
            first: k,
            end: new_end,
        }
    } else if old_end == k && new_end == k + 1 {
        Change::Shifted {
            at: k,
            insert: true,
        }
    } else if old_end == k + 1 && new_end == k {
        Change::Shifted {
            at: k,
            insert: false,
        }
    } else {
        Change::From(k)
    })
}
