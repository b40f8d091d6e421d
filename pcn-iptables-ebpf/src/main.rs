//! The pcn-iptables data plane: its program entry points.
//!
//! Two entry programs stay attached for the life of the installation: `pcn_ingress` (XDP, every
//! interface: INPUT and FORWARD) and `pcn_egress` (TC egress: OUTPUT). They parse the packet,
//! pick the base chain and tail-call the classifier of the running generation,
//! `pcn_xdp_classify` or `pcn_tc_classify`, which runs one round of a chain and either decides
//! or tail-calls itself for the next chain. A third, `pcn_answer` (TC ingress, every
//! interface), sends REJECT's answers built at XDP back out (see `reject`).
//!
//! `maps` holds the maps, `parse` and `route` read the packet and ask the routing, `track` and
//! `flow_cache` come before the classifier, `chain` and `classify` are the classifier, and
//! `reject`, `log`, `limit`, `icmp_limit` and `settings` serve the targets and matches.
#![no_std]
#![no_main]
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod chain;
mod classify;
mod flow_cache;
mod icmp_limit;
mod limit;
mod log;
mod maps;
mod parse;
mod reject;
mod route;
mod settings;
mod track;

use aya_ebpf::{
    EbpfContext,
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::{CHAIN_FORWARD, CHAIN_INPUT, CHAIN_OUTPUT, verdict};

use chain::{Step, enter};
use flow_cache::{cached_verdict, remember_verdict};
use maps::{PCN_PACKETS, PCN_PROGS_TC, PCN_PROGS_XDP, TC, XDP, generation};
use parse::{AF_INET, LOOPBACK_IFINDEX, parse_ipv4};
use route::{
    FIB_FRAG_NEEDED, FIB_FWD_DISABLED, FIB_LOOKUP_SKIP_NEIGH, FIB_NO_NEIGH, FIB_NOT_FWDED,
    FIB_SUCCESS, FibLookup, fib_lookup,
};
use track::confirm;

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
        // A new connection the full table cannot take is dropped (see `confirm`).
        Some(verdict::ACCEPT) if confirm(pkt) => return Some(xdp_action::XDP_PASS),
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
        // A new connection the full table cannot take is dropped (see `confirm`).
        Some(verdict::ACCEPT) if confirm(pkt) => return Some(TC_ACT_UNSPEC),
        Some(_) => return Some(TC_ACT_SHOT),
        None => {}
    }
    unsafe { PCN_PROGS_TC.tail_call(ctx, slot) };
    None
}

#[xdp]
pub fn pcn_xdp_classify(ctx: XdpContext) -> u32 {
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(XDP) else {
        return xdp_action::XDP_PASS;
    };
    let step = chain::round(pkt, XDP);
    let pkt = unsafe { &mut *pkt };
    if pkt.log_count != 0 {
        log::emit_xdp(ctx.ctx, pkt);
    }
    match step {
        Step::Accept if confirm(pkt) => {
            remember_verdict(pkt, verdict::ACCEPT);
            xdp_action::XDP_PASS
        }
        Step::Accept => xdp_action::XDP_DROP,
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
    let step = chain::round(pkt, TC);
    let pkt = unsafe { &mut *pkt };
    if pkt.log_count != 0 {
        log::emit_tc(ctx.skb.skb, pkt);
    }
    match step {
        Step::Accept if confirm(pkt) => {
            remember_verdict(pkt, verdict::ACCEPT);
            TC_ACT_UNSPEC
        }
        Step::Accept => TC_ACT_SHOT,
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

/// REJECT's answers built at XDP, sent back out of their interface (see `reject::answer`).
#[classifier]
pub fn pcn_answer(ctx: TcContext) -> i32 {
    reject::answer(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
