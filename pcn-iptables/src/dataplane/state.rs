//! The stored state of a generation slot, in an array map of STATE_CHUNK-byte chunks (the
//! first 8 bytes hold the length of what follows): the ruleset, and what the slot's maps hold
//! beyond bitmap words (the compiler's `Layout`), so that the next change builds on them
//! instead of starting over. Binary, read and written in one piece:
//!
//! ```text
//! MAGIC  u32 len + postcard(Header)
//!        u32 len + postcard(chains)  postcard(rules) of each chain, back to back
//!        u32 count + Entry × count (16 bytes each)  u32 count + [u32; 3] × count (the delta)
//!        u32 len + postcard(Others)   (the other tables, which tables are loaded)
//!        u32 len + postcard(lists)    (when present: the `-m recent` lists)
//!        u32 len + postcard(tables)   (when present: the `-m hashlimit` tables)
//! ```
//!
//! Each chain's rules are read when first used (`model::Rules`), and a chain left unchanged
//! is written back from its stored bytes. Version 2 (`PCNSTAT\x02`) kept the rules in chunks
//! of 1,024 whatever their chain (`u32 chunks + (u32 len + postcard(rules)) × chunks`);
//! version 1 also ended after the delta: it had the filter table only, which is then the one
//! table loaded.
//!
//! Versions before it stored the ruleset as `-S` text with each rule's counter slot; that is
//! still read (an upgrade starts from it with a full build):
//!
//! ```text
//! :INPUT ACCEPT 0
//! 7 -A INPUT -s 198.18.0.1/32 -j DROP
//! ```

use std::borrow::Cow;
use std::path::Path;

use std::os::fd::{AsFd as _, OwnedFd};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{Array, MapData};
use pcn_iptables_common::{Counter, STATE_CHUNK};
use serde::{Deserialize, Serialize};

use super::sys;
use crate::compile::{Entry, Layout};
use crate::model::encode_rules;
use crate::model::{
    Chain, Encoded, Policy, Rule, Rules, Shared, Summary, Table, TableName, Tables,
};

pub type Chunk = [u8; STATE_CHUNK];

/// The first bytes of the binary state (text states start with ':'); the last is the version.
const MAGIC: &[u8; 8] = b"PCNSTAT\x03";
/// The binary state whose rules were in chunks across chains.
const MAGIC_V2: &[u8; 8] = b"PCNSTAT\x02";
/// The binary state before the other tables.
const MAGIC_V1: &[u8; 8] = b"PCNSTAT\x01";

/// The tables besides filter, as stored.
#[derive(Serialize, Deserialize)]
struct Others {
    loaded: Vec<TableName>,
    tables: Vec<(TableName, Vec<Chain>)>,
    /// `(table, chain, [packets, bytes])`
    counts: Vec<(TableName, String, [u64; 2])>,
}

/// The version of a binary state (`None`: a text state).
fn version(bytes: &[u8]) -> Option<u8> {
    [MAGIC, MAGIC_V2, MAGIC_V1]
        .into_iter()
        .find(|m| bytes.starts_with(&m[..]))
        .map(|m| m[7])
}

pub fn path(dir: &Path, slot: u32) -> std::path::PathBuf {
    dir.join(format!("state-{slot}"))
}

/// What a slot's maps hold, besides the ruleset.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// Generations count up by one per change; two slots whose numbers differ by one hold
    /// neighbouring generations.
    pub seq: u64,
    /// Ids of the slot's inner maps (chains, actions, fields, bitmaps) when it was written.
    pub maps: [u32; 4],
    pub layout: Layout,
    /// The bitmap words this generation wrote that differ from its predecessor's (the
    /// previous `seq`): `[index, from, to]`; `None`: a full build, which differs everywhere.
    pub delta: Option<Vec<[u32; 3]>>,
    /// The same for its actions: `[from, to)` (`compile::Actions::changed`).
    pub actions_delta: Option<Vec<[u32; 2]>>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    seq: u64,
    maps: [u32; 4],
    layout: Layout,
    full_delta: bool,
    actions_delta: Option<Vec<[u32; 2]>>,
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_le_bytes());
}

#[derive(Serialize, Deserialize)]
struct ChainHead {
    name: String,
    policy: Option<Policy>,
    policy_counter: u32,
    rules: u32,
}

/// A chain as version 3 stores it: its rules' bytes follow the heads.
#[derive(Serialize, Deserialize)]
struct StoredChain<'a> {
    head: ChainHead,
    bytes: u32,
    summary: Cow<'a, Summary>,
}

/// What the next command needs of a chain's rules without reading them.
fn summary(rules: &[Rule]) -> Summary {
    let mut summary = crate::ruleset::summary(rules);
    crate::compile::summarize(rules, &mut summary);
    summary
}

/// The ruleset: the chains, then their rules; a chain unchanged since read is copied.
fn encode_table<'a>(table: &'a Table, out: &mut Pieces<'a>) -> Result<()> {
    let mut heads = Vec::with_capacity(table.chains.len());
    let mut blobs = Vec::with_capacity(table.chains.len());
    for c in &table.chains {
        let (blob, summary) = match c.rules.unchanged() {
            Some(stored) => (
                Cow::Borrowed(stored.bytes()),
                Cow::Borrowed(stored.summary()),
            ),
            None => (
                Cow::Owned(encode_rules(&c.rules)?),
                Cow::Owned(summary(&c.rules)),
            ),
        };
        heads.push(StoredChain {
            head: ChainHead {
                name: c.name.clone(),
                policy: c.policy,
                policy_counter: c.policy_counter,
                rules: c.rules.len() as u32,
            },
            bytes: blob.len() as u32,
            summary,
        });
        blobs.push(blob);
    }
    out.part(&postcard::to_allocvec(&heads)?);
    for blob in blobs {
        out.piece(blob);
    }
    Ok(())
}

/// The ruleset of a version 3 state, each chain's rules left in `bytes` until read.
fn decode_table(r: &mut Reader, bytes: &Shared) -> Result<Table> {
    let n = r.len()?;
    let heads: Vec<StoredChain> =
        postcard::from_bytes(r.take(n)?).context("decoding the stored chains")?;
    let mut table = Table::of_chains(Vec::with_capacity(heads.len()));
    for StoredChain {
        head: h,
        bytes: n,
        summary,
    } in heads
    {
        let at = r.at;
        r.take(n as usize)?;
        if summary.counters.len() != h.rules as usize {
            bail!("the stored chain {} is damaged", h.name);
        }
        let rules = Encoded::new(bytes.clone(), at..at + n as usize, summary.into_owned());
        table.chains.push(Chain {
            name: h.name,
            policy: h.policy,
            policy_counter: h.policy_counter,
            rules: Rules::stored(rules),
        });
    }
    Ok(table)
}

/// The ruleset of a version 1 or 2 state: rules in chunks of up to 1,024, whatever their chain.
fn decode_table_v2(r: &mut Reader) -> Result<Table> {
    let n = r.len()?;
    let heads: Vec<ChainHead> =
        postcard::from_bytes(r.take(n)?).context("decoding the stored chains")?;
    let chunks = (0..r.len()?)
        .map(|_| {
            let n = r.len()?;
            r.take(n)
        })
        .collect::<Result<Vec<&[u8]>>>()?;
    let mut chunks = chunks.into_iter();
    let (mut chunk, mut left): (&[u8], usize) = (&[], 0);
    let mut next_rule = || -> Result<Rule> {
        while left == 0 {
            let next = chunks.next().context("the stored ruleset is truncated")?;
            (left, chunk) = postcard::take_from_bytes(next).context("decoding the stored rules")?;
        }
        let (rule, rest) = postcard::take_from_bytes(chunk).context("decoding the stored rules")?;
        (chunk, left) = (rest, left - 1);
        Ok(rule)
    };
    let mut table = Table::of_chains(Vec::with_capacity(heads.len()));
    for h in heads {
        let rules = (0..h.rules)
            .map(|_| next_rule())
            .collect::<Result<Vec<_>>>()?;
        table.chains.push(Chain {
            name: h.name,
            policy: h.policy,
            policy_counter: h.policy_counter,
            rules: rules.into(),
        });
    }
    Ok(table)
}

/// The state of a slot: `table` in maps described by the rest (see `Slot`).
pub fn encode<'a>(
    table: &'a Table,
    seq: u64,
    maps: [u32; 4],
    layout: &'a Layout,
    delta: Option<&[[u32; 3]]>,
    actions_delta: Option<&[[u32; 2]]>,
) -> Result<Pieces<'a>> {
    let mut out = Pieces(Vec::new());
    out.piece(Cow::Borrowed(MAGIC));
    out.part(&postcard::to_allocvec(&Header {
        seq,
        maps,
        layout: Layout {
            chain_names: layout.chain_names.clone(),
            chains: layout.chains.clone(),
            entries: Vec::new(),
            next_index: layout.next_index,
            words: layout.words,
            inputs: layout.inputs,
            entries_at_full: layout.entries_at_full,
        },
        full_delta: delta.is_none(),
        actions_delta: actions_delta.map(<[_]>::to_vec),
    })?);
    encode_table(table, &mut out)?;
    let entries = &layout.entries;
    out.piece(Cow::Owned((entries.len() as u32).to_le_bytes().to_vec()));
    // SAFETY: Entry is repr(C), 16 bytes, no padding the compiler leaves uninitialized (the
    // pad bytes are a field).
    out.piece(Cow::Borrowed(unsafe {
        std::slice::from_raw_parts(entries.as_ptr().cast::<u8>(), entries.len() * 16)
    }));
    let delta = delta.unwrap_or_default();
    let mut d = Vec::with_capacity(4 + delta.len() * 12);
    put_u32(&mut d, delta.len());
    for v in delta.iter().flatten() {
        d.extend_from_slice(&v.to_le_bytes());
    }
    out.piece(Cow::Owned(d));
    out.part(&postcard::to_allocvec(&Others {
        loaded: table.tables.loaded.clone(),
        tables: table
            .tables
            .others
            .iter()
            .map(|(name, t)| (*name, t.chains.clone()))
            .collect(),
        counts: table
            .tables
            .counts
            .iter()
            .map(|(t, chain, c)| (*t, chain.clone(), [c.packets, c.bytes]))
            .collect(),
    })?);
    out.part(&postcard::to_allocvec(&table.tables.recent)?);
    out.part(&postcard::to_allocvec(&table.tables.hashlimit)?);
    Ok(out)
}

/// A state as the pieces it is written from, the big ones borrowed (each unchanged chain's
/// stored rules, the trie entries): copied once, straight into the new state map.
pub struct Pieces<'a>(Vec<Cow<'a, [u8]>>);

impl<'a> Pieces<'a> {
    fn piece(&mut self, bytes: Cow<'a, [u8]>) {
        self.0.push(bytes);
    }

    /// `u32 len` and `bytes`.
    fn part(&mut self, bytes: &[u8]) {
        let mut v = Vec::with_capacity(4 + bytes.len());
        put_u32(&mut v, bytes.len());
        v.extend_from_slice(bytes);
        self.0.push(Cow::Owned(v));
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|p| p.len()).sum()
    }

    fn write(&self, out: &mut [u8]) {
        let mut at = 0;
        for p in &self.0 {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }

    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.write(&mut v);
        v
    }
}

/// The other tables of a version 2 state; a version 1 state had the filter table, loaded.
fn decode_others(r: &mut Reader, v2: bool) -> Result<Tables> {
    if !v2 {
        return Ok(Tables {
            loaded: vec![TableName::Filter],
            ..Tables::default()
        });
    }
    let n = r.len()?;
    let others: Others = postcard::from_bytes(r.take(n)?).context("decoding the stored tables")?;
    let recent = r.optional("recent lists")?;
    let hashlimit = r.optional("hashlimit tables")?;
    Ok(Tables {
        recent,
        hashlimit,
        loaded: others.loaded,
        others: others
            .tables
            .into_iter()
            .map(|(name, chains)| (name, Table::of_chains(chains)))
            .collect(),
        counts: others
            .counts
            .into_iter()
            .map(|(t, chain, [packets, bytes])| (t, chain, Counter { packets, bytes }))
            .collect(),
    })
}

/// Reads the state at `payload` of `bytes`: the ruleset, and the slot's description unless
/// it is a text state. The chains' rules stay in `bytes` until read.
pub fn decode(bytes: &Shared, payload: std::ops::Range<usize>) -> Result<(Table, Option<Slot>)> {
    let state = &(**bytes).as_ref()[payload.clone()];
    let Some(version) = version(state) else {
        let mut table = decode_text(std::str::from_utf8(state)?)?;
        table.tables.loaded = vec![TableName::Filter];
        return Ok((table, None));
    };
    let mut r = Reader {
        bytes: &(**bytes).as_ref()[..payload.end],
        at: payload.start + MAGIC.len(),
    };
    let n = r.len()?;
    let header: Header = postcard::from_bytes(r.take(n)?).context("decoding the stored state")?;
    let mut table = if version >= 3 {
        decode_table(&mut r, bytes)?
    } else {
        decode_table_v2(&mut r)?
    };
    let n = r.len()?;
    let raw = r.take(n * 16)?;
    let mut entries = vec![Entry::default(); n];
    // SAFETY: n entries of 16 bytes each, any bit pattern a valid Entry.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.as_ptr(), entries.as_mut_ptr().cast::<u8>(), n * 16)
    };
    let n = r.len()?;
    let delta = r
        .take(n * 12)?
        .chunks_exact(12)
        .map(|c| {
            let v = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            [v(0), v(4), v(8)]
        })
        .collect();
    table.tables = decode_others(&mut r, version >= 2)?;
    let mut layout = header.layout;
    layout.entries = entries;
    Ok((
        table,
        Some(Slot {
            seq: header.seq,
            maps: header.maps,
            layout,
            delta: (!header.full_delta).then_some(delta),
            actions_delta: header.actions_delta,
        }),
    ))
}

/// Reads `bytes` from `at` on.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A part later versions added (`u32 len + postcard`): empty when the state ends before.
    fn optional<T: serde::de::DeserializeOwned + Default>(&mut self, what: &str) -> Result<T> {
        if self.at == self.bytes.len() {
            return Ok(T::default());
        }
        let n = self.len()?;
        postcard::from_bytes(self.take(n)?).with_context(|| format!("decoding the stored {what}"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some(taken) = self.bytes.get(self.at..self.at.saturating_add(n)) else {
            bail!("the stored state is truncated");
        };
        self.at += n;
        Ok(taken)
    }

    fn len(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?) as usize)
    }
}

/// The text state of versions before the binary one.
fn decode_text(text: &str) -> Result<Table> {
    let mut table = Table::of_chains(Vec::new());
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix(':') else {
            rules.push((n, line));
            continue;
        };
        let bad = || anyhow!("stored state, line {}: {line:?}", n + 1);
        let mut parts = rest.split(' ');
        let (Some(name), Some(policy), Some(counter)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let policy = match policy {
            "ACCEPT" => Some(Policy::Accept),
            "DROP" => Some(Policy::Drop),
            "-" => None,
            _ => return Err(bad()),
        };
        table.chains.push(Chain {
            name: name.to_string(),
            policy,
            policy_counter: counter.parse().map_err(|_| bad())?,
            rules: Default::default(),
        });
    }
    for &(n, line) in &rules {
        let bad = || anyhow!("stored state, line {}: {line:?}", n + 1);
        let (counter, spec) = line.split_once(' ').ok_or_else(bad)?;
        let words = crate::syntax::split_words(spec).map_err(|e| bad().context(e.message))?;
        let (chain, mut rule): (String, Rule) =
            crate::syntax::parse_rule_line(&words).map_err(|e| bad().context(e.message))?;
        rule.counter = counter.parse().map_err(|_| bad())?;
        table.chain_mut(&chain).ok_or_else(bad)?.rules.push(rule);
    }
    Ok(table)
}

/// A new array map holding `state` (mmapable: written in place, no syscall per chunk).
pub fn create(state: &Pieces) -> Result<OwnedFd> {
    let len = 8 + state.len();
    let fd = sys::map_create(
        "RULESET",
        sys::MAP_TYPE_ARRAY,
        4,
        STATE_CHUNK as u32,
        len.div_ceil(STATE_CHUNK) as u32,
        sys::F_MMAPABLE,
    )
    .context("creating the ruleset map")?;
    let mut mapping = sys::Mapping::new(fd.as_fd(), len).context("mapping the ruleset map")?;
    let out = mapping.bytes();
    out[..8].copy_from_slice(&(state.len() as u64).to_le_bytes());
    state.write(&mut out[8..len]);
    Ok(fd)
}

/// The sequence number and map ids of a binary state (`None`: a text state).
fn decode_header(state: &[u8]) -> Result<Option<(u64, [u32; 4])>> {
    if version(state).is_none() {
        return Ok(None);
    }
    let mut r = Reader {
        bytes: state,
        at: MAGIC.len(),
    };
    let n = r.len()?;
    let header: Header = postcard::from_bytes(r.take(n)?).context("decoding the stored state")?;
    Ok(Some((header.seq, header.maps)))
}

/// The state of `slot`, `None` when it has none.
pub fn read(dir: &Path, slot: u32) -> Result<Option<(Table, Option<Slot>)>> {
    let Some((bytes, len)) = open(dir, slot, None)? else {
        return Ok(None);
    };
    let _t = super::timer::Timer("decode", std::time::Instant::now());
    decode(&bytes, 8..8 + len).map(Some)
}

/// The sequence number and map ids of the state of `slot`, if it has a binary one: only the
/// pages the header takes are mapped.
pub fn read_header(dir: &Path, slot: u32) -> Result<Option<(u64, [u32; 4])>> {
    // The length, magic and header length, then the header.
    const START: usize = 8 + MAGIC.len() + 4;
    let Some((bytes, _)) = open(dir, slot, Some(4096))? else {
        return Ok(None);
    };
    let head = (*bytes).as_ref();
    let header_len = match head.get(START - 4..START) {
        Some(n) if version(&head[8..]).is_some() => u32::from_le_bytes(n.try_into()?) as usize,
        _ => return decode_header(head.get(8..).unwrap_or_default()),
    };
    let bytes = match START + header_len > head.len() {
        true => {
            open(dir, slot, Some(START + header_len))?
                .context("the state went away")?
                .0
        }
        false => bytes,
    };
    decode_header(&(*bytes).as_ref()[8..])
}

/// The bytes of the state map of `slot` (its first `want` at least, or all), and the length
/// of the state they hold after its 8-byte length.
fn open(dir: &Path, slot: u32, want: Option<usize>) -> Result<Option<(Shared, usize)>> {
    let path = path(dir, slot);
    if !path.exists() {
        return Ok(None);
    }
    let map = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let info = map.info()?;
    let bytes: Shared = if info.map_flags() & sys::F_MMAPABLE != 0 {
        let size = info.value_size() as usize * info.max_entries() as usize;
        let size = want.map_or(size, |w| w.next_multiple_of(4096).min(size));
        let mapping = sys::Mapping::new(map.fd().as_fd(), size)
            .with_context(|| format!("mapping {}", path.display()))?;
        std::sync::Arc::new(mapping)
    } else {
        // Written by an older version: one chunk at a time.
        let array: Array<_, Chunk> = Array::try_from(aya::maps::Map::from_map_data(map)?)?;
        let mut bytes = Vec::new();
        for i in 0..array.len() {
            bytes.extend_from_slice(&array.get(&i, 0)?);
        }
        std::sync::Arc::new(bytes)
    };
    let all = (*bytes).as_ref();
    if all.len() < 8 {
        bail!("{} is empty", path.display());
    }
    let len = u64::from_le_bytes(all[..8].try_into()?) as usize;
    if want.is_none() && all.len() < 8 + len {
        bail!("{} is truncated", path.display());
    }
    Ok(Some((bytes, len)))
}

/// `table` stored and read back as a command reads it: its chains undecoded (tests of what
/// builds on stored chains).
#[cfg(test)]
pub(crate) fn stored(table: &Table, layout: &Layout) -> Table {
    let bytes = encode(table, 1, [0; 4], layout, None, None)
        .unwrap()
        .to_vec();
    let shared: Shared = std::sync::Arc::new(bytes);
    let len = (*shared).as_ref().len();
    decode(&shared, 0..len).unwrap().0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{AddressTypes, program};

    fn decode_bytes(bytes: &[u8]) -> Result<(Table, Option<Slot>)> {
        let shared: Shared = std::sync::Arc::new(bytes.to_vec());
        decode(&shared, 0..bytes.len())
    }

    /// `bytes` (a version 3 state) as version 1 or 2 stored them: the rules in chunks.
    fn as_version(bytes: &[u8], magic: &[u8; 8]) -> Vec<u8> {
        let mut r = Reader {
            bytes,
            at: MAGIC.len(),
        };
        let n = r.len().unwrap();
        r.take(n).unwrap();
        let table_at = r.at;
        let n = r.len().unwrap();
        let heads: Vec<StoredChain> = postcard::from_bytes(r.take(n).unwrap()).unwrap();
        let mut rules: Vec<Rule> = Vec::new();
        for h in &heads {
            let blob = r.take(h.bytes as usize).unwrap();
            rules.extend(postcard::from_bytes::<Vec<Rule>>(blob).unwrap());
        }
        let mut out = magic.to_vec();
        out.extend_from_slice(&bytes[MAGIC.len()..table_at]);
        let heads: Vec<ChainHead> = heads.into_iter().map(|h| h.head).collect();
        let heads = postcard::to_allocvec(&heads).unwrap();
        put_u32(&mut out, heads.len());
        out.extend_from_slice(&heads);
        put_u32(&mut out, rules.len().div_ceil(1024));
        for chunk in rules.chunks(1024) {
            let chunk = postcard::to_allocvec(chunk).unwrap();
            put_u32(&mut out, chunk.len());
            out.extend_from_slice(&chunk);
        }
        out.extend_from_slice(&bytes[r.at..]);
        out
    }

    fn table(text: &str) -> Table {
        let mut table = Table::default();
        for (i, line) in text.lines().enumerate() {
            let words = crate::syntax::split_words(line).unwrap();
            let (chain, mut rule) = crate::syntax::parse_rule_line(&words).unwrap();
            rule.counter = 10 + i as u32;
            table.chain_mut(&chain).unwrap().rules.push(rule);
        }
        table
    }

    #[test]
    fn binary_state_round_trips() {
        let t = table(
            "-A INPUT -s 198.18.0.0/15 ! -d 198.18.3.4/32 -p tcp -m tcp --dport 22 -j ACCEPT\n\
             -A INPUT -i eth+ -m comment --comment \"a b\" -m limit --limit 3/sec -j LOG --log-prefix \"x: \"\n\
             -A OUTPUT -p udp -m multiport --dports 53,1000:2000 -j REJECT --reject-with icmp-port-unreachable",
        );
        let p = program(&t, &[], &AddressTypes::default(), None).unwrap();
        let bytes = encode(
            &t,
            7,
            [1, 2, 3, 4],
            &p.layout,
            Some(&[[5, 1, 2]]),
            Some(&[[3, 9]]),
        )
        .unwrap()
        .to_vec();
        let (back, got) = decode_bytes(&bytes).unwrap();
        assert_eq!(
            crate::ruleset::list_rules(&back, None, None, None).unwrap(),
            crate::ruleset::list_rules(&t, None, None, None).unwrap()
        );
        for (a, b) in back.chains.iter().zip(&t.chains) {
            assert_eq!(a.policy_counter, b.policy_counter);
            for (x, y) in a.rules.iter().zip(&b.rules) {
                assert!(x.same_spec(y));
                assert_eq!(x.counter, y.counter);
            }
        }
        let got = got.unwrap();
        assert_eq!((got.seq, got.maps), (7, [1, 2, 3, 4]));
        assert_eq!(got.layout.entries, p.layout.entries);
        assert_eq!(got.layout.chain_names, p.layout.chain_names);
        assert_eq!(got.delta, Some(vec![[5, 1, 2]]));
        assert_eq!(got.actions_delta, Some(vec![[3, 9]]));
    }

    #[test]
    fn big_rulesets_round_trip_in_chunks() {
        let mut t = Table::default();
        t.add_chain(Chain {
            name: "web".into(),
            policy: None,
            policy_counter: 0,
            rules: Default::default(),
        });
        let rule = |i: usize| {
            let words = crate::syntax::split_words(&format!(
                "-A INPUT -s 10.{}.{}.0/24 -p tcp -m tcp --dport {} -j DROP",
                i / 256 % 256,
                i % 256,
                i % 60000 + 1
            ))
            .unwrap();
            let mut r = crate::syntax::parse_rule_line(&words).unwrap().1;
            r.counter = 100 + i as u32;
            r
        };
        t.chains[0].rules = (0..5000).map(rule).collect();
        t.chains[3].rules = (5000..5100).map(rule).collect();
        let p = program(&t, &[], &AddressTypes::default(), None).unwrap();
        let bytes = encode(&t, 1, [0; 4], &p.layout, None, None)
            .unwrap()
            .to_vec();
        // As this version stores it, and as version 2 did (rules in chunks across chains).
        for bytes in [bytes.clone(), as_version(&bytes, MAGIC_V2)] {
            let (back, _) = decode_bytes(&bytes).unwrap();
            assert_eq!(back.chains.len(), 4);
            for (a, b) in back.chains.iter().zip(&t.chains) {
                assert_eq!(a.name, b.name);
                assert_eq!(a.rules.len(), b.rules.len());
                for (x, y) in a.rules.iter().zip(&b.rules) {
                    assert!(x.same_spec(y));
                    assert_eq!(x.counter, y.counter);
                }
            }
        }
    }

    /// A chain is decoded when its rules are read, and stored again from its bytes until
    /// changed.
    #[test]
    fn chains_are_decoded_when_read_and_stored_as_read_until_changed() {
        let t = table(
            "-A INPUT -s 198.18.0.1/32 -j DROP\n-A OUTPUT -d 198.18.0.2/32 -j DROP\n\
             -A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT",
        );
        let p = program(&t, &[], &AddressTypes::default(), None).unwrap();
        let bytes = encode(&t, 1, [0; 4], &p.layout, None, None)
            .unwrap()
            .to_vec();
        let (mut back, _) = decode_bytes(&bytes).unwrap();
        assert!(back.chains.iter().all(|c| !c.rules.is_decoded()));
        assert_eq!(back.chains[2].rules.len(), 1);
        assert!(!back.chains[2].rules.is_decoded());
        // Read: decoded, still stored from its bytes.
        assert_eq!(back.chains[1].rules[0].counter, 12);
        assert!(back.chains[1].rules.is_decoded() && back.chains[1].rules.unchanged().is_some());
        // Changed: encoded anew.
        back.chains[0].rules[0].counter = 99;
        assert!(back.chains[0].rules.unchanged().is_none());
        let again = encode(&back, 2, [0; 4], &p.layout, None, None)
            .unwrap()
            .to_vec();
        let (last, _) = decode_bytes(&again).unwrap();
        let counters = |t: &Table| -> Vec<u32> { t.counters().collect() };
        assert_eq!(counters(&last), [0, 99, 1, 12, 2, 11]);
        assert_eq!(bytes.len(), again.len());
        assert_ne!(bytes, again);
    }

    #[test]
    fn text_state_of_older_versions_is_read() {
        let (t, slot) = decode_bytes(
            b":INPUT DROP 0\n:FORWARD ACCEPT 1\n:OUTPUT ACCEPT 2\n:web - 0\n\
              7 -A INPUT -s 198.18.0.1/32 -j web\n8 -A web -j DROP\n",
        )
        .unwrap();
        assert!(slot.is_none());
        assert_eq!(t.chains.len(), 4);
        assert_eq!(t.chains[0].policy, Some(Policy::Drop));
        assert_eq!(t.chains[0].rules[0].counter, 7);
        assert_eq!(t.chain("web").unwrap().rules.len(), 1);
    }

    #[test]
    fn other_tables_round_trip_and_version_1_has_filter_loaded() {
        let mut t = table("-A INPUT -j ACCEPT");
        let mut nat = Table::builtin(TableName::Nat);
        nat.chains[0].policy = Some(Policy::Drop);
        nat.add_chain(Chain {
            name: "DOCKER".into(),
            policy: None,
            policy_counter: 0,
            rules: Default::default(),
        });
        t.tables.set(TableName::Nat, nat);
        t.tables.load(TableName::Nat);
        t.tables.load(TableName::Filter);
        let p = program(&t, &[], &AddressTypes::default(), None).unwrap();
        let bytes = encode(&t, 1, [0; 4], &p.layout, None, None)
            .unwrap()
            .to_vec();
        let (back, _) = decode_bytes(&bytes).unwrap();
        assert_eq!(back.tables.loaded, [TableName::Filter, TableName::Nat]);
        let nat = back.tables.get(TableName::Nat);
        assert_eq!(
            crate::ruleset::list_rules(&nat, None, None, None).unwrap(),
            "-P PREROUTING DROP\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n-N DOCKER\n"
        );
        // Version 1: the rules in chunks, and what follows the delta not read.
        let (old, slot) = decode_bytes(&as_version(&bytes, MAGIC_V1)).unwrap();
        assert!(slot.is_some());
        assert_eq!(old.tables.loaded, [TableName::Filter]);
        assert!(old.tables.others.is_empty());
        assert_eq!(old.chains[0].rules.len(), 1);
    }
}
