//! `-m addrtype --limit-iface-in/out`: an address's type as the kernel's
//! `inet_dev_addr_type` gives it for the packet's device. 0.0.0.0/8 and 255.255.255.255 are
//! BROADCAST and 224.0.0.0/4 MULTICAST; else the longest route of the local table that covers
//! the address gives its type if the route goes through that device, and the address is
//! UNICAST otherwise (no route, or one through another device).

use crate::rtn;

/// `Action::addrtype_flags`
pub mod flag {
    /// The types through the packet's input device (`--limit-iface-in`)...
    pub const IN: u8 = 1;
    /// ...or its output device (`--limit-iface-out`).
    pub const OUT: u8 = 2;
    /// `! --src-type`, `! --dst-type`.
    pub const INVERT_SRC: u8 = 4;
    pub const INVERT_DST: u8 = 8;
}

/// Routes the data plane's copy of the local table holds.
pub const LOCAL_ROUTES: u32 = 16384;

/// A route of the local table: its type (`rtn::*`) and device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalRoute {
    pub kind: u32,
    pub ifindex: u32,
}

/// The type of `addr` (network order) for device `dev`, `route` being the local table's
/// longest route that covers it.
#[inline(always)]
pub fn dev_addr_type(addr: [u8; 4], dev: u32, route: Option<LocalRoute>) -> u32 {
    let a = u32::from_be_bytes(addr);
    if a >> 24 == 0 || a == u32::MAX {
        return rtn::BROADCAST as u32;
    }
    if a >> 28 == 0xe {
        return rtn::MULTICAST as u32;
    }
    match route {
        Some(r) if r.ifindex == dev => r.kind,
        _ => rtn::UNICAST as u32,
    }
}

/// Whether the source's and destination's types (`rtn::*`) are those of the rule: `types`
/// are its `--src-type` and `--dst-type` sets (`1 << rtn::*` bits, 0: no such option).
#[inline(always)]
pub fn matches(flags: u8, types: [u16; 2], src: u32, dst: u32) -> bool {
    let one = |set: u16, kind: u32, invert: u8| {
        set == 0 || ((set as u32 >> (kind & 15)) & 1 != 0) != (flags & invert != 0)
    };
    one(types[0], src, flag::INVERT_SRC) && one(types[1], dst, flag::INVERT_DST)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: u16 = 1 << rtn::LOCAL;

    #[test]
    fn types_follow_the_device() {
        let route = Some(LocalRoute {
            kind: rtn::LOCAL as u32,
            ifindex: 3,
        });
        assert_eq!(dev_addr_type([198, 18, 1, 2], 3, route), rtn::LOCAL as u32);
        assert_eq!(
            dev_addr_type([198, 18, 1, 2], 4, route),
            rtn::UNICAST as u32
        );
        assert_eq!(dev_addr_type([198, 18, 1, 2], 3, None), rtn::UNICAST as u32);
        assert_eq!(dev_addr_type([0, 1, 2, 3], 3, route), rtn::BROADCAST as u32);
        assert_eq!(dev_addr_type([255; 4], 3, route), rtn::BROADCAST as u32);
        assert_eq!(
            dev_addr_type([239, 1, 1, 1], 3, route),
            rtn::MULTICAST as u32
        );
    }

    #[test]
    fn sets_and_inversions() {
        let (local, unicast) = (rtn::LOCAL as u32, rtn::UNICAST as u32);
        assert!(matches(flag::IN, [0, LOCAL], unicast, local));
        assert!(!matches(flag::IN, [0, LOCAL], local, unicast));
        assert!(matches(
            flag::IN | flag::INVERT_DST,
            [0, LOCAL],
            local,
            unicast
        ));
        assert!(!matches(flag::OUT, [LOCAL, LOCAL], local, unicast));
        assert!(matches(
            flag::OUT | flag::INVERT_SRC,
            [LOCAL, 0],
            unicast,
            0
        ));
    }
}
