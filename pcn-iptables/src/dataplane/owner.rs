//! `-m owner --suppl-groups`: the pinned `PCN_OWNER_GROUPS` holds, at each generation's slot,
//! the distinct GID ranges of its `--suppl-groups` rules, which egress tests each packet's
//! supplementary groups against once (`pcn_iptables_common::owner::GroupRanges`).

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData};
use pcn_iptables_common::owner::GroupRanges;

const MAP: &str = "PCN_OWNER_GROUPS";

/// Before the generation of `slot` goes live (its slot no longer in use): its ranges (none
/// written as 0 of them, so that egress does not walk).
pub fn prepare(dir: &Path, slot: u32, ranges: &[[u32; 2]]) -> Result<()> {
    let path = dir.join(MAP);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut map: Array<MapData, GroupRanges> = Array::try_from(Map::Array(data))?;
    let mut value = GroupRanges {
        n: ranges.len() as u32,
        ..Default::default()
    };
    value.ranges[..ranges.len()].copy_from_slice(ranges);
    map.set(slot, value, 0).context("writing PCN_OWNER_GROUPS")
}
