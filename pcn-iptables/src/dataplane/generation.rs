//! Loading one generation: fresh classifier maps filled from the compiled tables, classifier
//! programs bound to them, the ruleset text beside them, then the switch.

use std::{fs, path::Path};

use anyhow::{Context as _, Result};
use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, MapData, PerCpuArray, ProgramArray,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, links::FdLink, tc::TcAttachOptions,
    },
};
use pcn_iptables_common::{Bitmap, Counter, FieldKey};

use super::state;
use crate::compile::{Compiled, Link, Words};

/// The eBPF object: entry programs, classifiers, and the benchmarks' baseline.
pub static ELF: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pcn-iptables-ebpf"));

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

/// Writes the bitmaps straight into the (BPF_F_MMAPABLE) array's memory: one mapping
/// instead of a syscall and a copy per bitmap.
fn fill_bitmaps(map: &MapData, bitmaps: &[Words]) -> Result<()> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let len = std::mem::size_of::<Bitmap>() * bitmaps.len().max(1);
    let fd = map.fd().as_fd().as_raw_fd();
    // SAFETY: a shared writable mapping of the array's values, `len` bytes, unmapped below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error()).context("mapping the bitmap array");
    }
    let mut bitmap = Box::new(Bitmap::zero());
    for (i, words) in bitmaps.iter().enumerate() {
        *bitmap = Bitmap::zero();
        bitmap.set_words(words);
        // SAFETY: slot i lies inside the mapping (the array has bitmaps.len() entries, each of
        // size_of::<Bitmap>(), a multiple of 8 so the kernel pads nothing).
        unsafe { std::ptr::write(base.cast::<Bitmap>().add(i), *bitmap) };
    }
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(base, len) };
    Ok(())
}

fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .with_context(|| format!("map {name} missing from the object"))?;
    T::try_from(map).with_context(|| format!("map {name}"))
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
    let chunks = state::chunks(text);
    let first_load = !dir.join(super::conntrack::MAP).exists();
    let at_least_one = |n: usize| (n.max(1)) as u32;
    let mut loader = EbpfLoader::new();
    // No CO-RE relocations in our programs: skip parsing the kernel's BTF (~20 ms).
    loader
        .btf(None)
        .default_map_pin_directory(dir)
        // Only a first install creates it; later loads reuse the pinned table.
        .map_max_entries(super::conntrack::MAP, conntrack_entries)
        .map_max_entries("CHAINS", at_least_one(compiled.chains.len()))
        .map_max_entries("ACTIONS", at_least_one(compiled.actions.len()))
        .map_max_entries("FIELDS", at_least_one(compiled.fields.len()))
        .map_max_entries("BITMAPS", at_least_one(compiled.bitmaps.len()))
        .map_max_entries("RULESET", at_least_one(chunks.len()));
    let mut ebpf = loader.load(ELF).context("loading the eBPF object")?;
    // Programs first: taking a map out of `ebpf` closes it when the handle goes.
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

    let mut chains: Array<MapData, pcn_iptables_common::ChainConfig> = take(&mut ebpf, "CHAINS")?;
    for (i, c) in compiled.chains.iter().enumerate() {
        chains.set(i as u32, c, 0)?;
    }
    let mut actions: Array<MapData, pcn_iptables_common::Action> = take(&mut ebpf, "ACTIONS")?;
    for (i, a) in compiled.actions.iter().enumerate() {
        actions.set(i as u32, a, 0)?;
    }
    let Some(aya::maps::Map::Array(bitmaps)) = ebpf.take_map("BITMAPS") else {
        anyhow::bail!("map BITMAPS missing from the object");
    };
    fill_bitmaps(&bitmaps, &compiled.bitmaps)?;
    let mut fields: LpmTrie<MapData, FieldKey, u32> = take(&mut ebpf, "FIELDS")?;
    for e in &compiled.fields {
        fields
            .insert(&Key::new(e.prefix_len, e.key), e.bitmap, 0)
            .context("filling the field trie")?;
    }

    // The ruleset text, pinned where the next invocation looks for this slot's state.
    let mut ruleset: Array<MapData, state::Chunk> = take(&mut ebpf, "RULESET")?;
    for (i, c) in chunks.iter().enumerate() {
        ruleset.set(i as u32, c, 0)?;
    }
    let state_path = state::path(dir, slot);
    if state_path.exists() {
        fs::remove_file(&state_path)?;
    }
    ruleset
        .pin(&state_path)
        .with_context(|| format!("pinning {}", state_path.display()))?;

    let mut progs_xdp: ProgramArray<MapData> = take(&mut ebpf, "PCN_PROGS_XDP")?;
    let xdp: &Xdp = ebpf
        .program("pcn_xdp_classify")
        .context("pcn_xdp_classify")?
        .try_into()?;
    progs_xdp.set(slot, xdp.fd()?, 0)?;
    let mut progs_tc: ProgramArray<MapData> = take(&mut ebpf, "PCN_PROGS_TC")?;
    let tc: &SchedClassifier = ebpf
        .program("pcn_tc_classify")
        .context("pcn_tc_classify")?
        .try_into()?;
    progs_tc.set(slot, tc.fd()?, 0)?;

    let mut counters: PerCpuArray<MapData, Counter> = take(&mut ebpf, "PCN_COUNTERS")?;
    super::set_counters(&mut counters, fresh_counters.iter().copied())?;

    if first_load {
        // Before any packet is judged: connections open now must not look NEW.
        super::conntrack::seed(dir).context("seeding the connection table")?;
    }
    attach(&mut ebpf, dir, links)?;

    let mut active: Array<MapData, u32> = take(&mut ebpf, "PCN_ACTIVE")?;
    active
        .set(0, slot, 0)
        .context("switching to the new generation")?;
    Ok(())
}

/// Pins of the entry programs, for tools that run them on crafted packets (the benchmark's
/// BPF_PROG_TEST_RUN) or profile them; the links keep them alive either way.
pub const INGRESS_PIN: &str = "prog-ingress";
pub const EGRESS_PIN: &str = "prog-egress";

/// Attaches the entry programs to every interface that lacks them, and forgets the links of
/// interfaces that are gone.
fn attach(ebpf: &mut Ebpf, dir: &Path, links: &[Link]) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some((kind, index)) = name.split_once('-') else {
            continue;
        };
        if (kind == "xdp" || kind == "tc")
            && index
                .parse::<u32>()
                .is_ok_and(|i| !links.iter().any(|l| l.ifindex == i))
        {
            fs::remove_file(dir.join(&name))?;
        }
    }
    for link in links {
        let pin = dir.join(format!("xdp-{}", link.ifindex));
        if !pin.exists() {
            let prog: &mut Xdp = ebpf
                .program_mut("pcn_ingress")
                .context("pcn_ingress")?
                .try_into()?;
            if prog.fd().is_err() {
                prog.load().context("loading the XDP entry program")?;
                let pin = dir.join(INGRESS_PIN);
                if !pin.exists() {
                    prog.pin(&pin)
                        .with_context(|| format!("pinning {}", pin.display()))?;
                }
            }
            let id = prog
                .attach_to_if_index(link.ifindex, XdpMode::Default)
                .with_context(|| format!("attaching XDP to {}", link.name))?;
            FdLink::try_from(prog.take_link(id)?)?.pin(&pin)?;
        }
        let pin = dir.join(format!("tc-{}", link.ifindex));
        if !pin.exists() {
            let prog: &mut SchedClassifier = ebpf
                .program_mut("pcn_egress")
                .context("pcn_egress")?
                .try_into()?;
            if prog.fd().is_err() {
                prog.load().context("loading the TC entry program")?;
                let pin = dir.join(EGRESS_PIN);
                if !pin.exists() {
                    prog.pin(&pin)
                        .with_context(|| format!("pinning {}", pin.display()))?;
                }
            }
            let id = prog
                .attach_with_options(
                    &link.name,
                    TcAttachType::Egress,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                )
                .with_context(|| format!("attaching TC egress to {}", link.name))?;
            FdLink::try_from(prog.take_link(id)?)?.pin(&pin)?;
        }
    }
    Ok(())
}
