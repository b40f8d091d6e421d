//! The owner of a packet's socket, as xt_owner and nf_log see it: whether the skb has a full
//! socket with a `struct socket`, and the fsuid and fsgid of that socket's file, read from
//! kernel memory at offsets userspace finds in the kernel's BTF (`Settings`).

use aya_ebpf::{
    bindings::{__sk_buff, bpf_sock},
    helpers::generated as h,
    macros::map,
    maps::PerCpuArray,
};

use pcn_iptables_common::{PacketInfo, owner};

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
    /// The fsuid and fsgid of the socket's file.
    File(u32, u32),
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
        Some((uid, gid))
    });
    match ids {
        Some((uid, gid)) => Owner::File(uid, gid),
        None => Owner::Unknown,
    }
}

/// Gives the packet its socket's owner, for `-m owner` (`pcn_iptables_common::owner`). A
/// subprogram: the reads take no room in the egress program's frame.
#[inline(never)]
pub(crate) fn set(skb: *mut __sk_buff, pkt: &mut PacketInfo) {
    (pkt.owner, pkt.owner_uid, pkt.owner_gid) = match of(skb) {
        Owner::File(uid, gid) => (owner::FILE, uid, gid),
        Owner::NoFile => (owner::NO_FILE, 0, 0),
        // Userspace refuses `-m owner` where kernel memory cannot be read.
        Owner::None | Owner::Unknown => (owner::NO_SOCKET, 0, 0),
    };
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
