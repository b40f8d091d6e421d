extern crate std;
use std::{collections::HashMap, vec::Vec};

use super::*;

/// nf_conncount's list as the kernel keeps it, and `__nf_conncount_add` line by line
/// (`find_or_evict` inlined): returns the count `nf_conncount_count` gives.
struct Kernel(Vec<Conn>);

impl Kernel {
    fn add(&mut self, p: &Packet, table: &HashMap<CtKey, Seen>) -> u32 {
        let mut collect = 0;
        let mut i = 0;
        while i < self.0.len() {
            if collect > GC_MAX_NODES {
                break;
            }
            let conn = self.0[i];
            match table.get(&conn.key).copied().unwrap_or(Seen::Missing) {
                Seen::Missing => {
                    if conn.cpu == p.cpu || p.now - conn.added_ns >= PENDING_NS {
                        self.0.remove(i);
                        collect += 1;
                        continue;
                    }
                    // -EAGAIN
                    if conn.key == p.tuple {
                        return self.0.len() as u32;
                    }
                }
                found => {
                    if conn.key == p.tuple {
                        return self.0.len() as u32;
                    } else if found == Seen::Closed {
                        self.0.remove(i);
                        collect += 1;
                        continue;
                    }
                }
            }
            i += 1;
        }
        self.0.push(Conn {
            key: p.tuple,
            added_ns: p.now,
            cpu: p.cpu,
            _pad: 0,
        });
        self.0.len() as u32
    }
}

fn ours(list: &mut List, p: &Packet, table: &HashMap<CtKey, Seen>) -> u32 {
    let mut walk = Walk::default();
    for _ in 0..CONNS + 1 {
        if step(list, &mut walk, p, |k| {
            table.get(k).copied().unwrap_or(Seen::Missing)
        }) {
            break;
        }
    }
    finish(list, &walk, p)
}

fn key(n: u64) -> CtKey {
    CtKey {
        addr: [[198, 18, 0, 1], [198, 18, 0, 2]],
        port: [n as u16, 22],
        proto: 6,
        _pad: [0; 3],
    }
}

/// Random packets (new and known connections, on two CPUs, close together in time) and
/// changes of the connection table (confirmed, closed, gone, all gone): the same counts and the same
/// lists, in the same order, as the kernel's.
#[test]
fn counts_as_nf_conncount_does() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..300 {
        let mut kernel = Kernel(Vec::new());
        let mut list = List {
            count: 0,
            _pad: 0,
            conns: [Conn::default(); CONNS],
        };
        let mut table: HashMap<CtKey, Seen> = HashMap::new();
        let mut now = 1_000_000_000u64;
        for _ in 0..200 {
            now += next(6_000_000);
            let k = key(next(40));
            match next(24) {
                0..=5 => {
                    table.insert(k, [Seen::Alive, Seen::Closed][next(2) as usize]);
                }
                6..=9 => {
                    table.remove(&k);
                }
                // Many gone at once: more than a walk drops.
                10 => table.clear(),
                _ => {
                    let p = Packet {
                        tuple: k,
                        now,
                        cpu: next(2) as u32,
                    };
                    let want = kernel.add(&p, &table);
                    if want as usize > MAX_LIMIT as usize {
                        // A full list: past every limit the compiler takes.
                        assert!(ours(&mut list, &p, &table) > MAX_LIMIT);
                        break;
                    }
                    assert_eq!(ours(&mut list, &p, &table), want);
                    // Most connections get confirmed.
                    if next(10) < 7 {
                        table.insert(k, Seen::Alive);
                    }
                    let listed: Vec<CtKey> = list.conns[..list.count as usize]
                        .iter()
                        .map(|c| c.key)
                        .collect();
                    let kept: Vec<CtKey> = kernel.0.iter().map(|c| c.key).collect();
                    assert_eq!(listed, kept);
                }
            }
        }
    }
}

#[test]
fn a_closed_or_expired_entry_is_gone() {
    let e = CtEntry {
        tcp_state: tcp::TIME_WAIT,
        expires: 10,
        ..Default::default()
    };
    assert_eq!(Seen::of(Some(&e), 6, 5), Seen::Closed);
    assert_eq!(Seen::of(Some(&e), 17, 5), Seen::Alive);
    assert_eq!(Seen::of(Some(&e), 6, 10), Seen::Missing);
    assert_eq!(Seen::of(None, 6, 0), Seen::Missing);
    assert!(matches(3, 2, flag::ON) && !matches(3, 2, flag::ON | flag::INVERT));
    assert!(matches(2, 2, flag::ON | flag::INVERT));
}
