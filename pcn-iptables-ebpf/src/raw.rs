//! The raw table's base chains, before the packet's connection is looked up: a chain with
//! rules (or a DROP policy) classifies the packet first, the parse leaving tracking out; once
//! it accepts, the classifier hands the packet back to the entry program (`PacketInfo::resume`
//! through `PCN_ENTRY_XDP` / `PCN_ENTRY_TC`), which tracks it (unless `-j NOTRACK` met it)
//! and goes on. A chain without only counts the packet by its policy.

use aya_ebpf::{macros::map, maps::ProgramArray};
use pcn_iptables_common::{PacketInfo, chain_flag, phase};

use crate::chain::enter;
use crate::maps::{chain_config, count};

/// The entry programs, for the classifier to hand a packet back to (userspace sets them).
#[map]
pub(crate) static PCN_ENTRY_XDP: ProgramArray = ProgramArray::pinned(1, 0);
#[map]
pub(crate) static PCN_ENTRY_TC: ProgramArray = ProgramArray::pinned(1, 0);

/// Whether raw's base `chain` of generation `slot` classifies packets (raw loaded, the chain
/// with rules or a DROP policy).
#[inline(always)]
pub(crate) fn classifies(slot: u32, flags: u32, chain: u32) -> bool {
    flags & chain_flag::RAW != 0
        && chain_config(slot, chain).is_some_and(|c| c.flags & chain_flag::RUN != 0)
}

/// Enters raw's base `chain` (its flow not cached on the way).
#[inline(always)]
pub(crate) fn start(pkt: &mut PacketInfo, chain: u32) {
    pkt.phase = phase::RAW;
    enter(pkt, chain, pkt.slot);
    pkt.flow_cacheable = 0;
}

/// A packet raw's base `chain` does not classify: counted by its policy if raw is loaded.
/// The chain is looked up again rather than kept from `classifies`: a value held across the
/// parse and tracking multiplies the verifier's states (pcn_ingress 88k → 150k–164k).
#[inline(always)]
pub(crate) fn pass(pkt: &PacketInfo, flags: u32, chain: u32) {
    if flags & chain_flag::RAW == 0 {
        return;
    }
    if let Some(cfg) = chain_config(pkt.slot, chain) {
        count(cfg.policy_counter, pkt.len);
    }
}
