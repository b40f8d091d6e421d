//! The only stage that talks to the kernel: pinned state per network namespace, generations of
//! classifier maps swapped atomically, attachment, counters, the lock.
//!
//! Layout of a namespace's directory on the bpffs:
//! - `PCN_ACTIVE`, `PCN_PROGS_XDP`, `PCN_PROGS_TC`, `PCN_PACKETS`, `PCN_CONNTRACK`,
//!   `PCN_CT_EARLY_DROP`, `PCN_FLOWS`:
//!   maps pinned by name, shared by every generation;
//! - `COUNTERS`: the rule counters, pages of per-CPU arrays made as the rules need them
//!   (`counters`);
//! - `state-0`, `state-1`: the ruleset of each of the two generation slots and what its maps
//!   hold (see `state`);
//! - `prog-ingress`, `prog-egress`: the entry programs;
//! - `gen-HASH/`: the classifiers of one build of the eBPF object and the outer maps (array of
//!   maps, one slot per generation) through which they reach a generation's maps;
//! - `prog-answer`: the TC ingress program that sends REJECT's answers built at XDP;
//! - `xdp-IFINDEX`, `tc-IFINDEX`, `tci-IFINDEX`: the links of the entry programs (`attach`);
//! - `PCN_TC_CLASSIC`: on an install on the classic TC hook (kernels without TCX: no TC links
//!   then), the interfaces whose clsact qdisc it made (`tc`);
//! - `PCN_SETTINGS`: the ICMP rate limit sysctls and kernel offsets the data plane uses,
//!   refreshed at every change; `PCN_ICMP_PEERS`, `PCN_ICMP_GLOBAL`: REJECT's ICMP error
//!   buckets (per destination, namespace-wide);
//! - `PCN_LOCAL_ROUTES`: the local routing table with devices, for `-m addrtype
//!   --limit-iface-in/out` (`local_routes`);
//! - `PCN_OWNER_GROUPS`: each generation slot's `-m owner --suppl-groups` GID ranges
//!   (`owner`);
//! - `PCN_LOG`, `PCN_LOG_LOST`: the ring buffer of `-j LOG` records and the count of records
//!   it had no room for (read by `--log-follow`).
//!
//! A change writes the new generation into the slot that is not active (in place, or into new
//! maps; see `generation`), then flips `PCN_ACTIVE`:
//! that single map write switches both the packets and the stored state, so an invocation
//! killed at any point leaves the old ruleset both running and stored.

mod attach;
pub mod bpffs;
mod btf;
mod connlimit;
pub mod conntrack;
mod counters;
mod gc;
mod generation;
pub mod hashlimit;
mod load;
mod local_routes;
pub mod lock;
pub mod log;
mod owner;
pub mod recent;
pub mod routes;
mod rtnl;
mod settings;
pub mod sizes;
pub(crate) mod state;
mod sys;
mod tc;
mod timer;

use std::{
    fs,
    path::{Path, PathBuf},
};

use std::os::fd::AsFd as _;

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData};
use pcn_iptables_common::Counter;

use crate::{
    compile::{self, Link, Program},
    model::{HashlimitTable, RecentList, Table},
};

pub use attach::{EGRESS_PIN, INGRESS_PIN};
pub use generation::ELF;
use generation::Grace;
pub use rtnl::{links, rule_selectors};
pub use settings::{fib_lookup_takes_mark, lo_forwards, reads_socket_owners};
pub use timer::{START, Timer};

/// The flow cache's pin.
pub const FLOWS_MAP: &str = "PCN_FLOWS";
/// A full connection table's candidates for early drop.
pub const EARLY_DROP_MAP: &str = "PCN_CT_EARLY_DROP";

/// One network namespace's installation.
pub struct Dataplane {
    dir: PathBuf,
    /// Sizes of the shared tables, should this commit be the first install (`None`: this
    /// machine's defaults).
    sizes: Option<sizes::Sizes>,
    grace: Grace,
    /// The inactive slot's bitmaps, to be mapped (see `start_grace`), being mapped.
    prefetch_wanted: std::sync::atomic::AtomicBool,
    prefetch: std::sync::Mutex<Option<std::thread::JoinHandle<Option<generation::Prefetched>>>>,
    /// Programs being loaded ahead (see `start_setup`), and whether that installs here.
    setup: std::sync::Mutex<Option<(std::thread::JoinHandle<Result<()>>, bool)>>,
    /// Told when those programs' maps exist (before the programs are verified).
    maps_ready: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// The active slot once read (under the command's lock, which every caller holds), until
    /// this process switches or removes it.
    active: std::sync::Mutex<Option<Option<u32>>>,
}

/// What a namespace runs: its ruleset, and what the active slot's maps hold.
pub struct State {
    pub table: Table,
    running: Option<Running>,
}

struct Running {
    slot: u32,
    info: state::Slot,
}

impl State {
    /// What a change can be compiled on (`None`: nothing, or a state too old to say), with
    /// `old` telling the rules it left alone (by default the running table).
    pub fn base<'a>(&'a self, old: Option<compile::Old<'a>>) -> Option<compile::Base<'a>> {
        self.running.as_ref().map(|r| compile::Base {
            old: old.unwrap_or(compile::Old::Table(&self.table)),
            layout: &r.info.layout,
        })
    }
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

/// Empties, in the outer map `open` gives (opened only then), the slots `old` had that `new`
/// does not: the named lists and tables no rule names any more.
fn retire_slots(
    open: impl FnOnce() -> Result<std::os::fd::OwnedFd>,
    old: &[u16],
    new: &[u16],
) -> Result<()> {
    let gone: Vec<u16> = old.iter().copied().filter(|s| !new.contains(s)).collect();
    if gone.is_empty() {
        return Ok(());
    }
    let outer = open()?;
    for slot in gone {
        sys::map_delete(outer.as_fd(), &(slot as u32).to_ne_bytes())?;
    }
    Ok(())
}

impl Dataplane {
    /// Finds (without creating anything yet) the state of the current network namespace.
    pub fn open() -> Result<Self> {
        bpffs::ensure()?;
        Ok(Dataplane {
            dir: bpffs::netns_dir()?,
            sizes: None,
            grace: Grace::default(),
            prefetch_wanted: std::sync::atomic::AtomicBool::new(false),
            prefetch: std::sync::Mutex::new(None),
            setup: std::sync::Mutex::new(None),
            maps_ready: std::sync::Mutex::new(None),
            active: std::sync::Mutex::new(None),
        })
    }

    /// The shared tables' sizes if the next commit installs pcn-iptables here.
    pub fn with_sizes(mut self, sizes: sizes::Sizes) -> Self {
        self.sizes = Some(sizes);
        self
    }

    /// The sizes of the installed shared tables, if any.
    pub fn installed_sizes(&self) -> Result<Option<sizes::Sizes>> {
        let max_entries = |name: &str| -> Result<u32> {
            let path = self.dir.join(name);
            let map =
                MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
            Ok(map.info()?.max_entries())
        };
        if !self.dir.join(conntrack::MAP).exists() {
            return Ok(None);
        }
        Ok(Some(sizes::Sizes {
            conntrack: max_entries(conntrack::MAP)?,
            flows: max_entries(FLOWS_MAP)?,
        }))
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
        let mut cached = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(active) = *cached {
            return Ok(active);
        }
        let active = match open_map(&self.dir, "PCN_ACTIVE")? {
            Some(map) => Some(Array::<_, u32>::try_from(map)?.get(&0, 0)?),
            None => None,
        };
        *cached = Some(active);
        Ok(active)
    }

    /// Forgets the active slot read: it changed, or may have.
    fn forget_active(&self) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Starts waiting, in the background, for the packets of the generation that was active
    /// before the last switch to be done: call once the lock is held, when a change is coming.
    pub fn start_grace(&self) {
        let active = self.active().ok().flatten();
        match active {
            Some(slot) => self.grace.start_after(&self.dir, slot),
            None => self.grace.start(),
        }
        // The bitmaps of the slot the change goes to, mapped once the state is read (mapping
        // holds the address space's lock: decoding would wait for it).
        self.prefetch_wanted
            .store(active.is_some(), std::sync::atomic::Ordering::Relaxed);
    }

    fn start_prefetch(&self, active: u32) {
        if self
            .prefetch_wanted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let dir = self.dir.clone();
            let handle = std::thread::spawn(move || generation::prefetch(&dir, active));
            *self.prefetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
    }

    /// Loads the eBPF programs in the background if a commit will need them (a first install,
    /// or a new binary): they take long to verify, and meanwhile a restore reads its input.
    /// Nothing is attached or switched before the commit; call with the lock held.
    pub fn start_setup(&self) {
        let mut setup = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        if setup.is_some() || generation::is_set_up(&self.dir) {
            return;
        }
        let fresh = !self.dir.join(conntrack::MAP).exists();
        let (dir, sizes) = (self.dir.clone(), self.sizes);
        let (ready, maps_ready) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || generation::set_up(&dir, sizes, Some(ready)));
        *setup = Some((handle, fresh));
        *self.maps_ready.lock().unwrap_or_else(|e| e.into_inner()) = Some(maps_ready);
    }

    /// Waits for `start_setup`'s programs: `Ok(true)` if they are a first install here.
    fn join_setup(&self) -> Result<bool> {
        let taken = self.setup.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            None => Ok(false),
            Some((handle, fresh)) => {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("loading the eBPF programs")))?;
                Ok(fresh)
            }
        }
    }

    /// Undoes what `start_setup` installed on a first install when nothing got committed
    /// (a restore that failed): the namespace is left as it was, without pcn-iptables.
    pub fn abandon_setup(&self) {
        if let Ok(true) = self.join_setup() {
            let _ = self.remove();
        }
    }

    /// The ruleset in force (the default table when nothing was installed).
    pub fn read_table(&self) -> Result<Table> {
        Ok(self.read_state()?.table)
    }

    /// The ruleset in force and what its maps hold.
    pub fn read_state(&self) -> Result<State> {
        let _t = Timer("read_state", std::time::Instant::now());
        // A first install that died before its switch leaves PCN_ACTIVE but no state.
        if let Some(slot) = self.active()?
            && let Some((table, info)) = state::read(&self.dir, slot)?
        {
            self.start_prefetch(slot);
            return Ok(State {
                table,
                running: info.map(|info| Running { slot, info }),
            });
        }
        Ok(State {
            table: Table::default(),
            running: None,
        })
    }

    /// Installs `program` (compiled from `table` for `links`, maybe on `running`) as the new
    /// generation, then makes it the active one. `fresh_counters` are the slots of rules new
    /// in `table` with the counts they start from (zero, or what a restore file says), set
    /// before they go live; `old_lists`: the running generation's recent lists and hashlimit
    /// tables (`table` has
    /// its own). `false`: the program was built on the running generation, whose
    /// maps cannot take it; a full build can.
    pub fn commit(
        &self,
        table: &Table,
        program: &Program,
        links: &[Link],
        fresh_counters: &[(u32, Counter)],
        running: &State,
        old_lists: &(Vec<RecentList>, Vec<HashlimitTable>),
    ) -> Result<bool> {
        generation::refuse_other_layouts(&self.dir)?;
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        // A first install: the programs verify while the new generation's maps fill (their
        // store into the maps of maps waits for a grace period), not before. A commit that
        // fails takes back what that made.
        self.start_setup();
        let committed =
            self.commit_started(table, program, links, fresh_counters, running, old_lists);
        if committed.is_err() {
            self.abandon_setup();
        }
        committed
    }

    fn commit_started(
        &self,
        table: &Table,
        program: &Program,
        links: &[Link],
        fresh_counters: &[(u32, Counter)],
        running: &State,
        old_lists: &(Vec<RecentList>, Vec<HashlimitTable>),
    ) -> Result<bool> {
        // A fresh PCN_ACTIVE reads 0, so the first install goes to slot 1 and still has a
        // flip as its commit point.
        let active = self.active()?;
        let next = match active {
            Some(slot) => (slot + 1) % pcn_iptables_common::GENERATIONS,
            None => 1,
        };
        // Namespaces come and go with installs: collecting on each first install keeps the
        // leftovers bounded without a directory walk on every change.
        if active.is_none() {
            gc::collect(&self.dir);
        }
        let t = Timer("install", std::time::Instant::now());
        let lists = (&old_lists.0, &table.tables.recent);
        recent::prepare(&self.dir, lists.0, lists.1)?;
        let hashlimits = (&old_lists.1, &table.tables.hashlimit);
        hashlimit::prepare(&self.dir, hashlimits.0, hashlimits.1)?;
        let prefetched = self
            .prefetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .and_then(|h| h.join().ok().flatten());
        let installed = generation::install(
            &self.dir,
            &generation::Change {
                table,
                program,
                slot: next,
                running: running
                    .running
                    .as_ref()
                    .filter(|r| Some(r.slot) == active)
                    .map(|r| &r.info),
                fresh_counters,
                links,
                grace: &self.grace,
            },
            prefetched,
            &|| {
                let ready = self
                    .maps_ready
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                // A setup under way says when its maps exist (or fails: then joining says why).
                if ready.is_some_and(|r| r.recv().is_ok()) {
                    return Ok(());
                }
                self.join_setup()?;
                generation::set_up(&self.dir, self.sizes, None)
            },
            &|| {
                self.join_setup()?;
                generation::set_up(&self.dir, self.sizes, None)
            },
        );
        self.forget_active();
        let installed = match installed {
            // A first install that failed (a program the kernel refused, say) takes back what
            // it attached: the namespace is as it was, without pcn-iptables.
            Err(e) if active.is_none() => {
                let _ = self.join_setup();
                let _ = self.remove();
                return Err(e);
            }
            r => r?,
        };
        drop(t);
        if installed {
            recent::retire(&self.dir, lists.0, lists.1)?;
            hashlimit::retire(&self.dir, hashlimits.0, hashlimits.1)?;
            // A helper marks the new generation once a grace period has passed since the
            // switch, so that the next change need not wait for one.
            let _ = (|| -> Result<()> {
                let id = generation::state_id(&self.dir, next)? as u64;
                let marker = generation::grace_marker(&self.dir)?;
                let key = 0u32.to_ne_bytes();
                let pending = id | generation::GRACE_PENDING;
                sys::map_update(marker.as_fd(), &key, &pending.to_ne_bytes(), 0)?;
                if !matches!(sys::after_grace_period(marker.as_fd(), id), Ok(true)) {
                    sys::map_update(marker.as_fd(), &key, &0u64.to_ne_bytes(), 0)?;
                }
                Ok(())
            })();
        }
        Ok(installed)
    }

    /// A reader of (packets, bytes) per counter slot, summed over CPUs.
    pub fn counters(&self) -> Result<impl Fn(u32) -> (u64, u64) + use<>> {
        let counters = std::cell::RefCell::new(counters::Counters::open(&self.dir)?);
        Ok(move |slot: u32| {
            counters
                .borrow_mut()
                .as_mut()
                .map_or((0, 0), |c| c.get(slot))
        })
    }

    /// Zeroes the given counter slots (`-Z`).
    pub fn zero(&self, slots: impl IntoIterator<Item = u32>) -> Result<()> {
        if let Some(mut counters) = counters::Counters::open(&self.dir)? {
            let zeros: Vec<_> = slots.into_iter().map(|s| (s, Counter::default())).collect();
            counters.set(&zeros)?;
        }
        Ok(())
    }

    /// Removes this layout's install from the namespace: the classic TC filters, then the
    /// directory (the links go with their pins). The lock stays: it is held.
    fn remove(&self) -> Result<()> {
        self.forget_active();
        tc::remove(&self.dir, &links()?)?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing {}", self.dir.display()))?;
        }
        Ok(())
    }

    /// Removes every program, link, classic TC filter and pin of this namespace, those of
    /// other versions' layouts too.
    pub fn uninstall(&self) -> Result<()> {
        self.remove()?;
        for dir in bpffs::other_layouts()? {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        if let Ok(lock) = self.lock_path() {
            let _ = fs::remove_file(lock);
        }
        Ok(())
    }
}
