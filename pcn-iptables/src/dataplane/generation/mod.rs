//! Generations. The classifier programs are loaded once per build of the eBPF object (at
//! install, or when a new binary first changes the rules); a generation is only a set of maps,
//! in one slot of the outer maps the classifier reads through, and the state pinned beside
//! them. No ELF parsing, no program load, no verifier on a change's path. Three ways in:
//! - in place (`incremental`): a change compiled on the running generation rewrites the
//!   inactive slot's arrays, which hold the running generation or its predecessor, once a
//!   grace period has passed since the last switch; the field trie is shared by both slots;
//! - new arrays (same function), when the slot's are too small;
//! - a full build (`full`): new maps for the slot, a new trie, and a copy for the other slot.
//!
//! Then `switch` flips `PCN_ACTIVE`.
//!
//! Per build of the object, a directory `gen-HASH` (HASH: of the object's bytes) holds the
//! outer maps (`CHAINS`, `ACTIONS`, `FIELDS`, `BITMAPS`) and the classifiers
//! (`classify-xdp`, `classify-tc`, pinned last: their presence means the build is set up).
//! A new binary with another object sets up its own directory and program-array slots; the
//! entry programs stay, and the previous build's directory goes after its first flip.

use std::{
    fs,
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result};

use super::{attach, counters::Counters, rtnl::links, state, sys, timer::Timer};

mod arrays;
mod build;
mod grace;
mod object;
mod setup;
mod slots;

pub use build::{Change, Prefetched, prefetch};
use build::{full, incremental};
pub use grace::{GRACE_PENDING, Grace, grace_marker, state_id};
pub use object::ELF;
use object::{CLASSIFY_TC_PIN, CLASSIFY_XDP_PIN, OUTER, build_dir, pinned};
use setup::setup;
use slots::{id_of, pin_state, store, unpin_state};

/// Before a first install in `dir`: another version's install in this namespace (a state
/// directory of another layout) keeps its programs attached, which would keep ours from
/// attaching. It is named, for `--uninstall` to remove.
pub fn refuse_other_layouts(dir: &Path) -> Result<()> {
    if dir.join(super::conntrack::MAP).exists() {
        return Ok(());
    }
    match super::bpffs::other_layouts()?.first() {
        Some(other) => anyhow::bail!(
            "this network namespace has rules installed by another version of pcn-iptables \
             ({}); `pcn-iptables --uninstall` removes them",
            other.display()
        ),
        None => Ok(()),
    }
}

/// Whether this build's classifiers are loaded (and the entry programs).
pub fn is_set_up(dir: &Path) -> bool {
    let build = build_dir(dir);
    build.join(CLASSIFY_TC_PIN).exists() && build.join(CLASSIFY_XDP_PIN).exists()
}

/// Loads this build's classifiers (and on a first install, everything else) unless done.
/// `ready` is told once the maps exist, before the programs are verified.
pub fn set_up(
    dir: &Path,
    sizes: Option<crate::dataplane::sizes::Sizes>,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> Result<()> {
    if is_set_up(dir) {
        return Ok(());
    }
    refuse_other_layouts(dir)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    setup(dir, &build_dir(dir), sizes, ready)?;
    // The entry programs only pass packets on until a classifier is switched in.
    let _t = Timer("setup:attach", std::time::Instant::now());
    attach::attach(dir, &links()?)
}

/// Installs the change into its slot, then makes that slot the active generation. `false`:
/// the program was built on the running generation, whose maps cannot take it (no room, or
/// gone); a full build can.
///
/// `setup` makes sure the programs are loaded (see `set_up`): a full build fills its maps
/// meanwhile.
pub fn install(
    dir: &Path,
    c: &Change,
    prefetched: Option<Prefetched>,
    ready: &dyn Fn() -> Result<()>,
    setup: &dyn Fn() -> Result<()>,
) -> Result<bool> {
    let build = build_dir(dir);
    let outer = || -> Result<[OwnedFd; 4]> {
        Ok([
            pinned(&build, OUTER[0])?,
            pinned(&build, OUTER[1])?,
            pinned(&build, OUTER[2])?,
            pinned(&build, OUTER[3])?,
        ])
    };
    let seq = c.running.map_or(1, |r| r.seq + 1);
    let (outer, prepare) = match &c.program.updates {
        Some(updates) => {
            setup()?;
            let outer = outer()?;
            if !incremental(dir, &outer, c, updates, seq, prefetched)? {
                return Ok(false);
            }
            switch(dir, &build, c)?;
            (outer, None)
        }
        None => {
            let (outer, copy) = full(dir, outer, c, seq, ready, setup)?;
            switch(dir, &build, c)?;
            (outer, copy)
        }
    };
    // The other slot, made a copy of this generation, so that the next change rewrites it in
    // place. Packets may still be in its old generation: wait for them. The switch is done;
    // if this fails, the next change starts over.
    if let Some(copy) = prepare {
        let _t = Timer("prepare-other", std::time::Instant::now());
        let other = (c.slot + 1) % pcn_iptables_common::GENERATIONS;
        let (arrays, trie) = (&copy.arrays, &copy.trie);
        let _ = (|| -> Result<()> {
            if !copy.stored {
                unpin_state(dir, other)?;
                sys::synchronize()?;
                store(&outer, other, arrays.slot(Some(trie)))?;
            }
            let maps = arrays.ids(id_of(trie)?)?;
            pin_state(
                dir,
                other,
                c.table,
                &state::Slot {
                    seq,
                    maps,
                    layout: c.program.layout.clone(),
                    delta: None,
                    actions_delta: None,
                },
            )
        })();
    }
    Ok(true)
}

/// Points the slot's program-array entries at this build's classifiers, sets the fresh
/// counters, attaches to new interfaces, and switches `PCN_ACTIVE` to the slot.
fn switch(dir: &Path, build: &Path, c: &Change) -> Result<()> {
    let _t = Timer("switch", std::time::Instant::now());
    for (progs, classifier) in [
        ("PCN_PROGS_XDP", CLASSIFY_XDP_PIN),
        ("PCN_PROGS_TC", CLASSIFY_TC_PIN),
    ] {
        let progs = pinned(dir, progs)?;
        let classifier = pinned(build, classifier)?;
        let want = sys::prog_id(classifier.as_fd())?;
        if sys::id_at(progs.as_fd(), c.slot)? != Some(want) {
            sys::set_fd(progs.as_fd(), c.slot, classifier.as_fd())
                .with_context(|| format!("setting slot {} of the program array", c.slot))?;
        }
    }
    if !c.fresh_counters.is_empty() {
        let mut counters = Counters::open(dir)?.context("no counters")?;
        counters.set(c.fresh_counters)?;
    }

    attach::attach(dir, c.links)?;
    super::connlimit::prepare(dir, c.slot, c.program.actions.connlimit)?;
    super::owner::prepare(dir, c.slot, &c.program.actions.owner_groups)?;
    super::local_routes::prepare(dir, c.program.actions.local_routes)?;

    let active = pinned(dir, "PCN_ACTIVE")?;
    sys::map_update(
        active.as_fd(),
        &0u32.to_ne_bytes(),
        &c.slot.to_ne_bytes(),
        0,
    )
    .context("switching to the new generation")?;

    // Builds other than this one are no longer in use by the running generation.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path != build && entry.file_name().to_string_lossy().starts_with("gen-") {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
    Ok(())
}
