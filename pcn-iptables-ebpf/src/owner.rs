//! The owner of a packet's socket, as xt_owner and nf_log see it: whether the skb has a full
//! socket with a `struct socket`, and the fsuid and fsgid of that socket's file, read from
//! kernel memory at offsets userspace finds in the kernel's BTF (`Settings`); and, for
//! `--suppl-groups`, which of the generation's GID ranges hold one of its supplementary groups.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{__sk_buff, bpf_sock},
    helpers::generated as h,
    macros::map,
    maps::{Array, PerCpuArray},
};

use pcn_iptables_common::owner::{self, GROUP_RANGES, GroupRanges, GroupWalk, NGROUPS_MAX};
use pcn_iptables_common::{GENERATIONS, PacketInfo};

use crate::settings;

/// Where a socket pointer becomes a number to add offsets to (the verifier forbids arithmetic
/// on socket pointers; a privileged program may store one in a map). Not pinned.
#[map]
static PCN_SOCK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Each generation slot's `--suppl-groups` ranges, written by userspace before the slot goes
/// live (`dataplane::owner`). Pinned: the generations' maps are the classifiers', and only
/// egress reads these.
#[map]
static PCN_OWNER_GROUPS: Array<GroupRanges> = Array::pinned(GENERATIONS, 0);

/// 1 where the kernel lets BPF read its memory (set by the loader).
#[unsafe(no_mangle)]
static PCN_READ_KERNEL: u8 = 0;

/// What a packet's socket tells of its owner.
pub(crate) enum Owner {
    /// No full socket, or one without a `struct socket` (xt_owner's "no socket").
    None,
    /// A socket without a file.
    NoFile,
    /// The fsuid and fsgid of the socket's file, and the kernel address of its credentials.
    File(u32, u32, u64),
    /// Kernel memory cannot be read here (a kernel locked down for confidentiality, or no
    /// BTF): userspace refuses `-m owner` then.
    Unknown,
}

/// xt_owner's and nf_log_dump_sk_uid_gid's view of the skb's socket. Where
/// `PCN_READ_KERNEL` is 0 the verifier sees a constant and drops the reads, so the program
/// still loads.
#[inline(always)]
pub(crate) fn of(skb: *mut __sk_buff) -> Owner {
    if unsafe { core::ptr::read_volatile(&PCN_READ_KERNEL) } == 0 {
        return Owner::Unknown;
    }
    let Some(s) = settings::get().filter(|s| s.sock_offsets_set != 0) else {
        return Owner::Unknown;
    };
    let sk = unsafe { (*skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        return Owner::None;
    }
    let full = unsafe { h::bpf_sk_fullsock(sk) };
    let Some(slot) = PCN_SOCK.get_ptr_mut(0).filter(|_| !full.is_null()) else {
        return Owner::None;
    };
    let sk = unsafe {
        core::ptr::write_volatile(slot as *mut *mut bpf_sock, full);
        core::ptr::read_volatile(slot)
    };
    let pointer = |at: u64| read_kernel::<u64>(at).filter(|p| *p != 0);
    let Some(socket) = pointer(sk.wrapping_add(s.sk_socket as u64)) else {
        return Owner::None;
    };
    let Some(file) = pointer(socket.wrapping_add(s.socket_file as u64)) else {
        return Owner::NoFile;
    };
    let ids = pointer(file.wrapping_add(s.file_f_cred as u64)).and_then(|cred| {
        let uid = read_kernel::<u32>(cred.wrapping_add(s.cred_fsuid as u64))?;
        let gid = read_kernel::<u32>(cred.wrapping_add(s.cred_fsgid as u64))?;
        Some((uid, gid, cred))
    });
    match ids {
        Some((uid, gid, cred)) => Owner::File(uid, gid, cred),
        None => Owner::Unknown,
    }
}

/// Gives the packet its socket's owner, for `-m owner` (`pcn_iptables_common::owner`), and the
/// `--suppl-groups` ranges of generation `slot` that its groups fall in: walked here, once per
/// packet, so that the classifiers' rule scan only tests a bit (a walk under the scan's
/// `bpf_loop` took two call levels more than 6.1's 512-byte combined stack allows). A
/// subprogram: the reads take no room in the egress program's frame.
#[inline(never)]
pub(crate) fn set(skb: *mut __sk_buff, pkt: &mut PacketInfo, slot: u32) {
    let cred;
    (pkt.owner, pkt.owner_uid, pkt.owner_gid, cred) = match of(skb) {
        Owner::File(uid, gid, cred) => (owner::FILE, uid, gid, cred),
        Owner::NoFile => (owner::NO_FILE, 0, 0, 0),
        // Userspace refuses `-m owner` where kernel memory cannot be read.
        Owner::None | Owner::Unknown => (owner::NO_SOCKET, 0, 0, 0),
    };
    pkt.owner_groups = if cred != 0 {
        pcn_owner_groups(cred, slot)
    } else {
        0
    };
}

/// xt_owner's walk of `cred->group_info->gid[0..ngroups]`, against every range of the
/// generation at once: bit `k` set where a group lies in range `k`. A global function: the
/// verifier checks it once, apart, not again for each state egress reaches its call in.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_owner_groups(cred: u64, slot: u32) -> u64 {
    // Verified apart from its caller: its reads need `of`'s guard again (see `of`).
    if unsafe { core::ptr::read_volatile(&PCN_READ_KERNEL) } == 0 {
        return 0;
    }
    let Some(n) = PCN_OWNER_GROUPS.get(slot).map(|r| r.n).filter(|n| *n != 0) else {
        return 0;
    };
    let Some(s) = settings::get() else {
        return 0;
    };
    let info = read_kernel::<u64>(cred.wrapping_add(s.cred_group_info as u64));
    let Some(info) = info.filter(|p| *p != 0) else {
        return 0;
    };
    let Some(count) = read_kernel::<i32>(info.wrapping_add(s.group_info_ngroups as u64)) else {
        return 0;
    };
    let count = (count.max(0) as u32).min(NGROUPS_MAX);
    let mut walk = Walk {
        gids: info.wrapping_add(s.group_info_gid as u64),
        slot,
        _pad: 0,
        w: GroupWalk::default(),
    };
    // At most NGROUPS_MAX × GROUP_RANGES steps, under bpf_loop's 1 << 23.
    let steps = count * n.min(GROUP_RANGES as u32);
    unsafe {
        h::bpf_loop(
            steps,
            group_step as *mut c_void,
            &raw mut walk as *mut c_void,
            0,
        )
    };
    walk.w.found
}

/// `pcn_owner_groups`' walk: where the groups are, and the generation's slot.
struct Walk {
    gids: u64,
    slot: u32,
    _pad: u32,
    w: GroupWalk,
}

/// Step `i`, one (group, range) pair: 0 to go on, 1 to stop.
extern "C" fn group_step(i: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `pcn_owner_groups` passes its walk.
    let walk = unsafe { &mut *(walk as *mut Walk) };
    let Some(ranges) = PCN_OWNER_GROUPS.get(walk.slot) else {
        return 1;
    };
    let gids = walk.gids;
    let more = walk.w.step(i as u32, ranges, |g| {
        read_kernel::<u32>(gids.wrapping_add(g as u64 * 4))
    });
    (!more) as i64
}

/// A value of kernel memory at `addr` (`None` where it cannot be read).
#[inline(always)]
fn read_kernel<T: Default + Copy>(addr: u64) -> Option<T> {
    let mut v = T::default();
    let rc = unsafe {
        h::bpf_probe_read_kernel(
            &mut v as *mut T as *mut _,
            core::mem::size_of::<T>() as u32,
            addr as *const _,
        )
    };
    (rc == 0).then_some(v)
}
