//! Generations. The classifier programs are loaded once per build of the eBPF object (at
//! install, or when a new binary first changes the rules); a generation is only a set of maps:
//! a change creates them sized to fit, fills them, stores them in the inactive slot of the
//! outer maps the classifier reads through, pins the ruleset text beside them, then flips
//! `PCN_ACTIVE`. No ELF parsing, no program load, no verifier on that path.
//!
//! Per build of the object, a directory `gen-HASH` (HASH: of the object's bytes) holds the
//! outer maps (`CHAINS`, `ACTIONS`, `FIELDS`, `BITMAPS`) and the classifiers
//! (`classify-xdp`, `classify-tc`, pinned last: their presence means the build is set up).
//! A new binary with another object sets up its own directory and program-array slots; the
//! entry programs stay, and the previous build's directory goes after its first flip.

use std::{
    fs,
    os::fd::{AsFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::{
    EbpfLoader,
    maps::{Array, MapData, PerCpuArray},
    programs::{SchedClassifier, Xdp},
};
use pcn_iptables_common::{Action, Bitmap, ChainConfig, Counter, FieldKey};

use super::{state, sys};
use crate::compile::{Compiled, Link, TrieEntry, Words};

/// The eBPF object: entry programs, classifiers, and the benchmarks' baseline.
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
    dir.join(format!("gen-{:016x}", elf_hash()))
}

/// An array map of `items` with the flags of the classifier's inner arrays, filled through
/// mmap (a fresh array reads zero).
fn array<T: Copy>(name: &str, items: &[T]) -> Result<OwnedFd> {
    const { assert!(std::mem::size_of::<T>().is_multiple_of(8)) };
    let size = std::mem::size_of::<T>();
    let fd = sys::map_create(
        name,
        sys::MAP_TYPE_ARRAY,
        4,
        size as u32,
        items.len().max(1) as u32,
        sys::INNER_ARRAY,
    )
    .with_context(|| format!("creating map {name}"))?;
    if !items.is_empty() {
        let mut mapping = sys::Mapping::new(fd.as_fd(), std::mem::size_of_val(items))
            .with_context(|| format!("mapping {name}"))?;
        let dst = mapping.bytes().as_mut_ptr().cast::<T>();
        // SAFETY: the mapping holds items.len() values of size_of::<T>() (a multiple of 8, so
        // the kernel pads nothing), page-aligned.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), dst, items.len()) };
    }
    Ok(fd)
}

/// The bitmap array, written in place: each bitmap's words and summary straight into the
/// map's (zeroed) memory.
fn bitmaps(bitmaps: &[Words]) -> Result<OwnedFd> {
    const { assert!(std::mem::size_of::<Bitmap>().is_multiple_of(8)) };
    let fd = sys::map_create(
        "BITMAPS",
        sys::MAP_TYPE_ARRAY,
        4,
        std::mem::size_of::<Bitmap>() as u32,
        bitmaps.len().max(1) as u32,
        sys::INNER_ARRAY,
    )
    .context("creating map BITMAPS")?;
    if !bitmaps.is_empty() {
        let mut mapping =
            sys::Mapping::new(fd.as_fd(), std::mem::size_of::<Bitmap>() * bitmaps.len())
                .context("mapping BITMAPS")?;
        let base = mapping.bytes().as_mut_ptr().cast::<Bitmap>();
        for (i, words) in bitmaps.iter().enumerate() {
            // SAFETY: slot i lies inside the mapping, aligned (page base, 8-byte multiple
            // size), and reads zero: set_words only ORs summary bits into it.
            unsafe { (*base.add(i)).set_words(words) };
        }
    }
    Ok(fd)
}

/// The field trie, in one batch update where the kernel has it.
fn fields(entries: &[TrieEntry]) -> Result<OwnedFd> {
    const KEY: usize = 4 + std::mem::size_of::<FieldKey>();
    let fd = sys::map_create(
        "FIELDS",
        sys::MAP_TYPE_LPM_TRIE,
        KEY as u32,
        4,
        entries.len().max(1) as u32,
        sys::F_NO_PREALLOC,
    )
    .context("creating map FIELDS")?;
    if entries.is_empty() {
        return Ok(fd);
    }
    let mut keys = Vec::with_capacity(entries.len() * KEY);
    let mut values = Vec::with_capacity(entries.len() * 4);
    for e in entries {
        keys.extend_from_slice(&e.prefix_len.to_ne_bytes());
        keys.extend_from_slice(&e.key);
        values.extend_from_slice(&e.bitmap.to_ne_bytes());
    }
    match sys::map_update_batch(fd.as_fd(), &keys, &values, entries.len() as u32) {
        Ok(()) => {}
        // No batch updates for tries on this kernel: one at a time.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
            for (key, value) in keys.chunks_exact(KEY).zip(values.chunks_exact(4)) {
                sys::map_update(fd.as_fd(), key, value, 0).context("filling the field trie")?;
            }
        }
        Err(e) => return Err(e).context("filling the field trie"),
    }
    Ok(fd)
}

/// Opens the pin `name` in `dir`.
fn pinned(dir: &Path, name: &str) -> Result<OwnedFd> {
    let path = dir.join(name);
    sys::obj_get(&path).with_context(|| format!("opening {}", path.display()))
}

/// Loads this build's classifiers (and, on a first install, the entry programs and the shared
/// maps), pinning them; seeds the connection table on a first install.
fn setup(dir: &Path, build: &Path, conntrack_entries: u32) -> Result<()> {
    fs::create_dir_all(build).with_context(|| format!("creating {}", build.display()))?;
    let first_load = !dir.join(super::conntrack::MAP).exists();
    let pins: Vec<PathBuf> = OUTER.iter().map(|n| build.join(n)).collect();
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
    super::settings::globals(&mut loader);
    let mut ebpf = loader.load(ELF).context("loading the eBPF object")?;

    let pin = dir.join(INGRESS_PIN);
    if !pin.exists() {
        let prog: &mut Xdp = ebpf
            .program_mut("pcn_ingress")
            .context("pcn_ingress")?
            .try_into()?;
        prog.load().context("loading the XDP entry program")?;
        prog.pin(&pin)
            .with_context(|| format!("pinning {}", pin.display()))?;
    }
    let pin = dir.join(EGRESS_PIN);
    if !pin.exists() {
        let prog: &mut SchedClassifier = ebpf
            .program_mut("pcn_egress")
            .context("pcn_egress")?
            .try_into()?;
        prog.load().context("loading the TC entry program")?;
        prog.pin(&pin)
            .with_context(|| format!("pinning {}", pin.display()))?;
    }
    super::attach::load(&mut ebpf, dir)?;

    let xdp: &mut Xdp = ebpf
        .program_mut("pcn_xdp_classify")
        .context("pcn_xdp_classify")?
        .try_into()?;
    xdp.load().context("loading the XDP classifier")?;
    let tc: &mut SchedClassifier = ebpf
        .program_mut("pcn_tc_classify")
        .context("pcn_tc_classify")?
        .try_into()?;
    tc.load().context("loading the TC classifier")?;
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

/// The chains with this generation's epoch, which no other generation has (a random 64-bit
/// number), so that flows cached by an older one are looked at again.
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

/// Installs `compiled` (and `text`, the ruleset it came from) into generation `slot`, then
/// makes `slot` the active generation.
pub fn install(
    dir: &Path,
    compiled: &Compiled,
    text: &str,
    slot: u32,
    fresh_counters: &[(u32, Counter)],
    links: &[Link],
    conntrack_entries: u32,
) -> Result<()> {
    let build = build_dir(dir);
    if !build.join(CLASSIFY_TC_PIN).exists() || !build.join(CLASSIFY_XDP_PIN).exists() {
        setup(dir, &build, conntrack_entries)?;
    }

    let t = super::Timer("maps", std::time::Instant::now());
    // The generation's maps, filled before anything can see them: the trie (a syscall per
    // entry) here, the bitmaps and the ruleset text (memory to write) beside it.
    let (maps, ruleset) = std::thread::scope(|s| -> Result<_> {
        let bitmaps = s.spawn(|| bitmaps(&compiled.bitmaps));
        let ruleset = s.spawn(|| state::create(text));
        let chains = array::<ChainConfig>("CHAINS", &with_epoch(&compiled.chains))?;
        let actions = array::<Action>("ACTIONS", &compiled.actions)?;
        let fields = fields(&compiled.fields)?;
        let joined = |r: std::thread::Result<Result<OwnedFd>>| {
            r.unwrap_or_else(|_| Err(anyhow::anyhow!("filling a map")))
        };
        let maps: [OwnedFd; 4] = [chains, actions, fields, joined(bitmaps.join())?];
        Ok((maps, joined(ruleset.join())?))
    })?;
    // The ruleset text, pinned where the next invocation looks for this slot's state.
    let state_path = state::path(dir, slot);
    if state_path.exists() {
        fs::remove_file(&state_path)?;
    }
    sys::obj_pin(ruleset.as_fd(), &state_path)
        .with_context(|| format!("pinning {}", state_path.display()))?;

    drop(t);
    let t = super::Timer("outer", std::time::Instant::now());
    // Into the inactive slot: the previous generation's maps there go when the kernel is done
    // with them. Each update of an outer map waits for an RCU grace period (so that no program
    // still runs with the map it replaced); made at once from one thread each, they share one.
    let outer = OUTER
        .iter()
        .map(|name| pinned(&build, name))
        .collect::<Result<Vec<_>>>()?;
    std::thread::scope(|s| {
        let updates: Vec<_> = OUTER
            .iter()
            .zip(&outer)
            .zip(&maps)
            .map(|((name, outer), map)| {
                s.spawn(move || {
                    sys::set_fd(outer.as_fd(), slot, map.as_fd())
                        .with_context(|| format!("storing the new {name}"))
                })
            })
            .collect();
        updates
            .into_iter()
            .try_for_each(|u| u.join().unwrap_or_else(|_| Err(anyhow::anyhow!("thread"))))
    })?;
    for (progs, classifier) in [
        ("PCN_PROGS_XDP", CLASSIFY_XDP_PIN),
        ("PCN_PROGS_TC", CLASSIFY_TC_PIN),
    ] {
        sys::set_fd(
            pinned(dir, progs)?.as_fd(),
            slot,
            pinned(&build, classifier)?.as_fd(),
        )
        .with_context(|| format!("setting slot {slot} of {progs}"))?;
    }

    drop(t);
    let _t = super::Timer("rest", std::time::Instant::now());
    if !fresh_counters.is_empty() {
        let map = MapData::from_pin(dir.join("PCN_COUNTERS")).context("opening PCN_COUNTERS")?;
        let mut counters: PerCpuArray<MapData, Counter> =
            PerCpuArray::try_from(aya::maps::Map::from_map_data(map)?)?;
        super::set_counters(&mut counters, fresh_counters.iter().copied())?;
    }

    super::attach::attach(dir, links)?;

    let map = MapData::from_pin(dir.join("PCN_ACTIVE")).context("opening PCN_ACTIVE")?;
    let mut active: Array<MapData, u32> = Array::try_from(aya::maps::Map::from_map_data(map)?)?;
    active
        .set(0, slot, 0)
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
