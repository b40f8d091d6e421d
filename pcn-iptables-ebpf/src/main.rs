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
mod nat;
mod parse;
mod reject;
mod route;
mod settings;
mod track;

use aya_ebpf::{
    EbpfContext,
    bindings::{__sk_buff, TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::{
    CHAIN_FORWARD, CHAIN_INPUT, CHAIN_NAT_INPUT, CHAIN_NAT_OUTPUT, CHAIN_NAT_POSTROUTING,
    CHAIN_NAT_PREROUTING, CHAIN_OUTPUT, PacketInfo, chain_flag, phase, verdict,
};

use chain::{Step, enter};
use flow_cache::{cached_verdict, remember_verdict};
use maps::{PCN_PACKETS, PCN_PROGS_TC, PCN_PROGS_XDP, TC, XDP, generation};
use parse::{LOOPBACK_IFINDEX, parse_ipv4};
use route::input_chain;
use track::confirm;

#[xdp]
pub fn pcn_ingress(ctx: XdpContext) -> u32 {
    match ingress(&ctx) {
        Some(Next::Verdict(v)) => v,
        Some(Next::Classify) => {
            xdp_round(&ctx);
            xdp_action::XDP_PASS
        }
        None => xdp_action::XDP_PASS,
    }
}

/// What comes next for a packet: its verdict, or a round of the classifier. The caller makes
/// the tail call: a subprogram that made it would limit every frame to 256 bytes.
enum Next<V> {
    Verdict(V),
    Classify,
}

#[inline(always)]
fn ingress(ctx: &XdpContext) -> Option<Next<u32>> {
    let pkt = unsafe { &mut *PCN_PACKETS.get_ptr_mut(XDP)? };
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // A packet looping back was tracked on its way out (netfilter keeps its connection on
    // the skb): judge it by that state, do not count it twice.
    let (slot, flags) = generation()?;
    parse_ipv4(
        pkt,
        ctx.data(),
        ctx.data_end(),
        flags & chain_flag::TRACK != 0,
        ifindex != LOOPBACK_IFINDEX,
    )?;
    pkt.in_ifindex = ifindex;
    pkt.out_ifindex = 0;
    pkt.slot = slot;
    // A new connection meets nat PREROUTING first, before the routing decision.
    pkt.nat_new = (flags & chain_flag::NAT != 0 && pkt.ct_commit != 0) as u8;
    if pkt.nat_new != 0 {
        enter_nat(pkt, CHAIN_NAT_PREROUTING, phase::NAT_DST);
        return Some(Next::Classify);
    }
    Some(xdp_filter(ctx.as_ptr(), pkt))
}

/// Starts `chain` of the nat table for a new connection's first packet: its verdict is the
/// connection's mapping (`phase` says which end), never cached.
#[inline(always)]
fn enter_nat(pkt: &mut PacketInfo, chain: u32, phase: u8) {
    pkt.phase = phase;
    pkt.nat_rule.kind = 0;
    enter(pkt, chain, pkt.slot);
    pkt.flow_cacheable = 0;
}

/// The next round of the classifier of the packet's generation (XDP); returns only if the
/// tail call fails.
#[inline(always)]
fn xdp_round(ctx: &XdpContext) {
    if let Some(pkt) = PCN_PACKETS.get(XDP) {
        unsafe { PCN_PROGS_XDP.tail_call(ctx, pkt.slot) };
    }
}

/// The same on egress (TC).
#[inline(always)]
fn tc_round(ctx: &TcContext) {
    if let Some(pkt) = PCN_PACKETS.get(TC) {
        unsafe { PCN_PROGS_TC.tail_call(ctx, pkt.slot) };
    }
}

/// The routing decision, then the filter table's INPUT or FORWARD: the flow's cached verdict,
/// or the classifier.
#[inline(always)]
fn xdp_filter(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> Next<u32> {
    const PASS: Next<u32> = Next::Verdict(xdp_action::XDP_PASS);
    pkt.phase = phase::FILTER;
    let Some(chain) = input_chain(ctx, pkt) else {
        return PASS;
    };
    // The kernel reassembles a local datagram before INPUT, which judges it once: here its
    // first fragment (with the ports) stands for it, and the others follow whatever it met.
    if chain == CHAIN_INPUT && pkt.fragment != 0 {
        return PASS;
    }
    enter(pkt, chain, pkt.slot);
    // A new connection under nat goes on to nat POSTROUTING or INPUT: not from the cache.
    if pkt.nat_new != 0 {
        pkt.flow_cacheable = 0;
        return Next::Classify;
    }
    match cached_verdict(pkt, chain, pkt.slot) {
        // A new connection the full table cannot take is dropped (see `confirm`).
        Some(verdict::ACCEPT) if confirm(pkt) => PASS,
        Some(_) => Next::Verdict(xdp_action::XDP_DROP),
        None => Next::Classify,
    }
}

#[classifier]
pub fn pcn_egress(ctx: TcContext) -> i32 {
    match egress(&ctx) {
        Some(Next::Verdict(v)) => v,
        Some(Next::Classify) => {
            tc_round(&ctx);
            TC_ACT_UNSPEC
        }
        None => TC_ACT_UNSPEC,
    }
}

#[inline(always)]
fn egress(ctx: &TcContext) -> Option<Next<i32>> {
    let skb = unsafe { &*ctx.skb.skb };
    let (slot, flags) = generation()?;
    // A forwarded packet was judged on ingress (FORWARD); only local ones go through OUTPUT.
    // nat rewrites its source after the routing (POSTROUTING).
    if skb.ingress_ifindex != 0 {
        if flags & chain_flag::NAT != 0 {
            nat::postrouting(ctx);
        }
        return None;
    }
    let pkt = unsafe { &mut *PCN_PACKETS.get_ptr_mut(TC)? };
    parse_ipv4(
        pkt,
        ctx.data(),
        ctx.data_end(),
        flags & chain_flag::TRACK != 0,
        true,
    )?;
    // OUTPUT judged the datagram before the stack fragmented it: as on INPUT, the first
    // fragment stands for it.
    if pkt.fragment != 0 {
        return None;
    }
    pkt.mac_src = [0; 6];
    pkt.in_ifindex = 0;
    pkt.out_ifindex = skb.ifindex;
    pkt.slot = slot;
    pkt.nat_new = (flags & chain_flag::NAT != 0 && pkt.ct_commit != 0) as u8;
    if pkt.nat_new != 0 {
        enter_nat(pkt, CHAIN_NAT_OUTPUT, phase::NAT_DST);
        return Some(Next::Classify);
    }
    Some(tc_filter(ctx.skb.skb, pkt))
}

/// The filter table's OUTPUT: the flow's cached verdict, or the classifier.
#[inline(always)]
fn tc_filter(skb: *mut __sk_buff, pkt: &mut PacketInfo) -> Next<i32> {
    pkt.phase = phase::FILTER;
    enter(pkt, CHAIN_OUTPUT, pkt.slot);
    if pkt.nat_new != 0 {
        pkt.flow_cacheable = 0;
        return Next::Classify;
    }
    match cached_verdict(pkt, CHAIN_OUTPUT, pkt.slot) {
        // A new connection the full table cannot take is dropped (see `confirm`).
        Some(verdict::ACCEPT) if confirm(pkt) => Next::Verdict(tc_accept(skb, pkt)),
        Some(_) => Next::Verdict(TC_ACT_SHOT),
        None => Next::Classify,
    }
}

/// A local packet that leaves: POSTROUTING's rewrite of its source, if nat maps it.
#[inline(always)]
fn tc_accept(skb: *mut __sk_buff, pkt: &PacketInfo) -> i32 {
    if pkt.has_nat_src != 0 {
        nat::rewrite_source(&TcContext::new(skb), pkt.nat_src);
    }
    TC_ACT_UNSPEC
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
    let next = match step {
        Step::Accept => xdp_accept(ctx.as_ptr(), pkt),
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            Next::Verdict(xdp_action::XDP_DROP)
        }
        Step::Reject(with) => Next::Verdict(reject::xdp(ctx.ctx, pkt, with)),
        Step::Again => Next::Classify,
    };
    match next {
        Next::Verdict(v) => v,
        Next::Classify => {
            xdp_round(&ctx);
            // Out of tail calls (more than 32 jumps/returns): fail closed.
            xdp_action::XDP_DROP
        }
    }
}

/// What an accepting chain leads to at XDP: after nat PREROUTING the routing and filter,
/// after filter nat POSTROUTING (or INPUT) for a new connection under nat, after that the
/// connection with its mapping; then the packet goes up (TC rewrites it). A subprogram: the
/// classifier's own frame stays small beside `pcn_first_match`'s.
#[inline(never)]
fn xdp_accept(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> Next<u32> {
    const PASS: Next<u32> = Next::Verdict(xdp_action::XDP_PASS);
    const DROP: Next<u32> = Next::Verdict(xdp_action::XDP_DROP);
    match pkt.phase {
        phase::NAT_DST => match nat::map_destination(pkt) {
            true => xdp_filter(ctx, pkt),
            false => DROP,
        },
        phase::NAT_SRC => match nat::map_source(ctx, pkt) && nat::commit(pkt) {
            true => PASS,
            false => DROP,
        },
        _ if pkt.nat_new != 0 => {
            let chain = if pkt.base_chain == CHAIN_FORWARD {
                CHAIN_NAT_POSTROUTING
            } else {
                CHAIN_NAT_INPUT
            };
            enter_nat(pkt, chain, phase::NAT_SRC);
            Next::Classify
        }
        _ if confirm(pkt) => {
            remember_verdict(pkt, verdict::ACCEPT);
            PASS
        }
        _ => DROP,
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
    let next = match step {
        Step::Accept => tc_classified(ctx.skb.skb, pkt),
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            Next::Verdict(TC_ACT_SHOT)
        }
        Step::Reject(with) => Next::Verdict(reject::tc(ctx.skb.skb, with)),
        Step::Again => Next::Classify,
    };
    match next {
        Next::Verdict(v) => v,
        Next::Classify => {
            tc_round(&ctx);
            TC_ACT_SHOT
        }
    }
}

/// What an accepting chain leads to on egress: nat OUTPUT → filter OUTPUT → nat POSTROUTING
/// for a new connection under nat, then its mapping. A subprogram, as `xdp_accept`.
#[inline(never)]
fn tc_classified(skb: *mut __sk_buff, pkt: &mut PacketInfo) -> Next<i32> {
    match pkt.phase {
        // No mapping in nat OUTPUT (the compiler refuses one): filter OUTPUT next.
        phase::NAT_DST => tc_filter(skb, pkt),
        phase::NAT_SRC => match nat::map_source(skb as *mut _, pkt) && nat::commit(pkt) {
            true => {
                nat::rewrite_committed(&TcContext::new(skb), pkt);
                Next::Verdict(TC_ACT_UNSPEC)
            }
            false => Next::Verdict(TC_ACT_SHOT),
        },
        _ if pkt.nat_new != 0 => {
            enter_nat(pkt, CHAIN_NAT_POSTROUTING, phase::NAT_SRC);
            Next::Classify
        }
        _ if confirm(pkt) => {
            remember_verdict(pkt, verdict::ACCEPT);
            Next::Verdict(tc_accept(skb, pkt))
        }
        _ => Next::Verdict(TC_ACT_SHOT),
    }
}

/// TC ingress: REJECT's answers built at XDP, sent back out of their interface (see
/// `reject::answer`); and PREROUTING's rewrite of a translated connection's destination.
#[classifier]
pub fn pcn_answer(ctx: TcContext) -> i32 {
    let answered = reject::answer(&ctx);
    if answered != TC_ACT_UNSPEC {
        return answered;
    }
    if let Some((_, flags)) = generation()
        && flags & chain_flag::NAT != 0
    {
        nat::prerouting(&ctx);
    }
    TC_ACT_UNSPEC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
