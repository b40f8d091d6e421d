//! Connection tracking glue: the packet's ctstate and what to store for its connection, as
//! netfilter's conntrack would set them before the filter table sees the packet. The state
//! machine itself is `pcn_iptables_common::conntrack`'s.

use pcn_iptables_common::PacketInfo;
use pcn_iptables_common::conntrack::{
    self, CtEntry, CtKey, CtReclaim, Tuple, ctstate, ips, nat, nat_flag, status,
};

use core::ffi::c_void;

use aya_ebpf::bindings::{BPF_EXIST, BPF_NOEXIST};

use crate::maps::{PCN_CONNTRACK, PCN_CT_EARLY_DROP, PCN_CT_RECLAIM, PCN_PACKETS};
use crate::parse::{ETH_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ptr_at};

/// The live entry of a connection (an expired one is as good as none).
#[inline(always)]
fn connection(key: &CtKey, now: u64) -> Option<CtEntry> {
    let e = unsafe { PCN_CONNTRACK.get(key)? };
    (e.expires > now).then_some(*e)
}

/// Sets the packet's ctstate, and what to store if it is accepted, as netfilter's conntrack
/// would before the filter table sees it (`update`: the packet moves its connection's state
/// and timeout). A subprogram: its frame (entries, keys, tuples) is not the entry program's.
#[inline(never)]
pub(crate) fn track(
    ctx: *mut c_void,
    pkt: &mut PacketInfo,
    start: usize,
    end: usize,
    update: bool,
) {
    pkt.ct_commit = 0;
    pkt.ctstate = ctstate::INVALID;
    pkt.ct_mark = 0;
    pkt.ct_reply = 0;
    pkt.ct_nat = 0;
    pkt.ct_rewritten = 0;
    pkt.ct_looped = 0;
    // netfilter reassembles before tracking; a lone later fragment cannot be tied to a
    // connection here.
    if pkt.fragment != 0 {
        return;
    }
    // The L4 header, found again rather than passed: a subprogram takes five arguments.
    let Some(ip) = ptr_at::<u8>(start, end, ETH_HLEN) else {
        return;
    };
    let l4 = ETH_HLEN + ((unsafe { *ip } & 0x0f) as usize * 4 & 0x3c);
    let now = unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() };
    let tuple = |sport, dport| Tuple {
        src: pkt.src,
        dst: pkt.dst,
        sport,
        dport,
        proto: pkt.proto,
        _pad: 0,
    };
    // TCP's flags are the parse's (an `Option` of them would leave a byte undefined, which
    // the verifier refuses to copy).
    let tuple = match pkt.proto {
        IPPROTO_TCP if pkt.has_tcp_flags != 0 && pkt.tcp_header_whole != 0 => {
            tuple(pkt.sport, pkt.dport)
        }
        IPPROTO_TCP => return,
        IPPROTO_UDP if pkt.has_ports != 0 => tuple(pkt.sport, pkt.dport),
        IPPROTO_UDP => return,
        IPPROTO_ICMP => {
            let Some(icmp) = ptr_at::<[u8; 8]>(start, end, l4) else {
                return;
            };
            let icmp = unsafe { &*icmp };
            let (kind, id) = (icmp[0], u16::from_be_bytes([icmp[4], icmp[5]]));
            if conntrack::icmp_reply_type(kind).is_some() {
                tuple(id, kind as u16)
            } else if let Some(query) = conntrack::icmp_query_of_reply(kind) {
                // A reply only belongs to a query we saw.
                let t = tuple(query as u16, id);
                let (key, _) = t.key();
                if connection(&key, now).is_none() {
                    return;
                }
                t
            } else {
                if conntrack::icmp_is_error(kind)
                    && let Some((key, src_end, e)) = quoted_connection(start, end, l4 + 8, now)
                {
                    let e = unsafe { &*e };
                    // The connection's, as xt_conntrack sees it on the error, which goes the
                    // other way than the packet it quotes (`--ctdir`).
                    connection_of(pkt, ctstate::RELATED, &key, e, now);
                    pkt.ct_reply = (src_end & 1 == e.origin) as u8;
                    // The error goes the other way than the packet it quotes.
                    if e.nat != 0 {
                        translated(pkt, &key, e, src_end & 1 == e.origin);
                    }
                }
                return;
            }
        }
        _ => tuple(0, 0),
    };
    let (key, src_end) = tuple.key();
    // A live entry is updated right here, whatever the filter decides later, as netfilter's
    // conntrack does before the filter table; one lookup (two by an alias), no second one at
    // the verdict.
    let (key, src_end, live) = match find(&key, src_end, now) {
        // Only where a masqueraded connection's packets come in (XDP): on egress, its packets
        // were judged before.
        Some((key, src_end, e))
            if ctx.is_null() || !crate::nat::masquerade_gone(ctx, pkt, &key, src_end, e) =>
        {
            // Already translated and counted, on its way out of another device: judged as
            // it is.
            pkt.ct_rewritten = (src_end & REWRITTEN != 0) as u8;
            (key, src_end & 1, Some(e))
        }
        _ => (key, src_end, None),
    };
    // Read in place: a copy would take its room on the stack again.
    let existing = live.map(|e| unsafe { &*e });
    let (state, entry) = match pkt.proto {
        IPPROTO_TCP => conntrack::track_tcp(existing, src_end, pkt.tcp_flags, now),
        _ => conntrack::track_other(existing, src_end, pkt.proto, now),
    };
    pkt.ctstate = state;
    let Some(entry) = entry else {
        return;
    };
    connection_of(pkt, state, &key, &entry, now);
    if live.is_none() {
        // Not confirmed yet: nf_ct_expires says 0 for it.
        pkt.ct_status &= !ips::CONFIRMED;
        pkt.ct_expires = 0;
    }
    let reply = src_end != entry.origin;
    pkt.ct_reply = reply as u8;
    if let Some(e) = existing
        && e.nat != 0
    {
        translated(pkt, &key, e, reply);
    }
    if !update || pkt.ct_rewritten != 0 {
        return;
    }
    match live {
        Some(e) => {
            if conntrack::needs_store(unsafe { &*e }, &entry) {
                unsafe { *e = entry }
            }
        }
        // New: stored only if the packet is accepted (netfilter confirms a connection once
        // its first packet got through).
        None => {
            pkt.ct_key = key;
            pkt.ct_entry = entry;
            pkt.ct_commit = 1;
        }
    }
}

/// The packet has connection `e` (under `key`) in `state`: its ctstate with the nat bits
/// (IPS_SRC_NAT, IPS_DST_NAT), and its tuples (a new connection's: the packet's own, until
/// nat maps it). A subprogram: inlined, its temporaries would take room in the entry
/// programs' frames, which are full.
#[inline(never)]
fn connection_of(pkt: &mut PacketInfo, state: u8, key: &CtKey, e: &CtEntry, now: u64) {
    pkt.ctstate = ctstate::with_nat(state, e.nat);
    // Where `-j CONNMARK` finds the connection again.
    pkt.ct_mark = e.mark;
    pkt.ct_key = *key;
    // What `--ctstatus` and `--ctexpire` see, as the filter table sees it: this packet's
    // refresh and status bits done.
    pkt.ct_status = ips::CONFIRMED
        | if e.status & status::SEEN_REPLY != 0 {
            ips::SEEN_REPLY
        } else {
            0
        }
        | if e.status & status::ASSURED != 0 {
            ips::ASSURED
        } else {
            0
        };
    pkt.ct_expires = (e.expires.saturating_sub(now) / 1_000_000_000).min(u32::MAX as u64) as u32;
    // `nat::original` and `nat::reply`, written in place: tuples built on the stack would
    // take room the classifiers' frames do not have.
    // Constant indexes: a computed one becomes pointer arithmetic the verifier refuses.
    let o = &mut pkt.orig;
    if e.origin == 0 {
        (o.src, o.dst, o.sport, o.dport) = (key.addr[0], key.addr[1], key.port[0], key.port[1]);
    } else {
        (o.src, o.dst, o.sport, o.dport) = (key.addr[1], key.addr[0], key.port[1], key.port[0]);
    }
    o.proto = key.proto;
    pkt.xlat = pkt.orig;
    if e.nat & nat_flag::ENDS != 0 {
        let x = &mut pkt.xlat;
        x.src = e.reply_addr[1];
        x.dst = e.reply_addr[0];
        x.sport = e.reply_port[1];
        x.dport = e.reply_port[0];
    }
}

/// `find`'s end bit for a packet of the original way that already carries its translated
/// tuple.
pub(crate) const REWRITTEN: u8 = 2;

/// The live connection under `key`, where the packet's source is end `src_end`: its key, the
/// end the source is of that key (with `REWRITTEN`), and its entry. An alias leads to its
/// connection.
#[inline(always)]
pub(crate) fn find(key: &CtKey, src_end: u8, now: u64) -> Option<(CtKey, u8, *mut CtEntry)> {
    let e = PCN_CONNTRACK.get_ptr_mut(key)?;
    let entry = unsafe { &*e };
    if entry.status & status::ALIAS == 0 {
        return (entry.expires > now).then_some((*key, src_end, e));
    }
    let main = nat::aliased(key, entry);
    let e = PCN_CONNTRACK
        .get_ptr_mut(&main)
        .filter(|e| nat::alias_of(key, &main, unsafe { &**e }, now))?;
    let m = unsafe { &*e };
    // A reply, or a packet of the original way that nat already rewrote (on egress, after
    // PREROUTING's rewrite at ingress).
    let reply = nat::alias_reply(key, src_end, &main, m);
    Some((
        main,
        if reply {
            1 - m.origin
        } else {
            m.origin | REWRITTEN
        },
        e,
    ))
}

/// What a packet of a translated connection becomes for the filter table and the routing:
/// its destination as PREROUTING (or OUTPUT) rewrites it before them; TC rewrites the packet
/// itself (`nat::translate`).
#[inline(always)]
fn translated(pkt: &mut PacketInfo, key: &CtKey, e: &CtEntry, reply: bool) {
    pkt.ct_nat = 1;
    pkt.ct_looped = (reply && e.nat & nat_flag::LOOPED != 0) as u8;
    if let Some(d) = nat::dst_manip(key, e, reply) {
        pkt.dst = d.addr;
        if pkt.has_ports != 0 {
            pkt.dport = d.port;
        }
    }
}

/// The tracked connection of the packet an ICMP error quotes (its IP header at `inner`), as
/// `find` gives it: the error is then RELATED to it.
#[inline(always)]
fn quoted_connection(
    start: usize,
    end: usize,
    inner: usize,
    now: u64,
) -> Option<(CtKey, u8, *mut CtEntry)> {
    let ip = unsafe { &*ptr_at::<[u8; 20]>(start, end, inner)? };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let l4 = ptr_at::<[u8; 8]>(start, end, inner + (ihl & 0x3c))?;
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
        _ => return None,
    };
    let quoted = Tuple::of_ipv4(ip, sport, dport);
    let (key, src_end) = quoted.key();
    find(&key, src_end, now)
}

/// An accepted packet's new connection goes into the table (over an expired entry, if any).
/// `false`: the table is full and nothing in it may make room; netfilter drops the packet
/// then ("nf_conntrack: table full, dropping packet"). `pkt` is the packet of `hook`.
#[inline(always)]
pub(crate) fn confirm(pkt: &PacketInfo, hook: u32) -> bool {
    pkt.ct_commit == 0 || pcn_ct_confirm(hook) != 0
}

/// `confirm` for the packet of `hook` (`XDP` or `TC`), a global function: the verifier checks
/// it once, on its own, instead of once for every path that reaches it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_ct_confirm(hook: u32) -> u32 {
    match PCN_PACKETS.get_ptr(hook) {
        Some(pkt) => confirm_now(unsafe { &*pkt }) as u32,
        None => 0,
    }
}

/// `confirm` in place, for a caller that is a global function already (another call level
/// would not fit the stack under nat's commit on Linux 6.1).
#[inline(always)]
pub(crate) fn confirm_now(pkt: &PacketInfo) -> bool {
    if pkt.ct_commit == 0 {
        return true;
    }
    if !store(&pkt.ct_key, &pkt.ct_entry) {
        return false;
    }
    // BPF_EXIST: a full queue forgets its oldest key.
    let _ = PCN_CT_EARLY_DROP.push(pkt.ct_key, BPF_EXIST as u64);
    true
}

/// Stores an entry, making room in a full table if it can.
#[inline(always)]
pub(crate) fn store(key: &CtKey, entry: &CtEntry) -> bool {
    PCN_CONNTRACK.insert(key, entry, 0).is_ok()
        || (reclaim() && PCN_CONNTRACK.insert(key, entry, 0).is_ok())
}

/// Stores an entry under a key that no live connection holds, in one step: of two new
/// connections that picked the same key on two CPUs, one gets it and the other `false`, as
/// nf_conntrack's confirm drops the packet that finds its reply tuple taken (a check before
/// the store would let both through, the second overwriting the first's entry). An expired
/// connection's entry gives way; a full table makes room.
#[inline(always)]
pub(crate) fn claim(key: &CtKey, entry: &CtEntry, now: u64) -> bool {
    let put = || PCN_CONNTRACK.insert(key, entry, BPF_NOEXIST as u64).is_ok();
    if put() {
        return true;
    }
    match unsafe { PCN_CONNTRACK.get(key) } {
        Some(e) if e.status & status::ALIAS != 0 || e.expires > now => false,
        Some(_) => {
            let _ = PCN_CONNTRACK.remove(key);
            put()
        }
        None => reclaim() && put(),
    }
}

/// Entries one search of a full table frees at most (expired ones; a live one ends it).
const RECLAIM_BATCH: u32 = 16;
/// Keys of `PCN_CT_EARLY_DROP` one search looks at, at most, before it walks the table.
const EARLY_DROP_TRIES: u32 = 4;
/// How long a search that found no room holds: a table full of assured connections is not
/// walked for every new packet.
const FULL_HOLD_NS: u64 = 1_000_000_000;

/// The search's context: its state lives in map memory (`CtReclaim`), whose contents the
/// verifier does not track, so that the callback verifies once, not once per count.
#[repr(C)]
struct Reclaim {
    state: *mut CtReclaim,
}

/// Makes room in the full table: a connection that netfilter's early_drop would take
/// (`conntrack::evictable`), among the latest new ones first (`PCN_CT_EARLY_DROP`); else,
/// walking the table from its first bucket, expired entries or such a connection.
#[inline(never)]
fn reclaim() -> bool {
    let now = unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() };
    let Some(state) = PCN_CT_RECLAIM.get_ptr_mut(0) else {
        return false;
    };
    let r = unsafe { &mut *state };
    if early_drop(r, now) {
        return true;
    }
    if r.hold_until > now {
        return false;
    }
    r.now = now;
    r.freed = 0;
    let mut ctx = Reclaim { state };
    unsafe {
        aya_ebpf::helpers::generated::bpf_for_each_map_elem(
            &PCN_CONNTRACK as *const _ as *mut c_void,
            reclaim_entry as *mut c_void,
            &mut ctx as *mut Reclaim as *mut c_void,
            0,
        );
    }
    if r.freed == 0 {
        r.hold_until = now + FULL_HOLD_NS;
        return false;
    }
    true
}

/// Drops one of the latest new connections that early_drop may take, if any.
#[inline(never)]
fn early_drop(r: &mut CtReclaim, now: u64) -> bool {
    for _ in 0..EARLY_DROP_TRIES {
        let popped = unsafe {
            aya_ebpf::helpers::generated::bpf_map_pop_elem(
                &PCN_CT_EARLY_DROP as *const _ as *mut c_void,
                &mut r.key as *mut CtKey as *mut c_void,
            )
        };
        if popped != 0 {
            return false;
        }
        if let Some(e) = unsafe { PCN_CONNTRACK.get(&r.key) }
            && conntrack::evictable(&r.key, e, now)
        {
            forget_aliases(&r.key, e, &mut r.alias);
            if PCN_CONNTRACK.remove(&r.key).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Deletes the aliases of a translated connection that goes (netfilter's entry is one for
/// both ways); `scratch` holds their keys.
#[inline(always)]
fn forget_aliases(key: &CtKey, e: &CtEntry, scratch: &mut CtKey) {
    if e.nat == 0 {
        return;
    }
    *scratch = nat::reply(key, e).key().0;
    if *scratch != *key {
        let _ = PCN_CONNTRACK.remove(&*scratch);
    }
    if let Some(m) = nat::midway(key, e) {
        *scratch = m.key().0;
        let _ = PCN_CONNTRACK.remove(&*scratch);
    }
}

extern "C" fn reclaim_entry(
    map: *mut c_void,
    key: *mut c_void,
    value: *mut c_void,
    ctx: *mut c_void,
) -> i64 {
    let r = unsafe { &mut *(*(ctx as *mut Reclaim)).state };
    let (k, e) = unsafe { (&*(key as *const CtKey), &*(value as *const CtEntry)) };
    // An alias goes once its connection has.
    let stale_alias = e.status & status::ALIAS != 0 && {
        let main = nat::aliased(k, e);
        !unsafe { PCN_CONNTRACK.get(&main) }.is_some_and(|m| nat::alias_of(k, &main, m, r.now))
    };
    if !stale_alias && !conntrack::evictable(k, e, r.now) {
        return 0;
    }
    let live = !stale_alias && e.expires > r.now;
    if unsafe { aya_ebpf::helpers::generated::bpf_map_delete_elem(map, key) } == 0 {
        r.freed += 1;
    }
    // One live connection at a time, as early_drop; expired ones by the batch.
    (live || r.freed >= RECLAIM_BATCH) as i64
}
