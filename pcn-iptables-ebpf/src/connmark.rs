//! `-j CONNMARK`: the mark of the packet's connection (kept in its entry) or the packet's own
//! changes as xt_CONNMARK changes them (`pcn_iptables_common::conntrack::connmark`).

use pcn_iptables_common::conntrack::{self, ctstate::has_connection};

use crate::maps::{PCN_CONNTRACK, PCN_PACKETS, action};

/// Rule action `index` of generation `slot`'s CONNMARK, on the packet of `hook`. A new
/// connection's mark is stored with it when it is confirmed; a live one's is written into its
/// entry at once. A global function, as `pcn_first_match`: checked once by the verifier.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_connmark(hook: u32, slot: u32, index: u32) -> u32 {
    let (Some(pkt), Some(a)) = (PCN_PACKETS.get_ptr_mut(hook), action(slot, index)) else {
        return 0;
    };
    let pkt = unsafe { &mut *pkt };
    if !has_connection(pkt.ctstate) {
        return 0;
    }
    let (ct_mark, mark) = conntrack::connmark(pkt.ct_mark, pkt.mark, a);
    pkt.mark = mark;
    if ct_mark != pkt.ct_mark {
        pkt.ct_mark = ct_mark;
        if pkt.ct_commit != 0 {
            pkt.ct_entry.mark = ct_mark;
        } else if let Some(e) = PCN_CONNTRACK.get_ptr_mut(&pkt.ct_key) {
            unsafe { (*e).mark = ct_mark };
        }
    }
    1
}
