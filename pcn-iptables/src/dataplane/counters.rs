//! Setting rule and policy counters in the per-CPU counter map.

use std::os::fd::BorrowedFd;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, PerCpuArray, PerCpuValues};
use pcn_iptables_common::Counter;

use super::sys;

/// Sets counter slots: the first CPU's share holds the whole count, the others none.
pub(crate) fn set_counters<T: std::borrow::BorrowMut<MapData>>(
    map: &mut PerCpuArray<T, Counter>,
    counters: impl IntoIterator<Item = (u32, Counter)>,
) -> Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    for (slot, counter) in counters {
        let mut values = vec![Counter::default(); cpus];
        values[0] = counter;
        map.set(slot, PerCpuValues::try_from(values)?, 0)
            .with_context(|| format!("setting counter {slot}"))?;
    }
    Ok(())
}

/// Sets counter slots in the pinned counter map `map` in one batch update (one at a time where
/// the kernel has none); as `set_counters`.
pub(crate) fn set_counters_batch(map: BorrowedFd<'_>, counters: &[(u32, Counter)]) -> Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    let size = std::mem::size_of::<Counter>();
    let mut keys = Vec::with_capacity(counters.len() * 4);
    let mut values = vec![0u8; counters.len() * cpus * size];
    for (i, (slot, c)) in counters.iter().enumerate() {
        keys.extend_from_slice(&slot.to_ne_bytes());
        let v = &mut values[i * cpus * size..];
        v[..8].copy_from_slice(&c.packets.to_ne_bytes());
        v[8..16].copy_from_slice(&c.bytes.to_ne_bytes());
    }
    match sys::map_update_batch(map, &keys, &values, counters.len() as u32) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
            for (key, value) in keys.chunks_exact(4).zip(values.chunks_exact(cpus * size)) {
                sys::map_update(map, key, value, 0).context("setting a counter")?;
            }
            Ok(())
        }
        r => r.context("setting counters"),
    }
}
