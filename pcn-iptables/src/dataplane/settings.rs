//! `PCN_SETTINGS`: what the data plane learns from userspace at every change. The ICMP rate
//! limit sysctls of the namespace (REJECT's ICMP errors obey them as the kernel's own do), read
//! from /proc/sys/net/ipv4 each time, so a change of them counts from the next command; and
//! the offsets of the kernel structures `--log-uid` reads, found once in the kernel's BTF; the
//! interface addresses REJECT answers forwarded packets from where the kernel is older than 6.7;
//! the TAI offset and the kernel's timezone `-m time` reads the time with.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData};
use pcn_iptables_common::{
    ICMP_MSGS_BURST_DEFAULT, ICMP_MSGS_PER_SEC_DEFAULT, ICMP_RATELIMIT_NS_DEFAULT,
    ICMP_RATEMASK_DEFAULT, IF_ADDRS, IfAddr, Settings, kernel_fact,
};

use super::btf::Btf;

pub const MAP: &str = "PCN_SETTINGS";

/// CLOCK_TAI less UTC (adjtimex's `tai`, 0 where no time daemon set it) and the kernel's
/// timezone (`sys_tz`, minutes west of UTC), which `-m time` needs.
fn clocks() -> (i32, i32) {
    // SAFETY: adjtimex with modes 0 reads into a zeroed timex; gettimeofday writes a timeval
    // and the two ints of a struct timezone.
    unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let tai = if libc::adjtimex(&mut tx) >= 0 {
            tx.tai
        } else {
            0
        };
        let mut tv: libc::timeval = std::mem::zeroed();
        let mut tz = [0i32; 2];
        let west = match libc::gettimeofday(&mut tv, tz.as_mut_ptr().cast()) {
            0 => tz[0],
            _ => 0,
        };
        (tai, west)
    }
}

/// An integer sysctl of the current network namespace, or `default` where it cannot be read.
fn sysctl(name: &str, default: u64) -> u64 {
    std::fs::read_to_string(Path::new("/proc/sys/net/ipv4").join(name))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|v| v.max(0) as u64)
        .unwrap_or(default)
}

/// Writes the namespace's current settings into the pinned map of `dir`.
pub fn refresh(dir: &Path) -> Result<()> {
    let path = dir.join(MAP);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut map: Array<MapData, Settings> = Array::try_from(Map::Array(data))?;
    let mut s = map.get(&0, 0).unwrap_or_default();
    s.icmp_ratemask = sysctl("icmp_ratemask", ICMP_RATEMASK_DEFAULT as u64) as u32;
    // Shown in milliseconds.
    s.icmp_ratelimit_ns =
        sysctl("icmp_ratelimit", ICMP_RATELIMIT_NS_DEFAULT / 1_000_000).saturating_mul(1_000_000);
    s.icmp_msgs_per_sec =
        sysctl("icmp_msgs_per_sec", ICMP_MSGS_PER_SEC_DEFAULT as u64).min(u32::MAX as u64) as u32;
    s.icmp_msgs_burst =
        sysctl("icmp_msgs_burst", ICMP_MSGS_BURST_DEFAULT as u64).min(i32::MAX as u64) as u32;
    if s.sock_offsets_set == 0 || s.kernel_facts == 0 {
        // Without BTF, `--log-uid` prints nothing; everything else works.
        if let Some(btf) = Btf::kernel_once() {
            s.kernel_facts = kernel_fact::READ
                | if btf.offset("bpf_fib_lookup", "mark").is_ok() {
                    kernel_fact::FIB_MARK
                } else {
                    0
                };
            let offsets: Result<Vec<u32>, _> = OWNER_OFFSETS
                .iter()
                .map(|(s, m)| btf.offset(s, m))
                .collect();
            if let Ok(&[a, b, c, d, e, f, g, h]) = offsets.as_deref() {
                (s.sk_socket, s.socket_file, s.file_f_cred) = (a, b, c);
                (s.cred_fsuid, s.cred_fsgid) = (d, e);
                (s.cred_group_info, s.group_info_ngroups, s.group_info_gid) = (f, g, h);
                s.sock_offsets_set = OFFSETS | if can_read_kernel() { READABLE } else { 0 };
            }
        }
    }
    s.if_addrs = if_addrs();
    (s.tai_offset, s.tz_minutes_west) = clocks();
    s.set = 1;
    map.set(0, s, 0).context("writing PCN_SETTINGS")
}

/// The namespace's IPv4 interface addresses but loopback's, as the kernel lists them.
fn if_addrs() -> [IfAddr; IF_ADDRS] {
    let mut out = [IfAddr::default(); IF_ADDRS];
    let Ok(addrs) = super::rtnl::ipv4_addrs() else {
        return out;
    };
    let found = addrs.into_iter().filter_map(|(ifindex, addr, len)| {
        let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
        (addr.octets()[0] != 127).then_some(IfAddr {
            ifindex,
            addr: addr.octets(),
            mask: mask.to_be_bytes(),
        })
    });
    for (slot, a) in out.iter_mut().zip(found) {
        *slot = a;
    }
    out
}

/// The eBPF object's globals: its programs may read kernel memory (`--log-uid`), XDP may
/// give frames metadata (see the eBPF crate's `meta`), and bpf_fib_lookup takes a mark.
const READ_KERNEL: &str = "PCN_READ_KERNEL";
const XDP_META: &str = "PCN_XDP_META";
const FIB_MARK: &str = "PCN_FIB_MARK";

/// Sets the eBPF object's globals before it loads, each 1 only where the kernel lets its
/// programs call the helper (`PCN_READ_KERNEL`: bpf_probe_read_kernel, refused under
/// lockdown's confidentiality mode; `PCN_XDP_META`: bpf_xdp_adjust_meta, refused by some
/// builds); at 0 the verifier drops the calls as dead code, so the programs load either way.
/// `PCN_FIB_MARK`: 1 where bpf_fib_lookup takes BPF_FIB_LOOKUP_MARK (the kernel's BTF says;
/// the routing decision at XDP then routes by the mark PREROUTING left).
pub fn globals(loader: &mut aya::EbpfLoader<'_>) {
    let flag = |on: bool| -> &'static u8 { if on { &1 } else { &0 } };
    loader.override_global(READ_KERNEL, flag(can_read_kernel()), false);
    loader.override_global(XDP_META, flag(xdp_adjusts_meta()), false);
    loader.override_global(FIB_MARK, flag(kernel_fib_takes_mark()), false);
}

/// The kernel structures' members `-m owner` and `--log-uid` read, in `Settings`' order: the
/// socket's file, its credentials' fsuid and fsgid, and their supplementary groups.
const OWNER_OFFSETS: [(&str, &str); 8] = [
    ("sock", "sk_socket"),
    ("socket", "file"),
    ("file", "f_cred"),
    ("cred", "fsuid"),
    ("cred", "fsgid"),
    ("cred", "group_info"),
    ("group_info", "ngroups"),
    ("group_info", "gid"),
];

/// `Settings::sock_offsets_set`: the offsets are known, and BPF may read kernel memory.
const OFFSETS: u32 = 1;
const READABLE: u32 = 2;

/// Whether the data plane of the namespace in `dir` can tell a packet's socket owner
/// (`-m owner`): the kernel's BTF gave the offsets of the socket's file and credentials, and
/// BPF may read kernel memory. What the first install found, else found now.
pub fn reads_socket_owners(dir: &Path) -> bool {
    if let Some(s) = installed(dir) {
        return s.sock_offsets_set == OFFSETS | READABLE;
    }
    let offsets = Btf::kernel_once()
        .is_some_and(|btf| OWNER_OFFSETS.iter().all(|(s, m)| btf.offset(s, m).is_ok()));
    offsets && can_read_kernel()
}

/// The settings an install of `dir` wrote, if any.
fn installed(dir: &Path) -> Option<Settings> {
    MapData::from_pin(dir.join(MAP))
        .ok()
        .and_then(|data| Array::<MapData, Settings>::try_from(Map::Array(data)).ok())
        .and_then(|map| map.get(&0, 0).ok())
        .filter(|s| s.set != 0)
}

/// Whether the kernel's bpf_fib_lookup routes by a mark (BPF_FIB_LOOKUP_MARK, Linux 6.10):
/// its `struct bpf_fib_lookup` has the member `mark`. mangle OUTPUT's routing again needs it
/// where routing rules select by the mark. `PCN_IPTABLES_FIB_MARK=off` answers as an older
/// kernel would (for tests).
/// What the install in `dir` found, else found now (parsing the BTF takes ~7 ms).
pub fn fib_lookup_takes_mark(dir: &Path) -> bool {
    if std::env::var_os("PCN_IPTABLES_FIB_MARK").is_some_and(|v| v == "off") {
        return false;
    }
    match installed(dir).filter(|s| s.kernel_facts & kernel_fact::READ != 0) {
        Some(s) => s.kernel_facts & kernel_fact::FIB_MARK != 0,
        None => kernel_fib_takes_mark(),
    }
}

/// Reads the running kernel's BTF for `globals` and `refresh`, ahead of them.
pub fn read_kernel_btf() {
    Btf::kernel_once();
}

/// Whether the running kernel's `struct bpf_fib_lookup` has the member `mark`, whatever
/// `PCN_IPTABLES_FIB_MARK` says.
fn kernel_fib_takes_mark() -> bool {
    Btf::kernel_once().is_some_and(|btf| btf.offset("bpf_fib_lookup", "mark").is_ok())
}

/// Whether lo forwards (net.ipv4.conf.lo.forwarding): bpf_fib_lookup asked as from lo answers
/// only then.
pub fn lo_forwards() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/conf/lo/forwarding").is_ok_and(|v| v.trim() != "0")
}

/// Whether a TC program may call bpf_probe_read_kernel.
fn can_read_kernel() -> bool {
    const SCHED_CLS: u32 = 3;
    const PROBE_READ_KERNEL: i32 = 113;
    loads(
        SCHED_CLS,
        &[
            insn(0xbf, 1 | 10 << 4, 0),       // r1 = r10
            insn(0x07, 1, -8),                // r1 += -8
            insn(0xb7, 2, 8),                 // r2 = 8
            insn(0xb7, 3, 0),                 // r3 = 0
            insn(0x85, 0, PROBE_READ_KERNEL), // call bpf_probe_read_kernel
            insn(0xb7, 0, 0),                 // r0 = 0
            insn(0x95, 0, 0),                 // exit
        ],
    )
}

/// Whether an XDP program may call bpf_xdp_adjust_meta: where it may not, XDP runs in generic
/// mode (see `attach`). Asked once per process.
pub fn xdp_adjusts_meta() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        const XDP: u32 = 6;
        const XDP_ADJUST_META: i32 = 54;
        loads(
            XDP,
            &[
                insn(0xb7, 2, 0),               // r2 = 0 (r1: the context)
                insn(0x85, 0, XDP_ADJUST_META), // call bpf_xdp_adjust_meta
                insn(0xb7, 0, 2),               // r0 = XDP_PASS
                insn(0x95, 0, 0),               // exit
            ],
        )
    })
}

/// An instruction: code, dst | src << 4, imm (no offset).
fn insn(code: u8, regs: u8, imm: i32) -> u64 {
    u64::from(code) | u64::from(regs) << 8 | u64::from(imm as u32) << 32
}

/// Whether the kernel loads `prog` (no maps) as a program of type `kind`; throws it away.
fn loads(kind: u32, prog: &[u64]) -> bool {
    const BPF_PROG_LOAD: libc::c_long = 5;
    let license = c"GPL";
    let mut attr = [0u64; 16];
    attr[0] = u64::from(kind) | (prog.len() as u64) << 32;
    attr[1] = prog.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // SAFETY: a bpf_attr for BPF_PROG_LOAD (the rest zeroed); the pointers outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: the program's descriptor, ours alone.
    unsafe { libc::close(fd as i32) };
    true
}
