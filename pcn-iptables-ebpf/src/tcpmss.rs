//! `-j TCPMSS` on the packet: a SYN's MSS option lowered to what its rules asked (xt_TCPMSS's
//! `tcpmss_mangle_packet`), through the skb helpers, at TC: on egress for a local packet, on
//! ingress (`pcn_answer`) for one XDP passed with the request in its metadata.

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{bpf_check_mtu, bpf_skb_load_bytes},
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use pcn_iptables_common::tcpmss::{self, BUF, MAX_OPTIONS};
use pcn_iptables_common::{PacketInfo, rewrite};

use crate::parse::{AF_INET, ETH_HLEN, IPPROTO_TCP};
use crate::route::{
    FIB_FWD_DISABLED, FIB_LOOKUP_SKIP_NEIGH, FIB_NO_NEIGH, FIB_SUCCESS, FibLookup, fib_lookup,
};

/// The TCP options being searched, per CPU: index 0 for TC ingress, 1 for egress (a TC
/// program in process context may be interrupted by a softirq on the same CPU). Not pinned.
#[map]
static PCN_TCPMSS_SCRATCH: PerCpuArray<[u8; BUF]> = PerCpuArray::with_max_entries(2, 0);
pub(crate) const INGRESS: u32 = 0;
pub(crate) const EGRESS: u32 = 1;

/// The MSS request of a packet XDP passes on, for its metadata: 0 for none, else a flag bit,
/// the clamp bit and the least `--set-mss`.
#[inline(always)]
pub(crate) fn spec(pkt: &PacketInfo) -> u32 {
    if pkt.rewrite & rewrite::MSS == 0 {
        return 0;
    }
    1 << 31 | (pkt.mss_clamp as u32) << 16 | pkt.mss as u32
}

/// `spec` back: the MSS and the clamp.
#[inline(always)]
pub(crate) fn unpack(spec: u32) -> Option<(u16, bool)> {
    (spec != 0).then_some((spec as u16, spec & 1 << 16 != 0))
}

/// The IPv4 and TCP headers without options, as the MSS a path MTU leaves (xt_TCPMSS's
/// `minlen`).
const MINLEN: u32 = 40;

/// Lowers the MSS option of the TCP packet in `ctx` to `mss`, or (`clamp`) to the smaller of
/// it and the MTU of the routes to and from the destination less 40; never raises it. A SYN
/// without an MSS option is left without one (netfilter adds one: see the man page).
/// `scratch` is `INGRESS` or `EGRESS`.
/// A subprogram: its frame (the route lookups') stays out of the classifier's.
#[inline(never)]
pub(crate) fn apply(skb: *mut __sk_buff, mss: u16, clamp: bool, scratch: u32) {
    let ctx = &TcContext::new(skb);
    let Ok(ip) = ctx.load::<[u8; 20]>(ETH_HLEN) else {
        return;
    };
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    if ip[9] != IPPROTO_TCP || fragment {
        return;
    }
    let l4 = ETH_HLEN + ((ip[0] & 0x0f) as usize) * 4;
    let Ok(doff) = ctx.load::<u8>(l4 + 12) else {
        return;
    };
    let options = ((doff >> 4) as usize * 4).saturating_sub(20);
    if options < 4 || options > MAX_OPTIONS {
        return;
    }
    let mut new = mss as u32;
    if clamp {
        let (src, dst) = (
            [ip[12], ip[13], ip[14], ip[15]],
            [ip[16], ip[17], ip[18], ip[19]],
        );
        // A local packet's way out: the device it leaves by where the routing will not say
        // (forwarding off); its way back is local, unbounded.
        let dev = match scratch {
            EGRESS => unsafe { (*ctx.skb.skb).ifindex },
            _ => 0,
        };
        let mtu = path_mtu(ctx, src, dst, dev).min(path_mtu(ctx, dst, src, 0));
        if mtu <= MINLEN {
            return;
        }
        new = new.min(mtu - MINLEN);
    }
    let Some(buf) = PCN_TCPMSS_SCRATCH.get_ptr_mut(scratch) else {
        return;
    };
    let buf = unsafe { &mut *buf };
    // Bounded where the verifier sees it: 4 to 64 (a multiple of 4), inside the buffer.
    let n = ((core::hint::black_box(options) - 4) & 0x3c) + 4;
    let to = buf.as_mut_ptr() as *mut _;
    if unsafe { bpf_skb_load_bytes(ctx.skb.skb as *mut _, (l4 + 20) as u32, to, n as u32) } != 0 {
        return;
    }
    let Some(at) = tcpmss::find(buf, n) else {
        return;
    };
    let at = at & (BUF - 4);
    let old = u16::from_be_bytes([buf[at + 2], buf[at + 3]]);
    if old as u32 <= new {
        return;
    }
    let new = (new as u16).to_be_bytes();
    let _ = ctx.l4_csum_replace(
        l4 + 16,
        u16::from_ne_bytes(old.to_be_bytes()) as u64,
        u16::from_ne_bytes(new) as u64,
        2,
    );
    let _ = ctx.store(l4 + 20 + at + 2, &new, 0);
}

/// The MTU of the route from `src` to `dst` (its device's where the lookup gives no MTU, or
/// device `dev`'s where it finds no route); no bound for a local destination.
#[inline(always)]
fn path_mtu(ctx: &TcContext, src: [u8; 4], dst: [u8; 4], dev: u32) -> u32 {
    let mut fib = FibLookup {
        family: AF_INET,
        l4_protocol: IPPROTO_TCP,
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        ..Default::default()
    };
    fib.ipv4_src[0] = u32::from_ne_bytes(src);
    fib.ipv4_dst[0] = u32::from_ne_bytes(dst);
    // tot_len 0: the lookup checks the route's MTU and gives it back in its place.
    let rc = fib_lookup(ctx.skb.skb as *mut _, &mut fib, FIB_LOOKUP_SKIP_NEIGH);
    let dev = match rc {
        // Before 6.3 a lookup without the neighbour gives no MTU: the device's.
        FIB_SUCCESS | FIB_NO_NEIGH if fib.tot_len == 0 => fib.ifindex,
        FIB_SUCCESS | FIB_NO_NEIGH => return fib.tot_len as u32,
        FIB_FWD_DISABLED if dev != 0 => dev,
        _ => return u32::MAX,
    };
    let mut mtu = 0u32;
    let rc = unsafe { bpf_check_mtu(ctx.skb.skb as *mut _, dev, &mut mtu, 0, 0) };
    if rc < 0 || mtu == 0 { u32::MAX } else { mtu }
}
