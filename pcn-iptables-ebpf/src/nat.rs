//! nat: a new connection's mapping, from the targets its nat chains met (nf_nat's
//! get_unique_tuple), stored with the connection; and the rewriting of every packet of a
//! translated connection, at TC, where the kernel's checksum helpers know how the skb's
//! checksum stands (a veth's packets often carry a partial one, which XDP cannot tell):
//! the destination at TC ingress, before the routing (PREROUTING), the source at TC egress,
//! after it (POSTROUTING; a source rewritten before the routing would be a martian).
//!
//! The classifier decides at XDP with the packet as nat leaves it (see `track::translated`);
//! the rewrite follows the connection's entry, which the first packet stored on its way.

use aya_ebpf::{
    bindings::{__sk_buff, BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, TC_ACT_SHOT},
    helpers::generated::{bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_loop, bpf_redirect_neigh},
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use pcn_iptables_common::conntrack::{
    self, CtEntry, CtKey, Tuple, ctstate,
    nat::{self, Endpoint},
    nat_flag, status,
};
use pcn_iptables_common::{CHAIN_INPUT, PacketInfo, nat_kind, nat_range};

use crate::maps::{PCN_CONNTRACK, PCN_PACKETS};
use crate::parse::{
    AF_INET, ETH_HLEN, ETH_P_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, LOOPBACK_IFINDEX,
};
use crate::route::{
    FIB_FRAG_NEEDED, FIB_FWD_DISABLED, FIB_LOOKUP_MARK, FIB_LOOKUP_SKIP_NEIGH, FIB_LOOKUP_SRC,
    FIB_NO_NEIGH, FIB_NOT_FWDED, FIB_SUCCESS, FibLookup, fib_lookup, mark_flag,
};
use crate::track::{claim, confirm_now, find, store};

/// The routing lookup MASQUERADE asks, in map memory (the classifiers' stacks are full).
#[map]
static PCN_NAT_FIB: PerCpuArray<FibLookup> = PerCpuArray::with_max_entries(2, 0);

/// The destination nat PREROUTING (or OUTPUT) chose for a new connection: DNAT, REDIRECT,
/// NETMAP, or none. `false`: drop it (REDIRECT on an interface without an address).
#[inline(always)]
pub(crate) fn map_destination(pkt: &mut PacketInfo) -> bool {
    let r = pkt.nat_rule;
    let x = &mut pkt.xlat;
    let ports = pkt.has_ports != 0;
    match r.kind {
        nat_kind::DNAT => {
            if r.flags & nat_range::MAP_IPS != 0 {
                x.dst = nat::pick_addr(r.addr, address_hash(&pkt.orig, r.flags));
            }
            if ports {
                x.dport = pick_port(r.flags, r.port, x.dport);
            }
        }
        nat_kind::REDIRECT => {
            // A local packet goes to the loopback address, as nf_nat_redirect_ipv4 does.
            let addr = match pkt.in_ifindex {
                0 => u32::from_ne_bytes([127, 0, 0, 1]),
                i => crate::settings::if_primary(i),
            };
            if addr == 0 {
                return false;
            }
            x.dst = addr.to_ne_bytes();
            if ports {
                x.dport = pick_port(r.flags, r.port, x.dport);
            }
        }
        nat_kind::NETMAP => x.dst = nat::netmap(x.dst, r.addr),
        _ => {}
    }
    pkt.dst = x.dst;
    if ports {
        pkt.dport = x.dport;
    }
    // IPS_DST_NAT is set before the filter table sees the packet (SNAT's comes after it).
    if (x.dst, x.dport) != (pkt.orig.dst, pkt.orig.dport) {
        pkt.ctstate |= ctstate::PACKET_DNAT;
    }
    true
}

/// The source nat POSTROUTING (or INPUT) chose: SNAT's address, MASQUERADE's (the output
/// interface's, as the kernel would pick it now), NETMAP's, or none; the port comes with
/// `commit`. `false`: drop it (MASQUERADE with no address to use).
#[inline(always)]
pub(crate) fn map_source(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> bool {
    let r = pkt.nat_rule;
    match r.kind {
        nat_kind::SNAT if r.flags & nat_range::MAP_IPS != 0 => {
            pkt.xlat.src = nat::pick_addr(r.addr, address_hash(&pkt.orig, r.flags));
        }
        nat_kind::MASQUERADE => {
            let src = masquerade_source(ctx, pkt);
            if src == 0 {
                return false;
            }
            pkt.xlat.src = src.to_ne_bytes();
        }
        nat_kind::NETMAP => pkt.xlat.src = nat::netmap(pkt.xlat.src, r.addr),
        _ => {}
    }
    true
}

/// nf_nat's hash for the address of a range: the source, and the destination unless
/// `--persistent` (the same client then keeps its address whatever it reaches).
#[inline(always)]
fn address_hash(orig: &Tuple, flags: u32) -> u32 {
    let dst = if flags & nat_range::PERSISTENT != 0 {
        [0; 4]
    } else {
        orig.dst
    };
    nat::addr_hash(orig.src, dst)
}

/// A destination port in the range: the connection's own if it lies there (nf_nat keeps it),
/// else the range's first (`--random`: any).
#[inline(always)]
fn pick_port(flags: u32, range: [u16; 2], port: u16) -> u16 {
    if flags & nat_range::PROTO_SPECIFIED == 0 {
        return port;
    }
    if nat::may_keep_port(flags, range, port) {
        return port;
    }
    let (first, last) = (range[0], range[1].max(range[0]));
    let count = (last - first) as u32 + 1;
    let off = if flags & (nat_range::PROTO_RANDOM | nat_range::PROTO_RANDOM_FULLY) != 0 {
        (unsafe { bpf_get_prandom_u32() }) % count
    } else {
        0
    };
    first.wrapping_add(off as u16)
}

/// The address MASQUERADE maps to: the one the kernel's routing picks to reach the
/// destination from the output interface (FIB_LOOKUP_SRC, 6.7; asked with the packet's TOS
/// and mark, by which policy routing chose that interface), else the interface's as
/// inet_select_addr() picks it (userspace lists them at every change); 0 for none (in the
/// byte order of the header's, as a number in one register). A subprogram: its
/// locals stay out of the frame of XDP's `xdp_accept`, on 6.1's deepest chain of calls.
#[inline(never)]
fn masquerade_source(ctx: *mut core::ffi::c_void, pkt: &PacketInfo) -> u32 {
    let hook = (pkt.in_ifindex == 0) as u32;
    let Some(fib) = PCN_NAT_FIB.get_ptr_mut(hook) else {
        return 0;
    };
    let fib = unsafe { &mut *fib };
    // Field by field: a whole struct would be built on the stack first, where 6.1's verifier
    // finds no room for it in XDP's deepest chain of calls.
    fib.family = AF_INET;
    fib.l4_protocol = pkt.proto;
    fib.sport = 0;
    fib.dport = 0;
    fib.tot_len = pkt.len as u16;
    fib.ifindex = if pkt.in_ifindex != 0 {
        pkt.in_ifindex
    } else {
        pkt.out_ifindex
    };
    fib.tos = pkt.tos as u32;
    fib.ipv4_src = [0; 4];
    fib.ipv4_dst = [u32::from_ne_bytes(pkt.xlat.dst), 0, 0, 0];
    fib.tbid = 0;
    fib.set_mark(pkt.mark);
    let flags = FIB_LOOKUP_SRC | FIB_LOOKUP_SKIP_NEIGH | mark_flag();
    let rc = fib_lookup(ctx, fib, flags);
    let mut src = 0;
    if (rc == FIB_SUCCESS || rc == FIB_NO_NEIGH) && fib.ifindex == pkt.out_ifindex {
        src = fib.ipv4_src[0];
    }
    if src == 0 {
        src = crate::settings::if_source(pkt.out_ifindex, pkt.xlat.dst);
    }
    src
}

/// Whether the packet's masqueraded connection (`e`, under `key`, the packet's source being
/// end `src_end` of it) lost its address: netfilter then forgets the connection
/// (masq_inet_event), and its next packet opens a new one; so does this one, and the
/// connection and its alias go. The address is the one the routing now picks to reach the
/// destination (FIB_LOOKUP_SRC); kernels before 6.7 cannot say: the interface's addresses
/// as userspace listed them at the last change. A subprogram: its branches stay out of the
/// tracking's.
#[inline(never)]
pub(crate) fn masquerade_gone(
    ctx: *mut core::ffi::c_void,
    pkt: &PacketInfo,
    key: &CtKey,
    src_end: u8,
    e: *mut CtEntry,
) -> bool {
    let e = unsafe { &*e };
    if e.nat & nat_flag::MASQUERADE == 0 || src_end & 1 != e.origin || pkt.in_ifindex == 0 {
        return false;
    }
    let Some(fib) = PCN_NAT_FIB.get_ptr_mut(0) else {
        return false;
    };
    // The reply tuple's source is where the connection goes, its destination the address
    // MASQUERADE gave it.
    let (to, mapped) = (e.reply_addr[0], e.reply_addr[1]);
    // Field by field: a whole struct would be built on the stack first.
    let fib = unsafe { &mut *fib };
    fib.family = AF_INET;
    fib.l4_protocol = 0;
    fib.sport = 0;
    fib.dport = 0;
    fib.tot_len = 0;
    fib.ifindex = pkt.in_ifindex;
    fib.tos = 0;
    fib.ipv4_src = [0; 4];
    fib.ipv4_dst = [u32::from_ne_bytes(to), 0, 0, 0];
    let rc = fib_lookup(ctx, fib, FIB_LOOKUP_SRC | FIB_LOOKUP_SKIP_NEIGH);
    let mut src = 0;
    if rc == FIB_SUCCESS || rc == FIB_NO_NEIGH {
        src = fib.ipv4_src[0];
    }
    if src == 0 {
        src = crate::settings::if_source(e.out_ifindex, to);
    }
    if src == 0 || src == u32::from_ne_bytes(mapped) {
        return false;
    }
    // Routed elsewhere (policy routing by a mark or TOS the connection's packets get in
    // PREROUTING, which this lookup cannot know yet; or a route changed): netfilter forgets
    // the connection only when its address goes, so it stays while the address is local.
    fib.ifindex = pkt.in_ifindex;
    fib.ipv4_src = [0; 4];
    fib.ipv4_dst = [u32::from_ne_bytes(mapped), 0, 0, 0];
    if fib_lookup(ctx, fib, FIB_LOOKUP_SKIP_NEIGH) == FIB_NOT_FWDED {
        return false;
    }
    if let Some(m) = nat::midway(key, e) {
        let _ = PCN_CONNTRACK.remove(&m.key().0);
    }
    let _ = PCN_CONNTRACK.remove(&nat::reply(key, e).key().0);
    let _ = PCN_CONNTRACK.remove(key);
    true
}

/// Whether a connection other than the packet's holds `t`'s key (a live one, or an alias).
#[inline(always)]
fn used(t: &Tuple, now: u64) -> bool {
    let (key, _) = t.key();
    match unsafe { PCN_CONNTRACK.get(&key) } {
        Some(e) => e.status & status::ALIAS != 0 || e.expires > now,
        None => false,
    }
}

/// Stores the new connection with its mapping, once its source port (ICMP: id) makes its
/// reply tuple unique, as nf_nat's get_unique_tuple does, also when no rule mapped it (the
/// "null binding" moves a clashing port). `false`: drop the packet (no free port, or a full
/// table).
#[inline(always)]
pub(crate) fn commit(hook: u32) -> bool {
    pcn_nat_commit(hook) != 0
}

/// `commit` for the packet of `hook` (`XDP` or `TC`), a global function: the verifier checks
/// it once, on its own, instead of once for every path of the classifier that reaches it
/// (it takes the hook, not the packet, as `pcn_first_match` does).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_nat_commit(hook: u32) -> u32 {
    match PCN_PACKETS.get_ptr_mut(hook) {
        Some(pkt) => commit_packet(unsafe { &mut *pkt }) as u32,
        None => 0,
    }
}

#[inline(always)]
fn commit_packet(pkt: &mut PacketInfo) -> bool {
    let r = pkt.nat_rule;
    let (flags, range) = match r.kind {
        nat_kind::SNAT | nat_kind::MASQUERADE => (r.flags, r.port),
        _ => (0, [0, 0]),
    };
    let now = unsafe { bpf_ktime_get_ns() };
    let x = pkt.xlat;
    if !nat::may_keep_port(flags, range, x.sport) || used(&x, now) {
        let searchable = matches!(x.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP);
        let Some((first, count)) =
            nat::port_search(x.proto, flags, range, x.sport, true).filter(|_| searchable)
        else {
            return false;
        };
        if !search(pkt, first, count, now) {
            return false;
        }
    }
    let (orig, xlat) = (pkt.orig, pkt.xlat);
    let local = if pkt.in_ifindex == 0 {
        nat_flag::LOCAL_OUT
    } else if pkt.base_chain == CHAIN_INPUT {
        nat_flag::LOCAL_IN
    } else {
        0
    };
    nat::map(&mut pkt.ct_entry, &orig, &xlat, local);
    // Its first packet was routed to a local address, and OUTPUT maps it elsewhere.
    if pkt.in_ifindex == 0
        && pkt.out_ifindex == LOOPBACK_IFINDEX
        && pkt.ct_entry.nat & nat_flag::DST != 0
    {
        pkt.ct_entry.nat |= nat_flag::LOOPED;
    }
    if r.kind == nat_kind::MASQUERADE && pkt.ct_entry.nat != 0 {
        pkt.ct_entry.nat |= nat_flag::MASQUERADE;
        pkt.ct_entry.out_ifindex = pkt.out_ifindex;
    }
    let (reply_key, _) = xlat.key();
    let aliased = pkt.ct_entry.nat != 0 && reply_key != pkt.ct_key;
    let alias = nat::alias(&pkt.ct_key);
    // The reply tuple first: another CPU's new connection may have picked it meanwhile.
    if aliased && !claim(&reply_key, &alias, now) {
        return false;
    }
    if !confirm_now(pkt) {
        if aliased {
            let _ = PCN_CONNTRACK.remove(&reply_key);
        }
        return false;
    }
    // Translated both ways: its packets between the two rewrites have a key of their own.
    let midway = nat::midway(&pkt.ct_key, &pkt.ct_entry);
    if aliased && midway.is_some_and(|m| !store(&m.key().0, &alias)) {
        let _ = PCN_CONNTRACK.remove(&reply_key);
        let _ = PCN_CONNTRACK.remove(&pkt.ct_key);
        return false;
    }
    true
}

/// The search's context (bpf_loop's, on the stack): the packet, whose map memory holds the
/// search's state so that the loop body verifies once.
#[repr(C)]
struct Search {
    pkt: *mut PacketInfo,
}

/// Looks for a free port among `count` from `first`, starting at a random one (nf_nat does
/// for a source), at most `nat::MAX_ATTEMPTS` of them; sets `pkt.xlat.sport`.
#[inline(always)]
fn search(pkt: &mut PacketInfo, first: u16, count: u32, now: u64) -> bool {
    pkt.search.now = now;
    pkt.search.first = first as u32;
    pkt.search.count = count;
    pkt.search.off = unsafe { bpf_get_prandom_u32() } % count;
    pkt.search.found = u32::MAX;
    let tries = if count < nat::MAX_ATTEMPTS {
        count
    } else {
        nat::MAX_ATTEMPTS
    };
    let mut ctx = Search { pkt };
    unsafe {
        bpf_loop(
            tries,
            search_step as *mut core::ffi::c_void,
            &mut ctx as *mut Search as *mut core::ffi::c_void,
            0,
        );
    }
    let found = unsafe { core::ptr::read_volatile(&pkt.search.found) };
    if found == u32::MAX {
        return false;
    }
    pkt.xlat.sport = found as u16;
    true
}

extern "C" fn search_step(i: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let pkt = unsafe { &mut *(*(ctx as *mut Search)).pkt };
    let s = pkt.search;
    if s.count == 0 {
        return 1;
    }
    let port = s.first + (s.off + i as u32) % s.count;
    let mut t = pkt.xlat;
    t.sport = port as u16;
    if used(&t, s.now) {
        return 0;
    }
    pkt.search.found = port;
    1
}

/// Where a packet of a translated connection is rewritten (`translate`'s `hook`).
pub(crate) mod hook {
    /// TC ingress, before the routing: the destination (PREROUTING), and the source of a
    /// packet for a local socket (nat INPUT: after the routing in netfilter, but a source
    /// that is not ours routes alike).
    pub(crate) const INGRESS: u32 = 0;
    /// TC egress of a forwarded packet: the source (POSTROUTING).
    pub(crate) const FORWARDED: u32 = 1;
    /// TC egress of a local packet: the destination (OUTPUT, then routed again) and the
    /// source (POSTROUTING).
    pub(crate) const LOCAL: u32 = 2;
}

/// A packet's tuple as the rewrite sees it: the packet's own, or an ICMP error's quote.
struct Headers {
    tuple: Tuple,
    /// Offset of its L4 header in the frame, and of its IP header.
    l4: usize,
    ip: usize,
    /// An ICMP query (its id is the tuple's source port) rather than a reply.
    query: bool,
}

/// The tuple of the IPv4 packet at `ip` (ICMP: queries and replies; `error`: also errors,
/// as `None` with the offset of their L4 header). A later fragment holds no ports: it passes
/// as it is.
#[inline(always)]
fn headers(ctx: &TcContext, ip_at: usize) -> Option<Result<Headers, usize>> {
    let ip: [u8; 20] = ctx.load(ip_at).ok()?;
    if ip[0] >> 4 != 4 || u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        return None;
    }
    let l4 = ip_at + ((ip[0] & 0x0f) as usize) * 4;
    let proto = ip[9];
    let (sport, dport, query) = match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let p: [u8; 4] = ctx.load(l4).ok()?;
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
                false,
            )
        }
        IPPROTO_ICMP => {
            let h: [u8; 8] = ctx.load(l4).ok()?;
            let id = u16::from_be_bytes([h[4], h[5]]);
            if conntrack::icmp_reply_type(h[0]).is_some() {
                (id, h[0] as u16, true)
            } else if let Some(q) = conntrack::icmp_query_of_reply(h[0]) {
                (q as u16, id, false)
            } else if conntrack::icmp_is_error(h[0]) {
                return Some(Err(l4));
            } else {
                return None;
            }
        }
        _ => (0, 0, false),
    };
    Some(Ok(Headers {
        tuple: Tuple::of_ipv4(&ip, sport, dport),
        l4,
        ip: ip_at,
        query,
    }))
}

/// Rewrites the packet in `ctx` as its translated connection wants at `hook`; what is left to
/// do (`then::*`).
#[inline(always)]
pub(crate) fn translate(ctx: &TcContext, hook: u32) -> u32 {
    pcn_nat_translate(ctx.skb.skb, hook)
}

/// What `translate` leaves to its caller.
pub(crate) mod then {
    pub(crate) const NOTHING: u32 = 0;
    /// OUTPUT changed the destination: route the packet again (`reroute`).
    pub(crate) const REROUTE: u32 = 1;
    /// A reply of a `nat_flag::LOOPED` connection: to the socket through lo.
    pub(crate) const LOOP: u32 = 2;
}

/// `translate`, a global function: the verifier checks it once, on its own, however many
/// places call it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_nat_translate(skb: *mut __sk_buff, hook: u32) -> u32 {
    let ctx = &TcContext::new(skb);
    if u16::from_be(ctx.load::<u16>(12).unwrap_or(0)) != ETH_P_IP {
        return 0;
    }
    match headers(ctx, ETH_HLEN) {
        Some(Ok(h)) => translate_packet(ctx, &h, hook).unwrap_or(then::NOTHING),
        Some(Err(icmp)) => {
            let _ = translate_error(ctx, icmp, hook);
            0
        }
        None => 0,
    }
}

/// The live translated connection of tuple `t`: its key, entry, and whether `t` goes its
/// reply way.
#[inline(always)]
fn connection(t: &Tuple) -> Option<(CtKey, CtEntry, bool)> {
    let (key, src_end) = t.key();
    let now = unsafe { bpf_ktime_get_ns() };
    let (key, src_end, e) = find(&key, src_end, now)?;
    let e = unsafe { *e };
    (e.nat & nat_flag::ENDS != 0).then_some((key, e, src_end & 1 != e.origin))
}

/// The rewrites at `hook` for a packet going the `reply` way: destination, source.
#[inline(always)]
fn manips(
    key: &CtKey,
    e: &CtEntry,
    reply: bool,
    hook: u32,
) -> (Option<Endpoint>, Option<Endpoint>) {
    match hook {
        hook::INGRESS => (
            nat::dst_manip(key, e, reply),
            nat::src_manip(key, e, reply).filter(|_| nat::to_local(e, reply)),
        ),
        hook::FORWARDED => (None, nat::src_manip(key, e, reply)),
        _ => (nat::dst_manip(key, e, reply), nat::src_manip(key, e, reply)),
    }
}

#[inline(always)]
fn translate_packet(ctx: &TcContext, h: &Headers, hook: u32) -> Option<u32> {
    let (key, e, reply) = connection(&h.tuple)?;
    let (dst, src) = manips(&key, &e, reply, hook);
    let mut rerouted = false;
    if let Some(d) = dst {
        rerouted = (d.addr, d.port) != (h.tuple.dst, h.tuple.dport);
        rewrite(ctx, h, d, false)?;
    }
    if let Some(s) = src {
        rewrite(ctx, h, s, true)?;
    }
    Some(match hook {
        hook::LOCAL if rerouted => then::REROUTE,
        hook::INGRESS if reply && e.nat & nat_flag::LOOPED != 0 => then::LOOP,
        _ => then::NOTHING,
    })
}

/// An ICMP error about a packet of a translated connection (RELATED): the error goes the
/// other way than the packet it quotes, its header is rewritten as that way wants, and the
/// quote the inverse way, so that the sender finds its own packet in it (nf_nat's
/// icmp_reply_translation).
#[inline(always)]
fn translate_error(ctx: &TcContext, icmp: usize, hook: u32) -> Option<()> {
    let outer = match headers(ctx, ETH_HLEN)? {
        Err(_) => {
            let ip: [u8; 20] = ctx.load(ETH_HLEN).ok()?;
            [
                ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19],
            ]
        }
        Ok(_) => return None,
    };
    let quote = match headers(ctx, icmp + 8)? {
        Ok(q) => q,
        Err(_) => return None,
    };
    let (key, e, quoted_reply) = connection(&quote.tuple)?;
    let (dst, src) = manips(&key, &e, !quoted_reply, hook);
    let icmp_csum = icmp + 2;
    if let Some(d) = dst {
        let from = [outer[4], outer[5], outer[6], outer[7]];
        replace_addr(ctx, IP_CSUM, ETH_HLEN + 16, from, d.addr)?;
        rewrite_quote(ctx, &quote, icmp_csum, d, true)?;
    }
    if let Some(s) = src {
        let from = [outer[0], outer[1], outer[2], outer[3]];
        replace_addr(ctx, IP_CSUM, ETH_HLEN + 12, from, s.addr)?;
        rewrite_quote(ctx, &quote, icmp_csum, s, false)?;
    }
    Some(())
}

/// An address of an IP header at `at`, with that header's checksum at `csum`.
#[inline(always)]
fn replace_addr(ctx: &TcContext, csum: usize, at: usize, from: [u8; 4], to: [u8; 4]) -> Option<()> {
    if from == to {
        return Some(());
    }
    let (old, new) = (
        u32::from_ne_bytes(from) as u64,
        u32::from_ne_bytes(to) as u64,
    );
    ctx.l3_csum_replace(csum, old, new, 4).ok()?;
    ctx.store(at, &to, 0).ok()
}

/// The quote's source (`src`) or destination address and port, with the quoted IP header's
/// checksum and the ICMP checksum (which covers the quote) kept right.
#[inline(always)]
fn rewrite_quote(
    ctx: &TcContext,
    q: &Headers,
    icmp_csum: usize,
    to: Endpoint,
    src: bool,
) -> Option<()> {
    let t = &q.tuple;
    let (from_addr, from_port) = if src {
        (t.src, t.sport)
    } else {
        (t.dst, t.dport)
    };
    if from_addr != to.addr {
        let quote_csum = q.ip + 10;
        let before: u16 = ctx.load(quote_csum).ok()?;
        replace_addr(
            ctx,
            quote_csum,
            q.ip + if src { 12 } else { 16 },
            from_addr,
            to.addr,
        )?;
        let after: u16 = ctx.load(quote_csum).ok()?;
        let (old, new) = (
            u32::from_ne_bytes(from_addr) as u64,
            u32::from_ne_bytes(to.addr) as u64,
        );
        ctx.l4_csum_replace(icmp_csum, old, new, 4).ok()?;
        ctx.l4_csum_replace(icmp_csum, before as u64, after as u64, 2)
            .ok()?;
    }
    let at = match t.proto {
        IPPROTO_TCP | IPPROTO_UDP => q.l4 + if src { 0 } else { 2 },
        IPPROTO_ICMP if q.query == src => q.l4 + 4,
        _ => return Some(()),
    };
    if from_port != to.port {
        let (old, new) = (from_port.to_be() as u64, to.port.to_be() as u64);
        ctx.l4_csum_replace(icmp_csum, old, new, 2).ok()?;
        ctx.store(at, &to.port.to_be(), 0).ok()?;
    }
    Some(())
}

const IP_CSUM: usize = ETH_HLEN + 10;

/// Writes `to` as the packet's source (`src`) or destination address and port (ICMP: the
/// id, on the query's source side and the reply's destination side), with the IP and L4
/// checksums updated (a UDP checksum of zero stays zero).
#[inline(always)]
fn rewrite(ctx: &TcContext, h: &Headers, to: Endpoint, src: bool) -> Option<()> {
    let t = &h.tuple;
    let (from_addr, from_port) = if src {
        (t.src, t.sport)
    } else {
        (t.dst, t.dport)
    };
    let (csum, flags) = match t.proto {
        IPPROTO_TCP => (Some(h.l4 + 16), BPF_F_PSEUDO_HDR as u64),
        IPPROTO_UDP => (
            Some(h.l4 + 6),
            (BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0) as u64,
        ),
        _ => (None, 0),
    };
    if from_addr != to.addr {
        let (old, new) = (
            u32::from_ne_bytes(from_addr) as u64,
            u32::from_ne_bytes(to.addr) as u64,
        );
        if let Some(at) = csum {
            ctx.l4_csum_replace(at, old, new, flags | 4).ok()?;
        }
        replace_addr(
            ctx,
            IP_CSUM,
            ETH_HLEN + if src { 12 } else { 16 },
            from_addr,
            to.addr,
        )?;
    }
    if from_port == to.port {
        return Some(());
    }
    let (old, new) = (from_port.to_be() as u64, to.port.to_be() as u64);
    match (t.proto, csum) {
        (IPPROTO_ICMP, _) if h.query == src => {
            ctx.l4_csum_replace(h.l4 + 2, old, new, 2).ok()?;
            ctx.store(h.l4 + 4, &to.port.to_be(), 0).ok()?;
        }
        (_, Some(at)) => {
            ctx.l4_csum_replace(at, old, new, (flags & !(BPF_F_PSEUDO_HDR as u64)) | 2)
                .ok()?;
            ctx.store(h.l4 + if src { 0 } else { 2 }, &to.port.to_be(), 0)
                .ok()?;
        }
        _ => {}
    }
    Some(())
}

/// A local packet whose destination OUTPUT rewrote: routed again, as ip_route_me_harder
/// does, to its new destination's interface (lo for a local one), by the neighbour
/// subsystem. TC_ACT_SHOT when there is no route. A subprogram: its caller's frame is small.
#[inline(never)]
pub(crate) fn reroute(ctx: &TcContext) -> i32 {
    let Some(fib) = PCN_NAT_FIB.get_ptr_mut(1) else {
        return TC_ACT_SHOT;
    };
    let fib = unsafe { &mut *fib };
    let Ok(ip) = ctx.load::<[u8; 20]>(ETH_HLEN) else {
        return TC_ACT_SHOT;
    };
    // Asked as for a packet from lo, as the kernel routes what it sends: an output lookup
    // would be bound to the device of the old route.
    let here = unsafe { (*ctx.skb.skb).ifindex };
    // ip_route_me_harder routes by the mark and TOS too (the mark where the kernel's lookup
    // takes it: see `reroute`).
    *fib = FibLookup {
        family: AF_INET,
        ifindex: LOOPBACK_IFINDEX,
        tos: ip[1] as u32,
        ..Default::default()
    };
    fib.set_mark(unsafe { (*ctx.skb.skb).mark });
    fib.ipv4_src[0] = u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]);
    fib.ipv4_dst[0] = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let flags = FIB_LOOKUP_SKIP_NEIGH | FIB_LOOKUP_MARK;
    let ifindex = match fib_lookup(ctx.skb.skb as *mut _, fib, flags) {
        FIB_SUCCESS | FIB_NO_NEIGH | FIB_FRAG_NEEDED => fib.ifindex,
        FIB_NOT_FWDED => LOOPBACK_IFINDEX,
        // A host that does not forward cannot be asked this way: the old route's device.
        FIB_FWD_DISABLED => here,
        _ => return TC_ACT_SHOT,
    };
    unsafe { bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 }
}
