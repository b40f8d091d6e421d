//! The only stage that talks to the kernel: pinned state per network namespace, generations of
//! classifier maps swapped atomically, attachment, counters, the lock.
//!
//! Layout of a namespace's directory on the bpffs:
//! - `PCN_ACTIVE`, `PCN_PROGS_XDP`, `PCN_PROGS_TC`, `PCN_COUNTERS`, `PCN_PKT_*`: maps pinned by
//!   name, shared by every generation;
//! - `state-0`, `state-1`: the ruleset (as `-S` text) of each of the two generation slots;
//! - `prog-ingress`, `prog-egress`: the entry programs;
//! - `gen-HASH/`: the classifiers of one build of the eBPF object and the outer maps (array of
//!   maps, one slot per generation) through which they reach a generation's maps;
//! - `prog-answer`: the TC ingress program that sends REJECT's answers built at XDP;
//! - `xdp-IFINDEX`, `tc-IFINDEX`, `tci-IFINDEX`: the links of the entry programs (`attach`);
//! - `PCN_SETTINGS`: the ICMP rate limit sysctls and kernel offsets the data plane uses,
//!   refreshed at every change; `PCN_ICMP_PEERS`, `PCN_ICMP_GLOBAL`: REJECT's ICMP error
//!   buckets (per destination, namespace-wide);
//! - `PCN_LOG`, `PCN_LOG_LOST`: the ring buffer of `-j LOG` records and the count of records
//!   it had no room for (read by `--log-follow`).
//!
//! A change creates the new generation's maps and stores them in the slot that is not active
//! (see `generation`), then flips `PCN_ACTIVE`:
//! that single map write switches both the packets and the stored state, so an invocation
//! killed at any point leaves the old ruleset both running and stored.

mod attach;
pub mod bpffs;
mod btf;
pub mod conntrack;
mod gc;
mod generation;
pub mod lock;
pub mod log;
pub mod routes;
mod settings;
mod state;
mod sys;

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData, PerCpuArray, PerCpuValues};
use pcn_iptables_common::Counter;

use crate::{
    compile::{Compiled, Link},
    ruleset::model::Table,
};

pub use generation::{EGRESS_PIN, ELF, INGRESS_PIN, links};

/// Prints how long a phase of a change took on stderr, when `PCN_IPTABLES_TIMING` is set.
pub struct Timer(pub &'static str, pub std::time::Instant);

/// One network namespace's installation.
pub struct Dataplane {
    dir: PathBuf,
    /// Size of the connection table, should this commit be the first install.
    conntrack_entries: u32,
}

fn open_map(dir: &Path, name: &str) -> Result<Option<Map>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Some(
        Map::from_map_data(data).with_context(|| format!("reading {}", path.display()))?,
    ))
}

impl Dataplane {
    /// Finds (without creating anything yet) the state of the current network namespace.
    pub fn open() -> Result<Self> {
        bpffs::ensure()?;
        Ok(Dataplane {
            dir: bpffs::netns_dir()?,
            conntrack_entries: pcn_iptables_common::CONNTRACK_ENTRIES,
        })
    }

    /// The connection table's size if the next commit installs pcn-iptables here.
    pub fn with_conntrack_entries(mut self, entries: u32) -> Self {
        self.conntrack_entries = entries;
        self
    }

    /// The size of the installed connection table, if any.
    pub fn conntrack_entries(&self) -> Result<Option<u32>> {
        let path = self.dir.join(conntrack::MAP);
        if !path.exists() {
            return Ok(None);
        }
        let map =
            MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Some(map.info()?.max_entries()))
    }

    /// This namespace's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file of this namespace.
    pub fn lock_path(&self) -> Result<PathBuf> {
        lock::path()
    }

    /// The active generation slot, if anything was ever installed here.
    fn active(&self) -> Result<Option<u32>> {
        let Some(map) = open_map(&self.dir, "PCN_ACTIVE")? else {
            return Ok(None);
        };
        let active: Array<_, u32> = Array::try_from(map)?;
        Ok(Some(active.get(&0, 0)?))
    }

    /// The ruleset in force (the default table when nothing was installed).
    pub fn read_table(&self) -> Result<Table> {
        let _t = Timer("read_table", std::time::Instant::now());
        match self.active()? {
            // A first install that died before its switch leaves PCN_ACTIVE but no state.
            Some(slot) if state::path(&self.dir, slot).exists() => state::read(&self.dir, slot),
            _ => Ok(Table::default()),
        }
    }

    /// Installs `compiled` (compiled from `table` for `links`) as the new generation, then
    /// makes it the active one. `fresh_counters` are the slots of rules new in `table` with the
    /// counts they start from (zero, or what a restore file says), set before they go live.
    pub fn commit(
        &self,
        table: &Table,
        compiled: &Compiled,
        links: &[Link],
        fresh_counters: &[(u32, Counter)],
    ) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        // A fresh PCN_ACTIVE reads 0, so the first install goes to slot 1 and still has a
        // flip as its commit point.
        let next = match self.active()? {
            Some(slot) => (slot + 1) % pcn_iptables_common::GENERATIONS,
            None => 1,
        };
        gc::collect(&self.dir);
        let _t = Timer("encode+install", std::time::Instant::now());
        generation::install(
            &self.dir,
            compiled,
            &state::encode(table),
            next,
            fresh_counters,
            links,
            self.conntrack_entries,
        )
    }

    fn counter_map(&self) -> Result<Option<PerCpuArray<MapData, Counter>>> {
        Ok(match open_map(&self.dir, "PCN_COUNTERS")? {
            Some(map) => Some(PerCpuArray::try_from(map)?),
            None => None,
        })
    }

    /// A reader of (packets, bytes) per counter slot, summed over CPUs.
    pub fn counters(&self) -> Result<impl Fn(u32) -> (u64, u64)> {
        let map = self.counter_map()?;
        Ok(move |slot: u32| {
            map.as_ref()
                .and_then(|m| m.get(&slot, 0).ok())
                .map(|v| {
                    v.iter()
                        .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
                })
                .unwrap_or((0, 0))
        })
    }

    /// Zeroes the given counter slots (`-Z`).
    pub fn zero(&self, slots: impl IntoIterator<Item = u32>) -> Result<()> {
        if let Some(mut map) = self.counter_map()? {
            set_counters(&mut map, slots.into_iter().map(|s| (s, Counter::default())))?;
        }
        Ok(())
    }

    /// Removes every program, link and pin of this namespace.
    pub fn uninstall(&self) -> Result<()> {
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing {}", self.dir.display()))?;
        }
        if let Ok(lock) = self.lock_path() {
            let _ = fs::remove_file(lock);
        }
        Ok(())
    }
}

/// Sets counter slots: the first CPU's share holds the whole count, the others none.
pub(crate) fn set_counters<T: std::borrow::BorrowMut<MapData>>(
    map: &mut PerCpuArray<T, Counter>,
    counters: impl IntoIterator<Item = (u32, Counter)>,
) -> Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    for (slot, counter) in counters {
        let mut values = vec![Counter::default(); cpus];
        values[0] = counter;
        map.set(slot, PerCpuValues::try_from(values)?, 0)
            .with_context(|| format!("setting counter {slot}"))?;
    }
    Ok(())
}

impl Drop for Timer {
    fn drop(&mut self) {
        if std::env::var_os("PCN_IPTABLES_TIMING").is_some() {
            eprintln!("{}: {:?}", self.0, self.1.elapsed());
        }
    }
}
