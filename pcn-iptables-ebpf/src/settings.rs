//! `PCN_SETTINGS`: what userspace tells the data plane at every change (the namespace's ICMP
//! rate limit sysctls, the kernel structure offsets `--log-uid` reads, the interface
//! addresses). Pinned: shared by every generation and build.

use aya_ebpf::{macros::map, maps::Array};
use pcn_iptables_common::Settings;

#[map]
static PCN_SETTINGS: Array<Settings> = Array::pinned(1, 0);

/// The settings, `None` until userspace wrote them.
#[inline(always)]
pub fn get() -> Option<&'static Settings> {
    PCN_SETTINGS.get(0).filter(|s| s.set != 0)
}

/// The address inet_select_addr() would pick on interface `ifindex` to reach `dst`: its first
/// address on `dst`'s subnet, else its first address (userspace lists them as of the last
/// change, as the kernel orders them). In network byte order, 0 for none (an `Option` of an
/// array leaves bytes undefined that the verifier then refuses to read).
#[inline(always)]
pub fn if_source(ifindex: u32, dst: [u8; 4]) -> u32 {
    let Some(s) = get() else {
        return 0;
    };
    let dst = u32::from_ne_bytes(dst);
    let mut first = 0;
    for a in s.if_addrs.iter() {
        if a.ifindex != ifindex || ifindex == 0 {
            continue;
        }
        let (addr, mask) = (u32::from_ne_bytes(a.addr), u32::from_ne_bytes(a.mask));
        if addr & mask == dst & mask {
            return addr;
        }
        if first == 0 {
            first = addr;
        }
    }
    first
}

/// Interface `ifindex`'s first address (what REDIRECT redirects to), network byte order; 0
/// for none.
#[inline(always)]
pub fn if_primary(ifindex: u32) -> u32 {
    let Some(s) = get() else {
        return 0;
    };
    for a in s.if_addrs.iter() {
        if a.ifindex == ifindex && ifindex != 0 {
            return u32::from_ne_bytes(a.addr);
        }
    }
    0
}
