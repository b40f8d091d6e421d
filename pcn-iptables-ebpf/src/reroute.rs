//! mangle OUTPUT's routing again, as iptable_mangle's ipt_mangle_out does: when its chains
//! changed a local packet's mark or TOS (the table has no target that changes its addresses),
//! ip_route_me_harder routes it again with the new ones (policy routing by fwmark or tos), and
//! drops it when there is no route. Here the lookup is made as soon as mangle OUTPUT accepts
//! (`route`). The rest of the OUTPUT hook (nat and filter OUTPUT) still sees the device of the
//! first route for `-o`, as netfilter's hook state keeps it; POSTROUTING sees the new one
//! (`postrouting`); the packet is sent there once every chain accepted it (`redirect`).
//!
//! The redirected packet meets TC egress again, on its new device, at once and on the same CPU
//! (bpf_redirect_neigh → the neighbour's output → dev_queue_xmit): a per-CPU slot
//! (`PCN_REROUTED`) holds its device and IP header, and `redirected` lets it pass there
//! unjudged, so that OUTPUT and POSTROUTING see it once. (When the new next hop's neighbour is
//! not resolved yet, the kernel queues the packet until it is, and sends it from elsewhere: the
//! slot is gone by then, and that packet is judged a second time on its new device.)

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_UNSPEC},
    helpers::generated as h,
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use pcn_iptables_common::{PacketInfo, rewrite};

use crate::maps::{PCN_PACKETS, TC};
use crate::parse::{AF_INET, ETH_HLEN, LOOPBACK_IFINDEX};
use crate::route::{FIB_LOOKUP_MARK, FIB_LOOKUP_OUTPUT, FIB_NO_NEIGH, FIB_SUCCESS, FibLookup};

/// Slot `HANDOFF`: the packet redirected last on this CPU, its new device (0: none) and IP
/// header. Slot `ROUTED`: the device `route` found for the packet being judged (with
/// `rewrite::ROUTE`), until POSTROUTING.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Handoff {
    ifindex: u32,
    ip: [u32; 5],
}

const HANDOFF: u32 = 0;
const ROUTED: u32 = 1;

/// Written by the classifier of every generation, read by the egress entry: pinned.
#[map]
static PCN_REROUTED: PerCpuArray<Handoff> = PerCpuArray::pinned(2, 0);

/// The routing lookup, in map memory (the classifier's stack is full).
#[map]
static PCN_REROUTE_FIB: PerCpuArray<FibLookup> = PerCpuArray::with_max_entries(1, 0);

/// BPF_FIB_LKUP_RET_* that mean "no route": blackhole, unreachable, prohibit.
const FIB_BLACKHOLE: i64 = 1;
const FIB_PROHIBIT: i64 = 3;

/// Whether mangle OUTPUT, accepting, changed what ipt_mangle_out compares: the mark (the
/// skb's is still the one it started with) or the TOS byte (the header's is).
#[inline(always)]
pub(crate) fn changed(ctx: &TcContext, pkt: &PacketInfo) -> bool {
    let mark = unsafe { (*ctx.skb.skb).mark };
    mark != pkt.mark || ctx.load::<u8>(ETH_HLEN + 1).is_ok_and(|tos| tos != pkt.tos)
}

/// The socket's bound device (SO_BINDTODEVICE), which ip_route_me_harder routes through.
#[inline(always)]
fn bound_device(skb: *mut __sk_buff) -> u32 {
    let sk = unsafe { (*skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        return 0;
    }
    let full = unsafe { h::bpf_sk_fullsock(sk) };
    if full.is_null() {
        return 0;
    }
    unsafe { (*full).bound_dev_if }
}

/// Routes the packet again as ip_route_me_harder would (its addresses, TOS, mark and socket's
/// device, asked as from lo as the kernel routes what it sends): `rewrite::ROUTE` stays set
/// when the packet must go elsewhere (another device or next hop), the device kept for
/// `postrouting`. False when there is no route: the packet is dropped. Where
/// bpf_fib_lookup cannot answer (forwarding off on lo or the socket's device; a broadcast,
/// multicast or local destination) the packet keeps its route. A subprogram.
#[inline(never)]
pub(crate) fn route(skb: *mut __sk_buff, pkt: &mut PacketInfo) -> bool {
    pkt.rewrite &= !rewrite::ROUTE;
    let Some(fib) = PCN_REROUTE_FIB.get_ptr_mut(0) else {
        return true;
    };
    let fib = unsafe { &mut *fib };
    let bound = bound_device(skb);
    *fib = FibLookup {
        family: AF_INET,
        l4_protocol: pkt.proto,
        ifindex: if bound != 0 { bound } else { LOOPBACK_IFINDEX },
        tos: pkt.tos as u32,
        ..Default::default()
    };
    if pkt.has_ports != 0 {
        fib.sport = pkt.sport.to_be();
        fib.dport = pkt.dport.to_be();
    }
    fib.ipv4_src[0] = u32::from_ne_bytes(pkt.src);
    fib.ipv4_dst[0] = u32::from_ne_bytes(pkt.dst);
    fib.set_mark(pkt.mark);
    let flags = if bound != 0 { FIB_LOOKUP_OUTPUT } else { 0 };
    let size = core::mem::size_of::<FibLookup>() as i32;
    let ctx = skb as *mut _;
    let p = fib as *mut FibLookup as *mut _;
    // BPF_FIB_LOOKUP_MARK is 6.10's: an older kernel answers EINVAL, and routes by the mark
    // only where no rule selects by it (userspace refuses the rest).
    let mut rc = unsafe { h::bpf_fib_lookup(ctx, p, size, flags | FIB_LOOKUP_MARK) };
    if rc < 0 {
        rc = unsafe { h::bpf_fib_lookup(ctx, p, size, flags) };
    }
    let here = unsafe { (*skb).ifindex };
    let elsewhere = match rc {
        // The same device and neighbour: the frame is already right.
        FIB_SUCCESS => {
            let dmac = TcContext::new(skb).load::<[u8; 6]>(0).unwrap_or([0; 6]);
            fib.ifindex != here || dmac != fib.dmac()
        }
        FIB_NO_NEIGH => true,
        FIB_BLACKHOLE..=FIB_PROHIBIT => return false,
        // FIB_NOT_FWDED, FIB_FWD_DISABLED, an encapsulating route, an error.
        _ => false,
    };
    if elsewhere && let Some(slot) = PCN_REROUTED.get_ptr_mut(ROUTED) {
        unsafe { (*slot).ifindex = fib.ifindex };
        pkt.rewrite |= rewrite::ROUTE;
    }
    true
}

/// POSTROUTING's output device: the new route's (netfilter's hook after the routing again).
#[inline(never)]
pub(crate) fn postrouting(pkt: &mut PacketInfo) {
    if let Some(slot) = PCN_REROUTED.get(ROUTED) {
        pkt.out_ifindex = slot.ifindex;
    }
}

/// Sends a packet `route` routed elsewhere to its new device, through the neighbour
/// subsystem; leaves the others alone.
#[inline(never)]
pub(crate) fn redirect(ctx: &TcContext) -> i32 {
    let Some(pkt) = PCN_PACKETS.get(TC) else {
        return TC_ACT_UNSPEC;
    };
    if pkt.rewrite & rewrite::ROUTE == 0 {
        return TC_ACT_UNSPEC;
    }
    let Some(ifindex) = PCN_REROUTED.get(ROUTED).map(|r| r.ifindex) else {
        return TC_ACT_UNSPEC;
    };
    let (Some(slot), Ok(ip)) = (
        PCN_REROUTED.get_ptr_mut(HANDOFF),
        ctx.load::<[u32; 5]>(ETH_HLEN),
    ) else {
        return TC_ACT_UNSPEC;
    };
    unsafe { *slot = Handoff { ifindex, ip } };
    unsafe { h::bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 }
}

/// Whether the packet is the one `redirect` sent here from this CPU, judged already. The slot
/// is used once, by the next packet on egress whatever it is.
#[inline(always)]
pub(crate) fn redirected(ctx: &TcContext) -> bool {
    let Some(slot) = PCN_REROUTED.get_ptr_mut(HANDOFF) else {
        return false;
    };
    let slot = unsafe { &mut *slot };
    // Read first: every packet on egress comes here, and a write per packet would dirty the
    // slot's cache line for nothing.
    let ifindex = slot.ifindex;
    if ifindex == 0 {
        return false;
    }
    slot.ifindex = 0;
    if ifindex != unsafe { (*ctx.skb.skb).ifindex } {
        return false;
    }
    ctx.load::<[u32; 5]>(ETH_HLEN).is_ok_and(|ip| ip == slot.ip)
}
