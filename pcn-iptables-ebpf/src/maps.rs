//! The maps of the data plane and their accessors.
//!
//! The classifiers are loaded once; a generation is a set of rule maps only, reached through
//! the outer maps (CHAINS, ACTIONS, FIELDS, BITMAPS: one slot per generation) by the packet's
//! `slot`, so swapping `PCN_ACTIVE` changes the whole ruleset at once.

use aya_ebpf::{
    btf_maps::{self, ArrayOfMaps},
    macros::{btf_map, map},
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray, Queue, lpm_trie::Key},
};
use pcn_iptables_common::addrtype::{LOCAL_ROUTES, LocalRoute};
use pcn_iptables_common::conntrack::{CtEntry, CtKey, CtReclaim};
use pcn_iptables_common::recent;
use pcn_iptables_common::{
    Action, Block, CHAIN_INPUT, CONNTRACK_ENTRIES, COUNTER_PAGE, COUNTER_PAGES, ChainConfig,
    Counter, FLOW_CACHE_ENTRIES, FieldKey, FlowKey, FlowVerdict, GENERATIONS, PacketInfo,
};

// Kept across generations (pinned by name in the namespace's state directory).
#[map]
pub(crate) static PCN_ACTIVE: Array<u32> = Array::pinned(1, 0);
#[map]
pub(crate) static PCN_PROGS_XDP: ProgramArray = ProgramArray::pinned(GENERATIONS, 0);
#[map]
pub(crate) static PCN_PROGS_TC: ProgramArray = ProgramArray::pinned(GENERATIONS, 0);
/// The packet being judged, per CPU: index `XDP` for ingress, `TC` for egress (a TC program in
/// process context may be interrupted by XDP in a softirq on the same CPU). One map, so that
/// the classifier's global function gets a map value of one map whichever the hook.
#[map]
pub(crate) static PCN_PACKETS: PerCpuArray<PacketInfo> = PerCpuArray::pinned(2, 0);
pub(crate) const XDP: u32 = 0;
pub(crate) const TC: u32 = 1;
/// Connections, shared by both hooks and every generation. Allocated as connections come
/// (an LRU map would reserve every entry up front); userspace sets the size at the first
/// install, and a full table makes room as netfilter's does (`track::reclaim`).
/// The namespace's local routing table, with each route's device, for `-m addrtype
/// --limit-iface-in/out` (written by userspace at every change while a rule has one).
#[map]
pub(crate) static PCN_LOCAL_ROUTES: LpmTrie<[u8; 4], LocalRoute> =
    LpmTrie::pinned(LOCAL_ROUTES, NO_PREALLOC as u32);
#[map]
pub(crate) static PCN_CONNTRACK: HashMap<CtKey, CtEntry> =
    HashMap::pinned(CONNTRACK_ENTRIES, NO_PREALLOC as u32);
/// A full connection table's search for room, per CPU (see `track::reclaim`).
#[map]
pub(crate) static PCN_CT_RECLAIM: PerCpuArray<CtReclaim> = PerCpuArray::pinned(1, 0);
/// Keys of the latest new connections, oldest first: where a full table finds one to drop
/// at once, as netfilter's early_drop finds an unassured one near the new connection's
/// bucket (a walk from the table's first bucket would cost the whole table per packet).
/// Userspace sizes it with the table (`Sizes::early_drop`).
#[map]
pub(crate) static PCN_CT_EARLY_DROP: Queue<CtKey> = Queue::pinned(CONNTRACK_ENTRIES / 16, 0);
/// Verdicts of flows, each good in the generation that found it (see `cached_verdict`).
#[map]
pub(crate) static PCN_FLOWS: LruHashMap<FlowKey, FlowVerdict> =
    LruHashMap::pinned(FLOW_CACHE_ENTRIES, 0);

// One set of maps per generation, in the slot `pkt.slot` of these outer maps. Userspace creates
// the inner maps of each change sized to fit, with exactly these flags (the kernel requires an
// inner map to match its template: type, key and value size, flags; BPF_F_INNER_MAP lets an
// array's size differ). The arrays are mmapable: userspace fills them through mmap.
const GENS: usize = GENERATIONS as usize;
pub(crate) const INNER_ARRAY: usize =
    (aya_ebpf::bindings::BPF_F_INNER_MAP | aya_ebpf::bindings::BPF_F_MMAPABLE) as usize;
const NO_PREALLOC: usize = aya_ebpf::bindings::BPF_F_NO_PREALLOC as usize;
/// The first page of rule counters (slots below `COUNTER_PAGE`: every ruleset of up to about
/// a thousand rules), reached directly: a lookup the verifier inlines, where one through
/// `COUNTERS` is two helper calls. Userspace makes it and stores it in `COUNTERS` too.
#[map]
static PCN_COUNTERS: PerCpuArray<Counter> = PerCpuArray::pinned(COUNTER_PAGE, 0);
/// Rule counters, in pages of per-CPU arrays that userspace makes as the rules need them
/// (see `dataplane::counters`).
#[btf_map]
static COUNTERS: ArrayOfMaps<
    btf_maps::PerCpuArray<Counter, { COUNTER_PAGE as usize }>,
    { COUNTER_PAGES as usize },
> = ArrayOfMaps::new();
/// `-m recent`'s lists, by slot, kept across generations: userspace makes one as a rule first
/// names it and drops it when no rule does (see `dataplane::recent`).
#[btf_map]
static RECENT: ArrayOfMaps<
    btf_maps::Array<recent::List, 1, INNER_ARRAY>,
    { recent::LISTS as usize },
> = ArrayOfMaps::new();
#[btf_map]
static CHAINS: ArrayOfMaps<btf_maps::Array<ChainConfig, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();
#[btf_map]
static ACTIONS: ArrayOfMaps<btf_maps::Array<Action, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();
/// Every chain's rule bitmap and field entries; one map, so that every bitmap pointer the
/// classifier holds has the same type and the verifier follows one path, not one per
/// combination of fields in use.
#[btf_map]
static FIELDS: ArrayOfMaps<btf_maps::LpmTrie<FieldKey, u32, 1, NO_PREALLOC>, GENS> =
    ArrayOfMaps::new();
/// The bitmaps FIELDS entries point to, in blocks (`pcn_iptables_common::bitmap`).
#[btf_map]
static BITMAPS: ArrayOfMaps<btf_maps::Array<Block, 1, INNER_ARRAY>, GENS> = ArrayOfMaps::new();

/// Chain `id` of generation `slot`.
#[inline(always)]
pub(crate) fn chain_config(slot: u32, id: u32) -> Option<&'static ChainConfig> {
    CHAINS.get_value(slot, &id)
}

/// The `-m recent` list in slot `slot`.
#[inline(always)]
pub(crate) fn recent_list(slot: u32) -> Option<*mut recent::List> {
    RECENT.get_value_ptr_mut(slot, &0)
}

/// Rule `i` (chain's `action_base` + rule index) of generation `slot`.
#[inline(always)]
pub(crate) fn action(slot: u32, i: u32) -> Option<&'static Action> {
    ACTIONS.get_value(slot, &i)
}

/// The same, writable (a rule's `-m limit` state lives there).
#[inline(always)]
pub(crate) fn action_mut(slot: u32, i: u32) -> Option<*mut Action> {
    ACTIONS.get_value_ptr_mut(slot, &i)
}

/// The bitmap index of the longest prefix of `key` in generation `slot`'s field trie.
#[inline(always)]
pub(crate) fn field_lookup(slot: u32, key: &Key<FieldKey>) -> Option<u32> {
    FIELDS.get_value_ptr_mut(slot, key).map(|v| unsafe { *v })
}

/// The bitmap array of generation `slot`: looked up once per round, then indexed (each
/// lookup into an inner map is a helper call).
#[inline(always)]
pub(crate) fn bitmaps(slot: u32) -> Option<&'static btf_maps::Array<Block, 1, INNER_ARRAY>> {
    BITMAPS.get(slot)
}

/// The running generation's slot and its flags (`chain_flag::TRACK`, `NAT`, on every
/// chain): read once per packet, so that tracking and the verdict agree.
#[inline(always)]
pub(crate) fn generation() -> Option<(u32, u32)> {
    let slot = *PCN_ACTIVE.get(0)?;
    let cfg = chain_config(slot, CHAIN_INPUT)?;
    Some((slot, cfg.flags))
}

/// Counts a packet of IP length `len` for counter `slot`.
#[inline(always)]
pub(crate) fn count(slot: u32, len: u32) {
    let counter = if slot < COUNTER_PAGE {
        PCN_COUNTERS.get_ptr_mut(slot)
    } else {
        COUNTERS.get_value_ptr_mut(slot / COUNTER_PAGE, &(slot % COUNTER_PAGE))
    };
    if let Some(c) = counter {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len as u64;
        }
    }
}
