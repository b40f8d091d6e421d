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

/// Makes the outer maps that are not pinned yet, for the loader to reuse: their inner map
/// templates made here, without BTF, like the inner maps every change makes. A template made
/// from the object's BTF would not match those on 6.1 (its `timer_off` is -ENOENT where a map
/// without BTF has -EINVAL, and the kernel compares them).
fn make_outer_maps(pins: &[PathBuf]) -> Result<()> {
    let array = |size: usize| (sys::MAP_TYPE_ARRAY, 4, size, sys::INNER_ARRAY);
    let templates = [
        array(std::mem::size_of::<ChainConfig>()),
        array(std::mem::size_of::<Action>()),
        (
            sys::MAP_TYPE_LPM_TRIE,
            TRIE_KEY as u32,
            4,
            sys::F_NO_PREALLOC,
        ),
        array(std::mem::size_of::<Bitmap>()),
    ];
    for ((name, pin), (kind, key, value, flags)) in OUTER.iter().zip(pins).zip(templates) {
        if pin.exists() {
            continue;
        }
        let inner = sys::map_create(name, kind, key, value as u32, 1, flags)
            .with_context(|| format!("creating the template of {name}"))?;
        let outer = sys::map_create_outer(name, inner.as_fd(), pcn_iptables_common::GENERATIONS)
            .with_context(|| format!("creating {name}"))?;
        sys::obj_pin(outer.as_fd(), pin).with_context(|| format!("pinning {}", pin.display()))?;
    }
    Ok(())
}

/// Loads this build's classifiers (and, on a first install, the entry programs and the shared
/// maps), pinning them; seeds the connection table on a first install.
fn setup(
    dir: &Path,
    build: &Path,
    conntrack_entries: u32,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> Result<()> {
    let _t = super::Timer("setup", std::time::Instant::now());
    fs::create_dir_all(build).with_context(|| format!("creating {}", build.display()))?;
    let first_load = !dir.join(super::conntrack::MAP).exists();
    let pins: Vec<PathBuf> = OUTER.iter().map(|n| build.join(n)).collect();
    make_outer_maps(&pins)?;
    let mut loader = EbpfLoader::new();
    // No CO-RE relocations in our programs: skip parsing the kernel's BTF (~20 ms).
    loader
        .btf(None)
        .default_map_pin_directory(dir)
        // Only a first install creates it; later loads reuse the pinned table.
        .map_max_entries(super::conntrack::MAP, conntrack_entries);
    for (name, pin) in OUTER.iter().zip(&pins) {
        loader.map_pin_path(name, pin.as_path());
    }
    loader.verifier_log_level(super::load::log_level());
    super::settings::globals(&mut loader);
    let t = super::Timer("setup:object", std::time::Instant::now());
    let mut ebpf = loader.load(ELF).context("loading the eBPF object")?;
    drop(t);
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    // The programs to load (the entry programs on a first install), verified at once: the
    // verifier takes its time, on one CPU per program.
    let t = super::Timer("setup:programs", std::time::Instant::now());
    let entry = |name: &str| ENTRIES.iter().find(|(n, _, _)| *n == name);
    let wanted = |name: &str| {
        matches!(name, "pcn_xdp_classify" | "pcn_tc_classify")
            || entry(name).is_some_and(|(_, pin, _)| !dir.join(pin).exists())
    };
    // An entry program is pinned and attached as soon as it is loaded (attaching waits for
    // a grace period): it only passes packets on until a classifier is switched in.
    let links = links()?;
    let links = &links;
    std::thread::scope(|s| -> Result<()> {
        let loads: Vec<_> = ebpf
            .programs_mut()
            .filter(|(name, _)| wanted(name))
            .map(|(name, prog)| {
                s.spawn(move || -> Result<()> {
                    super::load::program(name, prog)?;
                    if let Some((_, pin, kind)) = entry(name) {
                        let pin = dir.join(pin);
                        prog.pin(&pin)
                            .with_context(|| format!("pinning {}", pin.display()))?;
                        super::attach::attach_kinds(dir, &[kind], links)?;
                    }
                    Ok(())
                })
            })
            .collect();
        loads
            .into_iter()
            .try_for_each(|l| l.join().unwrap_or_else(|_| Err(anyhow::anyhow!("loading"))))
    })?;
    drop(t);
    // The TC classifier's pin last: it marks the build as set up.
    for (name, pin) in [
        ("pcn_xdp_classify", CLASSIFY_XDP_PIN),
        ("pcn_tc_classify", CLASSIFY_TC_PIN),
    ] {
        let pin = build.join(pin);
        if pin.exists() {
            fs::remove_file(&pin)?;
        }
        let prog = ebpf.program_mut(name).context("classifier")?;
        prog.pin(&pin)
            .with_context(|| format!("pinning {}", pin.display()))?;
    }

    if first_load {
        // Before any packet is judged: connections open now must not look NEW.
        super::conntrack::seed(dir).context("seeding the connection table")?;
    }
    Ok(())
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
    conntrack_entries: u32,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> Result<()> {
    if is_set_up(dir) {
        return Ok(());
    }
    refuse_other_layouts(dir)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    setup(dir, &build_dir(dir), conntrack_entries, ready)?;
    // The entry programs only pass packets on until a classifier is switched in.
    let _t = super::Timer("setup:attach", std::time::Instant::now());
    super::attach::attach(dir, &links()?)
}

/// A one-value array (pinned in the namespace's directory) holding the id of the state map
/// of the generation whose switch a grace period has passed since: when it is the running
/// generation's, no packet is still in the generation before, and a change may rewrite
/// the inactive slot at once. A change writes it after its switch, from a helper process
/// that waits for the grace period (see `sys::after_grace_period`).
pub const GRACE_PIN: &str = "PCN_GRACE";

/// The id of the state map of `slot`.
pub fn state_id(dir: &Path, slot: u32) -> Result<u32> {
    Ok(sys::map_info(pinned(dir, &format!("state-{slot}"))?.as_fd())?.id)
}

/// The grace marker (see `GRACE_PIN`), made if missing.
pub fn grace_marker(dir: &Path) -> Result<OwnedFd> {
    if let Ok(fd) = pinned(dir, GRACE_PIN) {
        return Ok(fd);
    }
    let fd = sys::map_create(GRACE_PIN, sys::MAP_TYPE_ARRAY, 4, 8, 1, 0)?;
    sys::obj_pin(fd.as_fd(), &dir.join(GRACE_PIN))?;
    Ok(fd)
}

/// The marker's value while a helper waits for the grace period of generation `id`.
pub const GRACE_PENDING: u64 = 1 << 32;

fn marker_value(marker: &OwnedFd) -> Option<u64> {
    let mut value = [0u8; 8];
    matches!(
        sys::map_lookup(marker.as_fd(), &0u32.to_ne_bytes(), &mut value),
        Ok(true)
    )
    .then(|| u64::from_ne_bytes(value))
}

/// The marker about `slot`'s generation: `(marker, state id, passed)`; `None`: it says
/// nothing about it.
fn grace_marker_state(dir: &Path, slot: u32) -> Option<(OwnedFd, u32, bool)> {
    let marker = pinned(dir, GRACE_PIN).ok()?;
    let id = state_id(dir, slot).ok()?;
    match marker_value(&marker)? {
        v if v == id as u64 => Some((marker, id, true)),
        v if v == id as u64 | GRACE_PENDING => Some((marker, id, false)),
        _ => None,
    }
}

/// The outer maps in `OUTER` order.
const CHAINS: usize = 0;
const ACTIONS: usize = 1;
const FIELDS: usize = 2;
const BITMAPS: usize = 3;

/// A grace period for the inactive slot: once it has passed, no packet is still being
/// classified by the generation that was active before the last switch (a straggler that
/// read `PCN_ACTIVE` before it), so the slot's maps can be rewritten. Started as soon as the
/// lock is held (the last switch happened before), it passes while the change is prepared.
pub struct Grace(std::sync::Mutex<GraceState>);

enum GraceState {
    NotStarted,
    Pending(std::thread::JoinHandle<std::io::Result<()>>),
    /// The last change's helper is waiting for one: its marker will say (see `GRACE_PIN`).
    Helper(OwnedFd, u32),
    Passed,
}

impl Default for Grace {
    fn default() -> Self {
        Grace(std::sync::Mutex::new(GraceState::NotStarted))
    }
}

impl Grace {
    /// Looks at the marker of the last change's helper (see `GRACE_PIN`) for the running
    /// generation, active in `slot`: one has passed, or the helper will say when; else
    /// starts waiting for one.
    pub fn start_after(&self, dir: &Path, slot: u32) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*state, GraceState::NotStarted) {
            return;
        }
        *state = match grace_marker_state(dir, slot) {
            Some((_, _, true)) => GraceState::Passed,
            Some((marker, id, false)) => GraceState::Helper(marker, id),
            None => GraceState::Pending(std::thread::spawn(sys::synchronize)),
        };
    }

    /// Starts waiting for one in the background (call with the lock held).
    pub fn start(&self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, GraceState::NotStarted) {
            *state = GraceState::Pending(std::thread::spawn(sys::synchronize));
        }
    }

    /// Returns once a grace period that began after the lock was taken has passed.
    pub fn wait(&self) -> Result<()> {
        let _t = super::Timer("grace-wait", std::time::Instant::now());
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, GraceState::Passed) {
            GraceState::Passed => Ok(()),
            GraceState::NotStarted => sys::synchronize().context("waiting for a grace period"),
            GraceState::Pending(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("grace period thread")))
                .context("waiting for a grace period"),
            GraceState::Helper(marker, id) => {
                // It started at the last switch, before us: it is the first to know.
                let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
                while std::time::Instant::now() < deadline {
                    if marker_value(&marker) == Some(id as u64) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                // The helper is gone (killed?): wait ourselves.
                sys::synchronize().context("waiting for a grace period")
            }
        }
    }
}

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

/// Room for `n` items and some to grow into, so that later changes rewrite the maps in place.
fn headroom(n: usize) -> usize {
    n + n / 16 + 256
}

/// A new array map of `capacity` values like `T`, mapped.
fn new_array<T>(name: &str, capacity: usize) -> Result<(OwnedFd, sys::Mapping)> {
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
fn map_array<T>(fd: &OwnedFd) -> Result<(sys::MapInfo, sys::Mapping)> {
    let info = sys::map_info(fd.as_fd())?;
    let size = std::mem::size_of::<T>();
    if info.value_size as usize != size {
        anyhow::bail!("map {} holds {}-byte values", info.id, info.value_size);
    }
    let mapping = sys::Mapping::new(fd.as_fd(), size * info.max_entries.max(1) as usize)?;
    Ok((info, mapping))
}

/// Writes `items` at the start of a mapping of an array of `T`.
fn put<T: Copy>(mapping: &mut sys::Mapping, items: &[T]) {
    assert!(std::mem::size_of_val(items) <= mapping.len());
    // SAFETY: the mapping holds at least items.len() values of T (checked above), aligned
    // (page base, 8-byte multiple sizes).
    unsafe {
        std::ptr::copy_nonoverlapping(items.as_ptr(), mapping.as_ptr().cast::<T>(), items.len())
    };
}

/// The bitmaps of a mapped array.
fn bitmaps_of(mapping: &sys::Mapping) -> *mut Bitmap {
    mapping.as_ptr().cast::<Bitmap>()
}

/// Sets the summary bits of words `lo..hi` of `b` from the words.
fn summarize(b: &mut Bitmap, lo: usize, hi: usize) {
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
enum Active {
    Mapped(sys::Mapping),
    Copied(FxHashMap<u32, Box<Bitmap>>),
}

impl Active {
    /// `needs`: the indexes that will be read.
    fn new(fd: &OwnedFd, info: &sys::MapInfo, needs: &[u32]) -> Result<Self> {
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

    fn get(&self, i: u32) -> &Bitmap {
        match self {
            // SAFETY: indexes below the array's size (callers check against max_entries).
            Active::Mapped(m) => unsafe { &*bitmaps_of(m).add(i as usize) },
            Active::Copied(c) => c.get(&i).map_or(&ZERO, |b| b),
        }
    }

    /// The running generation's bitmap `to` becomes a copy of its bitmap `from`.
    fn copy(&mut self, fd: &OwnedFd, from: u32, to: u32) -> Result<()> {
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

static ZERO: Bitmap = Bitmap::zero();
const BITMAP_SIZE: usize = std::mem::size_of::<Bitmap>();

/// For each write, the words to write: `(lo, hi)` around the computed ones.
fn extent(w: &compile::Write, behind: &[(u32, u32)]) -> (usize, usize) {
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
fn active_needs(program: &Program, behind: &[(u32, u32)]) -> Vec<u32> {
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
unsafe fn write_bitmaps(
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
fn delta_of(program: &Program) -> Vec<[u32; 3]> {
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
fn new_trie(entries: &[Entry], fill: bool) -> Result<OwnedFd> {
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

const TRIE_KEY: usize = 4 + std::mem::size_of::<FieldKey>();

/// Sets `entries` in a field trie.
fn trie_update(fd: std::os::fd::BorrowedFd<'_>, entries: &[Entry]) -> std::io::Result<()> {
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
fn with_epoch(chains: &[ChainConfig]) -> Vec<ChainConfig> {
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
struct Arrays {
    chains: OwnedFd,
    actions: OwnedFd,
    bitmaps: OwnedFd,
}

/// New arrays for `program`, and what fills them with its full build (chains and actions
/// are written at once; the bitmaps take longer).
fn new_arrays(program: &Program) -> Result<(Arrays, impl FnOnce(&Program) + Send)> {
    let (arrays, m) = new_arrays_mapped(program)?;
    Ok((arrays, move |p: &Program| {
        // SAFETY: a new map sized for next_index bitmaps, ours alone; no active one is read.
        unsafe { write_bitmaps(bitmaps_of(&m), None, p, &[]) };
    }))
}

/// New arrays for `program`, chains and actions written, the bitmap array mapped.
fn new_arrays_mapped(program: &Program) -> Result<(Arrays, sys::Mapping)> {
    let (chains, mut m) =
        new_array::<ChainConfig>("CHAINS", pcn_iptables_common::MAX_CHAINS as usize)?;
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

type Slots<'a> = [Option<std::os::fd::BorrowedFd<'a>>; 4];

/// Stores maps in `slot` of the outer maps (`None`: leave that one).
fn store(outer: &[OwnedFd; 4], slot: u32, maps: Slots<'_>) -> Result<()> {
    store_slots(outer, &[(slot, maps)])
}

/// Stores maps in slots of the outer maps, all at once: each update of a map of maps waits
/// for a grace period; one batch per outer map waits once, and the outer maps' batches, made
/// together, share it.
fn store_slots(outer: &[OwnedFd; 4], slots: &[(u32, Slots<'_>)]) -> Result<()> {
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
fn ids_at(outer: &[OwnedFd; 4], slot: u32) -> Result<[Option<u32>; 4]> {
    let mut ids = [None; 4];
    for (id, outer) in ids.iter_mut().zip(outer) {
        *id = sys::id_at(outer.as_fd(), slot)?;
    }
    Ok(ids)
}

/// Whether a classifier was ever installed in `slot` (packets may be in its generation).
fn in_use(dir: &Path, slot: u32) -> Result<bool> {
    for progs in ["PCN_PROGS_XDP", "PCN_PROGS_TC"] {
        if sys::id_at(pinned(dir, progs)?.as_fd(), slot)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn unpin_state(dir: &Path, slot: u32) -> Result<()> {
    let path = state::path(dir, slot);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn pin_state(dir: &Path, slot: u32, table: &Table, info: &state::Slot) -> Result<()> {
    let bytes = state::encode(
        table,
        info.seq,
        info.maps,
        &info.layout,
        info.delta.as_deref(),
    )?;
    pin_bytes(dir, slot, &bytes)
}

fn pin_bytes(dir: &Path, slot: u32, bytes: &[u8]) -> Result<()> {
    let fd = state::create(bytes)?;
    unpin_state(dir, slot)?;
    let path = state::path(dir, slot);
    sys::obj_pin(fd.as_fd(), &path).with_context(|| format!("pinning {}", path.display()))
}

fn id_of(fd: &OwnedFd) -> Result<u32> {
    Ok(sys::map_info(fd.as_fd())?.id)
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

/// A full build: new maps for the slot, a new trie, and the same for the other slot, which
/// takes them after the switch (at once, if no classifier ever ran in it: a first install).
///
/// `outer` opens the outer maps once `ready` says they exist; `setup` makes sure the
/// programs are loaded. On a first install the maps go into both (idle) slots while they
/// are filled and the programs load.
fn full(
    dir: &Path,
    outer: impl FnOnce() -> Result<[OwnedFd; 4]>,
    c: &Change,
    seq: u64,
    ready: &dyn Fn() -> Result<()>,
    setup: &dyn Fn() -> Result<()>,
) -> Result<([OwnedFd; 4], Option<OtherCopy>)> {
    let t = super::Timer("maps", std::time::Instant::now());
    let p = c.program;
    let other = (c.slot + 1) % pcn_iptables_common::GENERATIONS;
    let trie = new_trie(&p.layout.entries, false)?;
    let (arrays, fill_arrays) = new_arrays(p)?;
    let (copy, fill_copy) = new_arrays(p)?;
    ready()?;
    let outer_maps = outer()?;
    let outer = &outer_maps;
    // A slot no classifier ever ran in (a first install) takes its maps at once.
    let other_idle = !in_use(dir, other)?;
    let slot_idle = !in_use(dir, c.slot)?;
    fn maps<'a>(a: &'a Arrays, trie: &'a OwnedFd) -> Slots<'a> {
        [
            Some(a.chains.as_fd()),
            Some(a.actions.as_fd()),
            Some(trie.as_fd()),
            Some(a.bitmaps.as_fd()),
        ]
    }
    unpin_state(dir, c.slot)?;
    if other_idle {
        unpin_state(dir, other)?;
    }
    std::thread::scope(|s| -> Result<()> {
        let stored = (slot_idle && other_idle).then(|| {
            s.spawn(|| {
                let _t = super::Timer("store", std::time::Instant::now());
                store_slots(
                    outer,
                    &[(c.slot, maps(&arrays, &trie)), (other, maps(&copy, &trie))],
                )
            })
        });
        let filled_trie = s.spawn(|| trie_update(trie.as_fd(), &p.layout.entries));
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
        let _t = super::Timer("outer", std::time::Instant::now());
        match stored {
            Some(stored) => join(stored.join()),
            None => {
                if !slot_idle {
                    c.grace.wait()?;
                }
                let mut slots = vec![(c.slot, maps(&arrays, &trie))];
                if other_idle {
                    slots.push((other, maps(&copy, &trie)));
                }
                store_slots(outer, &slots)
            }
        }
    })?;
    let ids = |a: &Arrays| -> Result<[u32; 4]> {
        Ok([
            id_of(&a.chains)?,
            id_of(&a.actions)?,
            id_of(&trie)?,
            id_of(&a.bitmaps)?,
        ])
    };
    pin_state(
        dir,
        c.slot,
        c.table,
        &state::Slot {
            seq,
            maps: ids(&arrays)?,
            layout: p.layout.clone(),
            delta: None,
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
struct OtherCopy {
    arrays: Arrays,
    trie: OwnedFd,
    /// Already in the outer maps (the slot was idle); its state is pinned after the switch,
    /// which is what makes it the copy of the running generation.
    stored: bool,
}

/// A change built on the running generation, written into the inactive slot's maps in place
/// when they are the running generation's twin or predecessor, else into new arrays; the trie
/// is shared. `false`: the running generation's maps cannot take it.
fn incremental(
    dir: &Path,
    outer: &[OwnedFd; 4],
    c: &Change,
    updates: &[compile::TrieUpdate],
    seq: u64,
    prefetched: Option<Prefetched>,
) -> Result<bool> {
    let t = super::Timer("maps", std::time::Instant::now());
    let p = c.program;
    let Some(running) = c.running else {
        return Ok(false);
    };
    let (Ok(trie), Ok(active)) = (
        sys::map_by_id(running.maps[FIELDS]),
        sys::map_by_id(running.maps[BITMAPS]),
    ) else {
        return Ok(false);
    };
    let trie_info = sys::map_info(trie.as_fd())?;
    let active_info = sys::map_info(active.as_fd())?;
    let next = p.layout.next_index;
    if (trie_info.max_entries as usize) < p.layout.entries.len()
        || updates.iter().any(|u| {
            u.running
                && (u.entry.index >= active_info.max_entries || u.src >= active_info.max_entries)
        })
        || running.layout.next_index > active_info.max_entries
        || p.writes
            .iter()
            .any(|w| w.src < SRC_ONES && w.src >= running.layout.next_index)
    {
        return Ok(false);
    }
    // The slot's own maps, if it can be rewritten in place.
    let ids = ids_at(outer, c.slot)?;
    // The slot's state must say what its maps hold, and that it shares the trie. A change
    // that died half-way removed it first: the trie may then hold entries of that change,
    // which the running layout does not know of (their bitmap indexes would be handed out
    // again), so it is built anew.
    let Some((slot_seq, slot_maps)) = state::read_header(dir, c.slot)? else {
        return Ok(false);
    };
    if ids != slot_maps.map(Some) || slot_maps[FIELDS] != running.maps[FIELDS] {
        return Ok(false);
    }
    // The slot holds the running generation (after a full build and its copy) or its
    // predecessor (which `running.delta` tells the difference from); a change that died after
    // storing its state but before the switch leaves anything else.
    let behind = if slot_seq == running.seq {
        Vec::new()
    } else if slot_seq + 1 == running.seq
        && let Some(delta) = &running.delta
    {
        let mut behind = vec![(u32::MAX, 0); running.layout.next_index as usize];
        for &[i, f, t] in delta {
            if let Some(b) = behind.get_mut(i as usize) {
                *b = (f, t);
            }
        }
        behind
    } else {
        return Ok(false);
    };
    let in_place = (|| -> Result<Option<[OwnedFd; 3]>> {
        let maps = slot_maps;
        let open = |i: usize| sys::map_by_id(maps[i]);
        let (Ok(chains), Ok(actions), Ok(bitmaps)) = (open(CHAINS), open(ACTIONS), open(BITMAPS))
        else {
            return Ok(None);
        };
        let room = |fd: &OwnedFd, n: usize| -> Result<bool> {
            Ok(sys::map_info(fd.as_fd())?.max_entries as usize >= n)
        };
        if !room(&chains, p.chains.len())?
            || !room(&actions, p.actions.len())?
            || !room(&bitmaps, next as usize)?
        {
            return Ok(None);
        }
        Ok(Some([chains, actions, bitmaps]))
    })()?;

    let apply_shared = |a: &mut Active| -> Result<()> {
        // The running generation's view of each new trie entry, then the entries.
        for u in updates.iter().filter(|u| u.running) {
            a.copy(&active, u.src, u.entry.index)?;
        }
        let entries: Vec<Entry> = updates.iter().map(|u| u.entry).collect();
        trie_update(trie.as_fd(), &entries).context("updating the field trie")
    };

    let delta = delta_of(p);
    let maps;
    if let Some([chains, actions, bitmaps]) = in_place {
        let mut a = Active::new(&active, &active_info, &active_needs(p, &behind))?;
        let bitmaps_id = id_of(&bitmaps)?;
        let m = match prefetched {
            Some(f) if f.id == bitmaps_id => f.mapping,
            _ => map_array::<Bitmap>(&bitmaps)?.1,
        };
        let maps = [
            id_of(&chains)?,
            id_of(&actions)?,
            running.maps[FIELDS],
            bitmaps_id,
        ];
        std::thread::scope(|s| -> Result<()> {
            // The new state, meanwhile.
            let encoded = s.spawn(|| state::encode(c.table, seq, maps, &p.layout, Some(&delta)));
            unpin_state(dir, c.slot)?;
            c.grace.wait()?;
            let _t = super::Timer("patch", std::time::Instant::now());
            apply_shared(&mut a)?;
            let (_, mut cm) = map_array::<ChainConfig>(&chains)?;
            put(&mut cm, &with_epoch(&p.chains));
            let (_, mut am) = map_array::<Action>(&actions)?;
            put(&mut am, &p.actions);
            // SAFETY: room for next bitmaps (checked); the slot's maps are ours now (grace).
            unsafe { write_bitmaps(bitmaps_of(&m), Some(&a), p, &behind) };
            let bytes = encoded
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("encoding the state")))?;
            pin_bytes(dir, c.slot, &bytes)
        })?;
        // Unmapping a big array takes a while: left to the end of the address space, which
        // the grace period's helper takes over (see `Dataplane::commit`).
        std::mem::forget(m);
        drop(a);
        return Ok(true);
    } else {
        let mut a = Active::Mapped(map_array::<Bitmap>(&active)?.1);
        let (arrays, m) = new_arrays_mapped(p)?;
        // A copy of the running generation, then the change.
        // SAFETY: the new array has room for next >= the running generation's bitmaps, which
        // the mapped array holds (checked above).
        unsafe {
            if let Active::Mapped(am) = &a {
                std::ptr::copy_nonoverlapping(
                    bitmaps_of(am),
                    bitmaps_of(&m),
                    running.layout.next_index as usize,
                );
            }
            write_bitmaps(bitmaps_of(&m), Some(&a), p, &[]);
        }
        drop(m);
        drop(t);
        let _t = super::Timer("outer", std::time::Instant::now());
        if in_use(dir, c.slot)? {
            c.grace.wait()?;
        }
        unpin_state(dir, c.slot)?;
        apply_shared(&mut a)?;
        let fields = (ids[FIELDS] != Some(running.maps[FIELDS])).then(|| trie.as_fd());
        store(
            outer,
            c.slot,
            [
                Some(arrays.chains.as_fd()),
                Some(arrays.actions.as_fd()),
                fields,
                Some(arrays.bitmaps.as_fd()),
            ],
        )?;
        maps = [
            id_of(&arrays.chains)?,
            id_of(&arrays.actions)?,
            running.maps[FIELDS],
            id_of(&arrays.bitmaps)?,
        ];
    }
    pin_state(
        dir,
        c.slot,
        c.table,
        &state::Slot {
            seq,
            maps,
            layout: p.layout.clone(),
            delta: Some(delta),
        },
    )?;
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
        let counters = pinned(dir, "PCN_COUNTERS")?;
        super::set_counters_batch(counters.as_fd(), c.fresh_counters)?;
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
