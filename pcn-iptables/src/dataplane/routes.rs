//! The kernel's local routing table, which tells an address's type for `-m addrtype`: the
//! kernel's `inet_addr_type` looks the address up there (longest prefix) and takes the route's
//! type (LOCAL, BROADCAST, ...), UNICAST when no route covers it.

use std::net::Ipv4Addr;

use anyhow::{Context as _, Result};
use ipnetwork::Ipv4Network;
use pcn_iptables_common::rtn;

/// The routes of the namespace's local table, as (prefix, `rtn::*`), from /proc/net/fib_trie
/// (the calling thread's network namespace).
pub fn local_routes() -> Result<Vec<(Ipv4Network, u8)>> {
    let text =
        std::fs::read_to_string("/proc/net/fib_trie").context("reading /proc/net/fib_trie")?;
    Ok(parse_fib_trie(&text))
}

/// The entries of the `Local:` trie of /proc/net/fib_trie: a `|-- ADDRESS` line, then one
/// `/LEN SCOPE TYPE` line per route of that address.
fn parse_fib_trie(text: &str) -> Vec<(Ipv4Network, u8)> {
    let mut routes = Vec::new();
    let mut in_local = false;
    let mut address: Option<Ipv4Addr> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_local = line.trim_end() == "Local:";
            continue;
        }
        if !in_local {
            continue;
        }
        let line = line.trim();
        if let Some(a) = line.strip_prefix("|-- ") {
            address = a.parse().ok();
        } else if let (Some(rest), Some(a)) = (line.strip_prefix('/'), address) {
            let mut words = rest.split_whitespace();
            let len = words.next().and_then(|l| l.parse::<u8>().ok());
            let kind = words.nth(1).and_then(route_type);
            if let (Some(len), Some(kind)) = (len, kind)
                && let Ok(net) = Ipv4Network::new(a, len)
            {
                routes.push((net, kind));
            }
        }
    }
    routes
}

/// The kernel's names of route types (`rtn_type_names` in fib_trie.c).
fn route_type(name: &str) -> Option<u8> {
    Some(match name {
        "UNSPEC" => rtn::UNSPEC,
        "UNICAST" => rtn::UNICAST,
        "LOCAL" => rtn::LOCAL,
        "BROADCAST" => rtn::BROADCAST,
        "ANYCAST" => rtn::ANYCAST,
        "MULTICAST" => rtn::MULTICAST,
        "BLACKHOLE" => rtn::BLACKHOLE,
        "UNREACHABLE" => rtn::UNREACHABLE,
        "PROHIBIT" => rtn::PROHIBIT,
        "THROW" => rtn::THROW,
        "NAT" => rtn::NAT,
        "XRESOLVE" => rtn::XRESOLVE,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 2 0 2
     |-- 10.9.0.0
        /16 universe BLACKHOLE
Local:
  +-- 0.0.0.0/0 2 0 2
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 198.18.5.0/24 2 0 2
        +-- 198.18.5.0/31 1 0 0
           |-- 198.18.5.0
              /24 link UNICAST
           |-- 198.18.5.1
              /32 host LOCAL
        |-- 198.18.5.255
           /32 link BROADCAST
";

    #[test]
    fn reads_the_local_trie_only() {
        let net = |s: &str| s.parse::<Ipv4Network>().unwrap();
        assert_eq!(
            parse_fib_trie(FIB_TRIE),
            vec![
                (net("127.0.0.0/8"), rtn::LOCAL),
                (net("127.0.0.1/32"), rtn::LOCAL),
                (net("127.255.255.255/32"), rtn::BROADCAST),
                (net("198.18.5.0/24"), rtn::UNICAST),
                (net("198.18.5.1/32"), rtn::LOCAL),
                (net("198.18.5.255/32"), rtn::BROADCAST),
            ]
        );
    }
}
