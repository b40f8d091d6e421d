//! The values rules are made of: `!`, port ranges, interfaces, protocol numbers.

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
