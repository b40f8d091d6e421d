//! A generation's arrays (chains, actions, bitmaps) and field trie: made, mapped, written.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context as _, Result};
use pcn_iptables_common::{Action, Bitmap, ChainConfig, FieldKey};
use rustc_hash::FxHashMap;

use super::slots::{Slots, id_of};
use crate::compile::{self, Entry, Program, SRC_ONES, SRC_ZERO};
use crate::dataplane::sys;

/// Room for `n` items and some to grow into, so that later changes rewrite the maps in place.
pub(super) fn headroom(n: usize) -> usize {
    n + n / 16 + 240
}

/// A new array map of `capacity` values like `T`, mapped.
pub(super) fn new_array<T>(name: &str, capacity: usize) -> Result<(OwnedFd, sys::Mapping)> {
    const { assert!(std::mem::size_of::<T>().is_multiple_of(8)) };
    let size = std::mem::size_of::<T>();
    let fd = sys::map_create(
        name,
        sys::MAP_TYPE_ARRAY,
        4,
        size as u32,
        capacity.max(1) as u32,
        sys::INNER_ARRAY,
    )
    .with_context(|| format!("creating map {name}"))?;
    let mapping = sys::Mapping::new(fd.as_fd(), size * capacity.max(1))
        .with_context(|| format!("mapping {name}"))?;
    Ok((fd, mapping))
}

/// Maps all of an existing array of `T`.
pub(super) fn map_array<T>(fd: &OwnedFd) -> Result<(sys::MapInfo, sys::Mapping)> {
    let info = sys::map_info(fd.as_fd())?;
    let size = std::mem::size_of::<T>();
    if info.value_size as usize != size {
        anyhow::bail!("map {} holds {}-byte values", info.id, info.value_size);
    }
    let mapping = sys::Mapping::new(fd.as_fd(), size * info.max_entries.max(1) as usize)?;
    Ok((info, mapping))
}

/// Writes `items` at the start of a mapping of an array of `T`.
pub(super) fn put<T: Copy>(mapping: &mut sys::Mapping, items: &[T]) {
    assert!(std::mem::size_of_val(items) <= mapping.len());
    // SAFETY: the mapping holds at least items.len() values of T (checked above), aligned
    // (page base, 8-byte multiple sizes).
    unsafe {
        std::ptr::copy_nonoverlapping(items.as_ptr(), mapping.as_ptr().cast::<T>(), items.len())
    };
}

/// The bitmaps of a mapped array.
pub(super) fn bitmaps_of(mapping: &sys::Mapping) -> *mut Bitmap {
    mapping.as_ptr().cast::<Bitmap>()
}

/// Sets the summary bits of words `lo..hi` of `b` from the words.
pub(super) fn summarize(b: &mut Bitmap, lo: usize, hi: usize) {
    for x in lo..hi.min(pcn_iptables_common::MAX_WORDS) {
        let bit = 1u64 << (x % 64);
        if b.words[x] != 0 {
            b.summary[x / 64] |= bit;
        } else {
            b.summary[x / 64] &= !bit;
        }
    }
}

/// The running generation's bitmaps, as far as a change reads them: all of them mapped, or
/// the few it needs copied out (mapping a big array, and unmapping it, costs more than
/// reading a few hundred bitmaps one by one).
pub(super) enum Active {
    Mapped(sys::Mapping),
    Copied(FxHashMap<u32, Box<Bitmap>>),
}

impl Active {
    /// `needs`: the indexes that will be read.
    pub(super) fn new(fd: &OwnedFd, info: &sys::MapInfo, needs: &[u32]) -> Result<Self> {
        if needs.len() > 1024 {
            let (_, m) = map_array::<Bitmap>(fd)?;
            return Ok(Active::Mapped(m));
        }
        let mut copied = FxHashMap::default();
        for &i in needs {
            if i >= info.max_entries {
                anyhow::bail!("bitmap {i} is past the running generation's array");
            }
            let mut b = Box::new(Bitmap::zero());
            // SAFETY: a Bitmap is plain words, BITMAP_SIZE bytes, the map's value size.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut((&mut *b as *mut Bitmap).cast::<u8>(), BITMAP_SIZE)
            };
            sys::map_lookup(fd.as_fd(), &i.to_ne_bytes(), bytes)?;
            copied.insert(i, b);
        }
        Ok(Active::Copied(copied))
    }

    pub(super) fn get(&self, i: u32) -> &Bitmap {
        match self {
            // SAFETY: indexes below the array's size (callers check against max_entries).
            Active::Mapped(m) => unsafe { &*bitmaps_of(m).add(i as usize) },
            Active::Copied(c) => c.get(&i).map_or(&ZERO, |b| b),
        }
    }

    /// The running generation's bitmap `to` becomes a copy of its bitmap `from`.
    pub(super) fn copy(&mut self, fd: &OwnedFd, from: u32, to: u32) -> Result<()> {
        match self {
            Active::Mapped(m) => {
                // SAFETY: as in `get`; the running generation does not read `to` yet.
                unsafe { *bitmaps_of(m).add(to as usize) = *bitmaps_of(m).add(from as usize) };
            }
            Active::Copied(c) => {
                let b = c.get(&from).map_or(ZERO, |b| **b);
                // SAFETY: as in `new`.
                let bytes = unsafe {
                    std::slice::from_raw_parts((&b as *const Bitmap).cast::<u8>(), BITMAP_SIZE)
                };
                sys::map_update(fd.as_fd(), &to.to_ne_bytes(), bytes, 0)?;
                c.insert(to, Box::new(b));
            }
        }
        Ok(())
    }
}

pub(super) static ZERO: Bitmap = Bitmap::zero();
pub(super) const BITMAP_SIZE: usize = std::mem::size_of::<Bitmap>();

/// For each write, the words to write: `(lo, hi)` around the computed ones.
pub(super) fn extent(w: &compile::Write, behind: &[(u32, u32)]) -> (usize, usize) {
    let from = w.from as usize;
    let end = from + w.len as usize;
    if w.whole {
        return (0, pcn_iptables_common::MAX_WORDS);
    }
    if w.src != w.index {
        return (0, end);
    }
    match behind.get(w.index as usize) {
        Some(&(f, t)) if f != u32::MAX => ((f as usize).min(from), (t as usize).max(end)),
        _ => (from, end),
    }
}

/// The running generation's bitmaps that writing the program over `behind` reads.
pub(super) fn active_needs(program: &Program, behind: &[(u32, u32)]) -> Vec<u32> {
    let mut needs = Vec::new();
    let mut written = vec![false; behind.len()];
    for w in &program.writes {
        if let Some(x) = written.get_mut(w.index as usize) {
            *x = true;
        }
        let (lo, hi) = extent(w, behind);
        let from = w.from as usize;
        if w.whole {
            continue;
        }
        if lo < from && w.src < SRC_ONES {
            needs.push(w.src);
        }
        if hi > from + w.len as usize {
            needs.push(w.index);
        }
    }
    for (i, &(f, _)) in behind.iter().enumerate() {
        if f != u32::MAX && !written[i] {
            needs.push(i as u32);
        }
    }
    if let Some(updates) = &program.updates {
        needs.extend(updates.iter().filter(|u| u.running).map(|u| u.src));
    }
    needs.sort_unstable();
    needs.dedup();
    needs
}

/// Writes the program's bitmaps into `dst`, whose bitmaps equal those of `active` (the
/// running generation) except for words `from..to` of the bitmaps in `behind` (dense by
/// index, `(u32::MAX, 0)` where equal).
///
/// # Safety
/// `dst` holds `program.layout.next_index` bitmaps, and nobody else writes them meanwhile.
pub(super) unsafe fn write_bitmaps(
    dst: *mut Bitmap,
    active: Option<&Active>,
    program: &Program,
    behind: &[(u32, u32)],
) {
    use pcn_iptables_common::MAX_WORDS;
    let mut written = vec![false; behind.len()];
    let src_word = |src: u32, x: usize| -> u64 {
        match src {
            SRC_ZERO => 0,
            SRC_ONES => u64::MAX,
            s => active.map_or(0, |a| a.get(s).words[x]),
        }
    };
    for w in &program.writes {
        // SAFETY: the caller vouches for the index.
        let b = unsafe { &mut *dst.add(w.index as usize) };
        if let Some(x) = written.get_mut(w.index as usize) {
            *x = true;
        }
        let from = w.from as usize;
        let end = from + w.len as usize;
        let (lo, hi) = extent(w, behind);
        for x in lo..from {
            b.words[x] = src_word(w.src, x);
        }
        b.words[from..end].copy_from_slice(program.words_of(w));
        if w.whole {
            b.words[end..].fill(0);
        } else {
            for x in end..hi {
                b.words[x] = src_word(w.index, x);
            }
        }
        summarize(b, lo, hi);
    }
    // What the previous change wrote and this one does not: as the running generation has it.
    for (i, &(f, t)) in behind.iter().enumerate() {
        if f == u32::MAX || written[i] {
            continue;
        }
        // SAFETY: as above.
        let b = unsafe { &mut *dst.add(i) };
        for x in f as usize..(t as usize).min(MAX_WORDS) {
            b.words[x] = src_word(i as u32, x);
        }
        summarize(b, f as usize, t as usize);
    }
}

/// What a program changes against the running generation, as `[index, from, to]` (see
/// `state::Slot::delta`).
pub(super) fn delta_of(program: &Program) -> Vec<[u32; 3]> {
    program
        .writes
        .iter()
        .map(|w| {
            [
                w.index,
                if w.src == w.index { w.from } else { 0 },
                if w.whole {
                    pcn_iptables_common::MAX_WORDS as u32
                } else {
                    w.from + w.len
                },
            ]
        })
        .collect()
}

/// A new field trie with room for `entries` (and some), holding them if `fill`.
pub(super) fn new_trie(entries: &[Entry], fill: bool) -> Result<OwnedFd> {
    let fd = sys::map_create(
        "FIELDS",
        sys::MAP_TYPE_LPM_TRIE,
        TRIE_KEY as u32,
        4,
        // Memory goes per entry: room to grow costs nothing.
        (entries.len() * 4).max(1 << 16) as u32,
        sys::F_NO_PREALLOC,
    )
    .context("creating map FIELDS")?;
    if fill {
        trie_update(fd.as_fd(), entries).context("filling the field trie")?;
    }
    Ok(fd)
}

pub(super) const TRIE_KEY: usize = 4 + std::mem::size_of::<FieldKey>();

/// Sets `entries` in a field trie.
pub(super) fn trie_update(fd: BorrowedFd<'_>, entries: &[Entry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(entries.len() * TRIE_KEY);
    let mut values = Vec::with_capacity(entries.len() * 4);
    for e in entries {
        keys.extend_from_slice(&(e.prefix_len as u32).to_ne_bytes());
        keys.extend_from_slice(&e.key);
        values.extend_from_slice(&e.index.to_ne_bytes());
    }
    match sys::map_update_batch(fd, &keys, &values, entries.len() as u32) {
        // No batch updates for tries on this kernel: one at a time.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
            for (key, value) in keys.chunks_exact(TRIE_KEY).zip(values.chunks_exact(4)) {
                sys::map_update(fd, key, value, 0)?;
            }
            Ok(())
        }
        r => r,
    }
}

/// The chains with an epoch of their own, which no other generation has (a random 64-bit
/// number), so that flows cached by an older one are looked at again: every write of a
/// generation's chains, in place too, goes through here.
/// `PCN_IPTABLES_FLOW_CACHE=off` leaves the flow cache out (for the benchmarks' first-packet
/// cost).
pub(super) fn with_epoch(chains: &[ChainConfig]) -> Vec<ChainConfig> {
    use std::hash::{BuildHasher, Hasher};
    let epoch = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let off = std::env::var_os("PCN_IPTABLES_FLOW_CACHE").is_some_and(|v| v == "off");
    chains
        .iter()
        .map(|c| ChainConfig {
            epoch,
            flags: if off {
                c.flags & !pcn_iptables_common::chain_flag::CACHEABLE
            } else {
                c.flags
            },
            ..*c
        })
        .collect()
}

/// A generation's arrays: chains, actions, bitmaps.
pub(super) struct Arrays {
    pub(super) chains: OwnedFd,
    pub(super) actions: OwnedFd,
    pub(super) bitmaps: OwnedFd,
}

impl Arrays {
    /// The arrays as a slot of the outer maps takes them, with the field trie `trie`
    /// (`None`: the slot keeps its own).
    pub(super) fn slot<'a>(&'a self, trie: Option<&'a OwnedFd>) -> Slots<'a> {
        [
            Some(self.chains.as_fd()),
            Some(self.actions.as_fd()),
            trie.map(AsFd::as_fd),
            Some(self.bitmaps.as_fd()),
        ]
    }

    /// The arrays' ids and the field trie's, `trie`, in the outer maps' order.
    pub(super) fn ids(&self, trie: u32) -> Result<[u32; 4]> {
        Ok([
            id_of(&self.chains)?,
            id_of(&self.actions)?,
            trie,
            id_of(&self.bitmaps)?,
        ])
    }
}

/// New arrays for `program`, and what fills them with its full build (chains and actions
/// are written at once; the bitmaps take longer).
pub(super) fn new_arrays(program: &Program) -> Result<(Arrays, impl FnOnce(&Program) + Send)> {
    let (arrays, m) = new_arrays_mapped(program)?;
    Ok((arrays, move |p: &Program| {
        // SAFETY: a new map sized for next_index bitmaps, ours alone; no active one is read.
        unsafe { write_bitmaps(bitmaps_of(&m), None, p, &[]) };
    }))
}

/// New arrays for `program`, chains and actions written, the bitmap array mapped.
pub(super) fn new_arrays_mapped(program: &Program) -> Result<(Arrays, sys::Mapping)> {
    let (chains, mut m) = new_array::<ChainConfig>("CHAINS", headroom(program.chains.len()))?;
    put(&mut m, &with_epoch(&program.chains));
    let (actions, mut m) = new_array::<Action>("ACTIONS", headroom(program.actions.len()))?;
    put(&mut m, &program.actions);
    let (bitmaps, m) =
        new_array::<Bitmap>("BITMAPS", headroom(program.layout.next_index as usize))?;
    Ok((
        Arrays {
            chains,
            actions,
            bitmaps,
        },
        m,
    ))
}
