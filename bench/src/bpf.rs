//! pcn-iptables through its library, and the eBPF programs the benchmark runs: installing a
//! rule set, the entry and classifier programs of the running generation, counters, and the
//! bare-XDP baseline.

use std::{
    borrow::Cow,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    maps::{Array, MapData},
    programs::{ProgramInfo, Xdp, XdpMode, loaded_programs},
};
use aya_obj::{
    generated::{bpf_attach_type, bpf_cmd, bpf_prog_type},
    programs::XdpAttachType,
};
use pcn_iptables::{
    dataplane::{self, Dataplane, bpffs},
    engine::{self, Slots},
    model::{Policy, Rule, Table},
};
use pcn_iptables_common::Counter;

use crate::rules::RuleSet;

/// Names of the dataplane's pins this benchmark reads (see pcn-iptables' dataplane module).
const ACTIVE_PIN: &str = "PCN_ACTIVE";
const PROGS_XDP_PIN: &str = "PCN_PROGS_XDP";
/// The classifier as the kernel names it (program names are cut at 15 characters).
const CLASSIFIER: &str = "pcn_xdp_classify";

/// A rule set installed in the current network namespace's pcn-iptables.
pub struct Installed {
    pub dp: Dataplane,
    /// Counter slot of each rule, by rule index.
    pub rule_counters: Vec<u32>,
    /// Counter slot of the chain's policy.
    pub policy_counter: u32,
    /// Compile, load and swap, as `install` took it.
    pub took: Duration,
}

/// Installs `rules` as the whole filter table of this namespace, through the same path as a
/// pcn-iptables command (one atomic swap).
pub fn install(rules: &RuleSet) -> Result<Installed> {
    install_with(rules, Policy::Accept, |counter| {
        rules.model_rules(|_| counter())
    })
}

/// Installs the rules `make` builds (given a source of fresh counter slots) in the chain of
/// `rules`, instead of the rule set itself, with `policy` as that chain's policy.
pub fn install_with(
    rules: &RuleSet,
    policy: Policy,
    make: impl FnOnce(&mut dyn FnMut() -> u32) -> Vec<Rule>,
) -> Result<Installed> {
    let dp = Dataplane::open()?;
    let running = dp.read_state()?;
    let mut slots = Slots::new(&running.table);
    let mut rule_counters = Vec::new();
    let mut table = Table::default();
    let chain = table.chain_mut(&rules.chain).context("a base chain")?;
    chain.policy = Some(policy);
    chain.rules = make(&mut || {
        let slot = slots.alloc(Counter::default());
        rule_counters.push(slot);
        slot
    })
    .into();
    let policy_counter = table
        .chain(&rules.chain)
        .map(|c| c.policy_counter)
        .context("the rule set's chain")?;
    let start = Instant::now();
    engine::install(&dp, &running, None, &table, &slots)
        .map_err(|e| anyhow!("{}", e.render("pcn-iptables").trim_end()))?;
    Ok(Installed {
        dp,
        rule_counters,
        policy_counter,
        took: start.elapsed(),
    })
}

impl Installed {
    /// Packets counted in `slot` so far, summed over CPUs.
    pub fn packets(&self, slot: u32) -> Result<u64> {
        Ok(self.dp.counters()?(slot).0)
    }

    /// The XDP entry program (parse, `bpf_fib_lookup`, tail call into the classifier).
    pub fn entry(&self) -> Result<Xdp> {
        let pin = self.dp.dir().join(dataplane::INGRESS_PIN);
        Xdp::from_pin(&pin, XdpAttachType::Interface)
            .with_context(|| format!("opening {}", pin.display()))
    }

    /// The XDP classifier of the running generation, the program the entry tail-calls.
    pub fn classifier(&self) -> Result<Xdp> {
        let info = active_classifier_info(self.dp.dir())?;
        Xdp::from_program_info(info, Cow::Borrowed(CLASSIFIER), XdpAttachType::Interface)
            .context("opening the classifier")
    }
}

/// Kernel information (run statistics, verifier counts) about the entry program of `dir`.
pub fn entry_info(dir: &Path) -> Result<ProgramInfo> {
    Ok(ProgramInfo::from_pin(dir.join(dataplane::INGRESS_PIN))?)
}

/// Kernel information about the running generation's XDP classifier: the program in the
/// active slot of the pinned program array.
pub fn active_classifier_info(dir: &Path) -> Result<ProgramInfo> {
    let active: Array<MapData, u32> = Array::try_from(aya::maps::Map::from_map_data(
        MapData::from_pin(dir.join(ACTIVE_PIN))?,
    )?)?;
    let slot = active.get(&0, 0)?;
    let progs = MapData::from_pin(dir.join(PROGS_XDP_PIN))?;
    let id = prog_array_get(progs.fd().as_fd(), slot)
        .with_context(|| format!("reading slot {slot} of {PROGS_XDP_PIN}"))?;
    for info in loaded_programs() {
        let info = info?;
        if info.id() == id {
            return Ok(info);
        }
    }
    bail!("program {id} is gone")
}

/// The running generation's map `name`: the classifier reaches each per-generation map through
/// an outer map (array of maps) of that name, by the active slot.
pub fn active_inner_map(
    dir: &Path,
    classifier: &ProgramInfo,
    name: &str,
) -> Result<aya::maps::MapInfo> {
    let active: Array<MapData, u32> = Array::try_from(aya::maps::Map::from_map_data(
        MapData::from_pin(dir.join(ACTIVE_PIN))?,
    )?)?;
    let slot = active.get(&0, 0)?;
    for id in classifier.map_ids()?.unwrap_or_default() {
        let outer = aya::maps::MapInfo::from_id(id)?;
        if outer.name_as_str() == Some(name)
            && matches!(outer.map_type(), Ok(aya::maps::MapType::ArrayOfMaps))
        {
            let outer = MapData::from_id(id)?;
            let inner = prog_array_get(outer.fd().as_fd(), slot)
                .with_context(|| format!("reading slot {slot} of {name}"))?;
            return Ok(aya::maps::MapInfo::from_id(inner)?);
        }
    }
    bail!("the classifier has no map {name}")
}

/// The id of the program (or map) in slot `index` of a program array (or array of maps): what
/// the kernel returns when userspace looks one up (aya 0.14 has no call for it).
fn prog_array_get(map: BorrowedFd<'_>, index: u32) -> std::io::Result<u32> {
    /// `union bpf_attr` as BPF_MAP_LOOKUP_ELEM reads it.
    #[repr(C)]
    struct MapElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    let mut id: u32 = 0;
    let attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &index as *const u32 as u64,
        value: &mut id as *mut u32 as u64,
        flags: 0,
    };
    // SAFETY: attr is a valid bpf_attr prefix for this command; key and value point at live
    // u32s, the sizes of a program array's keys and of the ids it returns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            &attr as *const MapElemAttr,
            std::mem::size_of::<MapElemAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(id)
}

/// The bare-XDP baseline: a program that drops every packet and does nothing else
/// (`r0 = XDP_DROP; exit`), loaded here with two raw instructions rather than shipped in
/// pcn-iptables' object, which then holds only what the firewall runs. It is pinned in a
/// scratch directory of ours on the bpffs, away from the tool's real state, to be opened as an
/// aya program; the directory goes when this is dropped (which also detaches the program).
pub struct Baseline {
    prog: Xdp,
    scratch: PathBuf,
}

impl Baseline {
    pub fn load() -> Result<Self> {
        bpffs::ensure()?;
        let scratch = std::env::var_os("BENCH_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(bpffs::BPFFS).join(format!("bench-{}", std::process::id()))
            });
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let pin = scratch.join("pcn_baseline_drop");
        let _ = std::fs::remove_file(&pin);
        let fd = load_drop_all().context("loading the baseline")?;
        obj_pin(fd.as_fd(), &pin).with_context(|| format!("pinning {}", pin.display()))?;
        let prog = Xdp::from_pin(&pin, XdpAttachType::Interface).context("opening the baseline");
        let baseline = Baseline {
            prog: prog?,
            scratch,
        };
        Ok(baseline)
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        Ok(&mut self.prog)
    }

    pub fn program(&self) -> Result<&Xdp> {
        Ok(&self.prog)
    }

    /// Attaches the baseline to `iface` in `mode` until this is dropped.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
        self.program_mut()?
            .attach(iface, mode)
            .with_context(|| format!("attaching the baseline to {iface}"))?;
        Ok(())
    }
}

/// BPF_PROG_LOAD of an XDP program that returns XDP_DROP.
fn load_drop_all() -> std::io::Result<OwnedFd> {
    /// `union bpf_attr` as BPF_PROG_LOAD reads it, up to `expected_attach_type`.
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    // (code, registers, offset, immediate) packed as `struct bpf_insn` (little endian).
    const MOV64_R0_IMM: u64 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K, dst r0
    const EXIT: u64 = 0x95; // BPF_JMP | BPF_EXIT
    const XDP_DROP: u64 = 1;
    let insns: [u64; 2] = [MOV64_R0_IMM | XDP_DROP << 32, EXIT];
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"pcn_baseline");
    let attr = ProgLoadAttr {
        prog_type: bpf_prog_type::BPF_PROG_TYPE_XDP as u32,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: bpf_attach_type::BPF_XDP as u32,
        ..Default::default()
    };
    // SAFETY: attr is a valid bpf_attr prefix for this command, pointing at live
    // instructions and a NUL-terminated license; the kernel returns a new fd we then own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_PROG_LOAD as libc::c_long,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd of our own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_PIN of `fd` at `path` (on a bpffs).
fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    /// `union bpf_attr` as BPF_OBJ_PIN reads it.
    #[repr(C)]
    struct ObjPinAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    let attr = ObjPinAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    // SAFETY: attr is a valid bpf_attr prefix for this command; the path is NUL-terminated
    // and outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_OBJ_PIN as libc::c_long,
            &attr as *const ObjPinAttr,
            std::mem::size_of::<ObjPinAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
