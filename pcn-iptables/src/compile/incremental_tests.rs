//! The incremental build against the full one: a model of the two generation slots (the
//! words each bitmap index holds, and one trie) goes through random changes the way the
//! data plane applies them, and classifies every packet as a full build of the same table.

use super::tests::{Rng, bare};
use super::*;
use crate::model::{Chain, Match, Negatable, Policy, PortRange, Rule, Target};
use pcn_iptables_common::{Action, ChainConfig, FIELD_KEY_HEADER_BITS, field, field_key6};
use std::net::Ipv4Addr;

const MACS: [[u8; 6]; 3] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]];

/// `macs`: whether it may have `--mac-source` (not in the first build, so that changes
/// bring the field to chains with rules before the change).
fn rule(rng: &mut Rng, counter: u32, macs: bool) -> Rule {
    let net = |rng: &mut Rng, first: u8| {
        let len = [8u8, 16, 24, 32][rng.below(4) as usize];
        let a = Ipv4Addr::new(
            first,
            rng.below(4) as u8,
            rng.below(4) as u8,
            rng.below(4) as u8,
        );
        Negatable {
            value: crate::model::AddrMask::prefixed(a, len).unwrap(),
            negated: rng.below(5) == 0,
        }
    };
    let port = |rng: &mut Rng| {
        let first = rng.below(40) as u16;
        Negatable {
            value: PortRange {
                first,
                last: first + rng.below(3) as u16 * 7,
            },
            negated: rng.below(6) == 0,
        }
    };
    let proto = [6u8, 17][rng.below(2) as usize];
    let ports = rng.below(3) != 0;
    Rule {
        src: (rng.below(3) != 0).then(|| net(rng, 10)),
        dst: (rng.below(2) != 0).then(|| net(rng, 172)),
        in_iface: None,
        out_iface: None,
        proto: (ports || rng.below(2) == 0).then(|| Negatable::plain(proto)),
        fragment: None,
        matches: {
            let mut matches = Vec::new();
            if ports {
                matches.push(Match::Ports {
                    proto,
                    sport: (rng.below(3) == 0).then(|| port(rng)),
                    dport: (rng.below(3) != 0).then(|| port(rng)),
                    tcp_flags: None,
                    tcp_option: None,
                });
            }
            // Sometimes one `--mac-source`, rarely two.
            for _ in 0..[0, 0, 0, 0, 0, 1, 1, 2][rng.below(8) as usize] * macs as usize {
                matches.push(Match::Mac(Negatable {
                    value: MACS[rng.below(2) as usize],
                    negated: rng.below(3) == 0,
                }));
            }
            matches
        },
        target: match rng.below(5) {
            0 => None,
            1 => Some(Target::Accept),
            2 => Some(Target::Jump("web".into())),
            _ => Some(Target::Drop),
        },
        counter,
    }
}

/// A slot's bitmaps as the classifier sees them (`Layout::words` words each).
type Slot = Vec<Vec<u64>>;

fn classify(
    layout: &Layout,
    chains: &[ChainConfig],
    slot: &Slot,
    trie: &[Entry],
    chain: u32,
    pkt: &[(u8, [u8; 6], u32)],
) -> Option<Vec<u64>> {
    let cfg = chains[chain as usize];
    let lookup = |id: u8, value: [u8; 6], bits: u32| -> Option<&Vec<u64>> {
        let key = field_key6(id, chain, value);
        let bit = |k: &[u8], i: u32| k[(i / 8) as usize] & (0x80 >> (i % 8)) != 0;
        trie.iter()
            .filter(|e| {
                e.prefix_len as u32 <= FIELD_KEY_HEADER_BITS + bits
                    && (0..e.prefix_len as u32).all(|i| bit(&e.key, i) == bit(&key, i))
            })
            .max_by_key(|e| e.prefix_len)
            .map(|e| &slot[e.index as usize])
    };
    let mut maps = vec![&slot[cfg.rules as usize]];
    for &(id, value, bits) in pkt {
        if cfg.fields & field::bit(id) != 0 {
            maps.push(lookup(id, value, bits)?);
        }
    }
    // Every rule whose fields all match, not just the first: a wrong bit anywhere shows.
    let words = (0..layout.words as usize).map(|i| maps.iter().fold(u64::MAX, |acc, m| acc & m[i]));
    Some(words.collect())
}

/// Applies `p` to the inactive slot `slots[1 - active]` as the data plane does.
fn apply(
    slots: &mut [Slot; 2],
    trie: &mut Vec<Entry>,
    active: usize,
    p: &Program,
    delta: &[(u32, u32, u32)],
    running_chains: &[ChainConfig],
) -> Vec<(u32, u32, u32)> {
    let n = p.layout.next_index as usize;
    for s in slots.iter_mut() {
        s.resize(n, vec![0; p.layout.words as usize]);
    }
    let (a, b) = if active == 0 {
        let (x, y) = slots.split_at_mut(1);
        (&mut x[0], &mut y[0])
    } else {
        let (x, y) = slots.split_at_mut(1);
        (&mut y[0], &mut x[0])
    };
    let _ = running_chains;
    let updates = p.updates.as_ref().unwrap();
    for u in updates {
        if u.running {
            a[u.entry.index as usize] = a[u.src as usize].clone();
        }
    }
    let mut written = vec![false; n];
    let mut new_delta = Vec::new();
    let words = p.layout.words as usize;
    for w in &p.writes {
        written[w.index as usize] = true;
        let from = w.from as usize;
        let end = w.end() as usize;
        let src = |i: usize| match w.src {
            SRC_ZERO => 0,
            SRC_ONES => u64::MAX,
            s => a[s as usize][i],
        };
        // Words outside the computed ones: in place, what the slot lags behind by; a new
        // bitmap's, all of them, from its source.
        let (lo, hi) = if w.whole || w.src != w.index {
            (0, words)
        } else {
            let d = delta.iter().find(|d| d.0 == w.index);
            d.map_or((from, end), |d| {
                ((d.1 as usize).min(from), (d.2 as usize).max(end))
            })
        };
        let mut new = b[w.index as usize].clone();
        for i in (lo..from).chain(end..hi) {
            new[i] = src(i);
        }
        match w.shift {
            Some(shift) => {
                let bit = p.words_of(w).first().copied().unwrap_or(0);
                for (x, word) in new.iter_mut().enumerate().take(end).skip(from) {
                    *word = shift.word(x, src, bit);
                }
            }
            None => new[from..end].copy_from_slice(p.words_of(w)),
        }
        if w.whole {
            new[end..].fill(0);
        }
        b[w.index as usize] = new;
        new_delta.push((
            w.index,
            if w.src == w.index { w.from } else { 0 },
            if w.whole || w.src != w.index {
                words as u32
            } else {
                end as u32
            },
        ));
    }
    for &(i, f, t) in delta {
        if !written[i as usize] {
            for x in f..t {
                b[i as usize][x as usize] = a[i as usize][x as usize];
            }
        }
    }
    for u in updates {
        trie.retain(|e| e.order() != u.entry.order());
        trie.push(u.entry);
    }
    new_delta
}

fn packets(rng: &mut Rng) -> Vec<Vec<(u8, [u8; 6], u32)>> {
    (0..200)
        .map(|_| {
            let mut addr = |first| {
                let mut next = || rng.below(5) as u8;
                Ipv4Addr::new(first, next(), next(), next()).octets()
            };
            let (src, dst) = (addr(10), addr(172));
            let proto = [6u8, 17, 1][rng.below(3) as usize];
            let sp = (rng.below(60) as u16).to_be_bytes();
            let dp = (rng.below(60) as u16).to_be_bytes();
            let port = |p: [u8; 2]| {
                if proto == 1 {
                    ([0, 0, 0, 0, 0, 0], 8)
                } else {
                    ([1, p[0], p[1], 0, 0, 0], 24)
                }
            };
            let (s, sb) = port(sp);
            let (d, db) = port(dp);
            // A named address, another one, or none (no Ethernet header).
            let mac = [MACS[0], MACS[1], MACS[2], [0; 6]][rng.below(4) as usize];
            vec![
                (field::MAC_SRC, mac, 48),
                (field::SRC, [src[0], src[1], src[2], src[3], 0, 0], 32),
                (field::DST, [dst[0], dst[1], dst[2], dst[3], 0, 0], 32),
                (field::PROTO, [proto, 0, 0, 0, 0, 0], 8),
                (field::SPORT, s, sb),
                (field::DPORT, d, db),
            ]
        })
        .collect()
}

#[test]
fn incremental_generations_classify_like_full_builds() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ctx_links: Vec<Link> = Vec::new();
    let at = AddressTypes::default();
    let mut kept_some = false;
    for round in 0..12 {
        let mut table = Table::default();
        table.add_chain(Chain {
            name: "web".into(),
            policy: None,
            policy_counter: 0,
            rules: Vec::new().into(),
        });
        let mut counter = 10;
        let n = [0usize, 5, 70, 200][round % 4];
        for _ in 0..n {
            counter += 1;
            let r = rule(&mut rng, counter, false);
            table.chains[0].rules.push(r);
        }
        let first = program(&table, &ctx_links, &at, None).unwrap();
        assert!(first.is_full());
        // Both slots hold the first build (as after a full install and its copy).
        let mut slots: [Slot; 2] = [Vec::new(), Vec::new()];
        for s in slots.iter_mut() {
            s.resize(
                first.layout.next_index as usize,
                vec![0; first.layout.words as usize],
            );
            for w in &first.writes {
                let d = &mut s[w.index as usize];
                d[..w.len as usize].copy_from_slice(first.words_of(w));
            }
        }
        let mut trie = first.layout.entries.clone();
        let mut layout = first.layout.clone();
        let mut chains = first.chains.clone();
        // Each slot's actions array, as the data plane writes them: after the full build,
        // both hold its actions; then the inactive one gets only what `to_write` says.
        let mut slot_actions = [first.actions.all(&[]), first.actions.all(&[])];
        let mut stale: Option<Vec<[u32; 2]>> = Some(Vec::new());
        let mut active = 0;
        let mut delta: Vec<(u32, u32, u32)> = Vec::new();
        for step in 0..40 {
            // Every third step starts from the table as stored: the chains the step leaves
            // alone are then built from their summaries (`model::Summary`), undecoded.
            if step % 3 == 0 {
                table = crate::dataplane::state::stored(&table, &layout);
            }
            let old = table.clone();
            let chain = if rng.below(4) == 0 { 3 } else { 0 };
            let rules = &mut table.chains[chain].rules;
            counter += 1;
            match rng.below(6) {
                0 | 1 => rules.push(rule(&mut rng, counter, true)),
                2 if !rules.is_empty() => {
                    rules.pop();
                }
                3 if !rules.is_empty() => {
                    let i = rng.below(rules.len() as u64) as usize;
                    rules.remove(i);
                }
                4 => {
                    let i = rng.below(rules.len() as u64 + 1) as usize;
                    rules.insert(i, rule(&mut rng, counter, true));
                }
                _ if !rules.is_empty() => {
                    let i = rules.len() - 1 - rng.below(rules.len().min(70) as u64) as usize;
                    rules[i] = rule(&mut rng, counter, true);
                }
                _ => {}
            }
            if step % 7 == 3 {
                table.chains[1].policy = Some(Policy::Drop);
            }
            let counters = slots_of(&old);
            let base = Base {
                old: if step % 2 == 0 {
                    Old::Table(&old)
                } else {
                    Old::Slots(&counters)
                },
                layout: &layout,
            };
            let p = program(&table, &ctx_links, &at, Some(&base)).unwrap();
            assert!(!p.is_full(), "round {round} step {step}");
            assert_eq!(
                p.layout.words, layout.words,
                "an incremental build keeps the shape"
            );
            // From rules as read, never from a summary.
            let want = program(&decoded(&table), &ctx_links, &at, None).unwrap();
            delta = apply(&mut slots, &mut trie, active, &p, &delta, &chains);
            // The running generation still classifies as before the change.
            let pk = packets(&mut rng);
            let old_full = program(&old, &ctx_links, &at, None).unwrap();
            let old_words = old_full.layout.words as usize;
            let mut old_slot: Slot = vec![vec![0; old_words]; old_full.layout.next_index as usize];
            for w in &old_full.writes {
                old_slot[w.index as usize][..w.len as usize].copy_from_slice(old_full.words_of(w));
            }
            let want_words = want.layout.words as usize;
            let mut want_slot: Slot = vec![vec![0; want_words]; want.layout.next_index as usize];
            for w in &want.writes {
                want_slot[w.index as usize][..w.len as usize].copy_from_slice(want.words_of(w));
            }
            for chain in [0u32, 3] {
                for pkt in &pk {
                    assert_eq!(
                        classify(&layout, &chains, &slots[active], &trie, chain, pkt),
                        classify(
                            &old_full.layout,
                            &old_full.chains,
                            &old_slot,
                            &old_full.layout.entries,
                            chain,
                            pkt
                        ),
                        "round {round} step {step}: the running generation changed"
                    );
                    assert_eq!(
                        classify(&p.layout, &p.chains, &slots[1 - active], &trie, chain, pkt),
                        classify(
                            &want.layout,
                            &want.chains,
                            &want_slot,
                            &want.layout.entries,
                            chain,
                            pkt
                        ),
                        "round {round} step {step}: chain {chain}"
                    );
                }
            }
            // The actions as the data plane writes them into the inactive slot (which holds
            // the generation before the running one, or the running one), the kept ones from
            // the running generation's, whose buckets and counts packets change: a full
            // build's, chain by chain.
            for a in &mut slot_actions[active] {
                if a.limit_burst != 0 || a.stat_mode != 0 {
                    (a.limit_credit_ns, a.limit_last_ns, a.stat_seen) = (12345, 99, 7);
                }
            }
            let ranges = p.actions.to_write(stale.as_deref());
            let [a, b] = &mut slot_actions;
            let (running, slot) = if active == 0 { (&*a, b) } else { (&*b, a) };
            slot.resize(slot.len().max(p.actions.len()), Action::default());
            p.actions.write(&ranges, (slot, 0), (running, 0));
            let got = slot[..p.actions.len()].to_vec();
            stale = Some(p.actions.changed());
            assert_eq!(
                actions_by_chain(&p.layout, &p.chains, &got, &table),
                actions_by_chain(&want.layout, &want.chains, &want.actions.all(&[]), &table),
                "round {round} step {step}"
            );
            if step > 0 && p.actions.len() > 20 {
                kept_some |= p.actions.keeps_any();
            }
            let flags = |chains: &[ChainConfig]| chains.iter().map(|c| c.flags).collect::<Vec<_>>();
            assert_eq!(
                flags(&p.chains),
                flags(&want.chains),
                "round {round} step {step}"
            );
            let mut sorted = trie.clone();
            sorted.sort_unstable_by_key(Entry::order);
            assert_eq!(sorted, p.layout.entries, "the layout lists the trie");
            layout = p.layout.clone();
            chains = p.chains.clone();
            active = 1 - active;
        }
    }
    assert!(kept_some, "no change kept an action");
}

/// `table` with every chain's rules decoded, no summary kept.
fn decoded(table: &Table) -> Table {
    let mut t = table.clone();
    for c in &mut t.chains {
        c.rules = c.rules.to_vec().into();
    }
    t
}

/// Each chain's actions (as their Debug text), by chain name, and the chain each targets by
/// name: chain ids differ between builds.
fn actions_by_chain(
    layout: &Layout,
    chains: &[ChainConfig],
    actions: &[Action],
    table: &Table,
) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<_> = (layout.chain_names.iter().enumerate())
        .filter(|(_, name)| !name.is_empty())
        .map(|(id, name)| {
            let base = chains[id].action_base as usize;
            let n = tables::chain(table, name).map_or(0, |c| c.rules.len());
            let named = actions[base..base + n]
                .iter()
                .map(|a| {
                    let target = &layout.chain_names[a.chain as usize];
                    format!("{target} {:?}", Action { chain: 0, ..*a })
                })
                .collect();
            (name.clone(), named)
        })
        .collect();
    out.sort();
    out
}

/// A chain past its generation's bitmap length, or a ruleset four times shorter than it, is
/// built in full (with bitmaps of its own length); a change within it is not.
#[test]
fn bitmaps_follow_the_longest_chain() {
    let mut rng = Rng(17);
    let (links, at) = (Vec::new(), AddressTypes::default());
    let mut running = Table::default();
    running.add_chain(Chain {
        name: "web".into(),
        policy: None,
        policy_counter: 0,
        rules: Vec::new().into(),
    });
    let mut layout = program(&running, &links, &at, None).unwrap().layout;
    assert_eq!(layout.words, 1);
    let mut counter = 0;
    // (rules of INPUT after the change, words, whether built in full)
    for (len, words, full) in [
        (60, 1, false),
        (64, 1, false),
        // The 65th rule needs a second word.
        (65, 2, true),
        (365, 8, true),
        (200, 8, false),
        // A full build leaves room for the longest chain to grow by an eighth: 1,000 rules
        // get 32 words, and the 1,025th rule still fits.
        (1000, 32, true),
        (1040, 32, false),
        (10, 1, true),
    ] {
        let mut table = running.clone();
        let rules = &mut table.chains[0].rules;
        rules.truncate(len);
        while rules.len() < len {
            counter += 1;
            rules.push(rule(&mut rng, counter, false));
        }
        let base = Base {
            old: Old::Table(&running),
            layout: &layout,
        };
        let p = program(&table, &links, &at, Some(&base)).unwrap();
        assert_eq!((p.layout.words, p.is_full()), (words, full), "{len} rules");
        layout = p.layout;
        running = table;
    }
}

/// `Shift::word` against the bit vectors it stands for: one bit inserted or removed.
#[test]
fn shifts_insert_and_remove_one_rule() {
    let mut rng = Rng(99);
    for _ in 0..300 {
        let n = rng.below(300) as usize + 1;
        let bits: Vec<bool> = (0..n).map(|_| rng.below(2) == 0).collect();
        let words = |bits: &[bool]| atoms::bitmap(bits.len().div_ceil(64), bits.iter().copied());
        let old = words(&bits);
        let at = rng.below(n as u64) as usize;
        let bit = rng.below(2) == 0;
        for insert in [true, false] {
            let mut want = bits.clone();
            if insert {
                want.insert(at, bit);
            } else {
                want.remove(at);
            }
            let want = words(&want);
            let shift = Shift {
                rule: at as u32,
                insert,
                old_words: old.len() as u32,
                words: want.len() as u32,
            };
            let got: Vec<u64> = (0..want.len())
                .map(|x| {
                    if x < at / 64 {
                        old[x]
                    } else {
                        shift.word(x, |y| old[y], bit as u64)
                    }
                })
                .collect();
            assert_eq!(got, want, "{n} bits, at {at}, insert {insert}");
        }
    }
}

/// A chain renamed (`-E`) keeps its rules and the rules that jump to it, whose target is
/// renamed in place (same counter slot): the kept jump's action follows the new chain id.
#[test]
fn kept_jumps_follow_a_renamed_chain() {
    let (links, at) = (Vec::new(), AddressTypes::default());
    let user = |name: &str, counter| Chain {
        name: name.into(),
        policy: None,
        policy_counter: 0,
        rules: vec![bare(Some(Target::Accept), counter)].into(),
    };
    let jump = |to: &str, counter| bare(Some(Target::Jump(to.into())), counter);
    let mut running = Table::default();
    running.add_chain(user("alpha", 20));
    running.add_chain(user("omega", 21));
    let input = running.chain_mut("INPUT").unwrap();
    *input.rules = vec![jump("alpha", 10), jump("omega", 11), jump("alpha", 12)];
    let first = program(&running, &links, &at, None).unwrap();
    let running_actions = first.actions.all(&[]);

    let mut table = running.clone();
    crate::ruleset::apply(
        &mut table,
        &crate::model::Command::RenameChain {
            chain: "alpha".into(),
            new_name: "zeta".into(),
        },
        &mut || unreachable!("a rename makes no rule"),
    )
    .unwrap();
    let slots = slots_of(&running);
    let base = Base {
        old: Old::Slots(&slots),
        layout: &first.layout,
    };
    let p = program(&table, &links, &at, Some(&base)).unwrap();
    assert!(p.actions.keeps_any(), "{:?}", p.actions.runs);
    let want = program(&table, &links, &at, None).unwrap();
    let want = actions_by_chain(&want.layout, &want.chains, &want.actions.all(&[]), &table);
    assert_eq!(
        actions_by_chain(
            &p.layout,
            &p.chains,
            &p.actions.all(&running_actions),
            &table
        ),
        want
    );
    // Written in place over the running generation's: the jumps are among what changed.
    let mut slot = running_actions.clone();
    let ranges = p.actions.to_write(Some(&[]));
    p.actions
        .write(&ranges, (&mut slot, 0), (&running_actions, 0));
    assert_eq!(actions_by_chain(&p.layout, &p.chains, &slot, &table), want);
}

/// `--suppl-groups`: each generation lists its distinct GID ranges, and each such rule's
/// action indexes its own range in that list, also after a change built on the running
/// generation (where a kept action would index the running generation's list).
#[test]
fn suppl_groups_index_their_generations_ranges() {
    let (links, at) = (Vec::new(), AddressTypes::default());
    let owner = |gid: u32, counter| {
        let mut r = bare(Some(Target::Drop), counter);
        r.matches.push(Match::Owner(crate::model::Owner {
            gid: Some(Negatable {
                value: (gid, gid + 5),
                negated: false,
            }),
            suppl_groups: true,
            ..Default::default()
        }));
        r
    };
    let check = |p: &Program, running: &[Action]| {
        let actions = p.actions.all(running);
        let mut seen = Vec::new();
        for a in actions.iter().filter(|a| a.owner_match != 0) {
            let range = p.actions.owner_groups[a.owner_group as usize];
            assert_eq!(range, a.owner_gid);
            seen.push(range);
        }
        seen
    };
    let mut running = Table::default();
    running.chain_mut("OUTPUT").unwrap().rules =
        vec![owner(10, 1), owner(20, 2), owner(10, 3), bare(None, 4)].into();
    let first = program(&running, &links, &at, None).unwrap();
    assert_eq!(first.actions.owner_groups, [[10, 15], [20, 25]]);
    assert_eq!(check(&first, &[]).len(), 3);
    let running_actions = first.actions.all(&[]);

    // Without the first rule, the list starts with 20's range: the rules after it that
    // stay take their new index.
    let mut table = running.clone();
    table.chain_mut("OUTPUT").unwrap().rules.remove(0);
    let slots = slots_of(&running);
    let base = Base {
        old: Old::Slots(&slots),
        layout: &first.layout,
    };
    let p = program(&table, &links, &at, Some(&base)).unwrap();
    assert_eq!(p.actions.owner_groups, [[20, 25], [10, 15]]);
    assert_eq!(check(&p, &running_actions), [[20, 25], [10, 15]]);

    // One range more than a generation holds.
    let mut many = Table::default();
    many.chain_mut("OUTPUT").unwrap().rules = (0..=pcn_iptables_common::owner::GROUP_RANGES as u32)
        .map(|i| owner(i * 10, i))
        .collect();
    assert_eq!(
        program(&many, &links, &at, None).unwrap_err(),
        CompileError::TooManyGroupRanges
    );
}
