//! `-j REJECT`: the answer netfilter's ipt_REJECT would send (nf_send_reset's TCP RST, or
//! icmp_send's ICMP error), built in place of the rejected packet.
//!
//! - XDP (INPUT, FORWARD): the frame becomes the reply, gets a metadata word (`ANSWER`) in
//!   front and goes up (XDP_PASS) to `pcn_answer`, a TC ingress program on the same device,
//!   which sends it back out of the device (bpf_redirect to egress). XDP_TX would be shorter,
//!   but veth drops XDP_TX frames when its peer has no XDP program (no NAPI), which is the
//!   common case of a container. The reply is addressed to the sender's MAC, not ours, so
//!   should `pcn_answer` be missing the stack drops it as PACKET_OTHERHOST: the rejected
//!   packet itself is gone either way. Where the driver keeps no metadata, XDP_TX.
//! - TC egress (OUTPUT): the skb becomes the reply and goes to the local sender the way the
//!   kernel's does, through the loopback device: bpf_redirect_neigh to lo routes it (a local
//!   route, kept on the skb, so the stack delivers it without an input route lookup, which
//!   would call the ICMP error's local source address a martian), and it meets OUTPUT
//!   (`-o lo`) and INPUT (`-i lo`) on its way, as netfilter's does.
//!
//! Whenever the kernel would not answer (an RST, a non-first fragment, an ICMP error, a
//! broadcast or multicast packet, no route back), the packet is only dropped; ICMP errors
//! obey the kernel's rate limits (`icmp_limit`), TCP resets do not.

use aya_ebpf::{
    EbpfContext,
    bindings::{TC_ACT_SHOT, xdp_action},
    helpers::generated as h,
    macros::map,
    maps::PerCpuArray,
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::checksum::{fold, sum};
use pcn_iptables_common::{CHAIN_FORWARD, PacketInfo, reject};

use crate::classify::within;
use crate::icmp_limit;
use crate::meta;
use crate::parse::{AF_INET, ETH_HLEN, IPPROTO_ICMP, IPPROTO_TCP, LOOPBACK_IFINDEX, ptr_at};
use crate::route::{
    FIB_LOOKUP_SKIP_NEIGH, FIB_LOOKUP_SRC, FIB_NO_NEIGH, FIB_SUCCESS, FibLookup, fib_lookup,
};

/// What icmp_send quotes at most: 576 bytes of reply less its IP and ICMP headers.
const MAX_QUOTE: usize = 576 - 20 - 8;
const SCRATCH: usize = 640;
/// Where a reply is built: map memory, not the stack, which the classifier mostly uses up.
#[repr(C)]
pub struct Scratch {
    /// The quote, zero-padded to a multiple of 4 for bpf_csum_diff.
    quote: [u8; SCRATCH],
    /// The reply's headers: Ethernet, IP, then TCP (RST) or ICMP.
    out: [u8; 64],
    o: Original,
    fib: FibLookup,
}
/// Per CPU, one for XDP (index 0) and one for TC (index 1): a TC program in process context
/// may be interrupted by XDP in a softirq on the same CPU. Not pinned: nothing in it outlives
/// a packet, and its layout may change with any version.
#[map]
static PCN_REJECT_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(2, 0);

const TTL: u8 = 64;
const IP_DF: u8 = 0x40;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// An IP header (20 bytes) plus the ICMP header (8).
const ICMP_GROW: usize = 28;
const RST_FRAME: usize = ETH_HLEN + 20 + 20;

/// The original packet's headers, read before anything changes.
#[repr(C)]
struct Original {
    eth: [u8; ETH_HLEN],
    ip: [u8; 20],
    /// Start of the L4 header in the IP packet.
    ihl: usize,
    /// The first 20 bytes of the L4 header (zeros where the packet is shorter).
    l4: [u8; 20],
    tot_len: usize,
}

/// `N` bytes of `buf` from `at` (in bounds: every caller's range is constant).
#[inline(always)]
fn part<const N: usize>(buf: &mut [u8; 64], at: usize) -> &mut [u8; N] {
    unsafe { &mut *(buf.as_mut_ptr().add(at) as *mut [u8; N]) }
}

#[inline(always)]
fn is_group(a: [u8; 4]) -> bool {
    a[0] >= 224 || a == [0, 0, 0, 0]
}

impl Original {
    /// Whether the kernel would answer this packet at all.
    #[inline(always)]
    fn answerable(&self) -> bool {
        let src = [self.ip[12], self.ip[13], self.ip[14], self.ip[15]];
        let dst = [self.ip[16], self.ip[17], self.ip[18], self.ip[19]];
        let fragment = (u16::from_be_bytes([self.ip[6], self.ip[7]]) & 0x1fff) != 0;
        // Link-level broadcast or multicast, a broadcast/multicast destination, a non-first
        // fragment: no answer (icmp_send, nf_send_reset).
        !(self.eth[0] & 1 != 0 || is_group(dst) || is_group(src) || fragment || self.ihl < 20)
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn ip_header(
    h: &mut [u8; 20],
    tos: u8,
    tot_len: u16,
    id: u16,
    df: bool,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
) {
    let l = tot_len.to_be_bytes();
    let i = id.to_be_bytes();
    *h = [
        0x45,
        tos,
        l[0],
        l[1],
        i[0],
        i[1],
        if df { IP_DF } else { 0 },
        0,
        TTL,
        proto,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let c = fold(sum(h, 0));
    h[10] = c[0];
    h[11] = c[1];
}

#[inline(always)]
fn swapped_eth(e: &mut [u8; ETH_HLEN], eth: &[u8; ETH_HLEN]) {
    e[..6].copy_from_slice(&eth[6..12]);
    e[6..12].copy_from_slice(&eth[..6]);
    e[12] = 0x08;
    e[13] = 0x00;
}

/// nf_send_reset's answer, Ethernet header included, into `f`; `None` when it sends none.
#[inline(always)]
fn rst_frame(o: &Original, f: &mut [u8; 64]) -> Option<()> {
    let th = &o.l4;
    let flags = th[13];
    if o.ip[9] != IPPROTO_TCP || flags & TCP_RST != 0 {
        return None;
    }
    let doff = ((th[12] >> 4) as usize) * 4;
    if doff < 20 || o.ihl + doff > o.tot_len {
        return None;
    }
    let (seq, ack, out_flags) = if flags & TCP_ACK != 0 {
        ([th[8], th[9], th[10], th[11]], [0u8; 4], TCP_RST)
    } else {
        let payload = (o.tot_len - o.ihl - doff) as u32;
        let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
        let ack = seq
            .wrapping_add((flags & TCP_SYN != 0) as u32)
            .wrapping_add((flags & TCP_FIN != 0) as u32)
            .wrapping_add(payload);
        ([0u8; 4], ack.to_be_bytes(), TCP_RST | TCP_ACK)
    };
    let src = [o.ip[16], o.ip[17], o.ip[18], o.ip[19]];
    let dst = [o.ip[12], o.ip[13], o.ip[14], o.ip[15]];
    swapped_eth(part(f, 0), &o.eth);
    ip_header(part(f, ETH_HLEN), 0, 40, 0, true, IPPROTO_TCP, src, dst);
    let tcp: &mut [u8; 20] = part(f, ETH_HLEN + 20);
    *tcp = [
        th[2], th[3], th[0], th[1], seq[0], seq[1], seq[2], seq[3], ack[0], ack[1], ack[2], ack[3],
        0x50, out_flags, 0, 0, 0, 0, 0, 0,
    ];
    // The pseudo-header: addresses, protocol, TCP length, in memory order.
    let pseudo = sum(&src, sum(&dst, 0))
        + u16::from_ne_bytes([0, IPPROTO_TCP]) as u64
        + u16::from_ne_bytes([0, 20]) as u64;
    let c = fold(sum(tcp, pseudo));
    tcp[16] = c[0];
    tcp[17] = c[1];
    Some(())
}

/// icmp_send refuses to answer an ICMP error (or a type it does not know) with another.
#[inline(always)]
fn icmp_answerable(o: &Original) -> bool {
    if o.ip[9] != IPPROTO_ICMP {
        return true;
    }
    let kind = o.l4[0];
    o.ihl + 1 <= o.tot_len && kind <= 18 && !matches!(kind, 3 | 4 | 5 | 11 | 12)
}

/// The headers (Ethernet, IP, ICMP) of icmp_send's answer quoting `quoted` bytes whose sum
/// is `quote_sum`, into `f`.
#[inline(always)]
fn icmp_headers(
    o: &Original,
    with: u32,
    src: [u8; 4],
    quoted: usize,
    quote_sum: u64,
    f: &mut [u8; 64],
) {
    let dst = [o.ip[12], o.ip[13], o.ip[14], o.ip[15]];
    // Errors go with the original's TOS bits and internetwork-control precedence.
    let tos = (o.ip[1] & 0x1e) | 0xc0;
    let id = unsafe { h::bpf_get_prandom_u32() } as u16;
    swapped_eth(part(f, 0), &o.eth);
    let len = (ICMP_GROW + quoted) as u16;
    ip_header(
        part(f, ETH_HLEN),
        tos,
        len,
        id,
        false,
        IPPROTO_ICMP,
        src,
        dst,
    );
    let icmp: &mut [u8; 8] = part(f, ETH_HLEN + 20);
    *icmp = [(with >> 8) as u8, with as u8, 0, 0, 0, 0, 0, 0];
    let c = fold(sum(icmp, quote_sum));
    icmp[2] = c[0];
    icmp[3] = c[1];
}

/// How much of the original an ICMP error quotes: its IP packet, up to MAX_QUOTE bytes.
#[inline(always)]
fn quote_len(o: &Original, frame_len: usize) -> Option<usize> {
    let mut n = o.tot_len;
    if n > frame_len.saturating_sub(ETH_HLEN) {
        n = frame_len.saturating_sub(ETH_HLEN);
    }
    if n > MAX_QUOTE {
        n = MAX_QUOTE;
    }
    (n >= 20).then_some(n)
}

/// Copies the quote into the scratch buffer `slot` with `load(buffer, len)` and returns it with
/// the sum of its bytes (zero-padded to a multiple of 4 for bpf_csum_diff).
#[inline(always)]
fn load_quote(buf: *mut u8, len: usize, load: impl Fn(*mut u8, u32) -> i64) -> Option<u64> {
    let n = within(len, 20, MAX_QUOTE)?;
    if load(buf, n) != 0 {
        return None;
    }
    for k in 0..3 {
        let at = len + k;
        if at < SCRATCH {
            unsafe { *buf.add(at) = 0 };
        }
    }
    let rounded = (len + 3) & !3;
    let first = within(if rounded > 512 { 512 } else { rounded }, 0, 512)?;
    let mut total =
        unsafe { h::bpf_csum_diff(core::ptr::null_mut(), 0, buf as *mut u32, first, 0) };
    if total < 0 {
        return None;
    }
    let rest = rounded - first as usize;
    if rest > 0 {
        let rest = within(rest, 1, 64)?;
        let more = unsafe {
            h::bpf_csum_diff(core::ptr::null_mut(), 0, buf.add(512) as *mut u32, rest, 0)
        };
        if more < 0 {
            return None;
        }
        total += more;
    }
    Some(total as u64)
}

/// XDP: turns the frame into the answer, marked for `pcn_answer` (XDP_PASS), or XDP_DROP when
/// there is none. A function of its own (a BPF subprogram), so that its stack is not added to
/// the classifier's.
#[inline(never)]
pub fn xdp(ctx: *mut aya_ebpf::bindings::xdp_md, pkt: &PacketInfo, with: u32) -> u32 {
    let ctx = &XdpContext::new(ctx);
    if xdp_reply(ctx, pkt, with).is_none() {
        return xdp_action::XDP_DROP;
    }
    if meta::put(ctx, meta::ANSWER, 0, 0) {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_TX
    }
}

/// `pcn_answer`, TC ingress on every device next to the XDP entry: a reply built at XDP
/// (tagged `meta::ANSWER`) leaves by the device it came in on.
#[inline(always)]
pub fn answer(ctx: &TcContext) -> i32 {
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    unsafe { h::bpf_redirect(ifindex, 0) as i32 }
}

#[inline(always)]
fn xdp_original(ctx: &XdpContext, o: &mut Original) -> Option<()> {
    let (start, end) = (ctx.data(), ctx.data_end());
    o.eth = unsafe { *ptr_at::<[u8; ETH_HLEN]>(start, end, 0)? };
    o.ip = unsafe { *ptr_at::<[u8; 20]>(start, end, ETH_HLEN)? };
    o.ihl = ((o.ip[0] & 0x0f) as usize) * 4;
    o.l4 = ptr_at::<[u8; 20]>(start, end, ETH_HLEN + (o.ihl & 0x3c))
        .map(|p| unsafe { *p })
        .unwrap_or([0; 20]);
    o.tot_len = u16::from_be_bytes([o.ip[2], o.ip[3]]) as usize;
    Some(())
}

#[inline(always)]
fn xdp_reply(ctx: &XdpContext, pkt: &PacketInfo, with: u32) -> Option<()> {
    let s = unsafe { &mut *PCN_REJECT_SCRATCH.get_ptr_mut(0)? };
    xdp_original(ctx, &mut s.o)?;
    let o = &s.o;
    if !o.answerable() {
        return None;
    }
    let frame_len = ctx.data_end() - ctx.data();
    if with == reject::TCP_RESET {
        rst_frame(o, &mut s.out)?;
        let delta = RST_FRAME as i64 - frame_len as i64;
        if delta != 0
            && unsafe { h::bpf_xdp_adjust_tail(ctx.as_ptr() as *mut _, delta as i32) } != 0
        {
            return None;
        }
        let out = ptr_at::<[u8; RST_FRAME]>(ctx.data(), ctx.data_end(), 0)?;
        unsafe { *out = *part(&mut s.out, 0) };
        return Some(());
    }
    if !icmp_answerable(o) {
        return None;
    }
    let src = if pkt.base_chain == CHAIN_FORWARD {
        route_source(ctx, &s.o, &mut s.fib, pkt.in_ifindex)?
    } else {
        [o.ip[16], o.ip[17], o.ip[18], o.ip[19]]
    };
    // The kernel does not limit errors answering what came in on the loopback device; other
    // senders are not local, so the error goes out through a device of theirs.
    let o = &s.o;
    if pkt.in_ifindex != LOOPBACK_IFINDEX
        && !icmp_limit::allow([o.ip[12], o.ip[13], o.ip[14], o.ip[15]], true)
    {
        return None;
    }
    let quoted = quote_len(o, frame_len)?;
    let quote_sum = load_quote(s.quote.as_mut_ptr(), quoted, |buf, len| unsafe {
        h::bpf_xdp_load_bytes(ctx.as_ptr() as *mut _, ETH_HLEN as u32, buf as *mut _, len)
    })?;
    icmp_headers(&s.o, with, src, quoted, quote_sum, &mut s.out);
    // Room for the new IP and ICMP headers in front: the original IP packet then sits where
    // the quote goes, after the new Ethernet header.
    if unsafe { h::bpf_xdp_adjust_head(ctx.as_ptr() as *mut _, -(ICMP_GROW as i32)) } != 0 {
        return None;
    }
    let delta = (ETH_HLEN + quoted) as i64 - frame_len as i64;
    if delta != 0 && unsafe { h::bpf_xdp_adjust_tail(ctx.as_ptr() as *mut _, delta as i32) } != 0 {
        return None;
    }
    let out = ptr_at::<[u8; 42]>(ctx.data(), ctx.data_end(), 0)?;
    unsafe { *out = *part(&mut s.out, 0) };
    Some(())
}

/// The address the kernel would answer a forwarded packet from: the source of its route back
/// to the sender.
#[inline(always)]
fn route_source(
    ctx: &XdpContext,
    o: &Original,
    fib: &mut FibLookup,
    ifindex: u32,
) -> Option<[u8; 4]> {
    *fib = FibLookup {
        family: AF_INET,
        l4_protocol: IPPROTO_ICMP,
        ifindex,
        ..Default::default()
    };
    fib.ipv4_dst[0] = u32::from_ne_bytes([o.ip[12], o.ip[13], o.ip[14], o.ip[15]]);
    let rc = fib_lookup(ctx.as_ptr(), fib, FIB_LOOKUP_SRC | FIB_LOOKUP_SKIP_NEIGH);
    if rc != FIB_SUCCESS && rc != FIB_NO_NEIGH {
        return None;
    }
    let mut src = fib.ipv4_src[0];
    if src == 0 {
        // Kernels before 6.7 find no source (FIB_LOOKUP_SRC): the route's interface's
        // address, as inet_select_addr() picks it.
        src = crate::settings::if_source(fib.ifindex, [o.ip[12], o.ip[13], o.ip[14], o.ip[15]]);
    }
    (src != 0).then(|| src.to_ne_bytes())
}

/// TC egress: turns the skb into the answer and sends it to the local sender through the
/// loopback device (TC_ACT_REDIRECT), or TC_ACT_SHOT when there is none. A subprogram, as
/// `xdp`.
#[inline(never)]
pub fn tc(skb: *mut aya_ebpf::bindings::__sk_buff, with: u32) -> i32 {
    let ctx = &TcContext::new(skb);
    match tc_reply(ctx, with) {
        Some(()) => unsafe {
            h::bpf_redirect_neigh(LOOPBACK_IFINDEX, core::ptr::null_mut(), 0, 0) as i32
        },
        None => TC_ACT_SHOT,
    }
}

#[inline(always)]
fn tc_original(ctx: &TcContext, o: &mut Original) -> Option<()> {
    let skb = ctx.skb.skb as *const _;
    unsafe {
        if h::bpf_skb_load_bytes(skb, 0, o.eth.as_mut_ptr() as *mut _, ETH_HLEN as u32) != 0
            || h::bpf_skb_load_bytes(skb, ETH_HLEN as u32, o.ip.as_mut_ptr() as *mut _, 20) != 0
        {
            return None;
        }
    }
    o.ihl = ((o.ip[0] & 0x0f) as usize) * 4;
    let at = (ETH_HLEN + (o.ihl & 0x3c)) as u32;
    if unsafe { h::bpf_skb_load_bytes(skb, at, o.l4.as_mut_ptr() as *mut _, 20) } != 0 {
        o.l4 = [0; 20];
    }
    o.tot_len = u16::from_be_bytes([o.ip[2], o.ip[3]]) as usize;
    Some(())
}

#[inline(always)]
fn tc_reply(ctx: &TcContext, with: u32) -> Option<()> {
    let s = unsafe { &mut *PCN_REJECT_SCRATCH.get_ptr_mut(1)? };
    tc_original(ctx, &mut s.o)?;
    let o = &s.o;
    if !o.answerable() {
        return None;
    }
    let skb = ctx.skb.skb;
    if with == reject::TCP_RESET {
        rst_frame(o, &mut s.out)?;
        if unsafe { h::bpf_skb_change_tail(skb, RST_FRAME as u32, 0) } != 0 {
            return None;
        }
        let f = s.out.as_ptr() as *const _;
        if unsafe { h::bpf_skb_store_bytes(skb, 0, f, RST_FRAME as u32, 0) } != 0 {
            return None;
        }
        return Some(());
    }
    if !icmp_answerable(o) {
        return None;
    }
    // The sender is local: the kernel's error goes to it through the loopback device, which
    // only the namespace-wide limit applies to.
    if !icmp_limit::allow([o.ip[12], o.ip[13], o.ip[14], o.ip[15]], false) {
        return None;
    }
    // icmp_send's source: the packet's destination when that is local (the packet leaves by
    // lo), otherwise the address its route back to the sender (local) picks, the sender's own.
    let skb_ifindex = unsafe { (*skb).ifindex };
    let src = if skb_ifindex == LOOPBACK_IFINDEX {
        [o.ip[16], o.ip[17], o.ip[18], o.ip[19]]
    } else {
        [o.ip[12], o.ip[13], o.ip[14], o.ip[15]]
    };
    let frame_len = unsafe { (*skb).len } as usize;
    let quoted = quote_len(o, frame_len)?;
    let buf = s.quote.as_mut_ptr();
    let quote_sum = load_quote(buf, quoted, |buf, len| unsafe {
        h::bpf_skb_load_bytes(skb as *const _, ETH_HLEN as u32, buf as *mut _, len)
    })?;
    icmp_headers(&s.o, with, src, quoted, quote_sum, &mut s.out);
    if unsafe { h::bpf_skb_change_tail(skb, (42 + quoted) as u32, 0) } != 0 {
        return None;
    }
    let quoted = within(quoted, 20, MAX_QUOTE)?;
    unsafe {
        if h::bpf_skb_store_bytes(skb, 42, buf as *const _, quoted, 0) != 0 {
            return None;
        }
        if h::bpf_skb_store_bytes(skb, 0, s.out.as_ptr() as *const _, 42, 0) != 0 {
            return None;
        }
    }
    Some(())
}
