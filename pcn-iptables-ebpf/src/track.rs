//! Connection tracking glue: the packet's ctstate and what to store for its connection, as
//! netfilter's conntrack would set them before the filter table sees the packet. The state
//! machine itself is `pcn_iptables_common::conntrack`'s.

use pcn_iptables_common::PacketInfo;
use pcn_iptables_common::conntrack::{self, CtEntry, CtKey, Tuple, ctstate};

use crate::maps::PCN_CONNTRACK;
use crate::parse::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ptr_at};

/// The live entry of a connection (an expired one is as good as none).
#[inline(always)]
fn connection(key: &CtKey, now: u64) -> Option<CtEntry> {
    let e = unsafe { PCN_CONNTRACK.get(key)? };
    (e.expires > now).then_some(*e)
}

/// Sets the packet's ctstate, and what to store if it is accepted, as netfilter's conntrack
/// would before the filter table sees it.
#[inline(always)]
pub(crate) fn track(
    pkt: &mut PacketInfo,
    start: usize,
    end: usize,
    l4: usize,
    fragment: bool,
    update: bool,
) {
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

/// An accepted packet's new connection goes into the table (over an expired entry, if any).
#[inline(always)]
pub(crate) fn confirm(pkt: &PacketInfo) {
    if pkt.ct_commit != 0 {
        let _ = PCN_CONNTRACK.insert(&pkt.ct_key, &pkt.ct_entry, 0);
    }
}
