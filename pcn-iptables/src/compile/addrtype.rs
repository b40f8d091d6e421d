//! Address types for `-m addrtype`, decided at compile time: the kernel's `inet_addr_type`
//! calls 0.0.0.0/8 and 255.255.255.255 BROADCAST and 224.0.0.0/4 MULTICAST, then takes the
//! type of the longest route of the local table that covers the address, UNICAST when none
//! does. So a rule's set of types is a set of addresses, matched like `-s`/`-d` in the trie.

use ipnetwork::Ipv4Network;
use pcn_iptables_common::rtn;

use super::interval::{Interval, Values};

/// The type of every IPv4 address, as disjoint intervals covering the whole space in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddressTypes(Vec<(Interval, u8)>);

impl AddressTypes {
    /// From the local table's routes (prefix, `rtn::*`).
    pub fn new(routes: &[(Ipv4Network, u8)]) -> Self {
        let mut map = AddressTypes(vec![(
            Interval {
                first: 0,
                last: u32::MAX,
            },
            rtn::UNICAST,
        )]);
        // Shorter prefixes first, so that longer ones, painted later, win.
        let mut routes = routes.to_vec();
        routes.sort_by_key(|(net, _)| net.prefix());
        for (net, kind) in routes {
            map.paint(net_interval(net), kind);
        }
        let fixed = [
            ("0.0.0.0/8", rtn::BROADCAST),
            ("255.255.255.255/32", rtn::BROADCAST),
            ("224.0.0.0/4", rtn::MULTICAST),
        ];
        for (net, kind) in fixed {
            map.paint(net_interval(net.parse().expect("a valid prefix")), kind);
        }
        map
    }

    /// Gives `range` the type `kind`.
    fn paint(&mut self, range: Interval, kind: u8) {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        for &(i, k) in &self.0 {
            if i.last < range.first || i.first > range.last {
                out.push((i, k));
                continue;
            }
            if i.first < range.first {
                out.push((
                    Interval {
                        first: i.first,
                        last: range.first - 1,
                    },
                    k,
                ));
            }
            if i.last > range.last {
                out.push((
                    Interval {
                        first: range.last + 1,
                        last: i.last,
                    },
                    k,
                ));
            }
        }
        out.push((range, kind));
        out.sort_by_key(|(i, _)| i.first);
        self.0 = out;
    }

    /// The addresses whose type is one of `types` (bit `1 << rtn::*` set).
    pub fn addresses(&self, types: u32) -> Values {
        Values::new(
            self.0
                .iter()
                .filter(|(_, k)| types & (1 << k) != 0)
                .map(|(i, _)| *i)
                .collect(),
        )
    }
}

impl Default for AddressTypes {
    /// A namespace without routes: only the fixed ranges are not UNICAST.
    fn default() -> Self {
        AddressTypes::new(&[])
    }
}

fn net_interval(net: Ipv4Network) -> Interval {
    Interval {
        first: u32::from(net.network()),
        last: u32::from(net.broadcast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(map: &AddressTypes, a: &str) -> u8 {
        let a = u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
        map.0
            .iter()
            .find(|(i, _)| i.first <= a && a <= i.last)
            .unwrap()
            .1
    }

    #[test]
    fn longest_route_wins_and_fixed_ranges_come_first() {
        let net = |s: &str| s.parse::<Ipv4Network>().unwrap();
        let map = AddressTypes::new(&[
            (net("198.18.5.1/32"), rtn::LOCAL),
            (net("127.0.0.0/8"), rtn::LOCAL),
            (net("198.18.5.255/32"), rtn::BROADCAST),
            (net("127.255.255.255/32"), rtn::BROADCAST),
            (net("198.18.5.0/24"), rtn::UNICAST),
        ]);
        assert_eq!(type_of(&map, "127.0.0.1"), rtn::LOCAL);
        assert_eq!(type_of(&map, "127.200.0.1"), rtn::LOCAL);
        assert_eq!(type_of(&map, "127.255.255.255"), rtn::BROADCAST);
        assert_eq!(type_of(&map, "198.18.5.1"), rtn::LOCAL);
        assert_eq!(type_of(&map, "198.18.5.2"), rtn::UNICAST);
        assert_eq!(type_of(&map, "198.18.5.255"), rtn::BROADCAST);
        assert_eq!(type_of(&map, "8.8.8.8"), rtn::UNICAST);
        assert_eq!(type_of(&map, "0.1.2.3"), rtn::BROADCAST);
        assert_eq!(type_of(&map, "255.255.255.255"), rtn::BROADCAST);
        assert_eq!(type_of(&map, "239.1.1.1"), rtn::MULTICAST);
        // Disjoint, in order, covering everything.
        let mut next = 0u64;
        for (i, _) in &map.0 {
            assert_eq!(i.first as u64, next);
            next = i.last as u64 + 1;
        }
        assert_eq!(next, 1 << 32);
        let local = map.addresses(1 << rtn::LOCAL);
        assert_eq!(
            local.intervals(),
            &[
                Interval {
                    first: 0x7f00_0000,
                    last: 0x7fff_fffe
                },
                Interval::single(0xc612_0501),
            ]
        );
    }
}
