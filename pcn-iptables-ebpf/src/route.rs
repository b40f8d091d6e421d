//! The kernel's routing, asked per packet with bpf_fib_lookup(): which chain a packet meets
//! (local → INPUT, routed → FORWARD) and where REJECT answers and MASQUERADE maps from.

use pcn_iptables_common::{CHAIN_FORWARD, CHAIN_INPUT, PacketInfo};

use crate::parse::AF_INET;

// bpf_fib_lookup() results and flags (uapi/linux/bpf.h).
pub(crate) const FIB_SUCCESS: i64 = 0;
pub(crate) const FIB_NOT_FWDED: i64 = 4;
pub(crate) const FIB_FWD_DISABLED: i64 = 5;
pub(crate) const FIB_NO_NEIGH: i64 = 7;
pub(crate) const FIB_FRAG_NEEDED: i64 = 8;
pub(crate) const FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
pub(crate) const FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
pub(crate) const FIB_LOOKUP_SRC: u32 = 1 << 4;
/// The lookup selects rules by `mark` (6.10).
pub(crate) const FIB_LOOKUP_MARK: u32 = 1 << 5;

/// 1 where the kernel's bpf_fib_lookup takes a mark (BPF_FIB_LOOKUP_MARK, Linux 6.10), set by
/// the loader from the kernel's BTF. A constant to the verifier: the flags cost nothing more.
#[unsafe(no_mangle)]
static PCN_FIB_MARK: u8 = 0;

/// FIB_LOOKUP_MARK where the kernel knows it; 0 before 6.10, whose lookup would answer EINVAL
/// to the flag (userspace refuses the rulesets whose routing needs the mark there).
#[inline(always)]
pub(crate) fn mark_flag() -> u32 {
    (unsafe { core::ptr::read_volatile(&PCN_FIB_MARK) } as u32 & 1) * FIB_LOOKUP_MARK
}

/// `struct bpf_fib_lookup` with its unions flattened to their IPv4 members.
#[repr(C)]
#[derive(Default)]
pub(crate) struct FibLookup {
    pub family: u8,
    pub l4_protocol: u8,
    pub sport: u16,
    pub dport: u16,
    pub tot_len: u16,
    pub ifindex: u32,
    pub tos: u32,
    pub ipv4_src: [u32; 4],
    pub ipv4_dst: [u32; 4],
    pub tbid: u32,
    /// In: the mark (its first 4 bytes, with FIB_LOOKUP_MARK). Out: source and destination MAC.
    pub macs: [u8; 12],
}

impl FibLookup {
    #[inline(always)]
    pub(crate) fn set_mark(&mut self, mark: u32) {
        let m = mark.to_ne_bytes();
        self.macs[..4].copy_from_slice(&m);
    }

    #[inline(always)]
    pub(crate) fn dmac(&self) -> [u8; 6] {
        let m = &self.macs;
        [m[6], m[7], m[8], m[9], m[10], m[11]]
    }
}

/// bpf_fib_lookup() with `flags`. A kernel that does not know one of them answers EINVAL
/// before looking anything up (SKIP_NEIGH is 6.3's, SRC 6.7's): then the lookup is made with
/// none, which on those kernels costs a neighbour lookup more.
#[inline(always)]
pub(crate) fn fib_lookup(ctx: *mut core::ffi::c_void, fib: &mut FibLookup, flags: u32) -> i64 {
    let size = core::mem::size_of::<FibLookup>() as i32;
    let fib = fib as *mut FibLookup as *mut _;
    let rc = unsafe { aya_ebpf::helpers::generated::bpf_fib_lookup(ctx, fib, size, flags) };
    if rc >= 0 {
        return rc;
    }
    unsafe { aya_ebpf::helpers::generated::bpf_fib_lookup(ctx, fib, size, 0) }
}

/// The chain of the kernel's routing decision for a packet that came in, as netfilter's
/// hooks would see it: local → INPUT, routed → FORWARD (with its output interface and the
/// TTL ip_forward() leaves it); `None` where the kernel drops it before any hook
/// (blackhole, unreachable, prohibit). Asked as ip_route_input asks it after PREROUTING:
/// with the mark and TOS byte the chains so far left the packet (policy routing by
/// `ip rule ... fwmark` or `tos`), which the stack's own lookup then sees too (the mark
/// goes on the skb at TC ingress, the TOS into the header at XDP). The kernel masks the TOS
/// the same way on both paths (IPTOS_RT_MASK before 6.12, the DSCP bits after).
#[inline(always)]
pub(crate) fn input_chain(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> Option<u32> {
    let mut fib = FibLookup {
        family: AF_INET,
        l4_protocol: pkt.proto,
        sport: pkt.sport.to_be(),
        dport: pkt.dport.to_be(),
        tot_len: pkt.len as u16,
        ifindex: pkt.in_ifindex,
        tos: pkt.tos as u32,
        ..Default::default()
    };
    fib.ipv4_src[0] = u32::from_ne_bytes(pkt.src);
    fib.ipv4_dst[0] = u32::from_ne_bytes(pkt.dst);
    fib.set_mark(pkt.mark);
    match fib_lookup(ctx, &mut fib, FIB_LOOKUP_SKIP_NEIGH | mark_flag()) {
        FIB_SUCCESS | FIB_NO_NEIGH | FIB_FRAG_NEEDED => {
            pkt.out_ifindex = fib.ifindex;
            // ip_forward() decrements the TTL before the FORWARD hook.
            pkt.ttl = pkt.ttl.wrapping_sub(1);
            Some(CHAIN_FORWARD)
        }
        // Local, broadcast, multicast; or forwarding is off on this interface, so whatever
        // the kernel accepts goes up the stack.
        FIB_NOT_FWDED | FIB_FWD_DISABLED => Some(CHAIN_INPUT),
        _ => None,
    }
}
