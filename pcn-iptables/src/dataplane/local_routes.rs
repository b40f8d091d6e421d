//! `PCN_LOCAL_ROUTES`: the local routing table with each route's device, which `-m addrtype
//! --limit-iface-in/out` looks addresses up in (see `pcn_iptables_common::addrtype`). Written
//! at every change while a rule needs it, so a route added meanwhile counts from the next
//! command, as the address types of the other `-m addrtype` rules do.

use std::{collections::HashSet, path::Path};

use anyhow::{Context as _, Result};
use aya::maps::{LpmTrie, Map, MapData, lpm_trie::Key};
use pcn_iptables_common::addrtype::LocalRoute;

pub const MAP: &str = "PCN_LOCAL_ROUTES";

/// Makes the map hold the local table's routes, if some rule needs them (`needed`).
pub fn prepare(dir: &Path, needed: bool) -> Result<()> {
    if !needed {
        return Ok(());
    }
    let path = dir.join(MAP);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut map: LpmTrie<MapData, [u8; 4], LocalRoute> = LpmTrie::try_from(Map::LpmTrie(data))?;
    let routes = super::rtnl::local_table()?;
    let want: HashSet<(u8, [u8; 4])> = routes
        .iter()
        .map(|(addr, len, _, _)| (*len, addr.octets()))
        .collect();
    let stale: Vec<Key<[u8; 4]>> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !want.contains(&(k.prefix_len() as u8, k.data())))
        .collect();
    for key in stale {
        let _ = map.remove(&key);
    }
    for (addr, len, kind, ifindex) in routes {
        let route = LocalRoute {
            kind: kind as u32,
            ifindex,
        };
        map.insert(&Key::new(len as u32, addr.octets()), route, 0)
            .with_context(|| format!("writing {MAP}"))?;
    }
    Ok(())
}
