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
//! `reject`, `log`, `limit`, `statistic`, `icmp_limit` and `settings` serve the targets and
//! matches.
#![no_std]
#![no_main]
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod addrtype;
mod chain;
mod classify;
mod connlimit;
mod connmark;
mod dccp;
mod flow_cache;
mod hashlimit;
mod icmp_limit;
mod limit;
mod log;
mod mangle;
mod maps;
mod meta;
mod nat;
mod owner;
mod parse;
mod raw;
mod recent;
mod reject;
mod reroute;
mod route;
mod sctp;
mod settings;
mod statistic;
mod tcpmss;
mod time;
mod track;

use aya_ebpf::{
    EbpfContext,
    bindings::{__sk_buff, TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use pcn_iptables_common::{
    CHAIN_FORWARD, CHAIN_INPUT, CHAIN_MANGLE_FORWARD, CHAIN_MANGLE_INPUT, CHAIN_MANGLE_OUTPUT,
    CHAIN_MANGLE_POSTROUTING, CHAIN_MANGLE_PREROUTING, CHAIN_NAT_INPUT, CHAIN_NAT_OUTPUT,
    CHAIN_NAT_POSTROUTING, CHAIN_NAT_PREROUTING, CHAIN_OUTPUT, CHAIN_RAW_OUTPUT,
    CHAIN_RAW_PREROUTING, PacketInfo, RESUME, chain_flag, phase, rewrite, verdict,
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
        _ => xdp_action::XDP_PASS,
    }
}

/// What comes next for a packet: its verdict, a round of the classifier, or (egress) nat's
/// rewrite. The callers with small frames make the tail call and the rewrite: a subprogram
/// that made the tail call would limit every frame to 256 bytes, and `nat::translate`'s own
/// frame is large.
enum Next<V> {
    Verdict(V),
    Classify,
    Translate,
    /// Back to the entry program, once the raw table accepted the packet.
    Resume,
    /// Egress: accepted, and sent to the device mangle OUTPUT's routing chose (`reroute`).
    Redirect,
}

/// `Next` on egress as a subprogram returns it: in one register (an enum could come back
/// through a pointer into the callee's stack, which the verifier refuses).
const CLASSIFY: i64 = 1 << 32;
const TRANSLATE: i64 = 2 << 32;
const BACK: i64 = 3 << 32;
const REDIRECT: i64 = 4 << 32;

impl<V: Into<i64> + TryFrom<i64>> Next<V> {
    fn code(self) -> i64 {
        match self {
            Next::Verdict(v) => v.into(),
            Next::Classify => CLASSIFY,
            Next::Translate => TRANSLATE,
            Next::Resume => BACK,
            Next::Redirect => REDIRECT,
        }
    }

    fn of(code: i64) -> Self {
        match code {
            CLASSIFY => Next::Classify,
            TRANSLATE => Next::Translate,
            BACK => Next::Resume,
            REDIRECT => Next::Redirect,
            v => V::try_from(v).map_or(Next::Classify, Next::Verdict),
        }
    }
}

#[inline(always)]
fn ingress(ctx: &XdpContext) -> Option<Next<u32>> {
    let pkt = unsafe { &mut *PCN_PACKETS.get_ptr_mut(XDP)? };
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    // A packet looping back was tracked on its way out (netfilter keeps its connection on
    // the skb): judge it by that state, do not count it twice.
    let (slot, flags) = generation()?;
    // Back from raw PREROUTING: the mark its rules set and their NOTRACK stay.
    let resumed = core::mem::take(&mut pkt.resume) == RESUME;
    if !resumed {
        pkt.mark = 0;
        pkt.untracked = 0;
    }
    // Before tracking: its masquerade check routes from the interface the packet came in by.
    pkt.in_ifindex = ifindex;
    pkt.out_ifindex = 0;
    let raw_first = !resumed && raw::classifies(slot, flags, CHAIN_RAW_PREROUTING);
    parse_ipv4(
        ctx.as_ptr(),
        sctp::Frame::Xdp(ctx.ctx),
        pkt,
        ctx.data(),
        ctx.data_end(),
        if raw_first {
            flags & !chain_flag::TRACK
        } else {
            flags
        },
        ifindex != LOOPBACK_IFINDEX,
    )?;
    pkt.slot = slot;
    pkt.mangle = (flags & chain_flag::MANGLE != 0) as u8;
    // Back from raw PREROUTING: the MSS its TCPMSS rules asked for stays too (TC writes it),
    // and with it the option one added, which the packet parsed again does not show.
    if !resumed {
        pkt.rewrite = 0;
    } else if pkt.rewrite & rewrite::MSS != 0 {
        pcn_iptables_common::tcpmss::grow(pkt);
    }
    if raw_first {
        raw::start(pkt, CHAIN_RAW_PREROUTING);
        return Some(Next::Classify);
    }
    if !resumed {
        raw::pass(pkt, flags, CHAIN_RAW_PREROUTING);
    }
    // Judged on the device it came in by, and sent on to the socket through lo (see
    // `nat_flag::LOOPED`).
    if ifindex == LOOPBACK_IFINDEX && pkt.ct_looped != 0 {
        return Some(Next::Verdict(xdp_action::XDP_PASS));
    }
    pkt.nat_new = (flags & chain_flag::NAT != 0 && pkt.ct_commit != 0) as u8;
    Some(Next::of(xdp_routed(ctx.as_ptr(), pkt)))
}

/// `xdp_prerouting` as the entry calls it: a subprogram, so that the routing lookup and the
/// flow cache's key take no room in the entry's frame, which tracking fills.
#[inline(never)]
fn xdp_routed(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> i64 {
    match mangle::runs(pkt, CHAIN_MANGLE_PREROUTING) {
        true => Next::<u32>::Classify.code(),
        false => xdp_prerouting(ctx, pkt).code(),
    }
}

/// After mangle PREROUTING: a new connection meets nat PREROUTING, before the routing
/// decision; then filter.
#[inline(always)]
fn xdp_prerouting(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> Next<u32> {
    if pkt.nat_new != 0 {
        enter_nat(pkt, CHAIN_NAT_PREROUTING, phase::NAT_DST);
        return Next::Classify;
    }
    xdp_filter(ctx, pkt)
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

/// The routing decision, then mangle's and the filter table's INPUT or FORWARD.
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
    let mangle = match chain {
        CHAIN_INPUT => CHAIN_MANGLE_INPUT,
        _ => CHAIN_MANGLE_FORWARD,
    };
    if mangle::runs(pkt, mangle) {
        return Next::Classify;
    }
    xdp_filter_chain(pkt, chain)
}

/// The filter table's INPUT or FORWARD: the flow's cached verdict, or the classifier.
#[inline(always)]
fn xdp_filter_chain(pkt: &mut PacketInfo, chain: u32) -> Next<u32> {
    pkt.phase = phase::FILTER;
    enter(pkt, chain, pkt.slot);
    // A new connection under nat goes on to nat POSTROUTING or INPUT: not from the cache.
    if pkt.nat_new != 0 {
        pkt.flow_cacheable = 0;
        return Next::Classify;
    }
    match cached_verdict(pkt, chain, pkt.slot) {
        Some(verdict::ACCEPT) => xdp_filtered(pkt),
        Some(_) => Next::Verdict(xdp_action::XDP_DROP),
        None => Next::Classify,
    }
}

/// After filter accepted: a forwarded packet meets mangle POSTROUTING.
#[inline(always)]
fn xdp_filtered(pkt: &mut PacketInfo) -> Next<u32> {
    if pkt.base_chain == CHAIN_FORWARD && mangle::runs(pkt, CHAIN_MANGLE_POSTROUTING) {
        return Next::Classify;
    }
    xdp_last(pkt)
}

/// The last chains: nat POSTROUTING (or INPUT) for a new connection under nat, else the
/// connection confirmed (a new one the full table cannot take is dropped: see `confirm`).
#[inline(always)]
fn xdp_last(pkt: &mut PacketInfo) -> Next<u32> {
    if pkt.nat_new != 0 {
        let chain = match pkt.base_chain {
            CHAIN_INPUT => CHAIN_NAT_INPUT,
            _ => CHAIN_NAT_POSTROUTING,
        };
        enter_nat(pkt, chain, phase::NAT_SRC);
        return Next::Classify;
    }
    match confirm(pkt, XDP) {
        true => Next::Verdict(xdp_action::XDP_PASS),
        false => Next::Verdict(xdp_action::XDP_DROP),
    }
}

#[classifier]
pub fn pcn_egress(ctx: TcContext) -> i32 {
    // Sent here by mangle OUTPUT's routing, judged on its first device.
    if reroute::redirected(&ctx) {
        return TC_ACT_UNSPEC;
    }
    let Some((slot, flags)) = generation() else {
        return TC_ACT_UNSPEC;
    };
    // A forwarded packet was judged on ingress (FORWARD); only local ones go through OUTPUT.
    // nat rewrites its source after the routing (POSTROUTING).
    if unsafe { (*ctx.skb.skb).ingress_ifindex } != 0 {
        if flags & chain_flag::NAT != 0 {
            nat::translate(&ctx, nat::hook::FORWARDED);
        }
        return TC_ACT_UNSPEC;
    }
    tc_next(&ctx, Next::of(egress(ctx.skb.skb, slot, flags)))
}

/// A local packet on its way out: tracked, then nat OUTPUT for a new connection under nat,
/// else filter OUTPUT. A subprogram: the entry's own frame stays small beside `translate`'s.
#[inline(never)]
fn egress(skb: *mut __sk_buff, slot: u32, flags: u32) -> i64 {
    egress_local(skb, slot, flags).code()
}

#[inline(always)]
fn egress_local(skb: *mut __sk_buff, slot: u32, flags: u32) -> Next<i32> {
    const UNSPEC: Next<i32> = Next::Verdict(TC_ACT_UNSPEC);
    let ctx = TcContext::new(skb);
    let Some(pkt) = PCN_PACKETS.get_ptr_mut(TC) else {
        return UNSPEC;
    };
    let pkt = unsafe { &mut *pkt };
    // Back from raw OUTPUT: its NOTRACK stays (its mark is on the skb).
    let resumed = core::mem::take(&mut pkt.resume) == RESUME;
    if !resumed {
        pkt.untracked = 0;
    }
    let raw_first = !resumed && raw::classifies(slot, flags, CHAIN_RAW_OUTPUT);
    let parse_flags = if raw_first {
        flags & !chain_flag::TRACK
    } else {
        flags
    };
    // No context for tracking: its masquerade check is ingress's (see `track`).
    let none = core::ptr::null_mut();
    let frame = sctp::Frame::Tc(skb);
    let (start, end) = (ctx.data(), ctx.data_end());
    if parse_ipv4(none, frame, pkt, start, end, parse_flags, true).is_none() {
        return UNSPEC;
    }
    // OUTPUT judged the datagram before the stack fragmented it: as on INPUT, the first
    // fragment stands for it. A packet OUTPUT's nat routed again was judged before.
    if pkt.fragment != 0 || pkt.ct_rewritten != 0 {
        return UNSPEC;
    }
    pkt.mac_src = [0; 6];
    // What xt_pkttype sees on OUTPUT: the socket's packet, not yet looped back.
    pkt.pkt_type = unsafe { (*skb).pkt_type } as u8;
    pkt.in_ifindex = 0;
    pkt.out_ifindex = unsafe { (*skb).ifindex };
    pkt.mark = unsafe { (*skb).mark };
    if flags & chain_flag::OWNER != 0 {
        owner::set(skb, pkt, slot);
    }
    pkt.slot = slot;
    pkt.mangle = (flags & chain_flag::MANGLE != 0) as u8;
    pkt.rewrite = 0;
    if raw_first {
        raw::start(pkt, CHAIN_RAW_OUTPUT);
        return Next::Classify;
    }
    if !resumed {
        raw::pass(pkt, flags, CHAIN_RAW_OUTPUT);
    }
    pkt.nat_new = (flags & chain_flag::NAT != 0 && pkt.ct_commit != 0) as u8;
    if mangle::runs(pkt, CHAIN_MANGLE_OUTPUT) {
        return Next::Classify;
    }
    tc_output(pkt)
}

/// After mangle OUTPUT: nat OUTPUT for a new connection under nat, then filter.
#[inline(always)]
fn tc_output(pkt: &mut PacketInfo) -> Next<i32> {
    if pkt.nat_new != 0 {
        enter_nat(pkt, CHAIN_NAT_OUTPUT, phase::NAT_DST);
        return Next::Classify;
    }
    tc_filter(pkt)
}

/// The filter table's OUTPUT: the flow's cached verdict, or the classifier.
#[inline(always)]
fn tc_filter(pkt: &mut PacketInfo) -> Next<i32> {
    pkt.phase = phase::FILTER;
    enter(pkt, CHAIN_OUTPUT, pkt.slot);
    if pkt.nat_new != 0 {
        pkt.flow_cacheable = 0;
        return Next::Classify;
    }
    match cached_verdict(pkt, CHAIN_OUTPUT, pkt.slot) {
        Some(verdict::ACCEPT) => tc_filtered(pkt),
        Some(_) => Next::Verdict(TC_ACT_SHOT),
        None => Next::Classify,
    }
}

/// After filter OUTPUT accepted: mangle POSTROUTING, on the device of mangle OUTPUT's new
/// route.
#[inline(always)]
fn tc_filtered(pkt: &mut PacketInfo) -> Next<i32> {
    if pkt.rewrite & rewrite::ROUTE != 0 {
        reroute::postrouting(pkt);
    }
    if mangle::runs(pkt, CHAIN_MANGLE_POSTROUTING) {
        return Next::Classify;
    }
    tc_last(pkt)
}

/// The last chain: nat POSTROUTING for a new connection under nat, else the connection
/// confirmed (a new one the full table cannot take is dropped: see `confirm`).
#[inline(always)]
fn tc_last(pkt: &mut PacketInfo) -> Next<i32> {
    if pkt.nat_new != 0 {
        enter_nat(pkt, CHAIN_NAT_POSTROUTING, phase::NAT_SRC);
        return Next::Classify;
    }
    match confirm(pkt, TC) {
        true => tc_accept(pkt),
        false => Next::Verdict(TC_ACT_SHOT),
    }
}

/// A local packet that leaves: nat rewrites it if its connection is translated; mangle
/// OUTPUT's new route sends it elsewhere.
#[inline(always)]
fn tc_accept(pkt: &PacketInfo) -> Next<i32> {
    match (pkt.ct_nat, pkt.rewrite & rewrite::ROUTE) {
        (0, 0) => Next::Verdict(TC_ACT_UNSPEC),
        (0, _) => Next::Redirect,
        _ => Next::Translate,
    }
}

/// What comes next on egress: the verdict, a round of the classifier, or the rewrite of a
/// translated connection's packet (OUTPUT's destination, routed again; POSTROUTING's
/// source). Made by the entry and the classifier themselves, whose frames are small (see
/// `Next`).
#[inline(always)]
fn tc_next(ctx: &TcContext, next: Next<i32>) -> i32 {
    match next {
        Next::Verdict(v) => v,
        Next::Classify => {
            tc_round(ctx);
            // Out of tail calls (more than 32 jumps/returns): fail closed.
            TC_ACT_SHOT
        }
        // nat OUTPUT's routing comes after mangle's, and decides (with the new mark).
        Next::Translate => match nat::translate(ctx, nat::hook::LOCAL) {
            nat::then::REROUTE => nat::reroute(ctx),
            _ => reroute::redirect(ctx),
        },
        Next::Redirect => reroute::redirect(ctx),
        Next::Resume => {
            let pkt = PCN_PACKETS.get_ptr_mut(TC);
            if let Some(pkt) = pkt {
                unsafe { (*pkt).resume = RESUME };
            }
            unsafe { raw::PCN_ENTRY_TC.tail_call(ctx, 0) };
            // As at XDP.
            if let Some(pkt) = pkt {
                unsafe { (*pkt).resume = 0 };
            }
            TC_ACT_SHOT
        }
    }
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
    if matches!(step, Step::Accept) && pkt.rewrite & rewrite::HEADER != 0 {
        mangle::rewrite_xdp(&ctx, pkt);
    }
    let next = match step {
        Step::Accept => match xdp_accept(ctx.as_ptr(), pkt) {
            // The mark and MSS the rules set go with the packet (see `meta`).
            Next::Verdict(xdp_action::XDP_PASS)
                if pkt.mark != 0 || pkt.rewrite & rewrite::MSS != 0 =>
            {
                meta::carry(ctx.ctx, pkt.mark, tcpmss::spec(pkt));
                Next::Verdict(xdp_action::XDP_PASS)
            }
            next => next,
        },
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            Next::Verdict(xdp_action::XDP_DROP)
        }
        Step::Reject(with) => Next::Verdict(reject::xdp(ctx.ctx, pkt, with)),
        Step::Again => Next::Classify,
    };
    match next {
        Next::Verdict(v) => v,
        Next::Resume => {
            pkt.resume = RESUME;
            unsafe { raw::PCN_ENTRY_XDP.tail_call(&ctx, 0) };
            // No entry program to go back to: fail closed, and leave no mark for the next
            // packet.
            pkt.resume = 0;
            xdp_action::XDP_DROP
        }
        _ => {
            xdp_round(&ctx);
            // Out of tail calls (more than 32 jumps/returns): fail closed.
            xdp_action::XDP_DROP
        }
    }
}

/// What an accepting chain leads to at XDP, in netfilter's order: mangle PREROUTING, nat
/// PREROUTING (a new connection under nat), the routing decision, mangle INPUT or FORWARD,
/// filter, mangle POSTROUTING (forwarded), nat POSTROUTING or INPUT (a new connection), the
/// connection with its mapping; then the packet goes up (TC rewrites it). A subprogram: the
/// classifier's own frame stays small beside `pcn_first_match`'s.
#[inline(never)]
fn xdp_accept(ctx: *mut core::ffi::c_void, pkt: &mut PacketInfo) -> Next<u32> {
    const PASS: Next<u32> = Next::Verdict(xdp_action::XDP_PASS);
    const DROP: Next<u32> = Next::Verdict(xdp_action::XDP_DROP);
    match pkt.phase {
        phase::RAW => Next::Resume,
        phase::NAT_DST => match nat::map_destination(pkt) {
            true => xdp_filter(ctx, pkt),
            false => DROP,
        },
        phase::NAT_SRC => match nat::map_source(ctx, pkt) && nat::commit(XDP) {
            true => PASS,
            false => DROP,
        },
        phase::MANGLE => match pkt.base_chain {
            CHAIN_MANGLE_PREROUTING => xdp_prerouting(ctx, pkt),
            CHAIN_MANGLE_INPUT => xdp_filter_chain(pkt, CHAIN_INPUT),
            CHAIN_MANGLE_FORWARD => xdp_filter_chain(pkt, CHAIN_FORWARD),
            _ => xdp_last(pkt),
        },
        _ => {
            // Filter's verdict for the flow (a connection not confirmed is judged again).
            remember_verdict(pkt, verdict::ACCEPT);
            xdp_filtered(pkt)
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
    let next = match step {
        Step::Accept => {
            // ipt_mangle_out compares the mark and TOS with those before the table.
            if pkt.phase == phase::MANGLE
                && pkt.base_chain == CHAIN_MANGLE_OUTPUT
                && reroute::changed(&ctx, pkt)
            {
                pkt.rewrite |= rewrite::ROUTE;
            }
            unsafe { (*ctx.skb.skb).mark = pkt.mark };
            if pkt.rewrite & rewrite::HEADER != 0 {
                mangle::rewrite_tc(&ctx, pkt);
            }
            let mss = pkt.rewrite & rewrite::MSS != 0;
            pkt.rewrite &= !rewrite::MSS;
            // xt_TCPMSS drops a SYN whose header runs past its end (no later chain sees it).
            if mss
                && tcpmss::apply(ctx.skb.skb, pkt.mss, pkt.mss_clamp != 0, tcpmss::EGRESS)
                    == tcpmss::DROP
            {
                Next::Verdict(TC_ACT_SHOT)
            } else {
                Next::of(tc_classified(ctx.skb.skb, pkt))
            }
        }
        Step::Drop => {
            remember_verdict(pkt, verdict::DROP);
            Next::Verdict(TC_ACT_SHOT)
        }
        Step::Reject(with) => Next::Verdict(reject::tc(ctx.skb.skb, with)),
        Step::Again => Next::Classify,
    };
    tc_next(&ctx, next)
}

/// What an accepting chain leads to on egress: mangle OUTPUT → nat OUTPUT (a new connection
/// under nat) → filter OUTPUT → mangle POSTROUTING → nat POSTROUTING (a new connection), then
/// its mapping. A subprogram, as `xdp_accept`.
#[inline(never)]
fn tc_classified(skb: *mut __sk_buff, pkt: &mut PacketInfo) -> i64 {
    tc_accepted(skb, pkt).code()
}

#[inline(always)]
fn tc_accepted(skb: *mut __sk_buff, pkt: &mut PacketInfo) -> Next<i32> {
    match pkt.phase {
        phase::RAW => Next::Resume,
        phase::NAT_DST => match nat::map_destination(pkt) {
            true => tc_filter(pkt),
            false => Next::Verdict(TC_ACT_SHOT),
        },
        phase::NAT_SRC => match nat::map_source(skb as *mut _, pkt) && nat::commit(TC) {
            true => {
                pkt.ct_nat = pkt.ct_entry.nat;
                tc_accept(pkt)
            }
            false => Next::Verdict(TC_ACT_SHOT),
        },
        phase::MANGLE => match pkt.base_chain {
            // Routed again (dropped without a route) before nat and filter OUTPUT.
            CHAIN_MANGLE_OUTPUT => {
                match pkt.rewrite & rewrite::ROUTE == 0 || reroute::route(skb, pkt) {
                    true => tc_output(pkt),
                    false => Next::Verdict(TC_ACT_SHOT),
                }
            }
            _ => tc_last(pkt),
        },
        _ => {
            remember_verdict(pkt, verdict::ACCEPT);
            tc_filtered(pkt)
        }
    }
}

/// TC ingress: REJECT's answers built at XDP, sent back out of their interface (see
/// `reject::answer`); and PREROUTING's rewrite of a translated connection's destination.
#[classifier]
pub fn pcn_answer(ctx: TcContext) -> i32 {
    match meta::take(&ctx) {
        Some([meta::ANSWER, ..]) => return reject::answer(&ctx),
        Some([_, mark, mss]) => {
            unsafe { (*ctx.skb.skb).mark = mark };
            if let Some((mss, clamp)) = tcpmss::unpack(mss)
                && tcpmss::apply(ctx.skb.skb, mss, clamp, tcpmss::INGRESS) == tcpmss::DROP
            {
                return TC_ACT_SHOT;
            }
        }
        None => {}
    }
    if let Some((_, flags)) = generation()
        && flags & chain_flag::NAT != 0
        && unsafe { (*ctx.skb.skb).ifindex } != LOOPBACK_IFINDEX
        && nat::translate(&ctx, nat::hook::INGRESS) == nat::then::LOOP
    {
        // Out of lo, routed there as the kernel routes what it sends itself: the local route
        // stays on the skb, so that lo's input takes the local source (an input route lookup
        // would call it a martian).
        return unsafe {
            aya_ebpf::helpers::generated::bpf_redirect_neigh(
                LOOPBACK_IFINDEX,
                core::ptr::null_mut(),
                0,
                0,
            ) as i32
        };
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
