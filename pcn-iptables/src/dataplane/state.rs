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
use crate::ruleset::model::{Chain, Policy, Table};

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
    for (n, line) in text.lines().enumerate() {
        let bad = || anyhow!("stored state, line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix(':') {
            let mut parts = rest.split(' ');
            let (Some(name), Some(policy), Some(counter)) =
                (parts.next(), parts.next(), parts.next())
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
            continue;
        }
        let (counter, spec) = line.split_once(' ').ok_or_else(bad)?;
        let words = crate::syntax::split_words(spec).map_err(|e| bad().context(e.message))?;
        let (chain, mut rule) =
            crate::syntax::parse_rule_line(&words).map_err(|e| bad().context(e.message))?;
        rule.counter = counter.parse().map_err(|_| bad())?;
        table.chain_mut(&chain).ok_or_else(bad)?.rules.push(rule);
    }
    Ok(table)
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
    let array: Array<_, Chunk> = Array::try_from(aya::maps::Map::from_map_data(map)?)?;
    let mut bytes = Vec::new();
    for i in 0..array.len() {
        bytes.extend_from_slice(&array.get(&i, 0)?);
    }
    if bytes.len() < 8 {
        bail!("{} is empty", path.display());
    }
    let len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let text = bytes
        .get(8..8 + len)
        .ok_or_else(|| anyhow!("{} is truncated", path.display()))?;
    decode(std::str::from_utf8(text)?)
}
