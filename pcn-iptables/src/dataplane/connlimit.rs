//! `-m connlimit`'s lists in the kernel (`PCN_CONNLIMIT`, pinned in the namespace's
//! directory): made by the data plane as packets need them, keyed by the generation's epoch.
//! iptables-legacy's every change makes new match instances, whose counts start empty; here a
//! new generation starts with no lists, and those of the one it replaced are dropped.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{HashMap, Map, MapData};
use pcn_iptables_common::connlimit::{List, ListKey};

const PIN: &str = "PCN_CONNLIMIT";

/// Drops the lists of every generation but the one of `epoch` (the running one).
pub(super) fn forget_others(dir: &Path, epoch: u64) -> Result<()> {
    let path = dir.join(PIN);
    if !path.exists() {
        return Ok(());
    }
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut lists: HashMap<_, ListKey, List> = HashMap::try_from(Map::HashMap(data))?;
    let stale: Vec<ListKey> = lists
        .keys()
        .filter_map(Result::ok)
        .filter(|k| k.epoch != epoch)
        .collect();
    for key in stale {
        // Gone meanwhile (another command's cleanup) is as good.
        let _ = lists.remove(&key);
    }
    Ok(())
}
