//! `-m connlimit`: the rule's list of connections for the packet's masked address, in the
//! generation's map of `CONNLIMIT` by rule and address, walked and completed as nf_conncount
//! does (`pcn_iptables_common::connlimit`) once the rest of the rule matched (the compiler
//! refuses a match after it).

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    btf_maps::{self, ArrayOfMaps},
    helpers::generated::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_loop},
    macros::{btf_map, map},
    maps::PerCpuArray,
};
use pcn_iptables_common::GENERATIONS;
use pcn_iptables_common::connlimit::{self, CONNS, List, ListKey, Packet, Seen, Walk};

use crate::maps::{PCN_CONNTRACK, PCN_PACKETS, action};

type Lists =
    btf_maps::HashMap<ListKey, List, 1, { aya_ebpf::bindings::BPF_F_NO_PREALLOC as usize }>;
/// The lists of each generation, by its slot: a map userspace makes empty for a generation
/// with connlimit rules before it goes live (iptables-legacy's every change makes new match
/// instances, whose counts start empty), each list made when a packet first needs it.
#[btf_map]
static CONNLIMIT: ArrayOfMaps<Lists, { GENERATIONS as usize }> = ArrayOfMaps::new();
/// An empty list, to make a new one from (too large for the stack). Never written.
#[map]
static PCN_CONNLIMIT_EMPTY: PerCpuArray<List> = PerCpuArray::with_max_entries(1, 0);

/// `pcn_connlimit_check`'s answers.
pub(crate) const NO_MATCH: u32 = 0;
pub(crate) const MATCH: u32 = 1;
/// No room for the list: xt_connlimit drops the packet when it cannot count.
pub(crate) const HOTDROP: u32 = 2;

/// The walk's context for `bpf_loop`'s callback.
struct WalkCtx {
    list: *mut List,
    walk: *mut Walk,
    packet: Packet,
}

extern "C" fn walk_step(_: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `pcn_connlimit_check` passes its context, whose pointers are map values.
    let c = unsafe { &*(ctx as *const WalkCtx) };
    let (list, walk) = unsafe { (&mut *c.list, &mut *c.walk) };
    let now = c.packet.now;
    connlimit::step(list, walk, &c.packet, |key| {
        Seen::of(unsafe { PCN_CONNTRACK.get(key) }, key.proto, now)
    }) as i64
}

/// Whether rule action `index` of generation `slot` matches the packet of `hook` as far as its
/// `-m connlimit` goes (`MATCH`, `NO_MATCH`, `HOTDROP`), its connection counted. A global
/// function, as `pcn_recent_check`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pcn_connlimit_check(hook: u32, slot: u32, index: u32) -> u32 {
    let (Some(pkt), Some(action)) = (PCN_PACKETS.get_ptr_mut(hook), action(slot, index)) else {
        return NO_MATCH;
    };
    let pkt = unsafe { &mut *pkt };
    let flags = action.connlimit_flags;
    let addr = match flags & connlimit::flag::DADDR {
        0 => pkt.src,
        _ => pkt.dst,
    };
    let mask = u32::from_ne_bytes(action.connlimit_mask);
    let key = ListKey {
        index,
        addr: (u32::from_ne_bytes(addr) & mask).to_ne_bytes(),
    };
    let Some(list) = list(slot, &key) else {
        return HOTDROP;
    };
    pkt.connlimit_walk = Walk::default();
    let mut ctx = WalkCtx {
        list,
        walk: &raw mut pkt.connlimit_walk,
        packet: Packet {
            tuple: pkt.ct_key,
            now: unsafe { bpf_ktime_get_ns() },
            cpu: unsafe { bpf_get_smp_processor_id() },
        },
    };
    unsafe {
        bpf_loop(
            CONNS as u32 + 1,
            walk_step as *mut c_void,
            &raw mut ctx as *mut c_void,
            0,
        );
    }
    let count = connlimit::finish(unsafe { &mut *list }, &pkt.connlimit_walk, &ctx.packet);
    connlimit::matches(count, action.connlimit_limit, flags) as u32
}

/// The list of `key` in generation `slot`, made empty if there is none; `None` when the map
/// is full.
#[inline(always)]
fn list(slot: u32, key: &ListKey) -> Option<*mut List> {
    let lists = CONNLIMIT.get(slot)?;
    if let Some(list) = lists.get_ptr_mut(key) {
        return Some(list);
    }
    let empty = PCN_CONNLIMIT_EMPTY.get_ptr(0)?;
    // Another CPU may make it first: then that one is used.
    let _ = lists.insert(key, unsafe { &*empty }, BPF_NOEXIST as u64);
    lists.get_ptr_mut(key)
}
