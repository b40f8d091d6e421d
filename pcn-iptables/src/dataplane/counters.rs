//! Rule counters, in pages: the outer map `COUNTERS` holds per-CPU arrays of `PAGE` slots
//! each, made as the rules need them rather than for the most there could be (every slot
//! costs once per CPU). Slot `s` is index `s % PAGE` of page `s / PAGE`; the data plane
//! reaches the first page directly too (`PCN_COUNTERS`). A page is made before
//! the generation that first counts into it goes live, and never moves: no count to carry
//! over. (Per-CPU arrays cannot be inner maps of differing sizes, hence pages, not one
//! growing array.)

use std::{
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result};
use pcn_iptables_common::{COUNTER_PAGE, COUNTER_PAGES, Counter};

use super::sys;

/// The outer map's pin, in the namespace's directory.
pub const OUTER_PIN: &str = "COUNTERS";
/// The first page's pin: the eBPF object's `PCN_COUNTERS`, which the loader takes from it.
const FIRST_PAGE_PIN: &str = "PCN_COUNTERS";
const SIZE: usize = std::mem::size_of::<Counter>();

/// The page and the index in it of counter slot `slot`.
pub fn page_of(slot: u32) -> (u32, u32) {
    (slot / COUNTER_PAGE, slot % COUNTER_PAGE)
}

/// The highest slot the pages should cover when `highest` is in use: a page's worth more, or
/// a quarter more for big rulesets, so that the changes that follow (a kube-proxy sync, a
/// script's commands) find their pages made and do not wait for a grace period to add one.
pub fn with_headroom(highest: u32) -> u32 {
    highest.saturating_add(COUNTER_PAGE.max(highest / 4))
}

fn new_page() -> Result<OwnedFd> {
    sys::map_create(
        "PCN_COUNTERS",
        sys::MAP_TYPE_PERCPU_ARRAY,
        4,
        SIZE as u32,
        COUNTER_PAGE,
        0,
    )
    .context("creating a page of counters")
}

/// Makes and pins the outer map and its first page, which the data plane also reaches
/// directly as `PCN_COUNTERS` (a first install, before the programs load: the loader reuses
/// both pins).
pub fn create(dir: &Path) -> Result<()> {
    let pin = dir.join(OUTER_PIN);
    if pin.exists() {
        return Ok(());
    }
    let page = new_page()?;
    sys::obj_pin(page.as_fd(), &dir.join(FIRST_PAGE_PIN)).context("pinning PCN_COUNTERS")?;
    let outer = sys::map_create_outer(OUTER_PIN, page.as_fd(), COUNTER_PAGES)
        .context("creating COUNTERS")?;
    let mut counters = Counters {
        outer,
        pages: (0..COUNTER_PAGES).map(|_| None).collect(),
        cpus: aya::util::nr_cpus().map_err(|(_, e)| e)?,
    };
    counters.make_pages(page_of(with_headroom(0)).0, Some(page))?;
    sys::obj_pin(counters.outer.as_fd(), &pin).context("pinning COUNTERS")
}

/// The installed counters.
pub struct Counters {
    outer: OwnedFd,
    /// Pages opened so far (`None`: not looked at yet).
    pages: Vec<Option<Option<OwnedFd>>>,
    cpus: usize,
}

impl Counters {
    /// The counters of the install in `dir` (`None`: not installed).
    pub fn open(dir: &Path) -> Result<Option<Counters>> {
        let Ok(outer) = sys::obj_get(&dir.join(OUTER_PIN)) else {
            return Ok(None);
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        let pages = (0..COUNTER_PAGES).map(|_| None).collect();
        Ok(Some(Counters { outer, pages, cpus }))
    }

    /// Page `i`, if it exists.
    fn page(&mut self, i: u32) -> Result<Option<BorrowedFd<'_>>> {
        let Some(entry) = self.pages.get_mut(i as usize) else {
            return Ok(None);
        };
        if entry.is_none() {
            *entry = Some(match sys::id_at(self.outer.as_fd(), i)? {
                Some(id) => Some(sys::map_by_id(id)?),
                None => None,
            });
        }
        Ok(entry.as_ref().and_then(|p| p.as_ref()).map(|p| p.as_fd()))
    }

    /// (packets, bytes) of `slot`, summed over CPUs.
    pub fn get(&mut self, slot: u32) -> (u64, u64) {
        let (page, index) = page_of(slot);
        let mut values = vec![0u8; self.cpus * SIZE];
        let found = match self.page(page) {
            Ok(Some(fd)) => matches!(
                sys::map_lookup(fd, &index.to_ne_bytes(), &mut values),
                Ok(true)
            ),
            _ => false,
        };
        let mut sum = (0, 0);
        if found {
            for v in values.chunks_exact(SIZE) {
                sum.0 += u64::from_ne_bytes(v[..8].try_into().unwrap());
                sum.1 += u64::from_ne_bytes(v[8..].try_into().unwrap());
            }
        }
        sum
    }

    /// Sets slots (the first CPU's share holds the whole count, the others none), making the
    /// pages they are in.
    pub fn set(&mut self, counters: &[(u32, Counter)]) -> Result<()> {
        let mut by_page: Vec<Vec<(u32, Counter)>> = vec![Vec::new(); COUNTER_PAGES as usize];
        for &(slot, c) in counters {
            let (page, index) = page_of(slot);
            by_page
                .get_mut(page as usize)
                .with_context(|| format!("counter slot {slot} out of range"))?
                .push((index, c));
        }
        // Pages are made when a slot needs one (each making waits for a grace period), with
        // room then for the changes that follow.
        if let Some(highest) = counters.iter().map(|&(slot, _)| slot).max()
            && self.page(page_of(highest).0)?.is_none()
        {
            self.make_pages(page_of(with_headroom(highest)).0, None)?;
        }
        let cpus = self.cpus;
        for (page, counters) in by_page.iter().enumerate() {
            if counters.is_empty() {
                continue;
            }
            let fd = self.page(page as u32)?.context("a page of counters")?;
            set_batch(fd, counters, cpus)?;
        }
        Ok(())
    }

    /// Makes the missing pages up to `last` (`first`: page 0, if given). Every update of a
    /// map of maps waits for an RCU grace period (milliseconds): they go in one batch.
    fn make_pages(&mut self, last: u32, mut first: Option<OwnedFd>) -> Result<()> {
        let mut made = Vec::new();
        for page in 0..=last.min(COUNTER_PAGES - 1) {
            if self.page(page)?.is_none() {
                let fd = match first.take() {
                    Some(fd) => fd,
                    None => new_page()?,
                };
                made.push((page, fd));
            }
        }
        if made.is_empty() {
            return Ok(());
        }
        let keys: Vec<u8> = made.iter().flat_map(|(p, _)| p.to_ne_bytes()).collect();
        let fds: Vec<u8> = made
            .iter()
            .flat_map(|(_, fd)| (fd.as_raw_fd() as u32).to_ne_bytes())
            .collect();
        match sys::map_update_batch(self.outer.as_fd(), &keys, &fds, made.len() as u32) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
                for (page, fd) in &made {
                    sys::set_fd(self.outer.as_fd(), *page, fd.as_fd())
                        .context("storing a page of counters")?;
                }
            }
            r => r.context("storing pages of counters")?,
        }
        for (page, fd) in made {
            self.pages[page as usize] = Some(Some(fd));
        }
        Ok(())
    }
}

/// Sets counter slots of the page `map` in one batch update (one at a time where the kernel
/// has none): the first CPU's share holds the whole count, the others none.
fn set_batch(map: BorrowedFd<'_>, counters: &[(u32, Counter)], cpus: usize) -> Result<()> {
    let mut keys = Vec::with_capacity(counters.len() * 4);
    let mut values = vec![0u8; counters.len() * cpus * SIZE];
    for (i, (slot, c)) in counters.iter().enumerate() {
        keys.extend_from_slice(&slot.to_ne_bytes());
        let v = &mut values[i * cpus * SIZE..];
        v[..8].copy_from_slice(&c.packets.to_ne_bytes());
        v[8..16].copy_from_slice(&c.bytes.to_ne_bytes());
    }
    match sys::map_update_batch(map, &keys, &values, counters.len() as u32) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
            for (key, value) in keys.chunks_exact(4).zip(values.chunks_exact(cpus * SIZE)) {
                sys::map_update(map, key, value, 0).context("setting a counter")?;
            }
            Ok(())
        }
        r => r.context("setting counters"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_made_ahead_of_the_slots_in_use() {
        assert_eq!(page_of(with_headroom(0)).0, 1);
        assert_eq!(page_of(with_headroom(100)).0, 1);
        // 10,205 slots (a 10,000-rule restore) cover 12,756: pages 0 to 12.
        assert_eq!(page_of(with_headroom(10_205)).0, 12);
        assert_eq!(with_headroom(u32::MAX), u32::MAX);
    }

    #[test]
    fn slots_fill_pages_in_order() {
        assert_eq!(page_of(0), (0, 0));
        assert_eq!(page_of(COUNTER_PAGE - 1), (0, COUNTER_PAGE - 1));
        assert_eq!(page_of(COUNTER_PAGE), (1, 0));
        assert_eq!(
            page_of(pcn_iptables_common::MAX_COUNTERS - 1),
            (COUNTER_PAGES - 1, COUNTER_PAGE - 1)
        );
    }
}
