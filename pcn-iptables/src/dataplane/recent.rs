//! `-m recent`'s lists in the kernel: the outer map `RECENT` (pinned in the namespace's
//! directory, so that the lists outlive generations and builds) holds, at each list's slot,
//! an array of one `List`. A list is made before the first generation that names it goes
//! live, made anew when its stamps grow (xt_recent empties it then), and dropped once no rule
//! names it. The lists can be read and written as xt_recent's /proc/net/xt_recent/NAME.

use std::{
    os::fd::{AsFd as _, OwnedFd},
    path::Path,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use anyhow::{Context as _, Result, bail};
use pcn_iptables_common::recent::{self, CELLS, ENTRIES, Entry, LISTS, List, Step, Store};

use super::sys;
use crate::model::RecentList;

pub const OUTER_PIN: &str = "RECENT";
const SIZE: usize = std::mem::size_of::<List>();

fn new_list() -> Result<OwnedFd> {
    sys::map_create(
        "PCN_RECENT",
        sys::MAP_TYPE_ARRAY,
        4,
        SIZE as u32,
        1,
        sys::INNER_ARRAY,
    )
    .context("creating a -m recent list")
}

/// Makes and pins the outer map unless it is (before the programs load: the loader reuses the
/// pin).
pub fn create(dir: &Path) -> Result<()> {
    let pin = dir.join(OUTER_PIN);
    if pin.exists() {
        return Ok(());
    }
    sys::pin_outer(&pin, OUTER_PIN, new_list()?.as_fd(), LISTS).context("creating RECENT")
}

fn outer(dir: &Path) -> Result<OwnedFd> {
    create(dir)?;
    sys::obj_get(&dir.join(OUTER_PIN)).context("opening RECENT")
}

/// Before a generation with the lists `new` goes live (`old`: the running one's): an empty
/// list in the slot of each list that is new, or whose stamps grew.
pub fn prepare(dir: &Path, old: &[RecentList], new: &[RecentList]) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let outer = outer(dir)?;
    for l in new {
        let kept = old.contains(l) && sys::id_at(outer.as_fd(), l.slot as u32)?.is_some();
        if !kept {
            sys::set_fd(outer.as_fd(), l.slot as u32, new_list()?.as_fd())
                .context("installing a -m recent list")?;
        }
    }
    Ok(())
}

/// Once a generation with the lists `new` is live: the lists of `old` it does not name go.
pub fn retire(dir: &Path, old: &[RecentList], new: &[RecentList]) -> Result<()> {
    let slots = |lists: &[RecentList]| lists.iter().map(|l| l.slot).collect::<Vec<_>>();
    super::retire_slots(|| outer(dir), &slots(old), &slots(new))
}

/// A list as the data plane keeps it, mapped into this process.
struct Mapped {
    mapping: sys::Mapping,
    cells: [u64; CELLS],
}

impl Mapped {
    fn open(dir: &Path, slot: u16) -> Result<Mapped> {
        let outer = outer(dir)?;
        let Some(id) = sys::id_at(outer.as_fd(), slot as u32)? else {
            bail!("the -m recent list of slot {slot} is gone");
        };
        let map = sys::map_by_id(id)?;
        let mapping = sys::Mapping::new(map.as_fd(), SIZE).context("mapping a -m recent list")?;
        Ok(Mapped {
            mapping,
            cells: [0; CELLS],
        })
    }

    fn list(&self) -> *mut List {
        self.mapping.as_ptr().cast()
    }

    fn key_word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: an aligned u64 of the mapping, which the data plane changes atomically too.
        unsafe { AtomicU64::from_ptr(&raw mut (*self.list()).keys[i]) }
    }
}

impl Store for Mapped {
    fn key(&self, i: usize) -> u64 {
        self.key_word(i).load(Relaxed)
    }

    fn swap_key(&mut self, i: usize, old: u64, new: u64) -> bool {
        self.key_word(i)
            .compare_exchange(old, new, Relaxed, Relaxed)
            .is_ok()
    }

    fn entry(&mut self, i: usize) -> &mut Entry {
        // SAFETY: entry `i` of the mapped list.
        unsafe { &mut (*self.list()).entries[i] }
    }

    fn count(&mut self, i: usize) -> u64 {
        // SAFETY: as in `key_word`.
        let written = unsafe { AtomicU64::from_ptr(&raw mut (*self.list()).entries[i].written) };
        written.fetch_add(1, Relaxed)
    }

    fn cell(&mut self, k: usize) -> *mut u64 {
        &mut self.cells[k]
    }

    fn each<B: Step>(&mut self, n: usize) {
        for i in 0..n {
            if B::step(self, i) {
                break;
            }
        }
    }
}

/// One address of a list: as /proc/net/xt_recent/NAME shows it (times in nanoseconds of the
/// monotonic clock, not jiffies).
pub struct Seen {
    pub addr: [u8; 4],
    pub ttl: u8,
    /// xt_recent's `index`: where the next time goes, plus one.
    pub index: u64,
    pub last_seen: u64,
    pub stamps: Vec<u64>,
}

/// The addresses list `l` holds, in slot order.
pub fn entries(dir: &Path, l: &RecentList) -> Result<Vec<Seen>> {
    let mut m = Mapped::open(dir, l.slot)?;
    let mask = l.stamp_mask as u64;
    let mut out = Vec::new();
    for i in 0..ENTRIES {
        let key = m.key(i);
        if key == 0 {
            continue;
        }
        let e = *m.entry(i);
        let n = e.written.min(mask + 1) as usize;
        let last = (e.written.wrapping_sub(1) & mask) as usize;
        out.push(Seen {
            addr: recent::addr_of(key),
            ttl: e.ttl,
            index: last as u64 + 1,
            last_seen: e.stamps[last],
            stamps: e.stamps[..n].to_vec(),
        });
    }
    Ok(out)
}

/// What /proc/net/xt_recent/NAME takes: `+ADDR` adds the address (or updates it), `-ADDR`
/// removes it, `/` empties the list.
pub fn write(dir: &Path, l: &RecentList, command: &str) -> Result<()> {
    let mut m = Mapped::open(dir, l.slot)?;
    if command == "/" {
        for i in 0..ENTRIES {
            let key = m.key(i);
            m.swap_key(i, key, 0);
        }
        return Ok(());
    }
    let (add, addr) = match command.split_at_checked(1) {
        Some(("+", addr)) => (true, addr),
        Some(("-", addr)) => (false, addr),
        _ => bail!("write \"+ADDRESS\", \"-ADDRESS\" or \"/\""),
    };
    let addr: std::net::Ipv4Addr = addr
        .trim_end_matches('\n')
        .parse()
        .with_context(|| format!("{addr:?} is no IPv4 address"))?;
    recent::write(
        &mut m,
        addr.octets(),
        add,
        super::conntrack::now(),
        l.stamp_mask as u32,
    );
    Ok(())
}
