//! The stored ruleset of a generation slot: `-S` text with each rule's counter slot, in an
//! array map of STATE_CHUNK-byte chunks (the first 8 bytes hold the text's length).
//!
//! ```text
//! :INPUT ACCEPT 0
//! 7 -A INPUT -s 198.18.0.1/32 -j DROP
//! ```

use std::path::Path;

use std::os::fd::{AsFd as _, OwnedFd};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{Array, MapData};
use pcn_iptables_common::STATE_CHUNK;

use super::sys;
use crate::ruleset::model::{Chain, Policy, Rule, Table};

pub type Chunk = [u8; STATE_CHUNK];

pub fn path(dir: &Path, slot: u32) -> std::path::PathBuf {
    dir.join(format!("state-{slot}"))
}

pub fn encode(table: &Table) -> String {
    let mut text = String::new();
    for chain in &table.chains {
        let policy = match chain.policy {
            Some(Policy::Accept) => "ACCEPT",
            Some(Policy::Drop) => "DROP",
            None => "-",
        };
        text += &format!(":{} {} {}\n", chain.name, policy, chain.policy_counter);
    }
    for chain in &table.chains {
        for rule in &chain.rules {
            text += &format!(
                "{} {}\n",
                rule.counter,
                crate::ruleset::rule_spec(&chain.name, rule)
            );
        }
    }
    text
}

pub fn decode(text: &str) -> Result<Table> {
    let mut table = Table { chains: Vec::new() };
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
            rules: Vec::new(),
        });
    }
    // Rules parse independently of each other: big rulesets on every CPU (up to 4).
    let threads = if rules.len() < 1024 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    let parsed: Vec<Result<Vec<(String, Rule)>>> = if threads == 1 {
        vec![parse_rules(&rules)]
    } else {
        std::thread::scope(|s| {
            let parts: Vec<_> = rules
                .chunks(rules.len().div_ceil(threads))
                .map(|part| s.spawn(|| parse_rules(part)))
                .collect();
            parts
                .into_iter()
                .map(|p| {
                    p.join()
                        .unwrap_or_else(|_| Err(anyhow!("decoding the stored state")))
                })
                .collect()
        })
    };
    let mut lines = rules.iter();
    for part in parsed {
        for (chain, rule) in part? {
            let (n, line) = lines.next().copied().unwrap_or_default();
            table
                .chain_mut(&chain)
                .ok_or_else(|| anyhow!("stored state, line {}: {line:?}", n + 1))?
                .rules
                .push(rule);
        }
    }
    Ok(table)
}

/// Rule lines (with their index in the text), in order.
fn parse_rules(lines: &[(usize, &str)]) -> Result<Vec<(String, Rule)>> {
    lines
        .iter()
        .map(|&(n, line)| {
            let bad = || anyhow!("stored state, line {}: {line:?}", n + 1);
            let (counter, spec) = line.split_once(' ').ok_or_else(bad)?;
            let words = crate::syntax::split_words(spec).map_err(|e| bad().context(e.message))?;
            let (chain, mut rule) =
                crate::syntax::parse_rule_line(&words).map_err(|e| bad().context(e.message))?;
            rule.counter = counter.parse().map_err(|_| bad())?;
            Ok((chain, rule))
        })
        .collect()
}

/// A new array map holding `text` (mmapable: written in place, no syscall per chunk).
pub fn create(text: &str) -> Result<OwnedFd> {
    let len = 8 + text.len();
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
    let bytes = mapping.bytes();
    bytes[..8].copy_from_slice(&(text.len() as u64).to_le_bytes());
    bytes[8..].copy_from_slice(text.as_bytes());
    Ok(fd)
}

pub fn read(dir: &Path, slot: u32) -> Result<Table> {
    let path = path(dir, slot);
    let map = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let info = map.info()?;
    let parse = |bytes: &[u8]| -> Result<Table> {
        if bytes.len() < 8 {
            bail!("{} is empty", path.display());
        }
        let len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
        let text = bytes
            .get(8..8 + len)
            .ok_or_else(|| anyhow!("{} is truncated", path.display()))?;
        let _t = super::Timer("decode", std::time::Instant::now());
        decode(std::str::from_utf8(text)?)
    };
    if info.map_flags() & sys::F_MMAPABLE != 0 {
        let size = info.value_size() as usize * info.max_entries() as usize;
        let mut mapping = sys::Mapping::new(map.fd().as_fd(), size)
            .with_context(|| format!("mapping {}", path.display()))?;
        return parse(mapping.bytes());
    }
    // Written by an older version: one chunk at a time.
    let array: Array<_, Chunk> = Array::try_from(aya::maps::Map::from_map_data(map)?)?;
    let mut bytes = Vec::new();
    for i in 0..array.len() {
        bytes.extend_from_slice(&array.get(&i, 0)?);
    }
    parse(&bytes)
}
