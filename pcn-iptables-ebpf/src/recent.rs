//! `-m recent`: the rule's list, in `RECENT` by its slot, checked and changed as xt_recent
//! does (`pcn_iptables_common::recent::check`) once the rest of the rule matched (the compiler
//! refuses a match after it).

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg};

use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_ktime_get_ns, bpf_loop};
use pcn_iptables_common::recent::{self, ENTRIES, Entry, List, Rule, Step, Store};

use crate::maps::{PCN_PACKETS, action, recent_list};

/// A list in map memory, and the packet's scratch.
struct InMap(*mut List, *mut [u64; recent::CELLS]);

/// Compare-and-swap attempts at a list's word (as `statistic::count`).
const CAS_ATTEMPTS: usize = 8;

#[inline(always)]
fn bounded(i: usize) -> usize {
    i.min(ENTRIES - 1)
}

impl Store for InMap {
    #[inline(always)]
    fn key(&self, i: usize) -> u64 {
        // SAFETY: a live map value; `bounded` keeps the index in it.
        unsafe { core::ptr::read_volatile(&raw const (*self.0).keys[bounded(i)]) }
    }

    #[inline(always)]
    fn swap_key(&mut self, i: usize, old: u64, new: u64) -> bool {
        let key = unsafe { &raw mut (*self.0).keys[bounded(i)] };
        unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(key, old, new).1 }
    }

    #[inline(always)]
    fn entry(&mut self, i: usize) -> &mut Entry {
        unsafe { &mut (*self.0).entries[bounded(i)] }
    }

    #[inline(always)]
    fn count(&mut self, i: usize) -> u64 {
        let written = unsafe { &raw mut (*self.0).entries[bounded(i)].written };
        let mut old = unsafe { core::ptr::read_volatile(written) };
        for _ in 0..CAS_ATTEMPTS {
            let (was, done) =
                unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(written, old, old + 1) };
            if done {
                break;
            }
            old = was;
        }
        old
    }

    #[inline(always)]
    fn cell(&mut self, k: usize) -> *mut u64 {
        unsafe { &raw mut (*self.1)[k % recent::CELLS] }
    }

    #[inline(always)]
    fn each<B: Step>(&mut self, n: usize) {
        unsafe {
            bpf_loop(
                n as u32,
                step::<B> as *mut c_void,
                self as *mut InMap as *mut c_void,
                0,
            );
        }
    }
}

/// `bpf_loop`'s callback for `Store::each`.
extern "C" fn step<B: Step>(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `each` passes its list.
    B::step(unsafe { &mut *(ctx as *mut InMap) }, i as usize) as i64
}

/// Whether rule action `index` of generation `slot` matches the packet of `hook` as far as
/// its `-m recent` goes (1 or 0), having done what it does to the list. A global function,
/// as `pcn_first_match`: the verifier checks it once, not once per path that reaches it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_recent_check(hook: u32, slot: u32, index: u32) -> u32 {
    let (Some(pkt), Some(action)) = (PCN_PACKETS.get_ptr_mut(hook), action(slot, index)) else {
        return 0;
    };
    let pkt = unsafe { &mut *pkt };
    // No list (a generation going out as its list went): nothing seen.
    let Some(list) = recent_list(action.recent_list as u32) else {
        return (action.recent_flags & recent::flag::INVERT != 0) as u32;
    };
    let addr = recent::address(action, pkt.src, pkt.dst);
    let now = unsafe { bpf_ktime_get_ns() };
    let cells = &raw mut pkt.recent_cells;
    recent::check(
        &mut InMap(list, cells),
        &Rule::of(action),
        addr,
        pkt.ttl,
        now,
    ) as u32
}
