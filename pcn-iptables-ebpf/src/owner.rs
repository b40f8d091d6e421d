//! The owner of a packet's socket, as xt_owner and nf_log see it: whether the skb has a full
//! socket with a `struct socket`, and the fsuid and fsgid of that socket's file, read from
//! kernel memory at offsets userspace finds in the kernel's BTF (`Settings`).

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{__sk_buff, bpf_sock},
    helpers::generated as h,
    macros::map,
    maps::PerCpuArray,
};

use pcn_iptables_common::{Action, PacketInfo, owner};

use crate::settings;

/// Where a socket pointer becomes a number to add offsets to (the verifier forbids arithmetic
/// on socket pointers; a privileged program may store one in a map). Not pinned.
#[map]
static PCN_SOCK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// 1 where the kernel lets BPF read its memory (set by the loader).
#[unsafe(no_mangle)]
static PCN_READ_KERNEL: u8 = 0;

/// What a packet's socket tells of its owner.
pub(crate) enum Owner {
    /// No full socket, or one without a `struct socket` (xt_owner's "no socket").
    None,
    /// A socket without a file.
    NoFile,
    /// The fsuid and fsgid of the socket's file, and the kernel address of its credentials'
    /// supplementary groups (`struct group_info`; 0: none).
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
        let groups = read_kernel::<u64>(cred.wrapping_add(s.cred_group_info as u64))?;
        Some((uid, gid, groups))
    });
    match ids {
        Some((uid, gid, groups)) => Owner::File(uid, gid, groups),
        None => Owner::Unknown,
    }
}

/// Gives the packet its socket's owner, for `-m owner` (`pcn_iptables_common::owner`). A
/// subprogram: the reads take no room in the egress program's frame.
#[inline(never)]
pub(crate) fn set(skb: *mut __sk_buff, pkt: &mut PacketInfo) {
    (pkt.owner, pkt.owner_uid, pkt.owner_gid, pkt.owner_groups) = match of(skb) {
        Owner::File(uid, gid, groups) => (owner::FILE, uid, gid, groups),
        Owner::NoFile => (owner::NO_FILE, 0, 0, 0),
        // Userspace refuses `-m owner` where kernel memory cannot be read.
        Owner::None | Owner::Unknown => (owner::NO_SOCKET, 0, 0, 0),
    };
}

/// Sets `pkt.owner_in_groups` for rule action `a` with `--suppl-groups`: whether a
/// supplementary group of the packet's socket's file lies in its GID range.
#[inline(always)]
pub(crate) fn find_in_groups(pkt: &mut PacketInfo, a: &Action) {
    if a.owner_match & owner::SUPPL_GROUPS != 0 && pkt.owner == owner::FILE {
        let [lo, hi] = a.owner_gid;
        pkt.owner_in_groups = pcn_owner_in_groups(pkt.owner_groups, lo, hi) as u8;
    }
}

/// The most groups a credential has (NGROUPS_MAX).
const NGROUPS_MAX: u32 = 65536;

/// Whether one of the supplementary groups at `group_info` (a kernel address, 0: none) lies
/// in `lo..=hi`: xt_owner's walk of `group_info->gid[0..ngroups]`, a `bpf_loop` verified
/// once. A global function: the classifiers that call it verify it apart.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_owner_in_groups(group_info: u64, lo: u32, hi: u32) -> u32 {
    if unsafe { core::ptr::read_volatile(&PCN_READ_KERNEL) } == 0 || group_info == 0 {
        return 0;
    }
    let Some(s) = settings::get() else {
        return 0;
    };
    let Some(n) = read_kernel::<i32>(group_info.wrapping_add(s.group_info_ngroups as u64)) else {
        return 0;
    };
    let mut walk = Groups {
        gids: group_info.wrapping_add(s.group_info_gid as u64),
        lo,
        hi,
        found: 0,
    };
    unsafe {
        h::bpf_loop(
            (n.max(0) as u32).min(NGROUPS_MAX),
            group_step as *mut c_void,
            &raw mut walk as *mut c_void,
            0,
        )
    };
    walk.found
}

/// `pcn_owner_in_groups`'s walk.
struct Groups {
    gids: u64,
    lo: u32,
    hi: u32,
    found: u32,
}

/// Group `i`: 0 to go on, 1 once one is in the range (or cannot be read).
extern "C" fn group_step(i: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `pcn_owner_in_groups` passes its walk.
    let w = unsafe { &mut *(walk as *mut Groups) };
    match read_kernel::<u32>(w.gids.wrapping_add(i * 4)) {
        Some(g) if w.lo <= g && g <= w.hi => {
            w.found = 1;
            1
        }
        Some(_) => 0,
        None => 1,
    }
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
