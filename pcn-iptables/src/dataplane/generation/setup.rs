//! Loading this build's programs and outer maps into a namespace (`set_up`).

use std::{
    fs,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::EbpfLoader;
use pcn_iptables_common::{Action, Block, ChainConfig};

use super::arrays::TRIE_KEY;
use super::object::{CLASSIFY_TC_PIN, CLASSIFY_XDP_PIN, ELF, OUTER, pinned};
use crate::dataplane::{
    attach::{self, ENTRIES},
    conntrack, load,
    rtnl::links,
    settings, sys,
    timer::Timer,
};

/// Makes the outer maps that are not pinned yet, for the loader to reuse: their inner map
/// templates made here, without BTF, like the inner maps every change makes. A template made
/// from the object's BTF would not match those on 6.1 (its `timer_off` is -ENOENT where a map
/// without BTF has -EINVAL, and the kernel compares them).
pub(super) fn make_outer_maps(pins: &[PathBuf]) -> Result<()> {
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
        array(std::mem::size_of::<Block>()),
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
pub(super) fn setup(
    dir: &Path,
    build: &Path,
    sizes: Option<crate::dataplane::sizes::Sizes>,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> Result<()> {
    let _t = Timer("setup", std::time::Instant::now());
    fs::create_dir_all(build).with_context(|| format!("creating {}", build.display()))?;
    let first_load = !dir.join(conntrack::MAP).exists();
    let pins: Vec<PathBuf> = OUTER.iter().map(|n| build.join(n)).collect();
    // aya's loader reads the kernel's BTF when made (~20 ms; `.btf(None)` drops it), and the
    // globals read it again for a few offsets: both beside the maps being made.
    let mut loader = std::thread::scope(|s| -> Result<EbpfLoader> {
        let loader = s.spawn(EbpfLoader::new);
        s.spawn(settings::read_kernel_btf);
        make_outer_maps(&pins)?;
        crate::dataplane::counters::create(dir)?;
        crate::dataplane::recent::create(dir)?;
        crate::dataplane::connlimit::create(dir)?;
        crate::dataplane::hashlimit::create(dir)?;
        loader
            .join()
            .map_err(|_| anyhow::anyhow!("making the eBPF loader"))
    })?;
    let sizes = match sizes {
        Some(sizes) => sizes,
        None => crate::dataplane::sizes::Sizes::of_machine()?,
    };
    // No CO-RE relocations in our programs: skip parsing the kernel's BTF (~20 ms).
    loader
        .btf(None)
        .default_map_pin_directory(dir)
        // Only a first install creates them; later loads reuse the pinned tables.
        .map_max_entries(conntrack::MAP, sizes.conntrack)
        .map_max_entries(crate::dataplane::FLOWS_MAP, sizes.flows)
        .map_max_entries(crate::dataplane::EARLY_DROP_MAP, sizes.early_drop());
    for (name, pin) in OUTER.iter().zip(&pins) {
        loader.map_pin_path(name, pin.as_path());
    }
    let counters = dir.join(crate::dataplane::counters::OUTER_PIN);
    loader.map_pin_path(crate::dataplane::counters::OUTER_PIN, counters.as_path());
    let recent = dir.join(crate::dataplane::recent::OUTER_PIN);
    loader.map_pin_path(crate::dataplane::recent::OUTER_PIN, recent.as_path());
    let connlimit = dir.join(crate::dataplane::connlimit::OUTER_PIN);
    loader.map_pin_path(crate::dataplane::connlimit::OUTER_PIN, connlimit.as_path());
    let hashlimit = dir.join(crate::dataplane::hashlimit::OUTER_PIN);
    loader.map_pin_path(crate::dataplane::hashlimit::OUTER_PIN, hashlimit.as_path());
    loader.verifier_log_level(load::log_level());
    settings::globals(&mut loader);
    let t = Timer("setup:object", std::time::Instant::now());
    let mut ebpf = loader.load(ELF).context("loading the eBPF object")?;
    drop(t);
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    // The programs to load (the entry programs on a first install), verified at once: the
    // verifier takes its time, on one CPU per program.
    let t = Timer("setup:programs", std::time::Instant::now());
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
                    load::program(name, prog)?;
                    if let Some((_, pin, kind)) = entry(name) {
                        let pin = dir.join(pin);
                        prog.pin(&pin)
                            .with_context(|| format!("pinning {}", pin.display()))?;
                        attach::attach_kinds(dir, &[kind], links)?;
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
    // The entry programs, which the classifiers hand a packet back to after raw.
    for (progs, entry) in [
        ("PCN_ENTRY_XDP", attach::INGRESS_PIN),
        ("PCN_ENTRY_TC", attach::EGRESS_PIN),
    ] {
        let progs = pinned(dir, progs)?;
        let entry = pinned(dir, entry)?;
        let want = sys::prog_id(entry.as_fd())?;
        if sys::id_at(progs.as_fd(), 0)? != Some(want) {
            sys::set_fd(progs.as_fd(), 0, entry.as_fd()).context("setting an entry program")?;
        }
    }
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
        conntrack::seed(dir).context("seeding the connection table")?;
    }
    Ok(())
}
