//! `-j TCPMSS` on the packet: a SYN's MSS option lowered to what its rules asked, or added
//! where it has none (xt_TCPMSS's `tcpmss_mangle_packet`), through the skb helpers, at TC: on
//! egress for a local packet, on ingress (`pcn_answer`) for one XDP passed with the request
//! in its metadata.

use aya_ebpf::{
    bindings::__sk_buff,
    bindings::BPF_F_PSEUDO_HDR,
    helpers::generated::{
        bpf_check_mtu, bpf_skb_change_tail, bpf_skb_load_bytes, bpf_skb_store_bytes,
    },
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use pcn_iptables_common::tcpmss::{self, BUF};
use pcn_iptables_common::{PacketInfo, rewrite};

use crate::parse::{AF_INET, ETH_HLEN, IPPROTO_TCP};
use crate::route::{
    FIB_FWD_DISABLED, FIB_LOOKUP_SKIP_NEIGH, FIB_NO_NEIGH, FIB_SUCCESS, FibLookup, fib_lookup,
    mark_flag,
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

/// What `apply` leaves of the packet: it goes on, or xt_TCPMSS would have dropped it.
pub(crate) const KEEP: bool = true;
pub(crate) const DROP: bool = false;

/// xt_TCPMSS's `tcpmss_mangle_packet` on the TCP packet in `ctx`: its MSS option lowered to
/// `mss`, or (`clamp`) to the smaller of it and the MTU of the routes to and from the
/// destination less 40, never raised; a SYN without one and without data gets one (of at most
/// 536) in front of its options. `DROP` where the kernel drops: a header longer than the
/// packet, no path MTU, no memory to grow the packet. `scratch` is `INGRESS` or `EGRESS`.
/// A subprogram: its frame (the route lookups') stays out of the classifier's.
#[inline(never)]
pub(crate) fn apply(skb: *mut __sk_buff, mss: u16, clamp: bool, scratch: u32) -> bool {
    let ctx = &TcContext::new(skb);
    let Ok(ip) = ctx.load::<[u8; 20]>(ETH_HLEN) else {
        return KEEP;
    };
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    if ip[9] != IPPROTO_TCP || fragment {
        return KEEP;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let l4 = ETH_HLEN + ihl;
    let tot_len = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let skb_len = unsafe { (*skb).len } as usize;
    // A segment of a GSO packet carries data (and its IP length may be 0, BIG TCP's): only
    // an option there is lowered. A frame shorter than its IP length never gets past
    // ip_rcv, so neither to netfilter.
    let gso = unsafe { (*skb).gso_size } != 0;
    if !gso && skb_len < ETH_HLEN + tot_len {
        return KEEP;
    }
    let Ok(doff) = ctx.load::<u8>(l4 + 12) else {
        return KEEP;
    };
    let hdrlen = (doff >> 4) as usize * 4;
    // The TCP segment's length, as netfilter's skb (cut to the IP length) has it.
    let len = match gso {
        true => skb_len.saturating_sub(l4),
        false => tot_len.saturating_sub(ihl),
    };
    if tcpmss::malformed(len, hdrlen) {
        return DROP;
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
        // The way there as the packet is routed (its TOS and mark: policy routing may send it
        // by a tunnel of a smaller MTU); the way back as tcpmss_reverse_mtu asks, by address.
        let mark = unsafe { (*ctx.skb.skb).mark };
        let there = path_mtu(ctx, src, dst, dev, ip[1], mark);
        let mtu = there.min(path_mtu(ctx, dst, src, 0, 0, 0));
        if mtu <= MINLEN {
            return DROP;
        }
        new = new.min(mtu - MINLEN);
    }
    let Some(buf) = PCN_TCPMSS_SCRATCH.get_ptr_mut(scratch) else {
        return KEEP;
    };
    let buf = unsafe { &mut *buf };
    let options = hdrlen - 20;
    // Bounded where the verifier sees it: 4 to 64 (a multiple of 4, as `options` is),
    // inside the buffer.
    let n = ((core::hint::black_box(options).wrapping_sub(4)) & 0x3c) + 4;
    if options != 0 {
        let to = buf.as_mut_ptr() as *mut _;
        if unsafe { bpf_skb_load_bytes(skb as *mut _, (l4 + 20) as u32, to, n as u32) } != 0 {
            return KEEP;
        }
        if let Some(at) = tcpmss::find(buf, options) {
            lower(ctx, l4 + 20, buf, at, new);
            return KEEP;
        }
    }
    if gso || !tcpmss::room(len, hdrlen) {
        return KEEP;
    }
    add(
        ctx,
        l4,
        tot_len,
        len,
        options,
        n,
        buf,
        tcpmss::added(new as u16),
    )
}

/// Lowers the MSS option at `at` of the options at `opts` (copied into `buf`) to `new`, if
/// it is above.
#[inline(always)]
fn lower(ctx: &TcContext, opts: usize, buf: &[u8; BUF], at: usize, new: u32) {
    let at = at & (BUF - 4);
    let old = u16::from_be_bytes([buf[at + 2], buf[at + 3]]);
    if old as u32 <= new {
        return;
    }
    let new = (new as u16).to_be_bytes();
    let _ = ctx.l4_csum_replace(
        opts - 4,
        u16::from_ne_bytes(old.to_be_bytes()) as u64,
        u16::from_ne_bytes(new) as u64,
        2,
    );
    let _ = ctx.store(opts + at + 2, &new, 0);
}

/// Puts an MSS option of `mss` in front of the `options` bytes of options (copied into
/// `buf`; `n`, the same, bounded) of the TCP header at `l4`, which ends the packet (IP length
/// `tot_len`, TCP `len`), as xt_TCPMSS does: 4 more bytes at the end, the options moved
/// there, the data offset and the IP length raised, both checksums updated as
/// `inet_proto_csum_replace` updates them (the length in the pseudo-header alone where the
/// checksum is left to the device, CHECKSUM_PARTIAL).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn add(
    ctx: &TcContext,
    l4: usize,
    tot_len: usize,
    len: usize,
    options: usize,
    n: usize,
    buf: &[u8; BUF],
    mss: u16,
) -> bool {
    let skb = ctx.skb.skb;
    let end = (ETH_HLEN + tot_len) as u32;
    // A frame's Ethernet padding goes first, as ip_rcv trims it before netfilter: the
    // checksum of a CHECKSUM_COMPLETE frame then stays right (both steps make it
    // CHECKSUM_NONE), and the 4 bytes come zeroed.
    if unsafe { (*skb).len } > end && unsafe { bpf_skb_change_tail(skb, end, 0) } != 0 {
        return DROP;
    }
    if unsafe { bpf_skb_change_tail(skb, end + 4, 0) } != 0 {
        return DROP;
    }
    if options != 0 {
        let from = buf.as_ptr() as *const _;
        if unsafe { bpf_skb_store_bytes(skb, (l4 + 24) as u32, from, n as u32, 0) } != 0 {
            return DROP;
        }
    }
    let [hi, lo] = mss.to_be_bytes();
    let option = [tcpmss::TCPOPT_MSS, tcpmss::TCPOLEN_MSS, hi, lo];
    let Ok([doff, flags]) = ctx.load::<[u8; 2]>(l4 + 12) else {
        return DROP;
    };
    let doff_new = [doff + 0x10, flags];
    let word = |b: [u8; 2]| u16::from_ne_bytes(b) as u64;
    let (tot_old, tot_new) = (
        (tot_len as u16).to_be_bytes(),
        (tot_len as u16 + 4).to_be_bytes(),
    );
    let (len_old, len_new) = ((len as u16).to_be_bytes(), (len as u16 + 4).to_be_bytes());
    let csum = l4 + 16;
    let ok = ctx.store(l4 + 20, &option, 0).is_ok()
        && ctx.store(l4 + 12, &doff_new[0], 0).is_ok()
        && ctx.store(ETH_HLEN + 2, &tot_new, 0).is_ok()
        && ctx
            .l4_csum_replace(
                csum,
                word(len_old),
                word(len_new),
                BPF_F_PSEUDO_HDR as u64 | 2,
            )
            .is_ok()
        && ctx
            .l4_csum_replace(csum, 0, u32::from_ne_bytes(option) as u64, 4)
            .is_ok()
        && ctx
            .l4_csum_replace(csum, word([doff, flags]), word(doff_new), 2)
            .is_ok()
        && ctx
            .l3_csum_replace(ETH_HLEN + 10, word(tot_old), word(tot_new), 2)
            .is_ok();
    // Half rewritten (the kernel cannot fail here): better lost than sent wrong.
    if ok { KEEP } else { DROP }
}

/// The MTU of the route from `src` to `dst` with TOS byte `tos` and mark `mark` (its device's
/// where the lookup gives no MTU, or device `dev`'s where it finds no route); no bound for a
/// local destination.
#[inline(always)]
fn path_mtu(ctx: &TcContext, src: [u8; 4], dst: [u8; 4], dev: u32, tos: u8, mark: u32) -> u32 {
    let mut fib = FibLookup {
        family: AF_INET,
        l4_protocol: IPPROTO_TCP,
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        tos: tos as u32,
        ..Default::default()
    };
    fib.ipv4_src[0] = u32::from_ne_bytes(src);
    fib.ipv4_dst[0] = u32::from_ne_bytes(dst);
    fib.set_mark(mark);
    // tot_len 0: the lookup checks the route's MTU and gives it back in its place.
    let flags = FIB_LOOKUP_SKIP_NEIGH | mark_flag();
    let rc = fib_lookup(ctx.skb.skb as *mut _, &mut fib, flags);
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
