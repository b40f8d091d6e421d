//! Chains: entering a base chain, one round of the classifier over a chain (the first rule
//! that matches and what its target does: a verdict, a jump or goto, a return), and a
//! chain's policy.

use pcn_iptables_common::{
    Action, ChainConfig, Frame, MAX_CALL_DEPTH, NatRule, PacketInfo, chain_flag, hotdrop, verdict,
};

use crate::classify::pcn_first_match;
use crate::connlimit::{self, pcn_connlimit_check};
use crate::connmark::pcn_connmark;
use crate::flow_cache::count_for;
use crate::hashlimit::pcn_hashlimit_check;
use crate::log;
use crate::maps::{action, chain_config, count};
use crate::recent::pcn_recent_check;

/// Starts the evaluation of `chain` for a packet, in the generation of `slot`.
#[inline(always)]
pub(crate) fn enter(pkt: &mut PacketInfo, chain: u32, slot: u32) {
    pkt.chain = chain;
    pkt.base_chain = chain;
    pkt.next_rule = 0;
    pkt.depth = 0;
    pkt.slot = slot;
}

/// What the classifier decided for this round.
pub(crate) enum Step {
    Accept,
    Drop,
    /// The packet moved to another chain or rule: run the classifier again.
    Again,
    /// `-j REJECT`: answer with `reject::*`, drop the packet.
    Reject(u32),
}

/// One round: the first rule of `pkt.chain` from `pkt.next_rule` on that matches, and what its
/// target does.
#[inline(always)]
pub(crate) fn round(packet: *mut PacketInfo, hook: u32) -> Step {
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
            let index = cfg.action_base + rule;
            let Some(action) = action(pkt.slot, index) else {
                return Step::Drop;
            };
            // A rule with a check of its own the scan stopped at for a drop (`stop`), or one
            // without whose tcp, udp or icmp match drops the packet.
            if pkt.stop != 0 || hotdrop::at(pkt, action) {
                return cut_short(pkt, action, index);
            }
            let effects = Effects {
                recent: action.recent_op != pcn_iptables_common::recent::op::NONE,
                connlimit: action.connlimit_flags != 0,
                hashlimit: action.hashlimit_table != 0,
            };
            if (effects.any() || action.verdict == verdict::CONNMARK)
                && let Some(step) = effect_step(packet, hook, index, rule, effects)
            {
                return step;
            }
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
                // The chain is done with the packet, as with ACCEPT; `nat` maps it.
                verdict::NAT => {
                    pkt.nat_rule = NatRule {
                        kind: action.nat_kind,
                        _pad: [0; 3],
                        flags: action.nat_flags,
                        addr: action.nat_addr,
                        port: action.nat_port,
                    };
                    Step::Accept
                }
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

/// The checks a rule makes once the rest of it matched, which change state.
#[derive(Clone, Copy)]
struct Effects {
    recent: bool,
    connlimit: bool,
    hashlimit: bool,
}

impl Effects {
    #[inline(always)]
    fn any(self) -> bool {
        self.recent || self.connlimit || self.hashlimit
    }
}

/// A rule the scan stopped at for what it does outside the scan's `bpf_loop` callback (its
/// other checks passed): its recent list is checked, its connections counted, its bucket
/// taken from, its CONNMARK done, here.
/// `Some(Again)`: the chain goes on after the rule, which did not match or has no target
/// that stops (it is counted, and logged); `None`: the rule decides.
#[inline(always)]
fn effect_step(
    packet: *mut PacketInfo,
    hook: u32,
    index: u32,
    rule: u32,
    effects: Effects,
) -> Option<Step> {
    let slot = unsafe { (*packet).slot };
    unsafe { (*packet).next_rule = rule + 1 };
    if effects.recent && pcn_recent_check(hook, slot, index) == 0 {
        return Some(Step::Again);
    }
    let counted = match (effects.connlimit, effects.hashlimit) {
        (true, _) => pcn_connlimit_check(hook, slot, index),
        (_, true) => pcn_hashlimit_check(hook, slot, index),
        _ => connlimit::MATCH,
    };
    match counted {
        connlimit::MATCH => {}
        connlimit::HOTDROP => return Some(Step::Drop),
        _ => return Some(Step::Again),
    }
    // Borrowed again, as after the scan.
    let pkt = unsafe { &mut *packet };
    let action = action(pkt.slot, index)?;
    let (verdict, counter) = (action.verdict, action.counter);
    match verdict {
        verdict::CONTINUE => {}
        verdict::LOG => log::pend(pkt, index),
        verdict::MARK | verdict::TOS | verdict::TTL | verdict::NOTRACK => {
            pcn_iptables_common::rewrite(pkt, action)
        }
        verdict::CONNMARK => {
            pcn_connmark(hook, slot, index);
        }
        _ => return None,
    }
    // Borrowed again: CONNMARK wrote to the packet.
    let pkt = unsafe { &mut *packet };
    count(counter, pkt.len);
    Some(Step::Again)
}

/// A rule the scan stopped at, the rest of it matched, with a match that drops the packet,
/// cut short for it (`hotdrop::stops`). The rule counts it first if it matched all the same
/// (`hotdrop::counted`: a `!` turned the match's no into a match); then its REJECT answers and
/// its LOG logs too, as netfilter runs the target before it looks at the drop.
#[inline(never)]
fn cut_short(pkt: &mut PacketInfo, action: &Action, index: u32) -> Step {
    pkt.flow_cacheable = 0;
    if !hotdrop::counted(pkt, action) {
        return Step::Drop;
    }
    count_for(pkt, action.counter);
    match action.verdict {
        verdict::REJECT => Step::Reject(action.reject_with),
        verdict::LOG => {
            log::pend(pkt, index);
            Step::Drop
        }
        _ => Step::Drop,
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
