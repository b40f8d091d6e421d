//! The compiled tables, evaluated the way the data plane does, must pick the same first rule as
//! evaluating the rules one by one.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use super::*;
use crate::ruleset::model::{Interface, PortRange, StateModule};

#[test]
fn values_merge_touching_intervals() {
    let v = Values::new(vec![
        Interval { first: 5, last: 9 },
        Interval { first: 1, last: 2 },
        Interval { first: 3, last: 3 },
        Interval {
            first: 12,
            last: 12,
        },
    ]);
    assert_eq!(
        v.intervals(),
        &[
            Interval { first: 1, last: 3 },
            Interval { first: 5, last: 9 },
            Interval {
                first: 12,
                last: 12
            }
        ]
    );
    assert!(v.contains(Interval { first: 2, last: 3 }));
    assert!(!v.contains(Interval { first: 3, last: 5 }));
}

#[test]
fn complement_and_intersection() {
    let v = Values::new(vec![
        Interval { first: 3, last: 5 },
        Interval { first: 9, last: 9 },
    ]);
    assert_eq!(
        v.complement(10).intervals(),
        &[
            Interval { first: 0, last: 2 },
            Interval { first: 6, last: 8 },
            Interval {
                first: 10,
                last: 10
            }
        ]
    );
    assert_eq!(
        Values::new(vec![]).complement(7).intervals(),
        &[Interval { first: 0, last: 7 }]
    );
    let w = Values::new(vec![Interval { first: 4, last: 9 }]);
    assert_eq!(
        v.intersect(&w).intervals(),
        &[
            Interval { first: 4, last: 5 },
            Interval { first: 9, last: 9 }
        ]
    );
    assert!(
        v.intersect(&Values::new(vec![Interval { first: 6, last: 8 }]))
            .intervals()
            .is_empty()
    );
}

#[test]
fn prefixes_cover_ranges_exactly() {
    assert_eq!(
        prefixes(
            Interval {
                first: 0,
                last: 65535
            },
            16
        ),
        vec![(0, 0)]
    );
    assert_eq!(prefixes(Interval::single(22), 16), vec![(16, 22)]);
    assert_eq!(
        prefixes(
            Interval {
                first: 1024,
                last: 2047
            },
            16
        ),
        vec![(6, 1024)]
    );
    assert_eq!(
        prefixes(
            Interval {
                first: 0,
                last: u32::MAX
            },
            32
        ),
        vec![(0, 0)]
    );
    for (first, last) in [
        (1u32, 65534u32),
        (3, 17),
        (1000, 1000),
        (65535, 65535),
        (0, 1),
    ] {
        let mut covered = Vec::new();
        for (len, v) in prefixes(Interval { first, last }, 16) {
            let i = Interval::of_prefix(v, len, 16);
            covered.extend(i.first..=i.last);
        }
        assert_eq!(
            covered,
            (first..=last).collect::<Vec<_>>(),
            "{first}:{last}"
        );
    }
}

struct Pkt {
    src: u32,
    dst: u32,
    proto: u8,
    ports: Option<(u16, u16)>,
    in_if: u32,
    out_if: u32,
    ctstate: u8,
}

fn key_bits(key: &[u8], bits: u32) -> Vec<bool> {
    (0..bits)
        .map(|i| key[(i / 8) as usize] & (0x80 >> (i % 8)) != 0)
        .collect()
}

/// The longest entry whose prefix covers `key` (what an LPM trie lookup returns).
fn lpm<'a>(c: &'a Compiled, key: &FieldKey) -> Option<&'a Words> {
    c.fields
        .iter()
        .filter(|e| key_bits(&e.key, e.prefix_len) == key_bits(key, e.prefix_len))
        .max_by_key(|e| e.prefix_len)
        .map(|e| &c.bitmaps[e.bitmap as usize])
}

fn dataplane_first_match(c: &Compiled, chain: u32, p: &Pkt) -> Option<usize> {
    let cfg = c.chains[chain as usize];
    let lookup =
        |id: u8, v: [u8; 4]| lpm(c, &field_key6(id, chain, [v[0], v[1], v[2], v[3], 0, 0]));
    let mut maps: Vec<&Words> = vec![&c.bitmaps[cfg.rules as usize]];
    let (sport, dport) = p.ports.unwrap_or((0, 0));
    let port = |port: u16| match p.ports {
        Some(_) => [1, (port >> 8) as u8, port as u8, 0],
        None => [0; 4],
    };
    let values = [
        (field::SRC, p.src.to_be_bytes()),
        (field::DST, p.dst.to_be_bytes()),
        (field::PROTO, [p.proto, 0, 0, 0]),
        (field::SPORT, port(sport)),
        (field::DPORT, port(dport)),
        (field::IN_IFACE, p.in_if.to_be_bytes()),
        (field::OUT_IFACE, p.out_if.to_be_bytes()),
        (field::CTSTATE, [p.ctstate, 0, 0, 0]),
    ];
    for (id, value) in values {
        if cfg.fields & field::bit(id) != 0 {
            maps.push(lookup(id, value)?);
        }
    }
    (0..cfg.nwords as usize).find_map(|i| {
        let w = maps.iter().fold(u64::MAX, |acc, m| acc & m[i]);
        (w != 0).then(|| i * 64 + w.trailing_zeros() as usize)
    })
}

fn rule_matches(r: &Rule, p: &Pkt, links: &[Link]) -> bool {
    let addr = |n: &Option<Negatable<Ipv4Network>>, a: u32| {
        n.as_ref()
            .is_none_or(|n| n.value.contains(Ipv4Addr::from(a)) != n.negated)
    };
    let name = |ifindex: u32| {
        links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .map(|l| l.name.clone())
            .unwrap_or_default()
    };
    let iface = |i: &Option<Negatable<Interface>>, ifindex: u32| {
        i.as_ref()
            .is_none_or(|i| i.value.matches(&name(ifindex)) != i.negated)
    };
    let proto = r
        .proto
        .as_ref()
        .is_none_or(|x| (x.value == p.proto) != x.negated);
    let ports = r.matches.iter().all(|m| match m {
        Match::Ports { sport, dport, .. } => {
            let check = |c: &Option<Negatable<PortRange>>, v: Option<u16>| match (c, v) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(c), Some(v)) => (c.value.first <= v && v <= c.value.last) != c.negated,
            };
            check(sport, p.ports.map(|x| x.0)) && check(dport, p.ports.map(|x| x.1))
        }
        Match::Conntrack { states, .. } => (states.value & (1 << p.ctstate) != 0) != states.negated,
        // random_rule makes no other match.
        _ => unreachable!("not generated"),
    });
    addr(&r.src, p.src)
        && addr(&r.dst, p.dst)
        && proto
        && ports
        && iface(&r.in_iface, p.in_if)
        && iface(&r.out_iface, p.out_if)
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

// Few distinct values, so that random packets hit the rules often.
const ADDRS: [u32; 4] = [0xc612_0001, 0xc612_0102, 0xc613_0001, 0x0a00_0001];
const PORTS: [u16; 5] = [22, 80, 1024, 4000, 65535];
const LINKS: [(u32, &str); 3] = [(1, "lo"), (2, "veth0"), (3, "eth1")];

fn random_rule(rng: &mut Rng, counter: u32) -> Rule {
    let net = |rng: &mut Rng| {
        rng.chance(50).then(|| {
            let len = [32u8, 24, 16, 8, 0][rng.below(5) as usize];
            let a = Ipv4Addr::from(ADDRS[rng.below(4) as usize]);
            let n = Ipv4Network::new(a, len).unwrap();
            Negatable {
                value: Ipv4Network::new(n.network(), len).unwrap(),
                negated: rng.chance(30),
            }
        })
    };
    let src = net(rng);
    let dst = net(rng);
    let iface = |rng: &mut Rng| {
        rng.chance(30).then(|| {
            let (name, wildcard) = [
                ("veth0", false),
                ("veth+", true),
                ("eth1", false),
                ("+", true),
                ("lo", false),
            ][rng.below(5) as usize];
            Negatable {
                value: Interface {
                    name: name.trim_end_matches('+').into(),
                    wildcard,
                },
                negated: rng.chance(30),
            }
        })
    };
    let in_iface = iface(rng);
    let out_iface = iface(rng);
    let proto_num = [6u8, 17, 1][rng.below(3) as usize];
    let proto = rng.chance(70).then(|| Negatable {
        value: proto_num,
        negated: rng.chance(15),
    });
    let mut matches = Vec::new();
    if let Some(p) = &proto
        && !p.negated
        && p.value != 1
        && rng.chance(60)
    {
        let range = |rng: &mut Rng| {
            rng.chance(60).then(|| {
                let a = PORTS[rng.below(5) as usize];
                let b = if rng.chance(50) {
                    a
                } else {
                    a.saturating_add(rng.below(3000) as u16)
                };
                Negatable {
                    value: PortRange { first: a, last: b },
                    negated: rng.chance(30),
                }
            })
        };
        matches.push(Match::Ports {
            proto: p.value,
            sport: range(rng),
            dport: range(rng),
            tcp_flags: None,
        });
        // Sometimes a second port match on the same protocol, which must hold too.
        if rng.chance(25) {
            matches.push(Match::Ports {
                proto: p.value,
                sport: range(rng),
                dport: range(rng),
                tcp_flags: None,
            });
        }
    }
    // Sometimes two state matches, which must both hold.
    for _ in 0..[0, 1, 1, 2][rng.below(4) as usize] {
        let states = (1 + rng.below(31)) as u8;
        let module = [StateModule::Conntrack, StateModule::State][rng.below(2) as usize];
        matches.push(Match::Conntrack {
            module,
            states: Negatable {
                value: states,
                negated: rng.chance(30),
            },
        });
    }
    let target = [Some(Target::Accept), Some(Target::Drop), None][rng.below(3) as usize].clone();
    Rule {
        src,
        dst,
        in_iface,
        out_iface,
        proto,
        fragment: None,
        matches,
        target,
        counter,
    }
}

fn random_packet(rng: &mut Rng) -> Pkt {
    let proto = [6u8, 17, 1, 47][rng.below(4) as usize];
    let port = |rng: &mut Rng| {
        let p = PORTS[rng.below(5) as usize];
        if rng.chance(50) {
            p
        } else {
            p.wrapping_add(rng.below(2000) as u16)
        }
    };
    let ports = ((proto == 6 || proto == 17) && rng.chance(90)).then(|| (port(rng), port(rng)));
    Pkt {
        src: ADDRS[rng.below(4) as usize] ^ (rng.below(4) as u32),
        dst: ADDRS[rng.below(4) as usize] ^ ((rng.below(2) as u32) << 12),
        proto,
        ports,
        in_if: rng.below(5) as u32,
        out_if: rng.below(5) as u32,
        ctstate: rng.below(5) as u8,
    }
}

#[test]
fn compiled_tables_pick_the_same_first_rule_as_the_rules() {
    let links: Vec<Link> = LINKS
        .iter()
        .map(|(i, n)| Link {
            ifindex: *i,
            name: n.to_string(),
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let mut table = Table::default();
        let n = [1usize, 5, 63, 64, 65, 130][round % 6];
        let mut counter = 3;
        for chain in &mut table.chains {
            chain.rules = (0..n)
                .map(|_| {
                    counter += 1;
                    random_rule(&mut rng, counter)
                })
                .collect();
        }
        let compiled = compile(&table, &links).unwrap();
        for (id, chain) in table.chains.iter().enumerate() {
            for _ in 0..300 {
                let p = random_packet(&mut rng);
                let want = chain.rules.iter().position(|r| rule_matches(r, &p, &links));
                let got = dataplane_first_match(&compiled, id as u32, &p);
                assert_eq!(
                    got, want,
                    "round {round} chain {} rules {:#?}",
                    chain.name, chain.rules
                );
            }
        }
    }
}

#[test]
fn actions_carry_targets_and_counters() {
    let mut table = Table::default();
    table.chains.push(crate::ruleset::model::Chain {
        name: "web".into(),
        policy: None,
        policy_counter: 0,
        rules: vec![],
    });
    let rule = |target, counter| Rule {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: None,
        fragment: None,
        matches: vec![],
        target,
        counter,
    };
    table.chains[0].rules = vec![rule(Some(Target::Jump("web".into())), 7), rule(None, 8)];
    table.chains[3].rules = vec![rule(Some(Target::Return), 9)];
    table.chains[0].policy = Some(Policy::Drop);
    let c = compile(&table, &[]).unwrap();
    assert_eq!(c.chain_names[3], "web");
    assert_eq!(
        (
            c.actions[0].verdict,
            c.actions[0].chain,
            c.actions[0].counter
        ),
        (verdict::JUMP, 3, 7)
    );
    assert_eq!(
        (c.actions[1].verdict, c.actions[1].counter),
        (verdict::CONTINUE, 8)
    );
    assert_eq!(c.chains[0].policy, verdict::DROP);
    assert_eq!(c.chains[3].policy, verdict::RETURN);
    assert_eq!(c.chains[3].action_base, 2);
    assert_eq!(c.bitmaps[c.chains[0].rules as usize], vec![0b11]);
    assert_eq!(c.bitmaps[c.chains[0].count_only as usize], vec![0b10]);
    assert_eq!(c.chains[0].fields, 0);
}

#[test]
fn too_many_rules_is_an_error() {
    let mut table = Table::default();
    let rule = Rule {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: None,
        fragment: None,
        matches: vec![],
        target: None,
        counter: 0,
    };
    table.chains[1].rules = vec![rule; MAX_RULES_PER_CHAIN + 1];
    assert_eq!(
        compile(&table, &[]).unwrap_err(),
        CompileError::TooManyRules {
            chain: "FORWARD".into(),
            rules: MAX_RULES_PER_CHAIN + 1
        }
    );
}

/// The definition `trie_field` computes faster: an atom's bitmap has rule i set when the atom
/// lies inside rule i's interval, flipped by `!`.
fn trie_field_by_definition(
    nwords: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
) -> Vec<(u32, u32, Words)> {
    let mut atoms = vec![(0u32, 0u32)];
    for c in constraints.iter().flatten() {
        for i in c.value.intervals() {
            atoms.extend(prefixes(*i, width));
        }
    }
    atoms.sort_unstable_by_key(|&(len, v)| (v, len));
    atoms.dedup();
    atoms
        .into_iter()
        .map(|(len, value)| {
            let atom = Interval::of_prefix(value, len, width);
            let bits = constraints.iter().map(|c| match c {
                None => true,
                Some(c) => c.value.contains(atom) != c.negated,
            });
            (len, value, bitmap(nwords, bits))
        })
        .collect()
}

#[test]
fn trie_field_walk_equals_the_definition() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..300 {
        let width = [8u32, 16, 32][round % 3];
        let max = if width == 32 {
            u32::MAX as u64
        } else {
            (1u64 << width) - 1
        };
        let n = 1 + rng.below(150) as usize;
        let constraints: Vec<_> = (0..n)
            .map(|_| {
                rng.chance(80).then(|| {
                    // One to three intervals, sometimes touching or overlapping.
                    let intervals = (0..1 + rng.below(3))
                        .map(|_| {
                            let a = rng.below(max + 1);
                            let span = [0, 1, 300, max][rng.below(4) as usize];
                            let b = a + rng.below(1 + (max - a).min(span));
                            Interval {
                                first: a as u32,
                                last: b as u32,
                            }
                        })
                        .collect();
                    Negatable {
                        value: Values::new(intervals),
                        negated: rng.chance(30),
                    }
                })
            })
            .collect();
        let nwords = n.div_ceil(64);
        let got = trie_field(nwords, &constraints, width).unwrap_or_default();
        let want = if constraints.iter().all(Option::is_none) {
            Vec::new()
        } else {
            trie_field_by_definition(nwords, &constraints, width)
        };
        assert_eq!(got, want, "round {round}, width {width}: {constraints:?}");
    }
}

/// A chain at the limit, like the bpf-iptables paper's rule sets (every rule a distinct
/// combination of source, destination and port), compiles, and its tables still pick the
/// right rule.
#[test]
fn a_full_chain_compiles_and_classifies() {
    let n = MAX_RULES_PER_CHAIN;
    let rule = |i: usize| Rule {
        src: Some(Negatable::plain(
            Ipv4Network::new(Ipv4Addr::new(198, 18, (i / 256) as u8, (i % 256) as u8), 32).unwrap(),
        )),
        dst: Some(Negatable::plain(
            Ipv4Network::new(Ipv4Addr::new(198, 19, (i % 64) as u8, 0), 24).unwrap(),
        )),
        in_iface: None,
        out_iface: None,
        proto: Some(Negatable::plain(17)),
        fragment: None,
        matches: vec![Match::Ports {
            proto: 17,
            sport: None,
            tcp_flags: None,
            dport: Some(Negatable::plain(PortRange {
                first: 1000 + (i % 1000) as u16,
                last: 1000 + (i % 1000) as u16,
            })),
        }],
        target: Some(Target::Drop),
        counter: 3 + i as u32,
    };
    let mut table = Table::default();
    table.chains[0].rules = (0..n).map(rule).collect();
    let started = std::time::Instant::now();
    let c = compile(&table, &[]).unwrap();
    eprintln!(
        "{n} rules: {} trie entries in {:?}",
        c.fields.len(),
        started.elapsed()
    );
    for i in [0, 1, n / 2, n - 1] {
        let p = Pkt {
            src: u32::from(Ipv4Addr::new(198, 18, (i / 256) as u8, (i % 256) as u8)),
            dst: u32::from(Ipv4Addr::new(198, 19, (i % 64) as u8, 7)),
            proto: 17,
            ports: Some((5555, 1000 + (i % 1000) as u16)),
            in_if: 2,
            out_if: 0,
            ctstate: 3,
        };
        assert_eq!(dataplane_first_match(&c, 0, &p), Some(i));
    }
}
