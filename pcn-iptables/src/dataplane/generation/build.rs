//! Building a generation: a `Change`, written in full (new maps) or on the running one
//! (`incremental`, with the inactive slot's bitmaps mapped ahead by `prefetch`).

use std::{
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result};
use pcn_iptables_common::{Block, ChainConfig, Counter};

use super::arrays::{
    Active, Arrays, Packed, active_needs, delta_of, loaded, map_array, new_arrays,
    new_arrays_mapped, new_trie, put, put_actions, shape, trie_update, write_bitmaps,
};
use super::grace::Grace;
use super::object::{ACTIONS, BITMAPS, CHAINS, FIELDS, OUTER, build_dir, pinned};
use super::slots::{id_of, ids_at, in_use, pin_bytes, pin_state, store, store_slots, unpin_state};
use crate::compile::{self, Entry, Link, Program, SRC_ONES};
use crate::dataplane::{state, sys, timer::Timer};
use crate::model::Table;

/// A change to install.
pub struct Change<'a> {
    pub table: &'a Table,
    pub program: &'a Program,
    /// The slot to write: the inactive one.
    pub slot: u32,
    /// The active slot's description (what an incremental program was built on).
    pub running: Option<&'a state::Slot>,
    /// Counter slots to set before the switch.
    pub fresh_counters: &'a [(u32, Counter)],
    pub links: &'a [Link],
    pub grace: &'a Grace,
}

/// The inactive slot's bitmap array, mapped ahead (while the change is read and compiled).
pub struct Prefetched {
    id: u32,
    mapping: sys::Mapping,
}

/// Maps the bitmap array of the slot that is not `active` (see `Prefetched`).
pub fn prefetch(dir: &Path, active: u32) -> Option<Prefetched> {
    let other = (active + 1) % pcn_iptables_common::GENERATIONS;
    let outer = pinned(&build_dir(dir), OUTER[BITMAPS]).ok()?;
    let id = sys::id_at(outer.as_fd(), other).ok()??;
    let fd = sys::map_by_id(id).ok()?;
    let (_, mapping) = map_array::<Block>(&fd).ok()?;
    Some(Prefetched { id, mapping })
}

/// A full build: new maps for the slot, a new trie, and the same for the other slot, which
/// takes them after the switch (at once, if no classifier ever ran in it: a first install).
///
/// `outer` opens the outer maps once `ready` says they exist; `setup` makes sure the
/// programs are loaded. On a first install the maps go into both (idle) slots while they
/// are filled and the programs load.
pub(super) fn full(
    dir: &Path,
    outer: impl FnOnce() -> Result<[OwnedFd; 4]>,
    c: &Change,
    seq: u64,
    ready: &dyn Fn() -> Result<()>,
    setup: &dyn Fn() -> Result<()>,
) -> Result<([OwnedFd; 4], Option<OtherCopy>)> {
    let t = Timer("maps", std::time::Instant::now());
    let p = c.program;
    let other = (c.slot + 1) % pcn_iptables_common::GENERATIONS;
    let trie = new_trie(&p.layout.entries, false, shape(p))?;
    let (arrays, fill_arrays) = new_arrays(p)?;
    let (copy, fill_copy) = new_arrays(p)?;
    ready()?;
    let outer_maps = outer()?;
    let outer = &outer_maps;
    // A slot no classifier ever ran in (a first install) takes its maps at once.
    let other_idle = !in_use(dir, other)?;
    let slot_idle = !in_use(dir, c.slot)?;
    unpin_state(dir, c.slot)?;
    if other_idle {
        unpin_state(dir, other)?;
    }
    std::thread::scope(|s| -> Result<()> {
        let stored = (slot_idle && other_idle).then(|| {
            s.spawn(|| {
                let _t = Timer("store", std::time::Instant::now());
                store_slots(
                    outer,
                    &[
                        (c.slot, arrays.slot(Some(&trie))),
                        (other, copy.slot(Some(&trie))),
                    ],
                )
            })
        });
        let filled_trie = s.spawn(|| trie_update(trie.as_fd(), &p.layout.entries, shape(p)));
        let filled_copy = s.spawn(|| fill_copy(p));
        fill_arrays(p);
        let join = |r: std::thread::Result<Result<()>>| {
            r.unwrap_or_else(|_| Err(anyhow::anyhow!("filling a map")))
        };
        filled_trie
            .join()
            .map(|r| r.context("filling the field trie"))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("filling the field trie")))?;
        join(filled_copy.join().map(Ok))?;
        drop(t);
        setup()?;
        let _t = Timer("outer", std::time::Instant::now());
        match stored {
            Some(stored) => join(stored.join()),
            None => {
                if !slot_idle {
                    c.grace.wait()?;
                }
                let mut slots = vec![(c.slot, arrays.slot(Some(&trie)))];
                if other_idle {
                    slots.push((other, copy.slot(Some(&trie))));
                }
                store_slots(outer, &slots)
            }
        }
    })?;
    pin_state(
        dir,
        c.slot,
        c.table,
        &state::Slot {
            seq,
            maps: arrays.ids(id_of(&trie)?)?,
            layout: p.layout.clone(),
            delta: None,
            actions_delta: None,
        },
    )?;
    Ok((
        outer_maps,
        Some(OtherCopy {
            arrays: copy,
            trie,
            stored: other_idle,
        }),
    ))
}

/// The other slot's copy of a full build.
pub(super) struct OtherCopy {
    pub(super) arrays: Arrays,
    pub(super) trie: OwnedFd,
    /// Already in the outer maps (the slot was idle); its state is pinned after the switch,
    /// which is what makes it the copy of the running generation.
    pub(super) stored: bool,
}

/// A change built on the running generation, written into the inactive slot's maps in place
/// when they are the running generation's twin or predecessor, else into new arrays; the trie
/// is shared. `false`: the running generation's maps cannot take it.
pub(super) fn incremental(
    dir: &Path,
    outer: &[OwnedFd; 4],
    c: &Change,
    updates: &[compile::TrieUpdate],
    seq: u64,
    prefetched: Option<Prefetched>,
) -> Result<bool> {
    let t = Timer("maps", std::time::Instant::now());
    let Some(mut base) = base(dir, outer, c, updates)? else {
        return Ok(false);
    };
    match base.in_place.take() {
        Some(arrays) => rewrite_in_place(dir, c, &base, arrays, seq, prefetched)?,
        None => into_new_arrays(dir, outer, c, &base, seq, t)?,
    }
    Ok(true)
}

/// What a change built on the running generation is written against.
struct Base<'a> {
    running: &'a state::Slot,
    updates: &'a [compile::TrieUpdate],
    /// The field trie both slots share.
    trie: OwnedFd,
    /// The running generation's bitmap array.
    active: OwnedFd,
    active_info: sys::MapInfo,
    /// The ids of the maps in the inactive slot.
    ids: [Option<u32>; 4],
    /// What the slot lacks of the running generation (see `behind`).
    behind: Vec<(u32, u32)>,
    /// The actions where the slot's may differ from the running generation's (`None`:
    /// anywhere).
    stale_actions: Option<Vec<[u32; 2]>>,
    /// The slot's own chains, actions and bitmaps arrays, if they can be rewritten in place.
    in_place: Option<[OwnedFd; 3]>,
}

/// The running generation's maps and the inactive slot's, if the change fits them (`None`:
/// a full build is needed).
fn base<'a>(
    dir: &Path,
    outer: &[OwnedFd; 4],
    c: &Change<'a>,
    updates: &'a [compile::TrieUpdate],
) -> Result<Option<Base<'a>>> {
    let p = c.program;
    let Some(running) = c.running else {
        return Ok(None);
    };
    let (Ok(trie), Ok(active)) = (
        sys::map_by_id(running.maps[FIELDS]),
        sys::map_by_id(running.maps[BITMAPS]),
    ) else {
        return Ok(None);
    };
    let trie_info = sys::map_info(trie.as_fd())?;
    let active_info = sys::map_info(active.as_fd())?;
    if !fits(p, updates, running, &trie_info, &active_info) {
        return Ok(None);
    }
    let ids = ids_at(outer, c.slot)?;
    // The slot's state must say what its maps hold, and that it shares the trie. A change
    // that died half-way removed it first: the trie may then hold entries of that change,
    // which the running layout does not know of (their bitmap indexes would be handed out
    // again), so it is built anew.
    let Some((slot_seq, slot_maps)) = state::read_header(dir, c.slot)? else {
        return Ok(None);
    };
    if ids != slot_maps.map(Some) || slot_maps[FIELDS] != running.maps[FIELDS] {
        return Ok(None);
    }
    // The slot holds the running generation (after a full build and its copy) or its
    // predecessor (which `running.delta` tells the difference from); a change that died after
    // storing its state but before the switch leaves anything else.
    let Some(behind) = behind(running, slot_seq) else {
        return Ok(None);
    };
    let in_place = arrays_with_room(slot_maps, p)?;
    let stale_actions = match slot_seq == running.seq {
        true => Some(Vec::new()),
        false => running.actions_delta.clone(),
    };
    Ok(Some(Base {
        running,
        updates,
        trie,
        active,
        active_info,
        ids,
        behind,
        stale_actions,
        in_place,
    }))
}

impl Base<'_> {
    /// The running generation's view of each new trie entry, then the entries.
    fn update_trie(&self, a: &mut Active, p: &Program) -> Result<()> {
        for u in self.updates.iter().filter(|u| u.running) {
            a.copy(&self.active, &self.active_info, u.src, u.entry.index)?;
        }
        let entries: Vec<Entry> = self.updates.iter().map(|u| u.entry).collect();
        trie_update(self.trie.as_fd(), &entries, shape(p)).context("updating the field trie")
    }
}

/// Rewrites the inactive slot's own arrays (`[chains, actions, bitmaps]`) once a grace period
/// has passed, and pins its new state.
fn rewrite_in_place(
    dir: &Path,
    c: &Change,
    base: &Base,
    [chains, actions, bitmaps]: [OwnedFd; 3],
    seq: u64,
    prefetched: Option<Prefetched>,
) -> Result<()> {
    let p = c.program;
    let delta = delta_of(p);
    let changed = p.actions.changed();
    let mut a = Active::new(
        &base.active,
        &base.active_info,
        &active_needs(p, &base.behind),
        shape(p),
    )?;
    let bitmaps_id = id_of(&bitmaps)?;
    let m = match prefetched {
        Some(f) if f.id == bitmaps_id => f.mapping,
        _ => map_array::<Block>(&bitmaps)?.1,
    };
    let maps = [
        id_of(&chains)?,
        id_of(&actions)?,
        base.running.maps[FIELDS],
        bitmaps_id,
    ];
    std::thread::scope(|s| -> Result<()> {
        // The new state, meanwhile.
        let encoded =
            s.spawn(|| state::encode(c.table, seq, maps, &p.layout, Some(&delta), Some(&changed)));
        unpin_state(dir, c.slot)?;
        c.grace.wait()?;
        let _t = Timer("patch", std::time::Instant::now());
        base.update_trie(&mut a, p)?;
        let (_, mut cm) = map_array::<ChainConfig>(&chains)?;
        put(&mut cm, &loaded(&p.chains, shape(p)));
        let ranges = p.actions.to_write(base.stale_actions.as_deref());
        put_actions(
            actions.as_fd(),
            &p.actions,
            &ranges,
            Some(base.running.maps[ACTIONS]),
        )?;
        // SAFETY: room for next bitmaps (checked); the slot's maps are ours now (grace).
        unsafe { write_bitmaps(&Packed::new(&m, shape(p)), Some(&a), p, &base.behind) };
        let bytes = encoded
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("encoding the state")))?;
        pin_bytes(dir, c.slot, &bytes)
    })?;
    // Unmapping a big array takes a while: left to the end of the address space, which
    // the grace period's helper takes over (see `Dataplane::commit`).
    std::mem::forget(m);
    Ok(())
}

/// Writes the change into new arrays (a copy of the running generation's bitmaps, then the
/// change), stores them in the inactive slot, and pins its new state. `t` times the arrays.
fn into_new_arrays(
    dir: &Path,
    outer: &[OwnedFd; 4],
    c: &Change,
    base: &Base,
    seq: u64,
    t: Timer,
) -> Result<()> {
    let p = c.program;
    let running = base.running;
    let mut a = Active::mapped(&base.active, shape(p))?;
    let (arrays, m) = new_arrays_mapped(p, Some(running.maps[ACTIONS]))?;
    if let Active::Mapped(am, _) = &a {
        // The running generation's blocks (`fits` checked that the new array holds them).
        let blocks = shape(p).blocks(running.layout.next_index) as usize;
        let words = blocks * pcn_iptables_common::BLOCK_WORDS;
        assert!(words * 8 <= am.len().min(m.len()));
        // SAFETY: both mappings hold `words` words (checked); the new array is ours alone.
        unsafe {
            std::ptr::copy_nonoverlapping(
                am.as_ptr().cast::<u64>(),
                m.as_ptr().cast::<u64>(),
                words,
            )
        };
    }
    // SAFETY: the new array has room for next bitmaps; it is ours alone.
    unsafe { write_bitmaps(&Packed::new(&m, shape(p)), Some(&a), p, &[]) };
    drop(m);
    drop(t);
    let _t = Timer("outer", std::time::Instant::now());
    if in_use(dir, c.slot)? {
        c.grace.wait()?;
    }
    unpin_state(dir, c.slot)?;
    base.update_trie(&mut a, p)?;
    let fields = (base.ids[FIELDS] != Some(running.maps[FIELDS])).then_some(&base.trie);
    store(outer, c.slot, arrays.slot(fields))?;
    let maps = arrays.ids(running.maps[FIELDS])?;
    pin_state(
        dir,
        c.slot,
        c.table,
        &state::Slot {
            seq,
            maps,
            layout: p.layout.clone(),
            delta: Some(delta_of(p)),
            actions_delta: Some(p.actions.changed()),
        },
    )
}

/// Whether a program built on the running generation fits its maps: the shared trie, and the
/// running bitmap array its new entries' bitmaps are copied from.
fn fits(
    p: &Program,
    updates: &[compile::TrieUpdate],
    running: &state::Slot,
    trie: &sys::MapInfo,
    active: &sys::MapInfo,
) -> bool {
    let bitmaps = shape(p).capacity(active.max_entries);
    running.layout.words == p.layout.words
        && (trie.max_entries as usize) >= p.layout.entries.len()
        && !updates
            .iter()
            .any(|u| u.running && (u.entry.index >= bitmaps || u.src >= bitmaps))
        && running.layout.next_index <= bitmaps
        && !p
            .writes
            .iter()
            .any(|w| w.src < SRC_ONES && w.src >= running.layout.next_index)
}

/// What the inactive slot (at generation `slot_seq`) lacks of the running generation: empty
/// when it holds it, the running generation's delta (`[index] = (from, to)`) when it holds
/// its predecessor; `None` when it holds anything else (a change died between storing its
/// state and the switch).
fn behind(running: &state::Slot, slot_seq: u64) -> Option<Vec<(u32, u32)>> {
    if slot_seq == running.seq {
        return Some(Vec::new());
    }
    let delta = running
        .delta
        .as_ref()
        .filter(|_| slot_seq + 1 == running.seq)?;
    let mut behind = vec![(u32::MAX, 0); running.layout.next_index as usize];
    for &[i, f, t] in delta {
        if let Some(b) = behind.get_mut(i as usize) {
            *b = (f, t);
        }
    }
    Some(behind)
}

/// The slot's chains, actions and bitmaps arrays, if they have room for `p`.
fn arrays_with_room(maps: [u32; 4], p: &Program) -> Result<Option<[OwnedFd; 3]>> {
    let open = |i: usize| sys::map_by_id(maps[i]);
    let (Ok(chains), Ok(actions), Ok(bitmaps)) = (open(CHAINS), open(ACTIONS), open(BITMAPS))
    else {
        return Ok(None);
    };
    let room = |fd: &OwnedFd, n: usize| -> Result<bool> {
        Ok(sys::map_info(fd.as_fd())?.max_entries as usize >= n)
    };
    let blocks = shape(p).blocks(p.layout.next_index) as usize;
    if !room(&chains, p.chains.len())?
        || !room(&actions, p.actions.len())?
        || !room(&bitmaps, blocks)?
    {
        return Ok(None);
    }
    Ok(Some([chains, actions, bitmaps]))
}
