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
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::EbpfLoader;
use pcn_iptables_common::{Action, Bitmap, ChainConfig, Counter, FieldKey};
use rustc_hash::FxHashMap;

use super::{attach::ENTRIES, state, sys};
use crate::compile::{self, Entry, Link, Program, SRC_ONES, SRC_ZERO};
use crate::model::Table;

mod arrays;
mod build;
mod grace;
mod setup;
mod slots;

use arrays::*;
use build::*;
pub use grace::*;
use setup::*;
use slots::*;

/// The eBPF object: entry programs and classifiers.
pub static ELF: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pcn-iptables-ebpf"));

/// Pins of the entry programs, for tools that run them on crafted packets (the benchmark's
/// BPF_PROG_TEST_RUN) or profile them; the links keep them alive either way.
pub const INGRESS_PIN: &str = "prog-ingress";
pub const EGRESS_PIN: &str = "prog-egress";
/// Pins of the classifiers, in the build's directory.
pub const CLASSIFY_XDP_PIN: &str = "classify-xdp";
pub const CLASSIFY_TC_PIN: &str = "classify-tc";
/// The outer maps (names in the eBPF object and pins in the build's directory).
const OUTER: [&str; 4] = ["CHAINS", "ACTIONS", "FIELDS", "BITMAPS"];

/// The interfaces of the current network namespace.
pub fn links() -> Result<Vec<Link>> {
    Ok(nix::net::if_::if_nameindex()
        .context("listing interfaces")?
        .iter()
        .map(|i| Link {
            ifindex: i.index(),
            name: i.name().to_string_lossy().into_owned(),
        })
        .collect())
}

/// A hash of the eBPF object (FNV-1a over its 8-byte words): names the directory of the
/// programs and outer maps of this build.
fn elf_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = ELF.chunks_exact(8);
    for w in &mut words {
        h ^= u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    for b in words.remainder() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ ELF.len() as u64
}

/// The directory of this build's programs and outer maps in the namespace's directory `dir`.
pub fn build_dir(dir: &Path) -> PathBuf {
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    dir.join(format!("gen-{:016x}", HASH.get_or_init(elf_hash)))
}

/// Opens the pin `name` in `dir`.
fn pinned(dir: &Path, name: &str) -> Result<OwnedFd> {
    let path = dir.join(name);
    sys::obj_get(&path).with_context(|| format!("opening {}", path.display()))
}

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
    let _t = super::Timer("setup:attach", std::time::Instant::now());
    super::attach::attach(dir, &links()?)
}

/// The outer maps in `OUTER` order.
const CHAINS: usize = 0;
const ACTIONS: usize = 1;
const FIELDS: usize = 2;
const BITMAPS: usize = 3;

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
        let _t = super::Timer("prepare-other", std::time::Instant::now());
        let other = (c.slot + 1) % pcn_iptables_common::GENERATIONS;
        let (arrays, trie) = (&copy.arrays, &copy.trie);
        let _ = (|| -> Result<()> {
            if !copy.stored {
                unpin_state(dir, other)?;
                sys::synchronize()?;
                store(
                    &outer,
                    other,
                    [
                        Some(arrays.chains.as_fd()),
                        Some(arrays.actions.as_fd()),
                        Some(trie.as_fd()),
                        Some(arrays.bitmaps.as_fd()),
                    ],
                )?;
            }
            let maps = [
                id_of(&arrays.chains)?,
                id_of(&arrays.actions)?,
                id_of(trie)?,
                id_of(&arrays.bitmaps)?,
            ];
            pin_state(
                dir,
                other,
                c.table,
                &state::Slot {
                    seq,
                    maps,
                    layout: c.program.layout.clone(),
                    delta: None,
                },
            )
        })();
    }
    Ok(true)
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
    let (_, mapping) = map_array::<Bitmap>(&fd).ok()?;
    Some(Prefetched { id, mapping })
}

/// Points the slot's program-array entries at this build's classifiers, sets the fresh
/// counters, attaches to new interfaces, and switches `PCN_ACTIVE` to the slot.
fn switch(dir: &Path, build: &Path, c: &Change) -> Result<()> {
    let _t = super::Timer("switch", std::time::Instant::now());
    for (progs, classifier) in [
        ("PCN_PROGS_XDP", CLASSIFY_XDP_PIN),
        ("PCN_PROGS_TC", CLASSIFY_TC_PIN),
    ] {
        let progs = pinned(dir, progs)?;
        let classifier = pinned(build, classifier)?;
        let want = sys::map_info(classifier.as_fd())?.id;
        if sys::id_at(progs.as_fd(), c.slot)? != Some(want) {
            sys::set_fd(progs.as_fd(), c.slot, classifier.as_fd())
                .with_context(|| format!("setting slot {} of the program array", c.slot))?;
        }
    }
    if !c.fresh_counters.is_empty() {
        let mut counters = super::counters::Counters::open(dir)?.context("no counters")?;
        counters.set(c.fresh_counters)?;
    }

    super::attach::attach(dir, c.links)?;

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
