//! `-m connlimit`'s lists in the kernel: the outer map `CONNLIMIT` (pinned in the namespace's
//! directory) holds, at each generation's slot, a hash map of the lists of that generation,
//! which the data plane fills as packets need them. iptables-legacy's every change makes new
//! match instances, whose counts start empty: a generation with connlimit rules gets a new
//! empty map before it goes live, one without none (no memory).

use std::{os::fd::AsFd as _, path::Path};

use anyhow::{Context as _, Result};
use pcn_iptables_common::connlimit::{LISTS, List, ListKey};

use super::sys;

pub const OUTER_PIN: &str = "CONNLIMIT";

fn new_lists(entries: u32) -> Result<std::os::fd::OwnedFd> {
    sys::map_create(
        "PCN_CONNLIMIT",
        sys::MAP_TYPE_HASH,
        std::mem::size_of::<ListKey>() as u32,
        std::mem::size_of::<List>() as u32,
        entries,
        sys::F_NO_PREALLOC,
    )
    .context("creating the -m connlimit lists")
}

/// Makes and pins the outer map unless it is (before the programs load: the loader reuses the
/// pin).
pub fn create(dir: &Path) -> Result<()> {
    let pin = dir.join(OUTER_PIN);
    if pin.exists() {
        return Ok(());
    }
    let entries = pcn_iptables_common::GENERATIONS;
    sys::pin_outer(&pin, OUTER_PIN, new_lists(1)?.as_fd(), entries).context("creating CONNLIMIT")
}

/// Before the generation of `slot` goes live (its slot no longer in use): empty lists if it
/// has connlimit rules (`wanted`), else none.
pub fn prepare(dir: &Path, slot: u32, wanted: bool) -> Result<()> {
    let outer = sys::obj_get(&dir.join(OUTER_PIN)).context("opening CONNLIMIT")?;
    if wanted {
        sys::set_fd(outer.as_fd(), slot, new_lists(LISTS)?.as_fd())
            .context("installing the -m connlimit lists")
    } else {
        sys::map_delete(outer.as_fd(), &slot.to_ne_bytes()).context("dropping connlimit lists")?;
        Ok(())
    }
}
