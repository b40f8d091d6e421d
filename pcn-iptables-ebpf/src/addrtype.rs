//! `-m addrtype --limit-iface-in/out`: the packet's addresses' types through its device, from
//! the local routes userspace copies into `PCN_LOCAL_ROUTES`.

use aya_ebpf::maps::lpm_trie::Key;
use pcn_iptables_common::addrtype::{self, LocalRoute, flag};
use pcn_iptables_common::{Action, PacketInfo};

use crate::maps::PCN_LOCAL_ROUTES;

/// Whether rule action `a` passes its `-m addrtype` with a device, if it has one.
#[inline(always)]
pub(crate) fn matches(pkt: &PacketInfo, a: &Action) -> bool {
    if a.addrtype_flags == 0 {
        return true;
    }
    let dev = if a.addrtype_flags & flag::OUT != 0 {
        pkt.out_ifindex
    } else {
        pkt.in_ifindex
    };
    let kind = |addr: [u8; 4]| {
        let route: Option<LocalRoute> = PCN_LOCAL_ROUTES.get(&Key::new(32, addr)).copied();
        addrtype::dev_addr_type(addr, dev, route)
    };
    let [src, dst] = a.addrtype_types;
    let src = if src != 0 { kind(pkt.src) } else { 0 };
    let dst = if dst != 0 { kind(pkt.dst) } else { 0 };
    addrtype::matches(a.addrtype_flags, a.addrtype_types, src, dst)
}
