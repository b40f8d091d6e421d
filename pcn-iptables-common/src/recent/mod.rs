//! `-m recent` (xt_recent): the lists of addresses and when each was seen, kept across
//! generations, and what a rule does with them.
//!
//! A list holds at most `ENTRIES` addresses, as xt_recent's `ip_list_tot`; a new one takes
//! the place of the least recently seen. Each address keeps its last `stamps` times (the
//! list's power of two, as xt_recent's `nstamps_max_mask`), in nanoseconds of the monotonic
//! clock where xt_recent counts jiffies.

/// Lists per namespace (slots of the data plane's `RECENT`).
pub const LISTS: u32 = 256;
/// Addresses per list: xt_recent's `ip_list_tot` default.
pub const ENTRIES: usize = 100;
/// Times kept per address at most: `--hitcount` up to 255, as older kernels' xt_recent
/// allowed (recent ones take up to 65535).
pub const STAMPS: usize = 256;
/// The highest `--hitcount` the lists can count.
pub const MAX_HITCOUNT: u32 = STAMPS as u32 - 1;

/// `Action::recent_op`: the command of the rule's `-m recent`.
pub mod op {
    pub const NONE: u8 = 0;
    pub const SET: u8 = 1;
    pub const CHECK: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const REMOVE: u8 = 4;
}

/// `Action::recent_flags`.
pub mod flag {
    /// `!`
    pub const INVERT: u8 = 1;
    /// `--rttl`
    pub const TTL: u8 = 2;
    /// `--reap`
    pub const REAP: u8 = 4;
    /// `--rdest`
    pub const DEST: u8 = 8;
}

/// The times stamps of one address.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Entry {
    /// Times written since the address came in: stamp `n` is at `n % stamps`, so the last is
    /// at `(written - 1) % stamps` and there are `min(written, stamps)` of them.
    pub written: u64,
    /// The TTL of the packet that last set or updated it (`--rttl`).
    pub ttl: u8,
    pub _pad: [u8; 7],
    pub stamps: [u64; STAMPS],
}

/// One list: `keys[i]` says whose `entries[i]` is (`key_of`), 0 for none.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct List {
    pub keys: [u64; ENTRIES],
    pub entries: [Entry; ENTRIES],
}

/// The key of an address (network byte order bytes) in `List::keys`: never 0.
#[inline(always)]
pub fn key_of(addr: [u8; 4]) -> u64 {
    (1 << 32) | u32::from_ne_bytes(addr) as u64
}

/// The address of a key.
#[inline(always)]
pub fn addr_of(key: u64) -> [u8; 4] {
    (key as u32).to_ne_bytes()
}

/// What a rule's `-m recent` is, from its `Action`.
#[derive(Clone, Copy)]
pub struct Rule {
    pub op: u8,
    pub flags: u8,
    /// The list's stamps less one (a power of two less one).
    pub stamp_mask: u32,
    pub hitcount: u32,
    pub seconds_ns: u64,
}

impl Rule {
    /// The `-m recent` of rule action `a`.
    #[inline(always)]
    pub fn of(a: &crate::Action) -> Rule {
        Rule {
            op: a.recent_op,
            flags: a.recent_flags,
            stamp_mask: a.recent_stamp_mask as u32,
            hitcount: a.recent_hitcount as u32,
            seconds_ns: a.recent_seconds as u64 * 1_000_000_000,
        }
    }
}

/// The address rule action `a`'s `-m recent` looks up for a packet from `src` to `dst`.
#[inline(always)]
pub fn address(a: &crate::Action, src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    let addr = if a.recent_flags & flag::DEST != 0 {
        dst
    } else {
        src
    };
    let m = a.recent_mask;
    [
        addr[0] & m[0],
        addr[1] & m[1],
        addr[2] & m[2],
        addr[3] & m[3],
    ]
}

/// How a list is reached: by the data plane in map memory, by the tests in a plain value.
/// Claiming a key and counting a stamp are compare-and-swaps where many CPUs meet.
pub trait Store {
    fn key(&self, i: usize) -> u64;
    /// Sets key `i` from `old` to `new`; false if another got there first.
    fn swap_key(&mut self, i: usize, old: u64, new: u64) -> bool;
    fn entry(&mut self, i: usize) -> &mut Entry;
    /// Adds one to entry `i`'s `written`; the value before.
    fn count(&mut self, i: usize) -> u64;
    /// Scratch word `k` (below `CELLS`), of this CPU's packet: what the loops read and
    /// carry lives there, in map memory whose contents the verifier does not follow.
    fn cell(&mut self, k: usize) -> *mut u64;
    /// Runs `B::step(self, i)` for `i` from 0 below `n` until one returns true: in the data
    /// plane a `bpf_loop`, whose body the verifier checks once however many entries.
    fn each<B: Step>(&mut self, n: usize);
}

/// The body of a loop over a list's entries or stamps (`Store::each`).
pub trait Step {
    /// Whether the loop is done.
    fn step<S: Store>(list: &mut S, i: usize) -> bool;
}

/// Scratch words a check uses.
pub const CELLS: usize = 8;
/// What a loop found: an entry, the oldest entry, the hits counted.
const FOUND: usize = 0;
const BEST_TIME: usize = 1;
const FREE: usize = 2;
/// What a loop reads: the key looked for, the list's stamps less one, the time now, the
/// rule's `--seconds` and `--hitcount`, the entry whose stamps are counted.
const KEY: usize = 3;
const MASK: usize = 4;
const NOW: usize = 5;
const SECONDS: usize = 6;
const HITCOUNT: usize = 7;
const ENTRY: usize = KEY;
/// No entry, in a cell.
const NO_ENTRY: u64 = u64::MAX;

#[inline(always)]
fn get<S: Store>(list: &mut S, k: usize) -> u64 {
    // SAFETY: the store's cell is live memory of its own.
    unsafe { core::ptr::read_volatile(list.cell(k)) }
}

#[inline(always)]
fn set<S: Store>(list: &mut S, k: usize, v: u64) {
    // SAFETY: as in `get`.
    unsafe { core::ptr::write_volatile(list.cell(k), v) }
}

/// The entry a cell holds, if any.
#[inline(always)]
fn entry_in<S: Store>(list: &mut S, k: usize) -> Option<usize> {
    let v = get(list, k);
    (v < ENTRIES as u64).then_some(v as usize)
}

/// Finds the entry of the key in `KEY`.
struct Find;

impl Step for Find {
    #[inline(always)]
    fn step<S: Store>(list: &mut S, i: usize) -> bool {
        let found = list.key(i) == get(list, KEY);
        if found {
            set(list, FOUND, i as u64);
        }
        found
    }
}

/// The entry of `key` whose TTL passes `ttl` (0: any), as xt_recent's `recent_entry_lookup`.
#[inline(always)]
fn find<S: Store>(list: &mut S, key: u64, ttl: u8) -> Option<usize> {
    set(list, FOUND, NO_ENTRY);
    set(list, KEY, key);
    list.each::<Find>(ENTRIES);
    let i = entry_in(list, FOUND)?;
    let t = list.entry(i).ttl;
    (ttl == 0 || t == 0 || t == ttl).then_some(i)
}

/// The time entry `i` was last set or updated.
#[inline(always)]
fn last_seen<S: Store>(list: &mut S, i: usize, stamp_mask: u64) -> u64 {
    let e = list.entry(i);
    let at = e.written.wrapping_sub(1) & stamp_mask & (STAMPS as u64 - 1);
    e.stamps[at as usize]
}

/// Finds the least recently seen entry and the first free one.
struct Oldest;

impl Step for Oldest {
    #[inline(always)]
    fn step<S: Store>(list: &mut S, i: usize) -> bool {
        if list.key(i) == 0 {
            if get(list, FREE) == NO_ENTRY {
                set(list, FREE, i as u64);
            }
        } else {
            let mask = get(list, MASK);
            let t = last_seen(list, i, mask);
            if t < get(list, BEST_TIME) {
                set(list, FOUND, i as u64);
                set(list, BEST_TIME, t);
            }
        }
        false
    }
}

/// The least recently seen entry (xt_recent's LRU head) if any, and the first free one if
/// any.
#[inline(always)]
fn oldest<S: Store>(list: &mut S, stamp_mask: u32) -> (Option<usize>, Option<usize>) {
    set(list, FOUND, NO_ENTRY);
    set(list, BEST_TIME, u64::MAX);
    set(list, FREE, NO_ENTRY);
    set(list, MASK, stamp_mask as u64);
    list.each::<Oldest>(ENTRIES);
    (entry_in(list, FOUND), entry_in(list, FREE))
}

/// Writes a stamp of `now` into entry `i` (xt_recent's `recent_entry_update`).
#[inline(always)]
fn stamp<S: Store>(list: &mut S, i: usize, now: u64, ttl: u8, stamp_mask: u32) {
    let n = list.count(i);
    let e = list.entry(i);
    e.stamps[(n & stamp_mask as u64) as usize & (STAMPS - 1)] = now;
    e.ttl = ttl;
}

/// Adds `key` seen at `now` in place of the least recently seen entry if the list is full
/// (xt_recent's `recent_entry_init`). False if other CPUs kept taking the place.
#[inline(always)]
fn add_entry<S: Store>(list: &mut S, key: u64, now: u64, ttl: u8, stamp_mask: u32) -> bool {
    let (lru, free) = oldest(list, stamp_mask);
    let Some(i) = free.or(lru) else {
        return false;
    };
    let old = list.key(i);
    if !list.swap_key(i, old, key) {
        return false;
    }
    let e = list.entry(i);
    e.written = 1;
    e.ttl = ttl;
    e.stamps[0] = now;
    true
}

/// Removes entry `i`.
#[inline(always)]
fn remove<S: Store>(list: &mut S, i: usize) {
    let old = list.key(i);
    list.swap_key(i, old, 0);
}

/// Counts the stamps of the entry in `ENTRY` since `NOW` less `SECONDS` (all when 0),
/// until `HITCOUNT`.
struct Hits;

impl Step for Hits {
    #[inline(always)]
    fn step<S: Store>(list: &mut S, k: usize) -> bool {
        let (seconds, now) = (get(list, SECONDS), get(list, NOW));
        let i = get(list, ENTRY) as usize;
        let t = list.entry(i).stamps[k & (STAMPS - 1)];
        if seconds != 0 && now.saturating_sub(t) > seconds {
            return false;
        }
        let hits = get(list, FOUND) + 1;
        set(list, FOUND, hits);
        hits >= get(list, HITCOUNT)
    }
}

/// Whether entry `i` was seen `hitcount` times (at least once) in the last `seconds_ns`
/// (any time when 0), as of `now`.
#[inline(always)]
fn seen<S: Store>(list: &mut S, i: usize, r: &Rule, now: u64) -> bool {
    let written = list.entry(i).written;
    let n = if written > r.stamp_mask as u64 {
        r.stamp_mask as usize + 1
    } else {
        written as usize
    };
    set(list, FOUND, 0);
    set(list, ENTRY, i as u64);
    set(list, NOW, now);
    set(list, SECONDS, r.seconds_ns);
    set(list, HITCOUNT, r.hitcount.max(1) as u64);
    list.each::<Hits>(n.min(STAMPS));
    get(list, FOUND) >= r.hitcount.max(1) as u64
}

/// Drops the least recently seen entry if it was not seen in the last `seconds_ns`, unless
/// it is `working` and about to be updated (xt_recent's `recent_entry_reap`).
#[inline(always)]
fn reap<S: Store>(list: &mut S, r: &Rule, now: u64, working: usize, update: bool) {
    let Some(i) = oldest(list, r.stamp_mask).0 else {
        return;
    };
    if i == working && update {
        return;
    }
    if now.saturating_sub(last_seen(list, i, r.stamp_mask as u64)) > r.seconds_ns {
        remove(list, i);
    }
}

/// Whether a packet from or to `addr` (masked by the list's mask) with TTL `ttl` matches
/// rule `r`'s `-m recent`, and what it does to the list: xt_recent's `recent_mt`.
#[inline(always)]
pub fn check<S: Store>(list: &mut S, r: &Rule, addr: [u8; 4], ttl: u8, now: u64) -> bool {
    let invert = r.flags & flag::INVERT != 0;
    let key = key_of(addr);
    let lookup_ttl = if r.flags & flag::TTL != 0 { ttl } else { 0 };
    let Some(i) = find(list, key, lookup_ttl) else {
        if r.op != op::SET {
            return invert;
        }
        // xt_recent drops the packet when it cannot allocate; here a lost race for the
        // place just leaves the address out.
        add_entry(list, key, now, ttl, r.stamp_mask);
        return !invert;
    };
    let mut ret = invert;
    match r.op {
        op::SET => ret = !ret,
        op::REMOVE => {
            remove(list, i);
            return !ret;
        }
        _ => {
            if seen(list, i, r, now) {
                ret = !ret;
            }
            if r.flags & flag::REAP != 0 {
                reap(list, r, now, i, r.op == op::UPDATE && ret);
            }
        }
    }
    if r.op == op::SET || (r.op == op::UPDATE && ret) {
        stamp(list, i, now, ttl, r.stamp_mask);
    }
    ret
}

/// What writing `+ADDR` (`add`) or `-ADDR` to /proc/net/xt_recent/NAME does: adds the
/// address with TTL 0 or stamps it again, or removes it (xt_recent's `recent_mt_proc_write`).
pub fn write<S: Store>(list: &mut S, addr: [u8; 4], add: bool, now: u64, stamp_mask: u32) {
    let key = key_of(addr);
    match (find(list, key, 0), add) {
        (None, true) => {
            add_entry(list, key, now, 0, stamp_mask);
        }
        (None, false) => {}
        (Some(i), true) => {
            let ttl = list.entry(i).ttl;
            stamp(list, i, now, ttl, stamp_mask);
        }
        (Some(i), false) => remove(list, i),
    }
}

/// The stamps of a rule naming a list: xt_recent's `nstamps_max_mask` less one for
/// `hitcount` (with `ip_pkt_list_tot` at its default, 0).
pub fn stamp_mask(hitcount: u32) -> u32 {
    if hitcount == 0 {
        31
    } else {
        hitcount.next_power_of_two() - 1
    }
}

#[cfg(test)]
mod tests;
