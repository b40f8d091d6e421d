//! The values rules are made of: `!`, addresses with their masks, port ranges, interfaces,
//! protocol numbers.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// A value with iptables' `!` in front of it or not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negatable<T> {
    pub value: T,
    pub negated: bool,
}

impl<T> Negatable<T> {
    pub fn plain(value: T) -> Self {
        Negatable {
            value,
            negated: false,
        }
    }
}

/// `-s`/`-d`: an address and its mask, the address masked, as `struct ipt_ip` keeps them; the
/// mask need not be contiguous (`1.0.3.0/255.0.255.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrMask {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
}

impl AddrMask {
    pub fn new(addr: Ipv4Addr, mask: Ipv4Addr) -> Self {
        AddrMask {
            addr: addr & mask,
            mask,
        }
    }

    /// `addr/prefix`; None past 32.
    pub fn prefixed(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        let zeros = 32u32.checked_sub(u32::from(prefix))?;
        let mask = u32::MAX.checked_shl(zeros).unwrap_or(0);
        Some(AddrMask::new(addr, mask.into()))
    }

    /// The mask's prefix length, if it is contiguous.
    pub fn prefix(&self) -> Option<u8> {
        let m = u32::from(self.mask);
        (m.leading_ones() + m.trailing_zeros() == 32).then_some(m.leading_ones() as u8)
    }

    /// The addresses a contiguous mask covers, first and last.
    pub fn range(&self) -> Option<(u32, u32)> {
        self.prefix()?;
        let (addr, mask) = (u32::from(self.addr), u32::from(self.mask));
        Some((addr, addr | !mask))
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        a & self.mask == self.addr
    }

    /// `xtables_ipmask_to_numeric` without its `/`: the prefix length, or the dotted mask
    /// where it is not contiguous.
    pub fn mask_text(&self) -> String {
        match self.prefix() {
            Some(p) => p.to_string(),
            None => self.mask.to_string(),
        }
    }
}

impl From<ipnetwork::Ipv4Network> for AddrMask {
    fn from(n: ipnetwork::Ipv4Network) -> Self {
        AddrMask::new(n.network(), n.mask())
    }
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// An interface name as iptables takes it: `eth0` exactly, or `eth+` for every name starting
/// with `eth` (`wildcard` set, `+` not stored).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub wildcard: bool,
}

impl Interface {
    /// `+` alone: every interface. libiptc compares it equal to no interface at all, and
    /// `-S` leaves it out, but `-L` shows it.
    pub fn is_any(&self) -> bool {
        self.wildcard && self.name.is_empty()
    }

    pub fn matches(&self, ifname: &str) -> bool {
        if self.wildcard {
            ifname.starts_with(&self.name)
        } else {
            ifname == self.name
        }
    }
}

/// Protocol numbers iptables knows by name in `-p` and prints by name in `-S`.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ESP: u8 = 50;
pub const IPPROTO_AH: u8 = 51;
