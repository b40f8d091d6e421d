//! The mangle table's base chains on a packet's way: classified where they have rules (or a
//! DROP policy), else only counted by their policies, as netfilter counts every packet that
//! passes a chain.

use pcn_iptables_common::{PacketInfo, chain_flag, phase};

use crate::chain::enter;
use crate::maps::{chain_config, count};

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
