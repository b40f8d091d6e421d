//! The flow cache: the verdict a generation found for a flow whose base chain (and every
//! chain it met) depends on the `FlowKey` alone, with the counters it bumped, so that the
//! flow's next packets skip the classifier.

use pcn_iptables_common::{FLOW_COUNTERS, FlowKey, PacketInfo, chain_flag, flow_flag};

use crate::maps::{PCN_FLOWS, chain_config, count};

/// The verdict this generation already found for the packet's flow, if its base chain is
/// cacheable: the packet then counts for the rules the flow met, and skips the classifier.
/// Otherwise the classifier starts a new entry (`pkt.flow`), stored by `remember_verdict`.
#[inline(always)]
pub(crate) fn cached_verdict(pkt: &mut PacketInfo, chain: u32, slot: u32) -> Option<u32> {
    pkt.flow_cacheable = 0;
    let cfg = chain_config(slot, chain)?;
    // A packet cut short may be dropped where its flow's others pass (`hotdrop`): neither
    // answered from the cache nor stored there.
    if cfg.flags & chain_flag::CACHEABLE == 0 || pkt.cut != 0 {
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
pub(crate) fn count_for(pkt: &mut PacketInfo, counter: u32) {
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
pub(crate) fn remember_verdict(pkt: &mut PacketInfo, verdict: u32) {
    if pkt.flow_cacheable != 0 {
        pkt.flow.verdict = verdict;
        let _ = PCN_FLOWS.insert(&pkt.flow_key, &pkt.flow, 0);
    }
}
