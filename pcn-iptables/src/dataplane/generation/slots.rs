//! The outer maps' slots and the state pinned beside each: stored, read, removed.

use std::{
    fs,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result};

use super::object::{OUTER, pinned};
use crate::dataplane::{state, sys};
use crate::model::Table;

pub(super) type Slots<'a> = [Option<BorrowedFd<'a>>; 4];

/// Stores maps in `slot` of the outer maps (`None`: leave that one).
pub(super) fn store(outer: &[OwnedFd; 4], slot: u32, maps: Slots<'_>) -> Result<()> {
    store_slots(outer, &[(slot, maps)])
}

/// Stores maps in slots of the outer maps, all at once: each update of a map of maps waits
/// for a grace period; one batch per outer map waits once, and the outer maps' batches, made
/// together, share it.
pub(super) fn store_slots(outer: &[OwnedFd; 4], slots: &[(u32, Slots<'_>)]) -> Result<()> {
    std::thread::scope(|s| {
        let updates: Vec<_> = OUTER
            .iter()
            .zip(outer)
            .enumerate()
            .filter_map(|(k, (name, outer))| {
                let mut keys = Vec::new();
                let mut values = Vec::new();
                for (slot, maps) in slots {
                    if let Some(map) = maps[k] {
                        keys.extend_from_slice(&slot.to_ne_bytes());
                        values.extend_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
                    }
                }
                (!keys.is_empty()).then(|| {
                    s.spawn(move || {
                        let n = keys.len() as u32 / 4;
                        match sys::map_update_batch(outer.as_fd(), &keys, &values, n) {
                            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => keys
                                .chunks_exact(4)
                                .zip(values.chunks_exact(4))
                                .try_for_each(|(k, v)| sys::map_update(outer.as_fd(), k, v, 0)),
                            r => r,
                        }
                        .with_context(|| format!("storing the new {name}"))
                    })
                })
            })
            .collect();
        updates
            .into_iter()
            .try_for_each(|u| u.join().unwrap_or_else(|_| Err(anyhow::anyhow!("thread"))))
    })
}

/// The ids of the maps in `slot` of the outer maps.
pub(super) fn ids_at(outer: &[OwnedFd; 4], slot: u32) -> Result<[Option<u32>; 4]> {
    let mut ids = [None; 4];
    for (id, outer) in ids.iter_mut().zip(outer) {
        *id = sys::id_at(outer.as_fd(), slot)?;
    }
    Ok(ids)
}

/// Whether a classifier was ever installed in `slot` (packets may be in its generation).
pub(super) fn in_use(dir: &Path, slot: u32) -> Result<bool> {
    for progs in ["PCN_PROGS_XDP", "PCN_PROGS_TC"] {
        if sys::id_at(pinned(dir, progs)?.as_fd(), slot)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn unpin_state(dir: &Path, slot: u32) -> Result<()> {
    let path = state::path(dir, slot);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub(super) fn pin_state(dir: &Path, slot: u32, table: &Table, info: &state::Slot) -> Result<()> {
    let bytes = state::encode(
        table,
        info.seq,
        info.maps,
        &info.layout,
        info.delta.as_deref(),
        info.actions_delta.as_deref(),
    )?;
    pin_bytes(dir, slot, &bytes)
}

pub(super) fn pin_bytes(dir: &Path, slot: u32, state: &state::Pieces) -> Result<()> {
    let fd = state::create(state)?;
    unpin_state(dir, slot)?;
    let path = state::path(dir, slot);
    sys::obj_pin(fd.as_fd(), &path).with_context(|| format!("pinning {}", path.display()))
}

pub(super) fn id_of(fd: &OwnedFd) -> Result<u32> {
    Ok(sys::map_info(fd.as_fd())?.id)
}
