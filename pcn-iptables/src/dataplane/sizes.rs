//! How many entries the shared tables hold. Set at the first install in a namespace (a
//! pinned map keeps its size): from the machine's memory, as netfilter sizes its connection
//! table, or from `--conntrack-size` and `--flow-cache-size`. The connection table takes
//! memory as connections come; the flow cache, an LRU map, reserves its entries (128 bytes
//! each) up front: a quarter of the connection table's, enough for the 64,512 flows of the
//! packet-rate benchmark on this machine (a cache smaller than the flows in use misses every
//! time, and then costs more than no cache).

use anyhow::{Context as _, Result};

/// Sizes of the shared tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Connections (nf_conntrack_max).
    pub conntrack: u32,
    /// Flows whose verdict is remembered.
    pub flows: u32,
}

/// Connection-table entries per flow cache entry, and the least a cache holds.
const CONNECTIONS_PER_FLOW: u32 = 4;
const MIN_FLOWS: u32 = 1024;

impl Sizes {
    /// The defaults on a machine with `ram` bytes of memory.
    pub fn for_memory(ram: u64) -> Sizes {
        let conntrack = conntrack_max(ram);
        Sizes {
            conntrack,
            flows: (conntrack / CONNECTIONS_PER_FLOW).max(MIN_FLOWS),
        }
    }

    /// Keys of new connections kept for a full table's early drop (`PCN_CT_EARLY_DROP`):
    /// the latest sixteenth of the table, at least 1,024 (16 bytes each, reserved).
    pub fn early_drop(&self) -> u32 {
        (self.conntrack / 16).max(1024)
    }

    /// The defaults on this machine.
    pub fn of_machine() -> Result<Sizes> {
        Ok(Sizes::for_memory(mem_total()?))
    }
}

/// nf_conntrack_max's default (`nf_conntrack_init_start`, factor 1): a bucket (8 bytes) per
/// 16 KiB of memory, at least 1,024; 65,536 above 1 GiB and 262,144 above 4 GiB.
pub fn conntrack_max(ram: u64) -> u32 {
    const GIB: u64 = 1 << 30;
    let buckets = if ram > 4 * GIB {
        262_144
    } else if ram > GIB {
        65_536
    } else {
        (ram / 16384 / 8) as u32
    };
    buckets.max(1024)
}

/// MemTotal, in bytes.
fn mem_total() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .context("no MemTotal in /proc/meminfo")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn early_drop_keeps_the_latest_sixteenth_of_the_table() {
        let sizes = |conntrack| Sizes {
            conntrack,
            flows: 1024,
        };
        assert_eq!(sizes(262_144).early_drop(), 16_384);
        assert_eq!(sizes(65_536).early_drop(), 4096);
        assert_eq!(sizes(8).early_drop(), 1024);
    }

    #[test]
    fn the_connection_table_follows_memory_as_netfilters_does() {
        assert_eq!(conntrack_max(24 * 1024 * MIB), 262_144);
        assert_eq!(conntrack_max(4 * 1024 * MIB + 1), 262_144);
        assert_eq!(conntrack_max(4 * 1024 * MIB), 65_536);
        assert_eq!(conntrack_max(2 * 1024 * MIB), 65_536);
        assert_eq!(conntrack_max(512 * MIB), 4096);
        assert_eq!(conntrack_max(64 * MIB), 1024);
    }

    #[test]
    fn the_flow_cache_follows_the_connection_table() {
        let big = Sizes::for_memory(24 * 1024 * MIB);
        assert_eq!(big.flows, 65_536);
        assert_eq!(Sizes::for_memory(2 * 1024 * MIB).flows, 16_384);
        assert_eq!(Sizes::for_memory(64 * MIB).flows, 1024);
    }
}
