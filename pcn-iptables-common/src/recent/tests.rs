//! The lists against a port of xt_recent's own code (its LRU list and `recent_mt`), on
//! random rules and packets.
extern crate std;
use std::{boxed::Box, vec::Vec};

use super::*;

/// A list in plain memory.
struct Plain(Box<List>, [u64; CELLS]);

impl Plain {
    fn new() -> Self {
        // SAFETY: zeros are an empty list.
        Plain(
            unsafe { Box::<List>::new_zeroed().assume_init() },
            [0; CELLS],
        )
    }
}

impl Store for Plain {
    fn key(&self, i: usize) -> u64 {
        self.0.keys[i]
    }
    fn swap_key(&mut self, i: usize, old: u64, new: u64) -> bool {
        let ok = self.0.keys[i] == old;
        if ok {
            self.0.keys[i] = new;
        }
        ok
    }
    fn entry(&mut self, i: usize) -> &mut Entry {
        &mut self.0.entries[i]
    }
    fn count(&mut self, i: usize) -> u64 {
        self.0.entries[i].written += 1;
        self.0.entries[i].written - 1
    }
    fn cell(&mut self, k: usize) -> *mut u64 {
        &mut self.1[k]
    }
    fn each<B: Step>(&mut self, n: usize) {
        for i in 0..n {
            if B::step(self, i) {
                break;
            }
        }
    }
}

/// xt_recent's `recent_entry`.
struct KEntry {
    key: u64,
    ttl: u8,
    index: usize,
    nstamps: usize,
    stamps: Vec<u64>,
}

/// xt_recent's table: `lru[0]` is the LRU list's head.
struct Kernel {
    lru: Vec<KEntry>,
    mask: usize,
}

impl Kernel {
    fn lookup(&self, key: u64, ttl: u8) -> Option<usize> {
        self.lru
            .iter()
            .position(|e| e.key == key && (ttl == e.ttl || ttl == 0 || e.ttl == 0))
    }

    fn update(&mut self, i: usize, now: u64) {
        let mut e = self.lru.remove(i);
        e.index &= self.mask;
        e.stamps[e.index] = now;
        e.index += 1;
        e.nstamps = e.nstamps.max(e.index);
        self.lru.push(e);
    }

    /// `recent_mt`, line by line.
    fn mt(&mut self, r: &Rule, key: u64, ttl: u8, now: u64) -> bool {
        let mut ret = r.flags & flag::INVERT != 0;
        let lookup_ttl = if r.flags & flag::TTL != 0 { ttl } else { 0 };
        let Some(mut i) = self.lookup(key, lookup_ttl) else {
            if r.op != op::SET {
                return ret;
            }
            if self.lru.len() >= ENTRIES {
                self.lru.remove(0);
            }
            let mut stamps = std::vec![0; self.mask + 1];
            stamps[0] = now;
            self.lru.push(KEntry {
                key,
                ttl,
                index: 1,
                nstamps: 1,
                stamps,
            });
            return !ret;
        };
        if r.op == op::SET {
            ret = !ret;
        } else if r.op == op::REMOVE {
            self.lru.remove(i);
            return !ret;
        } else {
            let e = &self.lru[i];
            let mut hits = 0;
            for k in 0..e.nstamps {
                if r.seconds_ns != 0 && now - r.seconds_ns > e.stamps[k] {
                    continue;
                }
                hits += 1;
                if r.hitcount == 0 || hits >= r.hitcount {
                    ret = !ret;
                    break;
                }
            }
            if r.flags & flag::REAP != 0 {
                let update = r.op == op::UPDATE && ret;
                let head = &self.lru[0];
                if !(i == 0 && update) && now - r.seconds_ns > head.stamps[head.index - 1] {
                    self.lru.remove(0);
                    if i == 0 {
                        return ret;
                    }
                    i -= 1;
                }
            }
        }
        if r.op == op::SET || (r.op == op::UPDATE && ret) {
            self.update(i, now);
            self.lru.last_mut().unwrap().ttl = ttl;
        }
        ret
    }
}

use crate::test_rng::Rng;

/// Random rules over few addresses and TTLs, at times a second or so apart (seconds up to
/// 5), in lists of every stamp count: both agree on every verdict and on what each address
/// holds.
#[test]
fn lists_follow_xt_recent() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..60 {
        let hitcount_max = [4, 20, 255][round % 3];
        let mask = stamp_mask(rng.below(hitcount_max) as u32);
        // Many addresses in some rounds, so that lists fill and entries get evicted.
        let addrs = if round % 2 == 0 { 8 } else { 160 };
        let (mut ours, mut kernel) = (
            Plain::new(),
            Kernel {
                lru: Vec::new(),
                mask: mask as usize,
            },
        );
        let mut now = 1_000_000_000_000u64;
        for step in 0..3000 {
            now += 1 + rng.below(1_500_000_000);
            let op = [op::SET, op::CHECK, op::UPDATE, op::REMOVE][rng.below(4) as usize];
            let mut flags = if rng.below(4) == 0 { flag::INVERT } else { 0 };
            let (mut seconds_ns, mut hitcount) = (0, 0);
            if matches!(op, op::CHECK | op::UPDATE) {
                if rng.below(3) > 0 {
                    seconds_ns = (1 + rng.below(5)) * 1_000_000_000;
                    if rng.below(2) == 0 {
                        flags |= flag::REAP;
                    }
                }
                if rng.below(2) == 0 {
                    hitcount = rng.below(mask as u64 + 2) as u32;
                }
                if rng.below(5) == 0 {
                    flags |= flag::TTL;
                }
            }
            let r = Rule {
                op,
                flags,
                stamp_mask: mask,
                hitcount,
                seconds_ns,
            };
            let key = key_of((rng.below(addrs) as u32).to_ne_bytes());
            let ttl = 62 + rng.below(3) as u8;
            let want = kernel.mt(&r, key, ttl, now);
            assert_eq!(
                check(&mut ours, &r, addr_of(key), ttl, now),
                want,
                "round {round} step {step}"
            );
            let used: Vec<usize> = (0..ENTRIES).filter(|&i| ours.key(i) != 0).collect();
            let mut held: Vec<(u64, u8, u64)> = used
                .into_iter()
                .map(|i| {
                    (
                        ours.key(i),
                        ours.0.entries[i].ttl,
                        last_seen(&mut ours, i, mask as u64),
                    )
                })
                .collect();
            held.sort();
            let mut model: Vec<(u64, u8, u64)> = kernel
                .lru
                .iter()
                .map(|e| (e.key, e.ttl, e.stamps[e.index - 1]))
                .collect();
            model.sort();
            assert_eq!(held, model, "round {round} step {step}");
        }
    }
}

#[test]
fn stamps_follow_the_hitcount() {
    assert_eq!(stamp_mask(0), 31);
    assert_eq!(stamp_mask(1), 0);
    assert_eq!(stamp_mask(4), 3);
    assert_eq!(stamp_mask(5), 7);
    assert_eq!(stamp_mask(255), 255);
}
