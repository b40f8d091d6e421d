//! `-m hashlimit`: the rule's table, in `HASHLIMIT` by its slot (configuration in
//! `PCN_HASHLIMIT`), its bucket for the packet's key found or made, brought up to date and
//! taken from as xt_hashlimit does (`pcn_iptables_common::hashlimit`), once the rest of the
//! rule matched (the compiler refuses a match after it).

use core::ffi::c_void;
use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg, atomic_xchg};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    btf_maps::{self, ArrayOfMaps},
    helpers::generated::{bpf_for_each_map_elem, bpf_jiffies64, bpf_map_delete_elem},
    macros::{btf_map, map},
    maps::Array,
};
use pcn_iptables_common::hashlimit::{Bucket, Key, TABLES, Table, expired, ports};

use crate::connlimit::{HOTDROP, MATCH, NO_MATCH};
use crate::maps::{PCN_PACKETS, action};

type Buckets =
    btf_maps::HashMap<Key, Bucket, 1, { aya_ebpf::bindings::BPF_F_NO_PREALLOC as usize }>;
/// Each table's buckets, by its slot: made by userspace before the first generation naming it
/// goes live, sized to the table's maximum.
#[btf_map]
static HASHLIMIT: ArrayOfMaps<Buckets, { TABLES as usize }> = ArrayOfMaps::new();
/// Each table's configuration, by its slot (written by userspace with the map).
#[map]
static PCN_HASHLIMIT: Array<Table> = Array::pinned(TABLES, 0);

/// Attempts at the compare-and-swap of a bucket's credit (as `limit::take`).
const CAS_ATTEMPTS: usize = 4;

/// Whether rule action `index` of generation `slot` matches the packet of `hook` as far as its
/// `-m hashlimit` goes (`MATCH`, `NO_MATCH`, `HOTDROP`: no room for its bucket). A global
/// function, as `pcn_recent_check`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_hashlimit_check(hook: u32, slot: u32, index: u32) -> u32 {
    let (Some(pkt), Some(action)) = (PCN_PACKETS.get_ptr(hook), action(slot, index)) else {
        return NO_MATCH;
    };
    let pkt = unsafe { &*pkt };
    let table_slot = (action.hashlimit_table as u32).wrapping_sub(1);
    let (Some(table), Some(buckets)) = (
        PCN_HASHLIMIT.get_ptr_mut(table_slot),
        HASHLIMIT.get(table_slot),
    ) else {
        return NO_MATCH;
    };
    let t = unsafe { &*table };
    let key = t.key(pkt.src, pkt.dst, ports(pkt));
    let now = unsafe { bpf_jiffies64() };
    let Some(bucket) = bucket(buckets, table, &key, now) else {
        return HOTDROP;
    };
    let b = unsafe { &mut *bucket };
    b.expires = now + t.expire;
    take(t, bucket, action.hashlimit_mode as u32, pkt.len, now) as u32 * MATCH
}

/// The bucket of `key`: a new one when there is none or xt_hashlimit's garbage collection
/// would have dropped it by `now`; `None` when the table is full even without the buckets
/// the collection would have dropped.
#[inline(always)]
fn bucket(buckets: &Buckets, table: *mut Table, key: &Key, now: u64) -> Option<*mut Bucket> {
    let epoch = unsafe { &raw mut (*table).epoch };
    if unsafe { core::ptr::read_volatile(epoch) } == 0 {
        unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(epoch, 0, now) };
    }
    let t = unsafe { &*table };
    if let Some(b) = buckets.get_ptr_mut(key) {
        if t.gone(unsafe { &*b }, now) {
            unsafe { *b = t.fresh(now) };
        }
        return Some(b);
    }
    let fresh = t.fresh(now);
    if buckets.insert(key, &fresh, BPF_NOEXIST as u64).is_err()
        && buckets.get_ptr_mut(key).is_none()
    {
        collect(buckets, table, now);
        let _ = buckets.insert(key, &fresh, BPF_NOEXIST as u64);
    }
    buckets.get_ptr_mut(key)
}

/// Drops the buckets the garbage collection dropped at its last tick, unless that was done
/// since the tick (a full table of live buckets would otherwise be walked for every new key).
#[inline(always)]
fn collect(buckets: &Buckets, table: *mut Table, now: u64) {
    let last = unsafe { &raw mut (*table).last_gc };
    let tick = unsafe { (*table).last_tick(now) };
    let before = unsafe { core::ptr::read_volatile(last) };
    if tick <= before
        || !unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(last, before, tick) }.1
    {
        return;
    }
    let mut ctx = tick;
    unsafe {
        bpf_for_each_map_elem(
            buckets as *const Buckets as *mut c_void,
            drop_expired as *mut c_void,
            &raw mut ctx as *mut c_void,
            0,
        );
    }
}

extern "C" fn drop_expired(
    map: *mut c_void,
    key: *mut c_void,
    value: *mut c_void,
    tick: *mut c_void,
) -> i64 {
    if unsafe { expired(&*(value as *const Bucket), *(tick as *const u64)) } {
        unsafe { bpf_map_delete_elem(map, key) };
    }
    0
}

/// xt_hashlimit's update and take, on a bucket other CPUs may change at once: the time of
/// the last packet is swapped in (each CPU's credit comes from its own stretch of time), the
/// credit changes by compare-and-swap; the rest of the bucket is written as computed.
#[inline(always)]
fn take(t: &Table, bucket: *mut Bucket, rule_mode: u32, len: u32, now: u64) -> bool {
    let prev = unsafe { atomic_xchg::<u64, { Relaxed }>(&raw mut (*bucket).prev, now) };
    let credit = unsafe { &raw mut (*bucket).credit };
    for _ in 0..CAS_ATTEMPTS {
        let mut b = unsafe { core::ptr::read_volatile(bucket) };
        let old = b.credit;
        b.prev = prev;
        t.recalc(&mut b, now);
        let matched = t.take(&mut b, rule_mode, len);
        if unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(credit, old, b.credit) }.1 {
            unsafe {
                (*bucket).credit_cap = b.credit_cap;
                (*bucket).current_rate = b.current_rate;
                (*bucket).prev_window = b.prev_window;
                // A rate-match window that did not roll keeps its start.
                (*bucket).prev = b.prev;
            }
            return matched;
        }
    }
    false
}
