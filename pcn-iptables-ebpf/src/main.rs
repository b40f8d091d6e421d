//! The pcn-iptables data plane.
//!
//! Two entry programs stay attached for the life of the installation: `pcn_ingress` (XDP, every
//! interface: INPUT and FORWARD) and `pcn_egress` (TC egress: OUTPUT). They parse the packet,
//! pick the base chain and tail-call the classifier. The classifiers are loaded once; a
//! generation is a set of rule maps only, reached through the outer maps (CHAINS, ACTIONS,
//! FIELDS, BITMAPS: one slot per generation) by the packet's `slot`, so swapping `PCN_ACTIVE`
//! changes the whole ruleset at once.
#![no_std]
#![no_main]
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod icmp_limit;
mod limit;
mod log;
mod reject;
mod settings;

use aya_ebpf::{
    EbpfContext,
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    btf_maps::{self, ArrayOfMaps},
    macros::{btf_map, classifier, map, xdp},
    maps::{Array, LruHashMap, PerCpuArray, ProgramArray, lpm_trie::Key},
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::conntrack::{self, CtEntry, CtKey, Tuple, ctstate};
use pcn_iptables_common::{
    Action, Bitmap, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, CONNTRACK_ENTRIES, ChainConfig,
    Counter, FIELD_KEY_HEADER_BITS, FLOW_CACHE_ENTRIES, FLOW_COUNTERS, FieldKey, FlowKey,
    FlowVerdict, Frame, GENERATIONS, MAX_CALL_DEPTH, MAX_COUNTERS, MAX_WORDS, PacketInfo,
    SUMMARY_WORDS, chain_flag, field, field_key6, flow_flag, verdict,
};

// Kept across generations (pinned by name in the namespace's state directory).
#[map]
static PCN_ACTIVE: Array<u32> = Array::pinned(1, 0);
#[map]
static PCN_PROGS_XDP: ProgramArray = ProgramArray::pinned(GENERATIONS, 0);
#[map]
static PCN_PROGS_TC: ProgramArray = ProgramArray::pinned(GENERATIONS, 0);
#[map]
static PCN_COUNTERS: PerCpuArray<Counter> = PerCpuArray::pinned(MAX_COUNTERS, 0);
/// The packet being judged, per CPU: index `XDP` for ingress, `TC` for egress (a TC program in
/// process context may be interrupted by XDP in a softirq on the same CPU). One map, so that
/// the classifier's global function gets a map value of one map whichever the hook.
#[map]
static PCN_PACKETS: PerCpuArray<PacketInfo> = PerCpuArray::pinned(2, 0);
const XDP: u32 = 0;
const TC: u32 = 1;
/// Connections, shared by both hooks and every generation.
#[map]
static PCN_CONNTRACK: LruHashMap<CtKey, CtEntry> = LruHashMap::pinned(CONNTRACK_ENTRIES, 0);
/// Verdicts of flows, each good in the generation that found it (see `cached_verdict`).
#[map]
static PCN_FLOWS: LruHashMap<FlowKey, FlowVerdict> = LruHashMap::pinned(FLOW_CACHE_ENTRIES, 0);

// One set of maps per generation, in the slot `pkt.slot` of these outer maps. Userspace creates
// the inner maps of each change sized to fit, with exactly these flags (the kernel requires an
// inner map to match its template: type, key and value size, flags; BPF_F_INNER_MAP lets an
// array's size differ). The arrays are mmapable: userspace fills them through mmap.
const GENS: usize = GENERATIONS as usize;
const INNER_ARRAY: usize =
    (aya_ebpf::bindings::BPF_F_INNER_MAP | aya_ebpf::bindings::BPF_F_MMAPABLE) as usize;
const NO_PREALLOC: usize = aya_ebpf::bindings::BPF_F_NO_PREALLOC as usize;
#[btf_map]
static CHAINS: ArrayOfMaps<btf_maps::Array<ChainConfig, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();
#[btf_map]
static ACTIONS: ArrayOfMaps<btf_maps::Array<Action, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();
/// Every chain's rule bitmap and field entries; one map, so that every bitmap pointer the
/// classifier holds has the same type and the verifier follows one path, not one per
/// combination of fields in use.
#[btf_map]
static FIELDS: ArrayOfMaps<btf_maps::LpmTrie<FieldKey, u32, 1, NO_PREALLOC>, GENS> =
    ArrayOfMaps::new();
/// The bitmaps FIELDS entries point to.
#[btf_map]
static BITMAPS: ArrayOfMaps<btf_maps::Array<Bitmap, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();

/// Chain `id` of generation `slot`.
#[inline(always)]
fn chain_config(slot: u32, id: u32) -> Option<&'static ChainConfig> {
    CHAINS.get_value(slot, &id)
}

/// Rule `i` (chain's `action_base` + rule index) of generation `slot`.
#[inline(always)]
pub(crate) fn action(slot: u32, i: u32) -> Option<&'static Action> {
    ACTIONS.get_value(slot, &i)
}

/// The same, writable (a rule's `-m limit` state lives there).
#[inline(always)]
pub(crate) fn action_mut(slot: u32, i: u32) -> Option<*mut Action> {
    ACTIONS.get_value_ptr_mut(slot, &i)
}

/// The bitmap index of the longest prefix of `key` in generation `slot`'s field trie.
#[inline(always)]
fn field_lookup(slot: u32, key: &Key<FieldKey>) -> Option<u32> {
    FIELDS.get_value_ptr_mut(slot, key).map(|v| unsafe { *v })
}

/// The bitmap array of generation `slot`: looked up once per round, then indexed (each
/// lookup into an inner map is a helper call).
#[inline(always)]
fn bitmaps(slot: u32) -> Option<&'static btf_maps::Array<Bitmap, 1, INNER_ARRAY>> {
    BITMAPS.get(slot)
}

/// Bitmaps ANDed per word: the chain's rules and the fields (all but the `--ports` pair).
const FIELDS_SCANNED: usize = 17;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMP: u8 = 1;
const AF_INET: u8 = 2;
/// lo's ifindex in every network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

// bpf_fib_lookup() results and flags (uapi/linux/bpf.h).
const FIB_SUCCESS: i64 = 0;
const FIB_NOT_FWDED: i64 = 4;
const FIB_FWD_DISABLED: i64 = 5;
const FIB_NO_NEIGH: i64 = 7;
const FIB_FRAG_NEEDED: i64 = 8;
const FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;

/// `struct bpf_fib_lookup` with its unions flattened to their IPv4 members.
#[repr(C)]
#[derive(Default)]
struct FibLookup {
    family: u8,
    l4_protocol: u8,
    sport: u16,
    dport: u16,
    tot_len: u16,
    ifindex: u32,
    tos: u32,
    ipv4_src: [u32; 4],
    ipv4_dst: [u32; 4],
    tbid: u32,
    macs: [u8; 12],
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

#[inline(always)]
fn ptr_at<T>(start: usize, end: usize, offset: usize) -> Option<*const T> {
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

/// Fills addresses, protocol, ports and length from the IPv4 packet at `l3`, and, when the
/// generation tracks connections (`tracks`), tracks its connection (`update`: the packet
/// counts for it and moves its state); `None` when the frame is not IPv4 we can read.
#[inline(always)]
fn parse_ipv4(
    pkt: &mut PacketInfo,
    start: usize,
    end: usize,
    tracks: bool,
    update: bool,
) -> Option<()> {
    let ethertype = u16::from_be(unsafe { *ptr_at::<u16>(start, end, 12)? });
    if ethertype != ETH_P_IP {
        return None;
    }
    let ip = ptr_at::<[u8; 20]>(start, end, ETH_HLEN)?;
    let ip = unsafe { &*ip };
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    pkt.len = u16::from_be_bytes([ip[2], ip[3]]) as u32;
    pkt.ttl = ip[8];
    pkt.proto = ip[9];
    pkt.src = [ip[12], ip[13], ip[14], ip[15]];
    pkt.dst = [ip[16], ip[17], ip[18], ip[19]];
    if let Some(mac) = ptr_at::<[u8; 6]>(start, end, 6) {
        pkt.mac_src = unsafe { *mac };
    }
    let frag_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    pkt.fragment = (frag_offset != 0) as u8;
    pkt.has_ports = 0;
    pkt.sport = 0;
    pkt.dport = 0;
    pkt.has_icmp = 0;
    pkt.has_tcp_flags = 0;
    let l4 = ETH_HLEN + (ihl & 0x3c);
    if frag_offset == 0 && ihl >= 20 {
        match pkt.proto {
            IPPROTO_TCP | IPPROTO_UDP => {
                if let Some(ports) = ptr_at::<[u8; 4]>(start, end, l4) {
                    let ports = unsafe { &*ports };
                    pkt.sport = u16::from_be_bytes([ports[0], ports[1]]);
                    pkt.dport = u16::from_be_bytes([ports[2], ports[3]]);
                    pkt.has_ports = 1;
                }
                if pkt.proto == IPPROTO_TCP {
                    if let Some(flags) = ptr_at::<u8>(start, end, l4 + 13) {
                        pkt.tcp_flags = unsafe { *flags };
                        pkt.has_tcp_flags = 1;
                    }
                }
            }
            IPPROTO_ICMP => {
                if let Some(icmp) = ptr_at::<[u8; 2]>(start, end, l4) {
                    let icmp = unsafe { &*icmp };
                    pkt.icmp_type = icmp[0];
                    pkt.icmp_code = icmp[1];
                    pkt.has_icmp = 1;
                }
            }
            _ => {}
        }
    }
    if tracks {
        track(pkt, start, end, l4, frag_offset != 0, update);
    } else {
        pkt.ct_commit = 0;
        pkt.ctstate = ctstate::INVALID;
    }
    Some(())
}

/// The live entry of a connection (an expired one is as good as none).
#[inline(always)]
fn connection(key: &CtKey, now: u64) -> Option<CtEntry> {
    let e = unsafe { PCN_CONNTRACK.get(key)? };
    (e.expires > now).then_some(*e)
}

/// Sets the packet's ctstate, and what to store if it is accepted, as netfilter's conntrack
/// would before the filter table sees it.
#[inline(always)]
fn track(pkt: &mut PacketInfo, start: usize, end: usize, l4: usize, fragment: bool, update: bool) {
    pkt.ct_commit = 0;
    pkt.ctstate = ctstate::INVALID;
    // netfilter reassembles before tracking; a lone later fragment cannot be tied to a
    // connection here.
    if fragment {
        return;
    }
    let now = unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() };
    let tuple = |sport, dport| Tuple {
        src: pkt.src,
        dst: pkt.dst,
        sport,
        dport,
        proto: pkt.proto,
    };
    let (tuple, tcp_flags) = match pkt.proto {
        IPPROTO_TCP => {
            let Some(flags) = ptr_at::<u8>(start, end, l4 + 13) else {
                return;
            };
            (tuple(pkt.sport, pkt.dport), Some(unsafe { *flags }))
        }
        IPPROTO_UDP if pkt.has_ports != 0 => (tuple(pkt.sport, pkt.dport), None),
        IPPROTO_UDP => return,
        IPPROTO_ICMP => {
            let Some(icmp) = ptr_at::<[u8; 8]>(start, end, l4) else {
                return;
            };
            let icmp = unsafe { &*icmp };
            let (kind, id) = (icmp[0], u16::from_be_bytes([icmp[4], icmp[5]]));
            if conntrack::icmp_reply_type(kind).is_some() {
                (tuple(id, kind as u16), None)
            } else if let Some(query) = conntrack::icmp_query_of_reply(kind) {
                // A reply only belongs to a query we saw.
                let t = tuple(query as u16, id);
                let (key, _) = t.key();
                if connection(&key, now).is_none() {
                    return;
                }
                (t, None)
            } else {
                if conntrack::icmp_is_error(kind) && quoted_connection(start, end, l4 + 8, now) {
                    pkt.ctstate = ctstate::RELATED;
                }
                return;
            }
        }
        _ => (tuple(0, 0), None),
    };
    let (key, src_end) = tuple.key();
    // A live entry is updated right here, whatever the filter decides later, as netfilter's
    // conntrack does before the filter table; one lookup, no second one at the verdict.
    let live = PCN_CONNTRACK
        .get_ptr_mut(&key)
        .filter(|e| unsafe { (**e).expires } > now);
    let existing = live.map(|e| unsafe { *e });
    let (state, entry) = match tcp_flags {
        Some(flags) => conntrack::track_tcp(existing.as_ref(), src_end, flags, now),
        None => conntrack::track_other(existing.as_ref(), src_end, pkt.proto, now),
    };
    pkt.ctstate = state;
    let Some(mut entry) = entry else {
        return;
    };
    if !update {
        return;
    }
    let reply = src_end != entry.origin;
    conntrack::account(&mut entry, reply, pkt.len);
    match live {
        Some(e) => unsafe { *e = entry },
        // New: stored only if the packet is accepted (netfilter confirms a connection once
        // its first packet got through).
        None => {
            pkt.ct_key = key;
            pkt.ct_entry = entry;
            pkt.ct_commit = 1;
        }
    }
}

/// Whether the packet an ICMP error quotes (its IP header at `inner`) belongs to a tracked
/// connection: the error is then RELATED to it.
#[inline(always)]
fn quoted_connection(start: usize, end: usize, inner: usize, now: u64) -> bool {
    let Some(ip) = ptr_at::<[u8; 20]>(start, end, inner) else {
        return false;
    };
    let ip = unsafe { &*ip };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let Some(l4) = ptr_at::<[u8; 8]>(start, end, inner + (ihl & 0x3c)) else {
        return false;
    };
    let l4 = unsafe { &*l4 };
    let proto = ip[9];
    let (sport, dport) = match proto {
        IPPROTO_TCP | IPPROTO_UDP => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        IPPROTO_ICMP if conntrack::icmp_reply_type(l4[0]).is_some() => {
            (u16::from_be_bytes([l4[4], l4[5]]), l4[0] as u16)
        }
        _ => return false,
    };
    let quoted = Tuple {
        src: [ip[12], ip[13], ip[14], ip[15]],
        dst: [ip[16], ip[17], ip[18], ip[19]],
        sport,
        dport,
        proto,
    };
    connection(&quoted.key().0, now).is_some()
}

/// The running generation's slot, and whether it tracks connections (`chain_flag::TRACK`,
/// on every chain): read once per packet, so that tracking and the verdict agree.
#[inline(always)]
fn generation() -> Option<(u32, bool)> {
    let slot = *PCN_ACTIVE.get(0)?;
    let cfg = chain_config(slot, CHAIN_INPUT)?;
    Some((slot, cfg.flags & chain_flag::TRACK != 0))
}

/// Starts the evaluation of `chain` for a packet, in the generation of `slot`.
#[inline(always)]
fn enter(pkt: &mut PacketInfo, chain: u32, slot: u32) {
    pkt.chain = chain;
    pkt.base_chain = chain;
    pkt.next_rule = 0;
    pkt.depth = 0;
    pkt.slot = slot;
}

/// The verdict this generation already found for the packet's flow, if its base chain is
/// cacheable: the packet then counts for the rules the flow met, and skips the classifier.
/// Otherwise the classifier starts a new entry (`pkt.flow`), stored by `remember_verdict`.
#[inline(always)]
fn cached_verdict(pkt: &mut PacketInfo, chain: u32, slot: u32) -> Option<u32> {
    pkt.flow_cacheable = 0;
    let cfg = chain_config(slot, chain)?;
    if cfg.flags & chain_flag::CACHEABLE == 0 {
        return None;
    }
    let (sport, dport, flags) = if pkt.has_ports != 0 {
        (pkt.sport, pkt.dport, flow_flag::PORTS)
    } else if pkt.has_icmp != 0 {
        (pkt.icmp_type as u16, pkt.icmp_code as u16, flow_flag::ICMP)
    } else {
        (0, 0, 0)
    };
    pkt.flow_key = FlowKey {
        src: pkt.src,
        dst: pkt.dst,
        sport,
        dport,
        proto: pkt.proto,
        ctstate: pkt.ctstate,
        chain: chain as u8,
        flags: flags
            | if pkt.fragment != 0 {
                flow_flag::FRAGMENT
            } else {
                0
            },
        in_ifindex: pkt.in_ifindex,
        out_ifindex: pkt.out_ifindex,
    };
    if let Some(v) = unsafe { PCN_FLOWS.get(&pkt.flow_key) } {
        if v.epoch == cfg.epoch {
            for i in 0..FLOW_COUNTERS {
                if i as u32 >= v.ncounters {
                    break;
                }
                count(v.counters[i], pkt.len);
            }
            return Some(v.verdict);
        }
    }
    pkt.flow.epoch = cfg.epoch;
    pkt.flow.ncounters = 0;
    pkt.flow_cacheable = 1;
    None
}

/// Counts the packet for a rule (or a policy), and notes the counter for its flow's entry.
/// Not inlined: the classifier's own frame must stay small (BPF's 512 bytes are shared with
/// `first_match` and the scan).
#[inline(never)]
fn count_for(pkt: &mut PacketInfo, counter: u32) {
    count(counter, pkt.len);
    if pkt.flow_cacheable == 0 {
        return;
    }
    let n = pkt.flow.ncounters as usize;
    if n < FLOW_COUNTERS {
        pkt.flow.counters[n] = counter;
        pkt.flow.ncounters += 1;
    } else {
        // A longer way than an entry holds: judged every time.
        pkt.flow_cacheable = 0;
    }
}

/// Stores the verdict of a packet whose whole way was cacheable, for the next ones of its flow.
#[inline(always)]
fn remember_verdict(pkt: &mut PacketInfo, verdict: u32) {
    if pkt.flow_cacheable != 0 {
        pkt.flow.verdict = verdict;
        let _ = PCN_FLOWS.insert(&pkt.flow_key, &pkt.flow, 0);
    }
}

#[xdp]
pub fn pcn_ingress(ctx: XdpContext) -> u32 {
    ingress(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn ingress(ctx: &XdpContext) -> Option<u32> {
    let pkt = unsafe { &mut *PCN_PACKETS.get_ptr_mut(XDP)? };
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // A packet looping back was tracked on its way out (netfilter keeps its connection on
    // the skb): judge it by that state, do not count it twice.
    let (slot, tracks) = generation()?;
    parse_ipv4(
        pkt,
        ctx.data(),
        ctx.data_end(),
        tracks,
        ifindex != LOOPBACK_IFINDEX,
    )?;
    pkt.in_ifindex = ifindex;
    pkt.out_ifindex = 0;

    // Ask the kernel's routing, as netfilter's hooks would see it: local → INPUT, routed → FORWARD.
    let mut fib = FibLookup {
        family: AF_INET,
        l4_protocol: pkt.proto,
        sport: pkt.sport.to_be(),
        dport: pkt.dport.to_be(),
        tot_len: pkt.len as u16,
        ifindex,
        ..Default::default()
    };
    fib.ipv4_src[0] = u32::from_ne_bytes(pkt.src);
    fib.ipv4_dst[0] = u32::from_ne_bytes(pkt.dst);
    let rc = fib_lookup(ctx.as_ptr(), &mut fib, FIB_LOOKUP_SKIP_NEIGH);
    let chain = match rc {
        FIB_SUCCESS | FIB_NO_NEIGH | FIB_FRAG_NEEDED => {
            pkt.out_ifindex = fib.ifindex;
            // ip_forward() decrements the TTL before the FORWARD hook.
            pkt.ttl = pkt.ttl.wrapping_sub(1);
            CHAIN_FORWARD
        }
        // Local, broadcast, multicast; or forwarding is off on this interface, so whatever the
        // kernel accepts goes up the stack.
        FIB_NOT_FWDED | FIB_FWD_DISABLED => CHAIN_INPUT,
        // Blackhole, unreachable, prohibit: the kernel drops it before any filter hook.
        _ => return None,
    };
    // The kernel reassembles a local datagram before INPUT, which judges it once: here its
    // first fragment (with the ports) stands for it, and the others follow whatever it met.
    if chain == CHAIN_INPUT && pkt.fragment != 0 {
        return None;
    }
    enter(pkt, chain, slot);
    match cached_verdict(pkt, chain, slot) {
        Some(verdict::ACCEPT) => {
            confirm(pkt);
            return Some(xdp_action::XDP_PASS);
        }
        Some(_) => return Some(xdp_action::XDP_DROP),
        None => {}
    }
    unsafe { PCN_PROGS_XDP.tail_call(ctx, slot) };
    None
}

#[classifier]
pub fn pcn_egress(ctx: TcContext) -> i32 {
    egress(&ctx).unwrap_or(TC_ACT_UNSPEC)
}

#[inline(always)]
fn egress(ctx: &TcContext) -> Option<i32> {
    let skb = unsafe { &*ctx.skb.skb };
    // A forwarded packet was judged on ingress (FORWARD); only local ones go through OUTPUT.
    if skb.ingress_ifindex != 0 {
        return None;
    }
    let pkt = unsafe { &mut *PCN_PACKETS.get_ptr_mut(TC)? };
    let (slot, tracks) = generation()?;
    parse_ipv4(pkt, ctx.data(), ctx.data_end(), tracks, true)?;
    // OUTPUT judged the datagram before the stack fragmented it: as on INPUT, the first
    // fragment stands for it.
    if pkt.fragment != 0 {
        return None;
    }
    pkt.mac_src = [0; 6];
    pkt.in_ifindex = 0;
    pkt.out_ifindex = skb.ifindex;
    enter(pkt, CHAIN_OUTPUT, slot);
    match cached_verdict(pkt, CHAIN_OUTPUT, slot) {
        Some(verdict::ACCEPT) => {
            confirm(pkt);
            return Some(TC_ACT_UNSPEC);
        }
        Some(_) => return Some(TC_ACT_SHOT),
        None => {}
    }
    unsafe { PCN_PROGS_TC.tail_call(ctx, slot) };
    None
}

/// What the classifier decided for this round.
enum Step {
    Accept,
    Drop,
    /// The packet moved to another chain or rule: run the classifier again.
    Again,
    /// `-j REJECT`: answer with `reject::*`, drop the packet.
    Reject(u32),
}

#[xdp]
pub fn pcn_xdp_classify(ctx: XdpContext) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(XDP) else {
        return xdp_action::XDP_PASS;
    };
    let step = classify(pkt, XDP);
    let pkt = unsafe { &mut *pkt };
    if pkt.log_count != 0 {
        log::emit_xdp(ctx.ctx, pkt);
    }
    match step {
        Step::Accept => {
            remember_verdict(pkt, verdict::ACCEPT);
            confirm(pkt);
            xdp_action::XDP_PASS
        }
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            xdp_action::XDP_DROP
        }
        Step::Reject(with) => reject::xdp(ctx.ctx, pkt, with),
        Step::Again => {
            unsafe { PCN_PROGS_XDP.tail_call(&ctx, pkt.slot) };
            // Out of tail calls (more than 32 jumps/returns): fail closed.
            xdp_action::XDP_DROP
        }
    }
}

#[classifier]
pub fn pcn_tc_classify(ctx: TcContext) -> i32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(TC) else {
        return TC_ACT_UNSPEC;
    };
    let step = classify(pkt, TC);
    let pkt = unsafe { &mut *pkt };
    if pkt.log_count != 0 {
        log::emit_tc(ctx.skb.skb, pkt);
    }
    match step {
        Step::Accept => {
            remember_verdict(pkt, verdict::ACCEPT);
            confirm(pkt);
            TC_ACT_UNSPEC
        }
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            TC_ACT_SHOT
        }
        Step::Reject(with) => reject::tc(ctx.skb.skb, with),
        Step::Again => {
            unsafe { PCN_PROGS_TC.tail_call(&ctx, pkt.slot) };
            TC_ACT_SHOT
        }
    }
}

/// An accepted packet's new connection goes into the table (over an expired entry, if any).
#[inline(always)]
fn confirm(pkt: &PacketInfo) {
    if pkt.ct_commit != 0 {
        let _ = PCN_CONNTRACK.insert(&pkt.ct_key, &pkt.ct_entry, 0);
    }
}

#[inline(always)]
fn count(slot: u32, len: u32) {
    if let Some(c) = PCN_COUNTERS.get_ptr_mut(slot) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len as u64;
        }
    }
}

/// One round: the first rule of `pkt.chain` from `pkt.next_rule` on that matches, and what its
/// target does.
#[inline(always)]
fn classify(packet: *mut PacketInfo, hook: u32) -> Step {
    let pkt = unsafe { &mut *packet };
    let chain = pkt.chain;
    pkt.log_count = 0;
    let Some(cfg) = chain_config(pkt.slot, chain) else {
        return Step::Accept;
    };
    if cfg.flags & chain_flag::CACHEABLE == 0 {
        pkt.flow_cacheable = 0;
    }
    let found = pcn_first_match(hook);
    // Borrowed again: the scan wrote to the packet (what it counted, LOG rules it met).
    let pkt = unsafe { &mut *packet };
    match Some(found).filter(|r| *r != u32::MAX) {
        Some(rule) => {
            let Some(action) = action(pkt.slot, cfg.action_base + rule) else {
                return Step::Drop;
            };
            count_for(pkt, action.counter);
            match action.verdict {
                verdict::ACCEPT => Step::Accept,
                verdict::JUMP => {
                    let depth = pkt.depth as usize;
                    if depth >= MAX_CALL_DEPTH {
                        return Step::Drop;
                    }
                    pkt.stack[depth] = Frame {
                        chain,
                        next_rule: rule + 1,
                    };
                    pkt.depth += 1;
                    pkt.chain = action.chain;
                    pkt.next_rule = 0;
                    Step::Again
                }
                verdict::GOTO => {
                    pkt.chain = action.chain;
                    pkt.next_rule = 0;
                    Step::Again
                }
                verdict::RETURN => leave_chain(pkt),
                verdict::REJECT => {
                    // Answered every time: not cached.
                    pkt.flow_cacheable = 0;
                    Step::Reject(action.reject_with)
                }
                _ => Step::Drop,
            }
        }
        None if cfg.policy == verdict::RETURN => leave_chain(pkt),
        None => policy(cfg, pkt),
    }
}

#[inline(always)]
fn policy(cfg: &ChainConfig, pkt: &mut PacketInfo) -> Step {
    count_for(pkt, cfg.policy_counter);
    if cfg.policy == verdict::DROP {
        Step::Drop
    } else {
        Step::Accept
    }
}

/// RETURN, or the end of a user chain: back to the caller, or the base chain's policy.
#[inline(always)]
fn leave_chain(pkt: &mut PacketInfo) -> Step {
    if pkt.depth == 0 {
        return match chain_config(pkt.slot, pkt.base_chain) {
            Some(cfg) => policy(cfg, pkt),
            None => Step::Accept,
        };
    }
    pkt.depth -= 1;
    let depth = pkt.depth as usize;
    if depth >= MAX_CALL_DEPTH {
        return Step::Drop;
    }
    let frame = pkt.stack[depth];
    pkt.chain = frame.chain;
    pkt.next_rule = frame.next_rule;
    Step::Again
}

/// The bitmap index of field `id`'s entry for `value`, whose first `bits` bits count, in
/// generation `slot`'s trie; the key is built in `scratch` (PacketInfo::lookup_key).
#[inline(always)]
fn lookup(
    scratch: *mut [u8; 16],
    slot: u32,
    id: u8,
    chain: u32,
    bits: u32,
    value: u64,
) -> Option<u32> {
    let key = scratch as *mut Key<FieldKey>;
    let v = value.to_be_bytes();
    unsafe {
        (*key).prefix_len = FIELD_KEY_HEADER_BITS + bits;
        (*key).data = field_key6(id, chain, [v[2], v[3], v[4], v[5], v[6], v[7]]);
        field_lookup(slot, &*key)
    }
}

// Trie values travel as the low 48 bits of a u64 (the key's 6 value bytes, big endian), in
// registers rather than as arrays on the classifier's small stack.

/// A 4-byte value (an address, an ifindex).
#[inline(always)]
fn v4(v: [u8; 4]) -> u64 {
    (u32::from_be_bytes(v) as u64) << 16
}

/// A 1-byte value.
#[inline(always)]
fn v1(v: u8) -> u64 {
    (v as u64) << 40
}

/// A MAC address.
#[inline(always)]
fn mac_value(m: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// A value that only some packets have (ports, ICMP type/code, TCP flags): `[1, value]`,
/// `bits` long, or `[0]` for the packets without it.
#[inline(always)]
fn optional_value(has: u8, bits: u32, value: [u8; 2]) -> (u32, u64) {
    if has != 0 {
        (
            bits,
            v1(1) | (value[0] as u64) << 32 | (value[1] as u64) << 24,
        )
    } else {
        (8, 0)
    }
}

/// The state of one scan over a chain's bitmap words (the `bpf_loop` context): written once
/// before the loop and only read in it. What changes from step to step lives in the packet's
/// map memory (`candidates`, `pending`, `found`), whose contents the verifier does not track,
/// so that the loop body verifies once instead of once per state it could carry.
#[repr(C)]
struct Scan {
    /// The rules of the chain, then one bitmap per field (the chain's rules again for a field
    /// the chain does not use).
    bitmaps: [*const Bitmap; FIELDS_SCANNED],
    /// `-m multiport --ports`: a rule matches if its bit is set in either.
    any_port: [*const Bitmap; 2],
    /// The chain's rules without a target: they are counted on the way, not stopped at.
    count_only: *const Bitmap,
    /// The chain's rules with `-m limit`, whose buckets are checked in order.
    limited: *const Bitmap,
    pkt: *mut PacketInfo,
}

/// Steps of the scan at most: every word, and every rule of a word walked rule by rule.
const SCAN_STEPS: u32 = (MAX_WORDS * 65) as u32;

/// One step of the scan: the next rule of a word being walked rule by rule, or else the next
/// candidate word. Returns 1 to end the loop (a rule decided, or no candidate is left). One
/// flat loop, no loop inside: a nested `bpf_loop` makes the verifier's work depend on how
/// well each kernel build prunes states.
extern "C" fn scan_step(_: u64, ctx: *mut core::ffi::c_void) -> i64 {
    let scan = unsafe { &*(ctx as *const Scan) };
    let pkt = unsafe { &mut *scan.pkt };
    if pkt.pending != 0 {
        visit_rule(scan, pkt)
    } else {
        visit_word(scan, pkt)
    }
}

/// The next rule of `pkt.pending`: a rule whose `-m limit` bucket is empty does not match; a
/// rule without a target is counted (as netfilter does) and the walk goes on; any other
/// rule decides.
#[inline(always)]
fn visit_rule(scan: &Scan, pkt: &mut PacketInfo) -> i64 {
    let w = pkt.pending;
    pkt.pending = w & (w - 1);
    let i = word_index(pkt.pending_word as usize);
    let bit = lowest_bit(w);
    let mask = 1u64 << (bit & 63);
    let rule = i as u32 * 64 + bit;
    let index = pkt.action_base + rule;
    if unsafe { (*scan.limited).words[i] } & mask != 0 && !limit::take(pkt.slot, index) {
        return 0;
    }
    if unsafe { (*scan.count_only).words[i] } & mask == 0 {
        pkt.found = rule;
        return 1;
    }
    if let Some(action) = action(pkt.slot, index) {
        count(action.counter, pkt.len);
        // Rules that only count are rare: their flows are judged every time.
        pkt.flow_cacheable = 0;
        if action.verdict == verdict::LOG {
            log::pend(pkt, index);
        }
    }
    0
}

/// A bitmap word's index as the verifier can see it bounded (a power of two of words): LLVM
/// drops a bounds check it can prove, and 6.1 could not.
#[inline(always)]
fn word_index(i: usize) -> usize {
    const _: () = assert!(MAX_WORDS.is_power_of_two());
    core::hint::black_box(i) & (MAX_WORDS - 1)
}

/// The next candidate word: the AND of every bitmap there. Its first rule with a target and
/// no bucket decides, unless a rule that only counts or has a bucket comes first: then the
/// word's rules up to that one are walked one by one (`pending`). Words some bitmap has empty
/// are never read, so the cost follows the candidates, not the chain's length.
#[inline(always)]
fn visit_word(scan: &Scan, pkt: &mut PacketInfo) -> i64 {
    let mut k = 0;
    while k < SUMMARY_WORDS && pkt.candidates[k] == 0 {
        k += 1;
    }
    if k >= SUMMARY_WORDS {
        return 1;
    }
    let bit = lowest_bit(pkt.candidates[k]);
    pkt.candidates[k] &= pkt.candidates[k] - 1;
    let i = word_index(k * 64 + bit as usize);
    let mut w = unsafe { (*scan.any_port[0]).words[i] | (*scan.any_port[1]).words[i] };
    for b in scan.bitmaps {
        w &= unsafe { (*b).words[i] };
    }
    if i as u64 == pkt.start_word {
        w &= pkt.start_mask;
    }
    let special = unsafe { (*scan.count_only).words[i] | (*scan.limited).words[i] };
    let plain = w & !special;
    let first = plain & plain.wrapping_neg();
    let walk = if first != 0 {
        w & (first | (first - 1))
    } else {
        w
    };
    if walk & special != 0 {
        pkt.pending = walk;
        pkt.pending_word = i as u32;
        return 0;
    }
    if first != 0 {
        pkt.found = i as u32 * 64 + lowest_bit(first);
        return 1;
    }
    0
}

/// `first_match` for the packet of `hook` (`XDP` or `TC`), `u32::MAX` when no rule matches. A
/// global function: the verifier checks it once, on its own, instead of once for every path
/// of the classifier that reaches it. It takes the hook, not the packet: a pointer argument
/// would be plain memory to the verifier, which 6.1 does not take as a map key.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_first_match(hook: u32) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(hook) else {
        return u32::MAX;
    };
    first_match(unsafe { &mut *pkt }).unwrap_or(u32::MAX)
}

/// Index of the first rule with a target at or after `pkt.next_rule` whose every field
/// matches: the AND of the field bitmaps, lowest set bit; matching rules without a target
/// before it are counted. A field without an entry for the packet matches no rule.
///
/// The word loop runs in `bpf_loop`, whose body the verifier checks once, however many words.
/// The summaries (one bit per non-empty word) tell which words are worth reading at all.
#[inline(always)]
fn first_match(pkt: &mut PacketInfo) -> Option<u32> {
    let chain = pkt.chain;
    let cfg = chain_config(pkt.slot, chain)?;
    // Indexes first, into map memory, then pointers: choosing between pointers, or stack
    // contents that differ between paths, would make the verifier follow every combination
    // of fields in use.
    let all = cfg.rules;
    let slot = pkt.slot;
    // Read again for every field, from map memory: a value kept in a register would carry
    // what each branch taught the verifier about its bits, and no two paths would merge.
    pkt.used_fields = cfg.fields;
    let used = &pkt.used_fields as *const u32;
    let scratch = &mut pkt.lookup_key as *mut [u8; 16];
    let index = |id: u8, bits: u32, value: u64| -> Option<u32> {
        if unsafe { core::ptr::read_volatile(used) } & field::bit(id) == 0 {
            Some(all)
        } else {
            lookup(scratch, slot, id, chain, bits, value)
        }
    };
    // Each value is made right where it is looked up, so that few stay live (and spilled).
    let sport = |p: &PacketInfo| optional_value(p.has_ports, 24, p.sport.to_be_bytes());
    let dport = |p: &PacketInfo| optional_value(p.has_ports, 24, p.dport.to_be_bytes());
    pkt.bitmaps[0] = all;
    pkt.bitmaps[1] = index(field::SRC, 32, v4(pkt.src))?;
    pkt.bitmaps[2] = index(field::DST, 32, v4(pkt.dst))?;
    pkt.bitmaps[3] = index(field::PROTO, 8, v1(pkt.proto))?;
    let (bits, value) = sport(pkt);
    pkt.bitmaps[4] = index(field::SPORT, bits, value)?;
    let (bits, value) = dport(pkt);
    pkt.bitmaps[5] = index(field::DPORT, bits, value)?;
    pkt.bitmaps[6] = index(field::IN_IFACE, 32, v4(pkt.in_ifindex.to_be_bytes()))?;
    pkt.bitmaps[7] = index(field::OUT_IFACE, 32, v4(pkt.out_ifindex.to_be_bytes()))?;
    pkt.bitmaps[8] = index(field::CTSTATE, 8, v1(pkt.ctstate))?;
    let (bits, value) = optional_value(pkt.has_icmp, 24, [pkt.icmp_type, pkt.icmp_code]);
    pkt.bitmaps[9] = index(field::ICMP, bits, value)?;
    let (bits, value) = optional_value(pkt.has_tcp_flags, 16, [pkt.tcp_flags, 0]);
    pkt.bitmaps[10] = index(field::TCP_FLAGS, bits, value)?;
    pkt.bitmaps[11] = index(field::LENGTH, 16, (pkt.len as u16 as u64) << 32)?;
    pkt.bitmaps[12] = index(field::TTL, 8, v1(pkt.ttl))?;
    pkt.bitmaps[13] = index(field::FRAGMENT, 8, v1(pkt.fragment))?;
    pkt.bitmaps[14] = index(field::MAC_SRC, 48, mac_value(pkt.mac_src))?;
    pkt.bitmaps[15] = index(field::SRC_TYPE, 32, v4(pkt.src))?;
    pkt.bitmaps[16] = index(field::DST_TYPE, 32, v4(pkt.dst))?;
    let (bits, value) = sport(pkt);
    pkt.bitmaps[17] = index(field::ANY_PORT_SRC, bits, value)?;
    let (bits, value) = dport(pkt);
    pkt.bitmaps[18] = index(field::ANY_PORT_DST, bits, value)?;

    // Pointers: one lookup of the generation's bitmap array, then one per bitmap that is not
    // the chain's rules (fields a chain does not use cost nothing here).
    let maps = bitmaps(slot)?;
    let all_ptr = maps.get_ptr(all)?;
    let b = &pkt.bitmaps as *const u32;
    let pointer = |i: usize| -> Option<*const Bitmap> {
        let index = unsafe { core::ptr::read_volatile(b.add(i)) };
        if index == all {
            Some(all_ptr)
        } else {
            maps.get_ptr(index)
        }
    };
    // Filled in place: building the array first would take its room on the stack twice.
    let mut scan = Scan {
        bitmaps: [all_ptr; FIELDS_SCANNED],
        any_port: [all_ptr; 2],
        count_only: all_ptr,
        limited: all_ptr,
        pkt: core::ptr::null_mut(),
    };
    // Volatile: straight into the struct, not through a copy of each pointer of its own.
    let put =
        |at: &mut *const Bitmap, p: *const Bitmap| unsafe { core::ptr::write_volatile(at, p) };
    for i in 1..FIELDS_SCANNED {
        put(&mut scan.bitmaps[i], pointer(i)?);
    }
    put(&mut scan.any_port[0], pointer(FIELDS_SCANNED)?);
    put(&mut scan.any_port[1], pointer(FIELDS_SCANNED + 1)?);
    let count_only = maps.get_ptr(cfg.count_only)?;
    put(&mut scan.count_only, count_only);
    // Equal bitmaps share an index: in a chain with neither limited nor count-only rules both
    // are the empty one, and a helper call is saved.
    let limited = if cfg.limited == cfg.count_only {
        count_only
    } else {
        maps.get_ptr(cfg.limited)?
    };
    put(&mut scan.limited, limited);
    pkt.action_base = cfg.action_base;
    pkt.start_word = (pkt.next_rule / 64) as u64;
    pkt.start_mask = u64::MAX << (pkt.next_rule % 64);
    // Words before the one to start from are done with.
    let start_word = (pkt.next_rule / 64) as usize;
    for k in 0..SUMMARY_WORDS {
        let mut c = unsafe { (*scan.any_port[0]).summary[k] | (*scan.any_port[1]).summary[k] };
        for b in scan.bitmaps {
            c &= unsafe { (*b).summary[k] };
        }
        let first = k * 64;
        if start_word >= first + 64 {
            c = 0;
        } else if start_word > first {
            c &= u64::MAX << (start_word - first);
        }
        pkt.candidates[k] = c;
    }
    pkt.found = u32::MAX;
    pkt.pending = 0;
    scan.pkt = pkt;
    unsafe {
        aya_ebpf::helpers::generated::bpf_loop(
            SCAN_STEPS,
            scan_step as *mut core::ffi::c_void,
            &mut scan as *mut Scan as *mut core::ffi::c_void,
            0,
        );
    }
    let found = unsafe { core::ptr::read_volatile(&pkt.found) };
    (found != u32::MAX).then_some(found)
}

/// Index of the lowest set bit of a non-zero word (BPF has no count-trailing-zeros): the
/// ones below it, counted without a branch (LLVM expands the population count into shifts
/// and masks). Branches here would each double the states the verifier follows, with a
/// precise index on every one.
#[inline(always)]
fn lowest_bit(w: u64) -> u32 {
    (w & w.wrapping_neg()).wrapping_sub(1).count_ones() & 63
}

/// `len` if `min <= len <= max`, for a helper's length argument. The value returned is
/// bounded again on a copy the compiler knows nothing about, by a mask and two clamps on the
/// very register the helper gets: LLVM drops checks it can prove from earlier ones or turns
/// them into arithmetic on another register (`len - 1 < 64`), whose bounds older verifiers
/// (6.1) do not carry back to `len`.
#[inline(always)]
pub(crate) fn within(len: usize, min: usize, max: usize) -> Option<u32> {
    if len < min || len > max {
        return None;
    }
    let v = core::hint::black_box(len) & (max.next_power_of_two() * 2 - 1);
    let v = if v < min { min } else { v };
    Some(if v > max { max } else { v } as u32)
}

/// The benchmarks' baseline: XDP that drops everything and does nothing else. pcn-iptables
/// itself never loads it.
#[xdp]
pub fn pcn_baseline_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
