//! `-m connlimit`: the connections of an address (or network) that met a rule, counted as
//! xt_connlimit counts them through nf_conncount (`__nf_conncount_add`): a list per rule and
//! masked address of the connections that reached the rule, walked on every packet that
//! reaches it, each looked up in the connection table, those gone or closed dropped (a few
//! at a time), the packet's own connection added unless it is there. As iptables-legacy
//! makes new match instances on every table change, a generation starts with empty lists.
//!
//! The walk is a step function over the list in map memory (`step`, then `finish`), which
//! the data plane drives with `bpf_loop` and the tests with a plain loop.

use crate::conntrack::{CtEntry, CtKey, tcp};

const IPPROTO_TCP: u8 = 6;

/// Connections a list holds; a rule's limit must be below (`MAX_LIMIT`), so that a full list
/// is over it whatever it misses.
pub const CONNS: usize = 64;
pub const MAX_LIMIT: u32 = CONNS as u32 - 1;
/// Lists a generation holds at once (made as packets need them; allocated as they come).
pub const LISTS: u32 = 16384;
/// nf_conncount's CONNCOUNT_GC_MAX_NODES: a walk drops at most this many (and one more).
pub const GC_MAX_NODES: u32 = 8;
/// A connection not in the table yet that another CPU added less than this long ago may be
/// about to be confirmed: kept (nf_conncount's two jiffies, at HZ=250).
pub const PENDING_NS: u64 = 8_000_000;

/// `Action::connlimit_flags`
pub mod flag {
    /// The rule has `-m connlimit`.
    pub const ON: u8 = 1;
    /// Match when the count is not above the limit (`--connlimit-upto`, `! --connlimit-above`).
    pub const INVERT: u8 = 2;
    /// Group by the destination address (`--connlimit-daddr`).
    pub const DADDR: u8 = 4;
}

/// A connection of a list: its key, when and on which CPU it was added.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Conn {
    pub key: CtKey,
    pub added_ns: u64,
    pub cpu: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct List {
    pub count: u32,
    pub _pad: u32,
    pub conns: [Conn; CONNS],
}

/// A list's key in its generation's map: the rule's action and the masked address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListKey {
    pub index: u32,
    pub addr: [u8; 4],
}

/// A walk over a list, in the packet's map memory: the next entry read, where the next kept
/// one goes, how many were dropped, and whether the packet's connection was found (the rest
/// is then only kept).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Walk {
    pub read: u32,
    pub write: u32,
    pub collect: u32,
    pub exists: u32,
}

/// What the connection table says of a listed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Missing,
    Closed,
    Alive,
}

impl Seen {
    /// A table entry (or none) at time `now`: gone once expired; TCP closed in TIME_WAIT and
    /// CLOSE (nf_conncount's `already_closed`).
    #[inline(always)]
    pub fn of(entry: Option<&CtEntry>, proto: u8, now: u64) -> Seen {
        match entry {
            Some(e) if e.expires > now => {
                let closed = proto == IPPROTO_TCP
                    && (e.tcp_state == tcp::TIME_WAIT || e.tcp_state == tcp::CLOSE);
                if closed { Seen::Closed } else { Seen::Alive }
            }
            _ => Seen::Missing,
        }
    }
}

/// The packet's connection `tuple` at `now` on `cpu`.
#[derive(Clone, Copy, Debug)]
pub struct Packet {
    pub tuple: CtKey,
    pub now: u64,
    pub cpu: u32,
}

/// One step of the walk: entry `walk.read`, looked up with `seen` (unless the walk only
/// keeps now), kept (moved down to `walk.write`) or dropped. Returns whether the walk is over.
#[inline(always)]
pub fn step(
    list: &mut List,
    walk: &mut Walk,
    p: &Packet,
    seen: impl FnOnce(&CtKey) -> Seen,
) -> bool {
    let read = walk.read as usize;
    if read >= list.count as usize || read >= CONNS {
        return true;
    }
    let conn = list.conns[read & (CONNS - 1)];
    let keep = if walk.collect > GC_MAX_NODES || walk.exists != 0 {
        true
    } else {
        let same = conn.key == p.tuple;
        match seen(&conn.key) {
            // Gone, unless another CPU added it just now: it may be about to be confirmed.
            Seen::Missing
                if conn.cpu == p.cpu || p.now.wrapping_sub(conn.added_ns) >= PENDING_NS =>
            {
                walk.collect += 1;
                false
            }
            Seen::Closed if !same => {
                walk.collect += 1;
                false
            }
            _ => {
                walk.exists = same as u32;
                true
            }
        }
    };
    if keep {
        list.conns[walk.write as usize & (CONNS - 1)] = conn;
        walk.write += 1;
    }
    walk.read += 1;
    false
}

/// The walk done: the list keeps what it kept, the packet's connection is added unless it was
/// there (or the list is full); the count the rule compares with its limit.
#[inline(always)]
pub fn finish(list: &mut List, walk: &Walk, p: &Packet) -> u32 {
    let mut count = walk.write.min(CONNS as u32);
    if walk.exists == 0 && (count as usize) < CONNS {
        list.conns[count as usize & (CONNS - 1)] = Conn {
            key: p.tuple,
            added_ns: p.now,
            cpu: p.cpu,
            _pad: 0,
        };
        count += 1;
    }
    list.count = count;
    count
}

/// Whether the rule matches with `count` connections (xt_connlimit's `connlimit_mt`).
#[inline(always)]
pub fn matches(count: u32, limit: u32, flags: u8) -> bool {
    (count > limit) != (flags & flag::INVERT != 0)
}

#[cfg(test)]
mod tests;
