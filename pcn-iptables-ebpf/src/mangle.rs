//! The mangle table's base chains on a packet's way: classified where they have rules (or a
//! DROP policy), else only counted by their policies, as netfilter counts every packet that
//! passes a chain. And the header fields its targets rewrite (TOS byte, TTL), written into
//! the packet once a chain accepts it.

use aya_ebpf::programs::{TcContext, XdpContext};
use pcn_iptables_common::{PacketInfo, chain_flag, checksum, phase, rewrite};

use crate::chain::enter;
use crate::maps::{chain_config, count};
use crate::parse::{ETH_HLEN, ptr_at};

/// Whether mangle's base `chain` classifies the packet (it is entered, its flow not cached
/// on the way); else its policy counts the packet, which goes on.
#[inline(always)]
pub(crate) fn runs(pkt: &mut PacketInfo, chain: u32) -> bool {
    if pkt.mangle == 0 {
        return false;
    }
    let Some(cfg) = chain_config(pkt.slot, chain) else {
        return false;
    };
    if cfg.flags & chain_flag::RUN == 0 {
        count(cfg.policy_counter, pkt.len);
        return false;
    }
    pkt.phase = phase::MANGLE;
    enter(pkt, chain, pkt.slot);
    pkt.flow_cacheable = 0;
    true
}

/// The TOS byte and TTL the rules set, written into the IPv4 header in place (XDP), its
/// checksum updated. A forwarded packet's rules saw the TTL ip_forward() leaves it, one less
/// than the header's, which the kernel lowers after XDP: the header gets one more (so a TTL
/// set to 0 there is 1, which the kernel drops, and 255 stays 255).
#[inline(always)]
pub(crate) fn rewrite_xdp(ctx: &XdpContext, pkt: &mut PacketInfo) {
    pkt.rewrite &= !rewrite::HEADER;
    let Some(ip) = ptr_at::<[u8; 12]>(ctx.data(), ctx.data_end(), ETH_HLEN) else {
        return;
    };
    let ip = unsafe { &mut *ip };
    let ttl = match pkt.out_ifindex {
        0 => pkt.ttl,
        _ => pkt.ttl.saturating_add(1),
    };
    let old = [[ip[0], ip[1]], [ip[8], ip[9]]];
    let new = [[ip[0], pkt.tos], [ttl, ip[9]]];
    let check = checksum::replace([ip[10], ip[11]], old[0], new[0]);
    [ip[10], ip[11]] = checksum::replace(check, old[1], new[1]);
    (ip[1], ip[8]) = (pkt.tos, ttl);
}

/// The same on egress, through the helpers that make the skb's head writable when it is
/// shared (a TCP segment kept for retransmission).
#[inline(always)]
pub(crate) fn rewrite_tc(ctx: &TcContext, pkt: &mut PacketInfo) {
    pkt.rewrite &= !rewrite::HEADER;
    let Ok(ip) = ctx.load::<[u8; 10]>(ETH_HLEN) else {
        return;
    };
    for (at, old, new) in [
        (0, [ip[0], ip[1]], [ip[0], pkt.tos]),
        (8, [ip[8], ip[9]], [pkt.ttl, ip[9]]),
    ] {
        if old != new {
            let (from, to) = (u16::from_ne_bytes(old), u16::from_ne_bytes(new));
            let _ = ctx.l3_csum_replace(ETH_HLEN + 10, from as u64, to as u64, 2);
            let _ = ctx.store(ETH_HLEN + at, &new, 0);
        }
    }
}
