//! The compiled tables, evaluated the way the data plane does, must pick the same first rule as
//! evaluating the rules one by one.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use pcn_iptables_common::{
    CHAIN_NAT_POSTROUTING, CHAIN_NAT_PREROUTING, FIELD_KEY_HEADER_BITS, FIXED_CHAINS, FieldKey,
    LOG_PREFIX_LEN, MAX_RULES_PER_CHAIN, PacketInfo, chain_flag, classifier,
    conntrack::{self, Tuple, ctstate},
    ct_check, field, reject, rtn, verdict,
};

use super::atoms::{bitmap, walk};
use super::interval::{Interval, Values, prefixes};
use super::*;
use crate::ext::match_name;
use crate::model::{
    AddrMask, AddrRange, CtAddr, CtOther, IcmpType, Interface, Limit, MarkMask, Match,
    MultiportDir, Negatable, Policy, PortRange, Rule, StateModule, Statistic, Target, TcpFlags,
    TosMask, TtlMode,
};

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

/// A packet as the data plane sees it at a hook. The layer-4 values exist only where the
/// kernel's matches can read them: TCP/UDP ports and TCP flags, ICMP type and code, in the
/// first fragment (or an unfragmented packet) only.
#[derive(Clone, Debug)]
struct Pkt {
    src: u32,
    dst: u32,
    proto: u8,
    /// The fragment offset is not 0 (what `-f` matches).
    fragment: bool,
    ports: Option<(u16, u16)>,
    icmp: Option<(u8, u8)>,
    tcp_flags: Option<u8>,
    /// The IP total length.
    len: u16,
    ttl: u8,
    /// The TOS byte.
    tos: u8,
    /// `pkt_type::*`.
    pkt_type: u8,
    /// The skb's mark, and its connection's.
    mark: u32,
    ct_mark: u32,
    /// None on OUTPUT and on interfaces without an Ethernet header (the data plane then
    /// reads zeros; the kernel's `-m mac` matches nothing there, `!` or not).
    mac: Option<[u8; 6]>,
    in_if: u32,
    out_if: u32,
    /// `ctstate::with_nat`'s value.
    ctstate: u8,
    /// Its connection's original source and destination, reply source and destination.
    ct: [u32; 4],
    /// Their ports, in the same order.
    ct_ports: [u16; 4],
    /// Its connection's protocol, and whether the packet goes the reply way.
    ct_proto: u8,
    ct_reply: bool,
    /// Its connection's IPS_* bits and seconds left.
    ct_status: u8,
    ct_expires: u32,
    /// Per rule: whether its `-m limit` bucket has a token now (the one thing about a rule
    /// that compile time cannot know).
    limit_pass: Vec<bool>,
}

impl Pkt {
    /// A TCP/UDP packet with every other field set to something no generated rule singles out.
    fn udp(src: u32, dst: u32, sport: u16, dport: u16) -> Pkt {
        Pkt {
            src,
            dst,
            proto: 17,
            fragment: false,
            ports: Some((sport, dport)),
            icmp: None,
            tcp_flags: None,
            len: 60,
            ttl: 64,
            tos: 0,
            pkt_type: 0,
            mark: 0,
            ct_mark: 0,
            mac: None,
            in_if: 2,
            out_if: 0,
            ctstate: 3,
            ct: [src, dst, dst, src],
            ct_ports: [sport, dport, dport, sport],
            ct_proto: 17,
            ct_reply: false,
            ct_status: 0,
            ct_expires: 0,
            limit_pass: Vec::new(),
        }
    }
}

/// What a chain does with a packet: the rules without a deciding target (no `-j`, or LOG)
/// that match before the first matching rule with one, and that rule.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    passed: Vec<usize>,
    decided: Option<usize>,
}

fn mask_key(key: &FieldKey, bits: u32) -> FieldKey {
    let mut k = *key;
    for i in bits..(k.len() * 8) as u32 {
        k[(i / 8) as usize] &= !(0x80 >> (i % 8));
    }
    k
}

/// The field trie as the kernel's LPM trie answers it: the longest entry whose prefix covers
/// the key's first `prefix_len` bits, among the entries no longer than that.
struct Trie {
    entries: HashMap<(u32, FieldKey), u32>,
    /// Per (field, chain) header: the prefix lengths in use, longest first.
    lengths: HashMap<[u8; 3], Vec<u32>>,
}

impl Trie {
    fn new(c: &Compiled) -> Trie {
        let mut entries = HashMap::new();
        let mut lengths: HashMap<[u8; 3], Vec<u32>> = HashMap::new();
        for e in &c.fields {
            let key = mask_key(&e.key, e.prefix_len);
            assert!(
                e.prefix_len >= FIELD_KEY_HEADER_BITS && e.prefix_len <= 72,
                "entry {e:?}"
            );
            // The kernel keeps one value per prefix: a second one would overwrite the first.
            assert!(
                entries.insert((e.prefix_len, key), e.bitmap).is_none(),
                "two entries for {e:?}"
            );
            lengths
                .entry([key[0], key[1], key[2]])
                .or_default()
                .push(e.prefix_len);
        }
        for l in lengths.values_mut() {
            l.sort_unstable_by(|a, b| b.cmp(a));
            l.dedup();
        }
        Trie { entries, lengths }
    }

    /// The entry the data plane finds for field `id` of `chain` in packet `p`: the key is
    /// built by the very functions the eBPF classifier builds it with.
    fn lookup(&self, id: u8, chain: u32, p: &PacketInfo) -> Option<u32> {
        let (bits, value) = classifier::packet_value(id, p);
        let (plen, key) = classifier::lookup_key(id, chain, bits, value);
        self.lengths
            .get(&[key[0], key[1], key[2]])?
            .iter()
            .filter(|&&l| l <= plen)
            .find_map(|&l| self.entries.get(&(l, mask_key(&key, l))).copied())
    }
}

impl Pkt {
    /// The packet as the data plane's parser leaves it for the classifier.
    fn info(&self) -> PacketInfo {
        let (sport, dport) = self.ports.unwrap_or_default();
        let (icmp_type, icmp_code) = self.icmp.unwrap_or_default();
        PacketInfo {
            src: self.src.to_be_bytes(),
            dst: self.dst.to_be_bytes(),
            proto: self.proto,
            has_ports: self.ports.is_some() as u8,
            sport,
            dport,
            has_icmp: self.icmp.is_some() as u8,
            icmp_type,
            icmp_code,
            has_tcp_flags: self.tcp_flags.is_some() as u8,
            tcp_flags: self.tcp_flags.unwrap_or_default(),
            len: self.len as u32,
            ttl: self.ttl,
            tos: self.tos,
            pkt_type: self.pkt_type,
            mark: self.mark,
            ct_mark: self.ct_mark,
            fragment: self.fragment as u8,
            mac_src: self.mac.unwrap_or([0; 6]),
            in_ifindex: self.in_if,
            out_ifindex: self.out_if,
            ctstate: self.ctstate,
            orig: Tuple {
                src: self.ct[0].to_be_bytes(),
                dst: self.ct[1].to_be_bytes(),
                sport: self.ct_ports[0],
                dport: self.ct_ports[1],
                proto: self.ct_proto,
                ..Default::default()
            },
            ct_reply: self.ct_reply as u8,
            ct_status: self.ct_status,
            ct_expires: self.ct_expires,
            // The reply tuple's inverse.
            xlat: Tuple {
                src: self.ct[3].to_be_bytes(),
                dst: self.ct[2].to_be_bytes(),
                sport: self.ct_ports[3],
                dport: self.ct_ports[2],
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// The chain's verdict the way the classifier computes it: AND of the bitmaps of the
/// packet's values (the OR of the two `--ports` ones), checked rules whose connection's
/// tuples or bucket say no taken out, rules without a deciding target counted on the way to
/// the first that has one.
fn dataplane_outcome(c: &Compiled, trie: &Trie, chain: u32, p: &Pkt) -> Outcome {
    let none = Outcome {
        passed: vec![],
        decided: None,
    };
    let cfg = c.chains[chain as usize];
    let info = p.info();
    let all = &c.bitmaps[cfg.rules as usize];
    let mut maps: Vec<&Words> = vec![all];
    let mut any_port: Vec<&Words> = vec![];
    // In the field table's order, as the classifier scans them.
    for f in classifier::SCANNED {
        let map = if cfg.fields & field::bit(f.id) == 0 {
            all
        } else {
            // A field without an entry for the value matches no rule.
            match trie.lookup(f.id, chain, &info) {
                Some(b) => &c.bitmaps[b as usize],
                None => return none,
            }
        };
        if classifier::position(f.id) >= classifier::ANDED_BITMAPS {
            any_port.push(map);
        } else {
            maps.push(map);
        }
    }
    assert_eq!(maps.len(), classifier::ANDED_BITMAPS);
    let checked = &c.bitmaps[cfg.checked as usize];
    let count_only = &c.bitmaps[cfg.count_only as usize];
    let mut passed = vec![];
    for i in 0..cfg.nwords as usize {
        let mut w = maps.iter().fold(u64::MAX, |acc, m| acc & m[i]);
        w &= any_port[0][i] | any_port[1][i];
        for bit in 0..64 {
            let rule = i * 64 + bit;
            if checked[i] & (1 << bit) == 0 {
                continue;
            }
            let action = &c.actions[cfg.action_base as usize + rule];
            // A rule without a bucket has `limit_burst` 0 (`limit::take` passes it).
            if !conntrack::tuples_match(&info, action)
                || !pcn_iptables_common::packet_matches(&info, action)
                || (action.limit_burst != 0 && !p.limit_pass.get(rule).copied().unwrap_or(true))
            {
                w &= !(1 << bit);
            }
        }
        for bit in 0..64 {
            if w & (1 << bit) == 0 {
                continue;
            }
            if count_only[i] & (1 << bit) != 0 {
                passed.push(i * 64 + bit);
            } else {
                return Outcome {
                    passed,
                    decided: Some(i * 64 + bit),
                };
            }
        }
    }
    Outcome {
        passed,
        decided: None,
    }
}

/// The namespace the rules are compiled for: its interfaces and its local routing table.
struct Env {
    links: Vec<Link>,
    /// The local table's routes (`ip route show table local`): prefix and `rtn::*`.
    routes: Vec<(Ipv4Network, u8)>,
}

impl Env {
    fn new() -> Env {
        let route = |net: &str, kind| (net.parse().unwrap(), kind);
        Env {
            links: LINKS
                .iter()
                .map(|(i, n)| Link {
                    ifindex: *i,
                    name: n.to_string(),
                })
                .collect(),
            routes: vec![
                route("127.0.0.0/8", rtn::LOCAL),
                route("127.0.0.1/32", rtn::LOCAL),
                route("127.255.255.255/32", rtn::BROADCAST),
                route("198.18.0.1/32", rtn::LOCAL),
                route("198.18.0.255/32", rtn::BROADCAST),
                route("198.19.0.0/16", rtn::LOCAL),
                route("198.19.255.255/32", rtn::BROADCAST),
            ],
        }
    }

    fn address_types(&self) -> AddressTypes {
        AddressTypes::new(&self.routes)
    }

    /// The kernel's `inet_addr_type`: 0.0.0.0/8 and 255.255.255.255 are BROADCAST, 224/4
    /// MULTICAST, anything else takes the type of the longest local route that covers it,
    /// UNICAST when none does.
    fn addr_type(&self, a: u32) -> u8 {
        if a >> 24 == 0 || a == u32::MAX {
            return rtn::BROADCAST;
        }
        if a >> 28 == 0xe {
            return rtn::MULTICAST;
        }
        self.routes
            .iter()
            .filter(|(net, _)| net.contains(Ipv4Addr::from(a)))
            .max_by_key(|(net, _)| net.prefix())
            .map_or(rtn::UNICAST, |&(_, kind)| kind)
    }

    fn ifname(&self, ifindex: u32) -> String {
        self.links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }
}

fn in_range<T: PartialOrd>(v: T, first: T, last: T) -> bool {
    first <= v && v <= last
}

/// One match of a rule, as the kernel's xt_* module decides it (see iptables-extensions(8)).
fn match_holds(m: &Match, p: &Pkt, env: &Env, limit_pass: bool) -> bool {
    // xt_tcpudp, xt_multiport and xt_icmp return false for a non-first fragment before
    // looking at their `!`: a fragment has no header to read.
    match m {
        Match::Ports {
            sport,
            dport,
            tcp_flags,
            ..
        } => {
            let Some((s, d)) = p.ports.filter(|_| !p.fragment) else {
                return false;
            };
            let port = |c: &Option<Negatable<PortRange>>, v: u16| {
                c.as_ref()
                    .is_none_or(|c| in_range(v, c.value.first, c.value.last) != c.negated)
            };
            let flags = tcp_flags.as_ref().is_none_or(|f| {
                p.tcp_flags
                    .is_some_and(|b| (b & f.value.mask == f.value.comp) != f.negated)
            });
            port(sport, s) && port(dport, d) && flags
        }
        Match::Multiport { dir, ports } => {
            let Some((s, d)) = p.ports.filter(|_| !p.fragment) else {
                return false;
            };
            let hit = ports.value.iter().any(|r| {
                let has = |v| in_range(v, r.first, r.last);
                match dir {
                    MultiportDir::Source => has(s),
                    MultiportDir::Destination => has(d),
                    MultiportDir::Either => has(s) || has(d),
                }
            });
            hit != ports.negated
        }
        Match::Icmp(t) => {
            let Some((kind, code)) = p.icmp.filter(|_| !p.fragment) else {
                return false;
            };
            let hit = t.value.kind == IcmpType::ANY
                || (kind == t.value.kind && in_range(code, t.value.code_min, t.value.code_max));
            hit != t.negated
        }
        Match::Iprange { src, dst } => {
            // xt_iprange: inclusive bounds; a range with first > last holds no address.
            let range = |r: &Option<Negatable<AddrRange>>, a: u32| {
                r.as_ref().is_none_or(|r| {
                    in_range(a, u32::from(r.value.first), u32::from(r.value.last)) != r.negated
                })
            };
            range(src, p.src) && range(dst, p.dst)
        }
        Match::Mac(m) => p.mac.is_some_and(|mac| (mac == m.value) != m.negated),
        Match::Length(l) => in_range(p.len, l.value.first, l.value.last) != l.negated,
        Match::Ttl { mode, value } => match mode {
            TtlMode::Eq => p.ttl == *value,
            TtlMode::Ne => p.ttl != *value,
            TtlMode::Lt => p.ttl < *value,
            TtlMode::Gt => p.ttl > *value,
        },
        Match::Addrtype { src, dst, .. } => {
            let types = |t: &Option<Negatable<u16>>, a: u32| {
                t.as_ref()
                    .is_none_or(|t| (t.value & (1 << env.addr_type(a)) != 0) != t.negated)
            };
            types(src, p.src) && types(dst, p.dst)
        }
        Match::Comment(_) => true,
        // The own checks of a rule: the reference takes them as passed or failed together.
        Match::Limit(_) | Match::Statistic(_) | Match::Recent(_) => limit_pass,
        Match::Tos(t) => (p.tos & t.value.mask == t.value.value) != t.negated,
        Match::Dscp(d) => (p.tos >> 2 == d.value) != d.negated,
        Match::PktType(t) => (p.pkt_type == t.value) != t.negated,
        Match::Mark(m) => (p.mark & m.value.mask == m.value.value) != m.negated,
        // Not generated: the reference has no sockets, no connection lists.
        Match::Owner(_) => unreachable!("no -m owner in the model test"),
        Match::Connlimit(_) => unreachable!("no -m connlimit in the model test"),
        Match::Hashlimit(_) => unreachable!("no -m hashlimit in the model test: it has no clock"),
        Match::Time(_) => unreachable!("no -m time in the model test: it has no clock"),
        Match::Tcpmss(_) => unreachable!("no -m tcpmss in the model test: it has no options"),
        Match::Esp(_) | Match::Ah(_) => unreachable!("no IPsec in the model test"),
        Match::Sctp { .. } | Match::Dccp { .. } => {
            unreachable!("no SCTP or DCCP in the model test")
        }
        // xt_connmark: no connection, no match, `!` or not.
        Match::Connmark(m) => {
            matches!(p.ctstate & 7, 1..=3)
                && (p.ct_mark & m.value.mask == m.value.value) != m.negated
        }
        Match::Ecn { ect, ece, cwr } => {
            let flag = |want: &Option<Negatable<()>>, bit: u8| {
                want.as_ref().is_none_or(|w| {
                    p.tcp_flags
                        .filter(|_| !p.fragment)
                        .is_some_and(|f| (f & bit != 0) != w.negated)
                })
            };
            ect.as_ref()
                .is_none_or(|e| (p.tos & 3 == e.value) != e.negated)
                && flag(ece, 0x40)
                && flag(cwr, 0x80)
        }
        Match::Conntrack { states, .. } => state_matches(states, p.ctstate),
        // conntrack_mt: the state, then without a connection nothing more (a match only if
        // there was a state to check), else every address under its mask.
        Match::ConntrackTuple {
            states,
            addrs,
            other,
        } => {
            (states.value == 0 || state_matches(states, p.ctstate))
                && if ctstate::has_connection(p.ctstate) {
                    addrs.iter().zip(p.ct).all(|(a, ct)| {
                        a.as_ref().is_none_or(|a| {
                            (((ct ^ a.value.addr) & a.value.mask) == 0) != a.negated
                        })
                    }) && other
                        .proto
                        .as_ref()
                        .is_none_or(|c| (p.ct_proto == c.value) != c.negated)
                        && other.reply.is_none_or(|r| r == p.ct_reply)
                        && other
                            .status
                            .as_ref()
                            .is_none_or(|st| (p.ct_status & st.value != 0) != st.negated)
                        && other.expire.as_ref().is_none_or(|e| {
                            (e.value.0 <= p.ct_expires && p.ct_expires <= e.value.1) != e.negated
                        })
                        // xt_conntrack's port_match.
                        && other.ports.iter().zip(p.ct_ports).all(|(r, port)| {
                            r.as_ref().is_none_or(|r| {
                                (r.value.0 <= port && port <= r.value.1) != r.negated
                            })
                        })
                } else {
                    states.value != 0
                }
        }
    }
}

/// xt_conntrack's state check: the packet's state bit, SNAT and DNAT from its connection.
fn state_matches(states: &Negatable<u8>, v: u8) -> bool {
    let mut bits = 1 << (v & ctstate::STATE_MASK);
    if v & ctstate::PACKET_SNAT != 0 {
        bits |= 1 << ctstate::SNAT;
    }
    if v & ctstate::PACKET_DNAT != 0 {
        bits |= 1 << ctstate::DNAT;
    }
    (states.value & bits != 0) != states.negated
}

/// The rule as iptables matches it: the IP header part (ip_packet_match), then every match.
fn rule_matches(r: &Rule, p: &Pkt, env: &Env, limit_pass: bool) -> bool {
    let addr = |n: &Option<Negatable<AddrMask>>, a: u32| {
        n.as_ref()
            .is_none_or(|n| n.value.contains(Ipv4Addr::from(a)) != n.negated)
    };
    let iface = |i: &Option<Negatable<Interface>>, ifindex: u32| {
        i.as_ref()
            .is_none_or(|i| i.value.matches(&env.ifname(ifindex)) != i.negated)
    };
    let proto = r
        .proto
        .as_ref()
        .is_none_or(|x| (x.value == p.proto) != x.negated);
    let fragment = r.fragment.as_ref().is_none_or(|f| p.fragment != f.negated);
    addr(&r.src, p.src)
        && addr(&r.dst, p.dst)
        && proto
        && fragment
        && iface(&r.in_iface, p.in_if)
        && iface(&r.out_iface, p.out_if)
        && r.matches.iter().all(|m| match_holds(m, p, env, limit_pass))
}

/// Rule by rule: LOG and rules without `-j` go on to the next rule, any other target stops.
fn reference_outcome(rules: &[Rule], p: &Pkt, env: &Env) -> Outcome {
    let mut passed = vec![];
    for (i, r) in rules.iter().enumerate() {
        if !rule_matches(r, p, env, p.limit_pass[i]) {
            continue;
        }
        match r.target {
            None | Some(Target::Log(_)) => passed.push(i),
            Some(_) => {
                return Outcome {
                    passed,
                    decided: Some(i),
                };
            }
        }
    }
    Outcome {
        passed,
        decided: None,
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

// Few distinct values, so that random packets hit the rules often.
const ADDRS: [u32; 4] = [0xc612_0001, 0xc612_0102, 0xc613_0001, 0x0a00_0001];
/// Addresses whose type is not UNICAST in `Env::new`, or that are special to the kernel.
const TYPED_ADDRS: [u32; 8] = [
    0x7f00_0001,
    0x7fff_ffff,
    0xc612_00ff,
    0xc613_ffff,
    0xe000_0001,
    0xffff_ffff,
    0,
    0x0102_0304,
];
const PORTS: [u16; 6] = [0, 22, 80, 1024, 4000, 65535];
const LINKS: [(u32, &str); 3] = [(1, "lo"), (2, "veth0"), (3, "eth1")];
const MACS: [[u8; 6]; 4] = [
    [0x02, 0, 0, 0, 0, 1],
    [0x02, 0, 0, 0, 0, 2],
    [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
    [0; 6],
];
const TTLS: [u8; 6] = [0, 1, 63, 64, 254, 255];
const LENGTHS: [u16; 6] = [0, 20, 28, 84, 1500, 65535];
/// TCP flag masks: `--syn`'s, ALL, NONE, and a few others.
const FLAG_MASKS: [u8; 5] = [0x17, 0x3f, 0, 0x12, 0x01];
const USER_CHAIN: &str = "web";

fn random_port_range(rng: &mut Rng) -> PortRange {
    let a = rng.pick(&PORTS);
    let b = match rng.below(4) {
        0 | 1 => a,
        2 => a.saturating_add(rng.below(3000) as u16),
        // Rarely first > last: iptables refuses it for ports, but the compiler must still
        // give it the kernel's meaning (no port).
        _ => a.saturating_sub(1 + rng.below(10) as u16),
    };
    PortRange { first: a, last: b }
}

fn random_match(rng: &mut Rng, proto: Option<&Negatable<u8>>) -> Option<Match> {
    // Matches that need `-p tcp`/`udp`/`icmp` (not negated) only come with it, as
    // iptables requires.
    let l4 = proto.filter(|p| !p.negated).map(|p| p.value);
    let neg = |rng: &mut Rng| rng.chance(30);
    // ICMP rules have one match of their own where TCP/UDP ones have two.
    let arm = match rng.below(19) {
        0 | 1 if l4 == Some(1) => 2,
        arm => arm,
    };
    Some(match arm {
        0 if matches!(l4, Some(6 | 17)) => {
            let range = |rng: &mut Rng| {
                rng.chance(55).then(|| Negatable {
                    value: random_port_range(rng),
                    negated: rng.chance(30),
                })
            };
            let tcp_flags = (l4 == Some(6) && rng.chance(50)).then(|| {
                let mask = rng.pick(&FLAG_MASKS);
                let comp = match rng.below(5) {
                    // `--syn`
                    0 => 0x02,
                    // Bits outside the mask: no packet matches.
                    1 => mask | 0x20,
                    _ => mask & rng.below(64) as u8,
                };
                Negatable {
                    value: TcpFlags { mask, comp },
                    negated: rng.chance(30),
                }
            });
            Match::Ports {
                proto: l4.unwrap(),
                sport: range(rng),
                dport: range(rng),
                tcp_flags,
                tcp_option: None,
            }
        }
        1 if matches!(l4, Some(6 | 17)) => {
            // Up to 15 ports, a range counting as two.
            let mut ports = vec![];
            let mut room = 1 + rng.below(15) as usize;
            while room > 0 {
                let r = random_port_range(rng);
                let r = if room >= 2 && rng.chance(40) {
                    room -= 2;
                    PortRange {
                        first: r.first.min(r.last),
                        last: r.first.max(r.last),
                    }
                } else {
                    room -= 1;
                    PortRange {
                        first: r.first,
                        last: r.first,
                    }
                };
                ports.push(r);
            }
            Match::Multiport {
                dir: rng.pick(&[
                    MultiportDir::Source,
                    MultiportDir::Destination,
                    MultiportDir::Either,
                ]),
                ports: Negatable {
                    value: ports,
                    negated: neg(rng),
                },
            }
        }
        2 if l4 == Some(1) => {
            let kind = rng.pick(&[0, 3, 8, 11, 5, IcmpType::ANY]);
            let (code_min, code_max) = match rng.below(3) {
                0 => (0, 255),
                1 => {
                    let c = rng.pick(&[0, 1, 3, 4, 13]);
                    (c, c)
                }
                // Names cover code ranges (e.g. `ttl-exceeded`, `redirect`).
                _ => (0, rng.pick(&[1, 3])),
            };
            Match::Icmp(Negatable {
                value: IcmpType {
                    kind,
                    code_min,
                    code_max,
                },
                negated: neg(rng),
            })
        }
        3 => {
            let range = |rng: &mut Rng| {
                rng.chance(60).then(|| {
                    let a = rng.pick(&ADDRS).wrapping_sub(rng.below(3) as u32);
                    let b = match rng.below(4) {
                        0 => a,
                        1 => a.saturating_add(rng.below(4) as u32),
                        2 => a.saturating_add(rng.below(1 << 20) as u32),
                        _ => a.wrapping_sub(1),
                    };
                    Negatable {
                        value: AddrRange {
                            first: Ipv4Addr::from(a),
                            last: Ipv4Addr::from(b),
                        },
                        negated: rng.chance(30),
                    }
                })
            };
            let src = range(rng);
            let dst = if src.is_none() {
                Some(range(rng).unwrap_or(Negatable::plain(AddrRange {
                    first: Ipv4Addr::from(ADDRS[0]),
                    last: Ipv4Addr::from(ADDRS[1]),
                })))
            } else {
                range(rng)
            };
            Match::Iprange { src, dst }
        }
        4 => Match::Mac(Negatable {
            value: rng.pick(&MACS),
            negated: neg(rng),
        }),
        5 => {
            let first = rng.pick(&LENGTHS);
            let last = match rng.below(4) {
                0 => first,
                1 => first.saturating_add(rng.below(100) as u16),
                2 => u16::MAX,
                _ => first.saturating_sub(1),
            };
            Match::Length(Negatable {
                value: PortRange { first, last },
                negated: neg(rng),
            })
        }
        6 => Match::Ttl {
            mode: rng.pick(&[TtlMode::Eq, TtlMode::Ne, TtlMode::Lt, TtlMode::Gt]),
            value: rng.pick(&TTLS),
        },
        7 => {
            let types = |rng: &mut Rng| {
                rng.chance(60).then(|| {
                    let mut t = 0u16;
                    for _ in 0..1 + rng.below(3) {
                        t |= 1
                            << if rng.chance(80) {
                                rng.pick(&[
                                    rtn::UNICAST,
                                    rtn::LOCAL,
                                    rtn::BROADCAST,
                                    rtn::MULTICAST,
                                ])
                            } else {
                                rng.below(12) as u8
                            };
                    }
                    Negatable {
                        value: t,
                        negated: rng.chance(30),
                    }
                })
            };
            let src = types(rng);
            let dst = if src.is_none() {
                Some(types(rng).unwrap_or(Negatable::plain(1 << rtn::LOCAL)))
            } else {
                types(rng)
            };
            Match::Addrtype {
                src,
                dst,
                iface: crate::model::AddrtypeIface::Any,
            }
        }
        8 => Match::Comment("a comment".into()),
        9 => Match::Limit(Limit {
            avg: rng.pick(&[1, 10000, Limit::DEFAULT.avg]),
            burst: 1 + rng.below(10) as u32,
        }),
        10 => Match::Conntrack {
            module: rng.pick(&[StateModule::Conntrack, StateModule::State]),
            states: Negatable {
                value: (1 + rng.below(31)) as u8,
                negated: rng.chance(30),
            },
        },
        11 => Match::Conntrack {
            module: StateModule::Conntrack,
            states: Negatable {
                value: (1 + rng.below(127)) as u8,
                negated: rng.chance(30),
            },
        },
        12 => {
            let other = CtOther {
                proto: rng.chance(30).then(|| Negatable {
                    value: rng.pick(&[6, 17, 1]),
                    negated: rng.chance(30),
                }),
                reply: rng.chance(30).then(|| rng.chance(50)),
                status: rng.chance(20).then(|| Negatable {
                    value: rng.pick(&[0, 2, 4, 8, 10]),
                    negated: rng.chance(30),
                }),
                expire: rng.chance(20).then(|| Negatable {
                    value: rng.pick(&[(0, 0), (10, 60), (100, 50)]),
                    negated: rng.chance(30),
                }),
                ports: [0; 4].map(|_| {
                    rng.chance(20).then(|| Negatable {
                        value: rng.pick(&[(22, 22), (0, 1024), (80, 65535), (1024, 80)]),
                        negated: rng.chance(30),
                    })
                }),
            };
            // At least one option besides the state, as parsing makes them.
            let bare = other.proto.is_none()
                && other.reply.is_none()
                && other.status.is_none()
                && other.expire.is_none()
                && other.ports.iter().all(Option::is_none);
            let first = rng.below(if bare { 4 } else { 5 });
            Match::ConntrackTuple {
                states: Negatable {
                    value: match rng.below(3) {
                        0 => (1 + rng.below(127)) as u8,
                        _ => 0,
                    },
                    negated: rng.chance(30),
                },
                addrs: [0, 1, 2, 3].map(|i| {
                    (i == first || rng.chance(40)).then(|| Negatable {
                        value: CtAddr {
                            addr: rng.pick(&ADDRS) ^ (rng.below(4) as u32),
                            mask: rng.pick(&[u32::MAX, u32::MAX, 0xffff_fffe, 0xff00_0000, 0]),
                            prefix: rng.chance(50),
                        },
                        negated: rng.chance(30),
                    })
                }),
                other,
            }
        }
        13 => Match::Tos(Negatable {
            value: TosMask {
                value: rng.pick(&[0x10, 0x08, 0x02, 0x00, 0x14]) | rng.below(2) as u8,
                mask: rng.pick(&[0xff, 0x3f, 0x1c, 0x10]),
            },
            negated: neg(rng),
        }),
        14 => Match::Dscp(Negatable {
            value: rng.pick(&[0x00, 0x0a, 0x2e, 0x3f]),
            negated: neg(rng),
        }),
        15 => {
            let flag = |rng: &mut Rng| {
                (l4 == Some(6) && rng.chance(50)).then(|| Negatable {
                    value: (),
                    negated: rng.chance(30),
                })
            };
            let (ece, cwr) = (flag(rng), flag(rng));
            let ect = (ece.is_none() && cwr.is_none() || rng.chance(50)).then(|| Negatable {
                value: rng.below(4) as u8,
                negated: rng.chance(30),
            });
            Match::Ecn { ect, ece, cwr }
        }
        16 => Match::PktType(Negatable {
            value: rng.below(4) as u8,
            negated: neg(rng),
        }),
        17 | 18 => {
            let m = Negatable {
                value: MarkMask {
                    value: rng.pick(&[0, 1, 0x4000, 0x4001]),
                    mask: rng.pick(&[u32::MAX, 0x4000, 1, 0]),
                },
                negated: neg(rng),
            };
            if arm == 17 {
                Match::Mark(m)
            } else {
                Match::Connmark(m)
            }
        }
        _ => return None,
    })
}

fn random_target(rng: &mut Rng, base_chain: bool) -> Option<Target> {
    let log = |rng: &mut Rng| {
        Target::Log(crate::model::Log {
            level: rng.below(8) as u8,
            flags: rng.below(16) as u8,
            prefix: ["", "x", "dropped: ", "twenty-nine characters long.."][rng.below(4) as usize]
                .into(),
        })
    };
    match rng.below(10) {
        0 | 1 => Some(Target::Accept),
        2 | 3 => Some(Target::Drop),
        4 => Some(Target::Reject(rng.pick(&[
            reject::icmp(3, 0),
            reject::icmp(3, 1),
            reject::icmp(3, 2),
            reject::icmp(3, 3),
            reject::icmp(3, 9),
            reject::icmp(3, 10),
            reject::icmp(3, 13),
            reject::TCP_RESET,
        ]))),
        5 | 6 => Some(log(rng)),
        7 => Some(Target::Return),
        8 if base_chain => Some(if rng.chance(50) {
            Target::Jump(USER_CHAIN.into())
        } else {
            Target::Goto(USER_CHAIN.into())
        }),
        _ => None,
    }
}

fn random_rule(rng: &mut Rng, counter: u32, base_chain: bool) -> Rule {
    let net = |rng: &mut Rng| {
        rng.chance(40).then(|| {
            let len = [32u8, 24, 16, 8, 0][rng.below(5) as usize];
            let a = Ipv4Addr::from(rng.pick(&ADDRS));
            // A mask that is not a prefix, now and then: the rule's own check.
            let value = match rng.chance(15) {
                true => AddrMask::new(
                    a,
                    [0xff00_ff00u32, 0x00ff_00ff, 0xffff_00ff][rng.below(3) as usize].into(),
                ),
                false => AddrMask::prefixed(a, len).unwrap(),
            };
            Negatable {
                value,
                negated: rng.chance(30),
            }
        })
    };
    let src = net(rng);
    let dst = net(rng);
    let iface = |rng: &mut Rng| {
        rng.chance(20).then(|| {
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
    let proto = rng.chance(75).then(|| Negatable {
        value: rng.pick(&[6u8, 6, 17, 17, 1, 47]),
        negated: rng.chance(10),
    });
    let fragment = rng.chance(10).then(|| Negatable {
        value: (),
        negated: rng.chance(50),
    });
    let mut matches = Vec::new();
    let (mut limited, mut any_port, mut tuple, mut typed) = (false, false, false, false);
    let mut marked = false;
    for _ in 0..rng.pick(&[0, 1, 1, 2, 2, 3, 4]) {
        let Some(m) = random_match(rng, proto.as_ref()) else {
            continue;
        };
        // What the compiler refuses (see `refused_combinations`): two buckets in one rule,
        // two `--ports` lists, two matches of conntrack tuple addresses, two packet types,
        // two marks.
        let either =
            matches!(&m, Match::Multiport { dir: MultiportDir::Either, ports } if !ports.negated);
        let limit = matches!(m, Match::Limit(_));
        let addrs = matches!(m, Match::ConntrackTuple { .. });
        let of_type = matches!(m, Match::PktType(_));
        let mark = matches!(m, Match::Mark(_) | Match::Connmark(_));
        if (limit && limited)
            || (either && any_port)
            || (addrs && tuple)
            || (of_type && typed)
            || (mark && marked)
        {
            continue;
        }
        marked |= mark;
        limited |= limit;
        any_port |= either;
        tuple |= addrs;
        typed |= of_type;
        matches.push(m);
    }
    Rule {
        src,
        dst,
        in_iface,
        out_iface,
        proto,
        fragment,
        matches,
        target: random_target(rng, base_chain),
        counter,
    }
}

/// Values worth trying in packets for a chain: the rules' own values and their edges, so
/// that every field both matches and misses the rules often.
#[derive(Default)]
struct Pools {
    addrs: Vec<u32>,
    ports: Vec<u16>,
    icmp: Vec<(u8, u8)>,
    flags: Vec<u8>,
    lens: Vec<u16>,
    ttls: Vec<u8>,
    tos: Vec<u8>,
    macs: Vec<[u8; 6]>,
}

impl Pools {
    fn of(rules: &[Rule]) -> Pools {
        let mut p = Pools::default();
        let edges32 =
            |first: u32, last: u32| [first.wrapping_sub(1), first, last, last.wrapping_add(1)];
        let edges16 = |r: &PortRange| {
            [
                r.first.wrapping_sub(1),
                r.first,
                r.last,
                r.last.wrapping_add(1),
            ]
        };
        for r in rules {
            for n in [&r.src, &r.dst].into_iter().flatten() {
                let (addr, mask) = (u32::from(n.value.addr), u32::from(n.value.mask));
                p.addrs.extend(edges32(addr, addr | !mask));
            }
            for m in &r.matches {
                match m {
                    Match::Ports {
                        sport,
                        dport,
                        tcp_flags,
                        ..
                    } => {
                        for c in [sport, dport].into_iter().flatten() {
                            p.ports.extend(edges16(&c.value));
                        }
                        if let Some(f) = tcp_flags {
                            let (mask, comp) = (f.value.mask, f.value.comp);
                            p.flags.extend([
                                comp,
                                comp | 0xc0,
                                comp | (!mask & 0x3f),
                                comp ^ (mask & mask.wrapping_neg()),
                                comp ^ 0x3f,
                            ]);
                        }
                    }
                    Match::Multiport { ports, .. } => {
                        for r in &ports.value {
                            p.ports.extend(edges16(r));
                        }
                    }
                    Match::Icmp(t) => {
                        let t = t.value;
                        p.icmp.extend([
                            (t.kind, t.code_min),
                            (t.kind, t.code_max),
                            (t.kind, t.code_min.wrapping_sub(1)),
                            (t.kind, t.code_max.wrapping_add(1)),
                            (t.kind.wrapping_add(1), t.code_min),
                        ]);
                    }
                    Match::Iprange { src, dst } => {
                        for r in [src, dst].into_iter().flatten() {
                            p.addrs
                                .extend(edges32(r.value.first.into(), r.value.last.into()));
                        }
                    }
                    Match::Mac(m) => {
                        let mut next = m.value;
                        next[5] = next[5].wrapping_add(1);
                        p.macs.extend([m.value, next]);
                    }
                    Match::Length(l) => p.lens.extend(edges16(&l.value)),
                    Match::Ttl { value, .. } => {
                        p.ttls
                            .extend([value.wrapping_sub(1), *value, value.wrapping_add(1)])
                    }
                    Match::Tos(t) => p.tos.extend([t.value.value, t.value.value ^ 0xc1]),
                    Match::Dscp(d) => p.tos.extend([d.value << 2 | 1, (d.value ^ 1) << 2]),
                    Match::Ecn { ect: Some(e), .. } => p.tos.extend([e.value, e.value ^ 0x2d]),
                    _ => {}
                }
            }
        }
        p
    }
}

fn random_packet(rng: &mut Rng, pools: &Pools, rules: usize) -> Pkt {
    fn from<T: Copy>(rng: &mut Rng, pool: &[T], other: impl FnOnce(&mut Rng) -> T) -> T {
        if !pool.is_empty() && rng.chance(65) {
            rng.pick(pool)
        } else {
            other(rng)
        }
    }
    let addr = |rng: &mut Rng| {
        from(rng, &pools.addrs, |rng| {
            if rng.chance(30) {
                rng.pick(&TYPED_ADDRS)
            } else {
                rng.pick(&ADDRS) ^ (rng.below(4) as u32)
            }
        })
    };
    let port = |rng: &mut Rng| {
        from(rng, &pools.ports, |rng| {
            let p = rng.pick(&PORTS);
            if rng.chance(50) {
                p
            } else {
                p.wrapping_add(rng.below(2000) as u16)
            }
        })
    };
    let proto = rng.pick(&[6u8, 6, 17, 17, 1, 1, 47]);
    let fragment = rng.chance(15);
    let first = !fragment;
    Pkt {
        src: addr(rng),
        dst: addr(rng),
        proto,
        fragment,
        ports: (first && matches!(proto, 6 | 17)).then(|| (port(rng), port(rng))),
        icmp: (first && proto == 1).then(|| {
            from(rng, &pools.icmp, |rng| {
                let (t, c) = (rng.below(256) as u8, rng.below(256) as u8);
                (rng.pick(&[0, 3, 8, 11, 5, t]), rng.pick(&[0, 1, 3, 13, c]))
            })
        }),
        tcp_flags: (first && proto == 6)
            .then(|| from(rng, &pools.flags, |rng| rng.below(256) as u8)),
        len: from(rng, &pools.lens, |rng| {
            if rng.chance(20) {
                rng.pick(&LENGTHS)
            } else {
                20 + rng.below(1500) as u16
            }
        }),
        ttl: from(rng, &pools.ttls, |rng| {
            if rng.chance(30) {
                rng.pick(&TTLS)
            } else {
                rng.below(256) as u8
            }
        }),
        tos: from(rng, &pools.tos, |rng| rng.below(256) as u8),
        pkt_type: rng.below(4) as u8,
        mark: rng.pick(&[0, 1, 0x4000, 0x4001, 0xffff_ffff]),
        ct_mark: rng.pick(&[0, 1, 0x4000, 0x4001]),
        mac: rng
            .chance(80)
            .then(|| from(rng, &pools.macs, |rng| rng.pick(&MACS)))
            // An all-zero source MAC is what the data plane reads where there is none.
            .filter(|m| *m != [0; 6]),
        in_if: rng.below(5) as u32,
        out_if: rng.below(5) as u32,
        ctstate: {
            let state = rng.below(5) as u8;
            match ctstate::has_connection(state) {
                true => state | rng.pick(&[0, 0, ctstate::PACKET_SNAT, ctstate::PACKET_DNAT, 24]),
                false => state,
            }
        },
        ct: [0; 4].map(|_| addr(rng)),
        ct_ports: [0; 4].map(|_| rng.pick(&[0, 22, 80, 1024, 65535])),
        ct_proto: rng.pick(&[6, 17, 1]),
        ct_reply: rng.chance(50),
        ct_status: rng.pick(&[0, 8, 10, 14]),
        ct_expires: rng.pick(&[0, 10, 30, 60, 120]),
        limit_pass: (0..rules).map(|_| rng.chance(50)).collect(),
    }
}

/// What compile time decides of each rule's action: the verdict and its parameters, the
/// counter, the bitmaps of the rules that only count (no target, LOG) and of the checked ones
/// (a bucket, conntrack tuple addresses) with their checks.
fn check_actions(c: &Compiled, chain: u32, rules: &[Rule]) {
    let cfg = c.chains[chain as usize];
    let count_only = &c.bitmaps[cfg.count_only as usize];
    let checked = &c.bitmaps[cfg.checked as usize];
    let all = &c.bitmaps[cfg.rules as usize];
    let bit = |words: &Words, i: usize| words[i / 64] & (1 << (i % 64)) != 0;
    let chain_id = |name: &str| c.chain_names.iter().position(|n| n == name).unwrap() as u32;
    for (i, r) in rules.iter().enumerate() {
        let a = &c.actions[(cfg.action_base as usize) + i];
        let what = format!("chain {chain} rule {i}: {r:?} → {a:?}");
        assert!(bit(all, i), "{what}");
        assert_eq!(a.counter, r.counter, "{what}");
        let (verdict, target_chain, reject_with) = match &r.target {
            None => (verdict::CONTINUE, None, None),
            Some(Target::Accept) => (verdict::ACCEPT, None, None),
            Some(Target::Drop) => (verdict::DROP, None, None),
            Some(Target::Return) => (verdict::RETURN, None, None),
            Some(Target::Jump(to)) => (verdict::JUMP, Some(chain_id(to)), None),
            Some(Target::Goto(to)) => (verdict::GOTO, Some(chain_id(to)), None),
            Some(Target::Reject(with)) => (verdict::REJECT, None, Some(*with)),
            Some(Target::Nat(_)) => (verdict::NAT, None, None),
            Some(Target::Mark(m)) => {
                assert_eq!((a.set_mark, a.set_mark_mask), (m.value, m.mask), "{what}");
                (verdict::MARK, None, None)
            }
            Some(Target::Tos(t)) => {
                let want = (t.value as u32, t.mask as u32);
                assert_eq!((a.set_mark, a.set_mark_mask), want, "{what}");
                (verdict::TOS, None, None)
            }
            Some(Target::Dscp(d)) => {
                let want = ((*d as u32) << 2, 0xfc);
                assert_eq!((a.set_mark, a.set_mark_mask), want, "{what}");
                (verdict::TOS, None, None)
            }
            Some(Target::Tcpmss(mss)) => {
                assert_eq!(a.set_mark, *mss as u32, "{what}");
                (verdict::TCPMSS, None, None)
            }
            Some(Target::Ct(ct)) if ct.notrack => (verdict::NOTRACK, None, None),
            Some(Target::Ct(_)) => (verdict::CONTINUE, None, None),
            Some(Target::Ttl(t)) => {
                let want = (t.value as u32, t.mode as u32);
                assert_eq!((a.set_mark, a.set_mark_mask), want, "{what}");
                (verdict::TTL, None, None)
            }
            Some(Target::Connmark(c)) => {
                assert_eq!(
                    (a.set_mark, a.set_mark_mask),
                    (c.ctmark, c.ctmask),
                    "{what}"
                );
                assert_eq!((a.connmark_mode, a.nfmask), (c.mode, c.nfmask), "{what}");
                (verdict::CONNMARK, None, None)
            }
            Some(Target::Log(log)) => {
                assert_eq!(a.log_level, log.level, "{what}");
                assert_eq!(a.log_flags, log.flags, "{what}");
                let mut prefix = [0u8; LOG_PREFIX_LEN];
                prefix[..log.prefix.len()].copy_from_slice(log.prefix.as_bytes());
                assert_eq!(a.log_prefix, prefix, "{what}");
                (verdict::LOG, None, None)
            }
        };
        assert_eq!(a.verdict, verdict, "{what}");
        if let Some(to) = target_chain {
            assert_eq!(a.chain, to, "{what}");
        }
        if let Some(with) = reject_with {
            assert_eq!(a.reject_with, with, "{what}");
        }
        assert_eq!(
            bit(count_only, i),
            matches!(
                r.target,
                None | Some(
                    Target::Log(_)
                        | Target::Mark(_)
                        | Target::Tos(_)
                        | Target::Dscp(_)
                        | Target::Ttl(_)
                        | Target::Tcpmss(_)
                )
            ),
            "{what}"
        );
        let limit = r.matches.iter().find_map(|m| match m {
            Match::Limit(l) => Some(*l),
            _ => None,
        });
        let tuple = r.matches.iter().find_map(|m| match m {
            Match::ConntrackTuple { states, addrs, .. } => Some((states.value != 0, addrs)),
            _ => None,
        });
        let pkttype = r.matches.iter().any(|m| {
            matches!(
                m,
                Match::PktType(_)
                    | Match::Tos(_)
                    | Match::Dscp(_)
                    | Match::Ecn { ect: Some(_), .. }
                    | Match::Mark(_)
                    | Match::Connmark(_)
            )
        });
        // A mask that is not a prefix: the rule checks the address itself.
        let masked = [&r.src, &r.dst]
            .into_iter()
            .flatten()
            .any(|n| n.value.prefix().is_none());
        assert_eq!(
            bit(checked, i),
            limit.is_some() || tuple.is_some() || pkttype || masked,
            "{what}"
        );
        let (states, addrs) = tuple.unwrap_or((false, &[None, None, None, None]));
        let present = addrs.iter().enumerate().filter(|(_, a)| a.is_some());
        let checks = present.clone().fold(0, |b, (i, _)| b | 1 << i);
        assert_eq!(
            a.ct_checks,
            checks | if states { ct_check::STATE } else { 0 },
            "{what}"
        );
        for (j, addr) in present {
            let addr = addr.as_ref().unwrap();
            assert_eq!(a.ct_addr[j], addr.value.addr.to_be_bytes(), "{what}");
            assert_eq!(a.ct_mask[j], addr.value.mask.to_be_bytes(), "{what}");
            assert_eq!(a.ct_invert & 1 << j != 0, addr.negated, "{what}");
        }
        match limit {
            // `avg` counts 1/10000 s.
            Some(l) => {
                assert_eq!(a.limit_burst, l.burst, "{what}");
                assert_eq!(a.limit_interval_ns, l.avg as u64 * 100_000, "{what}");
            }
            None => assert_eq!(a.limit_burst, 0, "{what}"),
        }
    }
    // No bits past the chain's rules.
    for words in [all, count_only, checked] {
        for i in rules.len()..words.len() * 64 {
            assert!(!bit(words, i), "chain {chain}: bit {i} past the rules");
        }
    }
}

#[test]
fn compiled_tables_pick_the_same_first_rule_as_the_rules() {
    let env = Env::new();
    let types = env.address_types();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = HashMap::<&str, usize>::new();
    // The fields the chains look up: every field of the table must be, so that the data
    // plane's keying of each (`classifier::packet_value`) meets the compiler's entries here.
    let mut used = 0u32;
    for round in 0..200 {
        let mut table = Table::default();
        table.add_chain(crate::model::Chain {
            name: USER_CHAIN.into(),
            policy: None,
            policy_counter: 0,
            rules: vec![].into(),
        });
        let n = [1usize, 5, 63, 64, 65, 130][round % 6];
        let mut counter = 3;
        for chain in &mut table.chains {
            let base = chain.policy.is_some();
            chain.rules = (0..n)
                .map(|_| {
                    counter += 1;
                    random_rule(&mut rng, counter, base)
                })
                .collect();
        }
        let compiled = compile(&table, &env.links, &types).unwrap();
        used |= compiled.chains.iter().fold(0, |u, c| u | c.fields);
        let trie = Trie::new(&compiled);
        for chain in &table.chains {
            let id = compiled
                .chain_names
                .iter()
                .position(|n| *n == chain.name)
                .unwrap() as u32;
            check_actions(&compiled, id, &chain.rules);
            let pools = Pools::of(&chain.rules);
            for _ in 0..250 {
                let p = random_packet(&mut rng, &pools, chain.rules.len());
                let want = reference_outcome(&chain.rules, &p, &env);
                let got = dataplane_outcome(&compiled, &trie, id, &p);
                if got != want {
                    let rules: Vec<_> = want
                        .passed
                        .iter()
                        .chain(&want.decided)
                        .chain(&got.passed)
                        .chain(&got.decided)
                        .map(|&i| format!("{i}: {:?}", chain.rules[i]))
                        .collect();
                    panic!(
                        "round {round} chain {}: dataplane {got:?}, reference {want:?}\n\
                         packet {p:?}\nrules involved:\n{}",
                        chain.name,
                        rules.join("\n")
                    );
                }
                // How often each kind of match holds in a rule that matches, to see that
                // the generators give every one a fair chance.
                for &i in want.passed.iter().chain(&want.decided) {
                    for m in &chain.rules[i].matches {
                        *seen.entry(match_name(m)).or_default() += 1;
                    }
                }
            }
        }
    }
    eprintln!("matches in matching rules: {seen:?}");
    for f in classifier::SCANNED {
        assert!(
            used & field::bit(f.id) != 0,
            "no rule looks at field {}",
            f.id
        );
    }
    for name in [
        "tcp",
        "multiport",
        "icmp",
        "iprange",
        "mac",
        "length",
        "ttl",
        "addrtype",
        "limit",
        "conntrack",
        "tos",
        "dscp",
        "ecn",
        "pkttype",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) >= 500,
            "{name} rarely holds: {seen:?}"
        );
    }
}

#[test]
fn actions_carry_targets_and_counters() {
    let mut table = Table::default();
    table.chains.push(crate::model::Chain {
        name: "web".into(),
        policy: None,
        policy_counter: 0,
        rules: vec![].into(),
    });
    *table.chains[0].rules = vec![bare(Some(Target::Jump("web".into())), 7), bare(None, 8)];
    *table.chains[3].rules = vec![bare(Some(Target::Return), 9)];
    table.chains[0].policy = Some(Policy::Drop);
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    // User chains follow the fixed ids (filter's and nat's base chains).
    let web = FIXED_CHAINS as usize;
    assert_eq!(c.chain_names[web], "web");
    assert_eq!(
        (
            c.actions[0].verdict,
            c.actions[0].chain,
            c.actions[0].counter
        ),
        (verdict::JUMP, web as u32, 7)
    );
    assert_eq!(
        (c.actions[1].verdict, c.actions[1].counter),
        (verdict::CONTINUE, 8)
    );
    assert_eq!(c.chains[0].policy, verdict::DROP);
    assert_eq!(c.chains[web].policy, verdict::RETURN);
    assert_eq!(c.chains[web].action_base, 2);
    assert_eq!(c.bitmaps[c.chains[0].rules as usize], vec![0b11]);
    assert_eq!(c.bitmaps[c.chains[0].count_only as usize], vec![0b10]);
    assert_eq!(c.chains[0].fields, 0);
}

/// A rule that matches every packet, with `target` and counter slot `counter`.
pub(super) fn bare(target: Option<Target>, counter: u32) -> Rule {
    Rule {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: None,
        fragment: None,
        matches: vec![],
        target,
        counter,
    }
}

/// The nat table's chains, once loaded: fixed ids for its base chains, its user chains after
/// filter's (a name both tables use is two chains), jumps within the table, and every chain
/// tracking and running nat.
#[test]
fn nat_chains_follow_the_filter_table() {
    use crate::model::{Chain, TableName};
    let mut table = Table::default();
    let user = |name: &str, rules: Vec<Rule>| Chain {
        name: name.into(),
        policy: None,
        policy_counter: 0,
        rules: rules.into(),
    };
    table
        .chains
        .push(user("DOCKER", vec![bare(Some(Target::Drop), 10)]));
    let without = compile(&table, &[], &AddressTypes::default()).unwrap();
    assert_eq!(without.chains[0].flags & chain_flag::NAT, 0);
    assert_eq!(without.chain_names.len(), FIXED_CHAINS as usize + 1);

    let mut nat = Table::builtin(TableName::Nat);
    for (i, c) in nat.chains.iter_mut().enumerate() {
        c.policy_counter = 20 + i as u32;
    }
    *nat.chains[0].rules = vec![bare(Some(Target::Jump("DOCKER".into())), 11)];
    nat.chains
        .push(user("DOCKER", vec![bare(Some(Target::Return), 12)]));
    table.tables.loaded = vec![TableName::Nat, TableName::Filter];
    table.tables.others = vec![(TableName::Nat, nat)];
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    let filter_docker = FIXED_CHAINS as usize;
    let nat_docker = filter_docker + 1;
    assert_eq!(c.chain_names[filter_docker], "DOCKER");
    assert_eq!(c.chain_names.len(), nat_docker + 1);
    let pre = c.chains[CHAIN_NAT_PREROUTING as usize];
    assert_eq!(pre.policy_counter, 20);
    assert_eq!(c.chains[CHAIN_NAT_POSTROUTING as usize].policy_counter, 23);
    let jump = c.actions[pre.action_base as usize];
    assert_eq!(
        (jump.verdict, jump.chain, jump.counter),
        (verdict::JUMP, nat_docker as u32, 11)
    );
    let ret = c.actions[c.chains[nat_docker].action_base as usize];
    assert_eq!((ret.verdict, ret.counter), (verdict::RETURN, 12));
    for cfg in &c.chains {
        assert_ne!(cfg.flags & chain_flag::NAT, 0);
        assert_ne!(cfg.flags & chain_flag::TRACK, 0);
    }
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
    *table.chains[1].rules = vec![rule; MAX_RULES_PER_CHAIN + 1];
    assert_eq!(
        compile(&table, &[], &AddressTypes::default()).unwrap_err(),
        CompileError::TooManyRules {
            chain: "FORWARD".into(),
            rules: MAX_RULES_PER_CHAIN + 1
        }
    );
}

/// Trie entries `(prefix length, value, bitmap)` of one field of one chain, in a `width`-bit
/// value space; `None` when no rule of the chain looks at the field (see `walk`).
fn trie_field(
    nwords: usize,
    constraints: &[Option<Negatable<Values>>],
    width: u32,
) -> Option<Vec<(u32, u32, Words)>> {
    if constraints.iter().all(Option::is_none) {
        return None;
    }
    let mut words = Vec::new();
    let atoms = walk(&mut words, nwords, constraints, width, &[], SRC_ZERO);
    Some(
        atoms
            .into_iter()
            .map(|a| (a.len, a.value, words[a.at..a.at + nwords].to_vec()))
            .collect(),
    )
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
            AddrMask::prefixed(Ipv4Addr::new(198, 18, (i / 256) as u8, (i % 256) as u8), 32)
                .unwrap(),
        )),
        dst: Some(Negatable::plain(
            AddrMask::prefixed(Ipv4Addr::new(198, 19, (i % 64) as u8, 0), 24).unwrap(),
        )),
        in_iface: None,
        out_iface: None,
        proto: Some(Negatable::plain(17)),
        fragment: None,
        matches: vec![Match::Ports {
            proto: 17,
            sport: None,
            tcp_flags: None,
            tcp_option: None,
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
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    eprintln!(
        "{n} rules: {} trie entries in {:?}",
        c.fields.len(),
        started.elapsed()
    );
    let trie = Trie::new(&c);
    for i in [0, 1, n / 2, n - 1] {
        let p = Pkt::udp(
            u32::from(Ipv4Addr::new(198, 18, (i / 256) as u8, (i % 256) as u8)),
            u32::from(Ipv4Addr::new(198, 19, (i % 64) as u8, 7)),
            5555,
            1000 + (i % 1000) as u16,
        );
        assert_eq!(dataplane_outcome(&c, &trie, 0, &p).decided, Some(i));
    }
}

fn plain_rule(matches: Vec<Match>) -> Rule {
    Rule {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: Some(Negatable::plain(17)),
        fragment: None,
        matches,
        target: Some(Target::Drop),
        counter: 3,
    }
}

/// What the data plane cannot do is an error, never a rule that matches something else.
#[test]
fn refused_combinations() {
    let limit = Match::Limit(Limit::DEFAULT);
    let ports = Match::Multiport {
        dir: MultiportDir::Either,
        ports: Negatable::plain(vec![PortRange { first: 1, last: 1 }]),
    };
    let tuple = Match::ConntrackTuple {
        states: Negatable::plain(0),
        addrs: [
            Some(Negatable::plain(CtAddr {
                addr: 1,
                mask: 1,
                prefix: true,
            })),
            None,
            None,
            None,
        ],
        other: CtOther::default(),
    };
    let stat = |nth| {
        Match::Statistic(Negatable::plain(Statistic {
            nth,
            ..Statistic::default()
        }))
    };
    let comment = Match::Comment("c".into());
    for matches in [
        vec![limit.clone(), limit.clone()],
        vec![ports.clone(), ports.clone()],
        vec![tuple.clone(), tuple],
        vec![stat(false), stat(true)],
        vec![
            Match::PktType(Negatable::plain(1)),
            Match::PktType(Negatable::plain(2)),
        ],
        vec![stat(false), limit],
        // A later match would see the count of the packets it rejects.
        vec![stat(true), comment.clone(), ports.clone()],
    ] {
        let mut table = Table::default();
        *table.chains[0].rules = vec![plain_rule(matches.clone())];
        assert!(
            matches!(
                compile(&table, &[], &AddressTypes::default()),
                Err(CompileError::Unsupported(_))
            ),
            "{matches:?}"
        );
    }
}

/// `-m statistic` goes into its rule's action; a draw may come before other matches, a count
/// only before comments.
#[test]
fn statistic_actions() {
    let stat = |nth, negated| {
        Match::Statistic(Negatable {
            value: Statistic {
                nth,
                probability: 1 << 30,
                every: 2,
                packet: 1,
            },
            negated,
        })
    };
    let ports = Match::Ports {
        proto: 17,
        sport: None,
        dport: Some(Negatable::plain(PortRange { first: 9, last: 9 })),
        tcp_flags: None,
        tcp_option: None,
    };
    let mut table = Table::default();
    *table.chains[0].rules = vec![
        plain_rule(vec![stat(false, true), ports]),
        plain_rule(vec![stat(true, false), Match::Comment("c".into())]),
    ];
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    let got: Vec<_> = c.actions[..2]
        .iter()
        .map(|a| (a.stat_mode, a.stat_invert, a.stat_value, a.stat_packet))
        .collect();
    use pcn_iptables_common::statistic::{NTH, RANDOM};
    assert_eq!(got, [(RANDOM, 1, 1 << 30, 1), (NTH, 0, 3, 1)]);
}

/// Found by the comparison with the reference: `-m udp` without options does not match a
/// later fragment (xt_udp needs the header), and `-m mac` matches nothing, `!` or not, where
/// there is no Ethernet header (lo, OUTPUT), nor when two `--mac-source` disagree.
#[test]
fn headerless_packets_and_repeated_macs() {
    let mac = |value, negated| Match::Mac(Negatable { value, negated });
    let udp = Match::Ports {
        proto: 17,
        sport: None,
        dport: None,
        tcp_flags: None,
        tcp_option: None,
    };
    let mut table = Table::default();
    *table.chains[0].rules = vec![
        plain_rule(vec![udp]),
        plain_rule(vec![mac(MACS[0], false), mac(MACS[1], false)]),
        plain_rule(vec![mac(MACS[0], false), mac(MACS[1], true)]),
        plain_rule(vec![mac(MACS[0], true)]),
    ];
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    let trie = Trie::new(&c);
    let decided = |p: &Pkt| dataplane_outcome(&c, &trie, 0, p).decided;
    let mut p = Pkt::udp(ADDRS[0], ADDRS[1], 1000, 53);
    assert_eq!(decided(&p), Some(0));
    p.fragment = true;
    p.ports = None;
    assert_eq!(decided(&p), None);
    p.mac = Some(MACS[2]);
    assert_eq!(decided(&p), Some(3));
    p.mac = Some(MACS[0]);
    assert_eq!(decided(&p), Some(2));
    p.mac = Some(MACS[1]);
    assert_eq!(decided(&p), Some(3));
}

/// Connections are tracked (every chain has TRACK) exactly while some rule, in any chain,
/// looks at their state; CACHEABLE is per chain.
#[test]
fn tracking_follows_the_state_rules() {
    let state = Match::Conntrack {
        module: StateModule::State,
        states: Negatable::plain(1 << pcn_iptables_common::conntrack::ctstate::ESTABLISHED),
    };
    let flags = |table: &Table| -> Vec<u32> {
        compile(table, &[], &AddressTypes::default())
            .unwrap()
            .chains
            .iter()
            .map(|c| c.flags & !chain_flag::RUN)
            .collect()
    };
    let mut table = Table::default();
    *table.chains[0].rules = vec![plain_rule(vec![])];
    assert!(flags(&table).iter().all(|f| *f == chain_flag::CACHEABLE));
    *table.chains[2].rules = vec![plain_rule(vec![state])];
    assert!(
        flags(&table)
            .iter()
            .all(|f| *f == chain_flag::CACHEABLE | chain_flag::TRACK),
        "{:?}",
        flags(&table)
    );
    *table.chains[1].rules = vec![plain_rule(vec![Match::Limit(Limit::DEFAULT)])];
    assert_eq!(flags(&table)[1], chain_flag::TRACK);
}

/// `-m dccp --dccp-option` goes into its rule's action, beside the ports and types, and makes
/// the generation walk DCCP packets' options (DCCP_OPTION on every chain); none without it.
#[test]
fn dccp_option_actions() {
    use pcn_iptables_common::{IPPROTO_DCCP, dccp_option::flag};
    let dccp = |sport, option| Match::Dccp {
        sport,
        dport: None,
        types: None,
        option,
    };
    let rule = |m| Rule {
        proto: Some(Negatable::plain(IPPROTO_DCCP)),
        ..plain_rule(vec![m])
    };
    let walks = |table: &Table| {
        let c = compile(table, &[], &AddressTypes::default()).unwrap();
        let flags: Vec<bool> = c
            .chains
            .iter()
            .map(|c| c.flags & chain_flag::DCCP_OPTION != 0)
            .collect();
        (c, flags)
    };
    let mut table = Table::default();
    *table.chains[0].rules = vec![rule(dccp(
        Some(Negatable::plain(PortRange { first: 5, last: 5 })),
        None,
    ))];
    let (_, flags) = walks(&table);
    assert!(flags.iter().all(|f| !f));
    *table.chains[2].rules = vec![
        rule(dccp(None, Some(Negatable::plain(44)))),
        rule(dccp(
            None,
            Some(Negatable {
                value: 1,
                negated: true,
            }),
        )),
    ];
    let (c, flags) = walks(&table);
    assert!(flags.iter().all(|f| *f));
    let base = c.chains[2].action_base as usize;
    let got: Vec<_> = c.actions[base..base + 2]
        .iter()
        .map(|a| (a.dccp_option, a.dccp_option_flags, a.ports_proto))
        .collect();
    assert_eq!(
        got,
        [
            (44, flag::ON, IPPROTO_DCCP),
            (1, flag::ON | flag::INVERT, IPPROTO_DCCP)
        ]
    );
    let first = c.actions[c.chains[0].action_base as usize];
    assert_eq!((first.dccp_option, first.dccp_option_flags), (0, 0));
}

/// The data plane classifies a mangle chain only where it has rules or a DROP policy (RUN);
/// every chain knows whether mangle is loaded (MANGLE), where packets pass its chains.
#[test]
fn mangle_chains_run_where_they_have_rules() {
    use crate::model::TableName;
    use pcn_iptables_common::{CHAIN_MANGLE_FORWARD, CHAIN_MANGLE_INPUT, CHAIN_MANGLE_PREROUTING};
    let flags = |table: &Table| -> Vec<u32> {
        let c = compile(table, &[], &AddressTypes::default()).unwrap();
        c.chains.iter().map(|c| c.flags).collect()
    };
    let mut table = Table::default();
    assert!(flags(&table).iter().all(|f| f & chain_flag::MANGLE == 0));
    table.tables.load(TableName::Mangle);
    let mut mangle = Table::builtin(TableName::Mangle);
    for (i, c) in mangle.chains.iter_mut().enumerate() {
        c.policy_counter = 10 + i as u32;
    }
    *mangle.chains[0].rules = vec![plain_rule(vec![])];
    mangle.chains[2].policy = Some(Policy::Drop);
    table.tables.set_counted(TableName::Mangle, mangle);
    let f = flags(&table);
    assert!(f.iter().all(|f| f & chain_flag::MANGLE != 0), "{f:?}");
    assert_ne!(f[CHAIN_MANGLE_PREROUTING as usize] & chain_flag::RUN, 0);
    assert_eq!(f[CHAIN_MANGLE_INPUT as usize] & chain_flag::RUN, 0);
    assert_ne!(f[CHAIN_MANGLE_FORWARD as usize] & chain_flag::RUN, 0);
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    assert_eq!(c.chains[CHAIN_MANGLE_INPUT as usize].policy_counter, 11);
}

/// `-m conntrack --ctorigsrc` and the like become the rule's own check: its bit in the
/// chain's checked bitmap, the addresses, masks and `!` in its action, and STATE when the
/// same match has `--ctstate` (a packet without a connection then matches by its state).
#[test]
fn conntrack_tuple_addresses_are_the_rules_own_check() {
    let a = |addr: u32, mask: u32, negated| {
        Some(Negatable {
            value: CtAddr {
                addr,
                mask,
                prefix: true,
            },
            negated,
        })
    };
    let tuple = |states: u8| Match::ConntrackTuple {
        states: Negatable::plain(states),
        addrs: [
            a(0x0a00_0005, 0xffff_ff00, false),
            None,
            None,
            a(0xc612_0001, u32::MAX, true),
        ],
        other: CtOther::default(),
    };
    let mut table = Table::default();
    *table.chains[1].rules = vec![
        plain_rule(vec![]),
        plain_rule(vec![tuple(0)]),
        plain_rule(vec![tuple(1 << ctstate::DNAT)]),
    ];
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    let cfg = c.chains[1];
    assert_eq!(c.bitmaps[cfg.checked as usize][0], 0b110);
    assert_eq!(
        cfg.flags & chain_flag::CACHEABLE,
        0,
        "the tuples are not in a flow's key"
    );
    let action = |i: u32| &c.actions[(cfg.action_base + i) as usize];
    assert_eq!(action(0).ct_checks, 0);
    let x = action(1);
    assert_eq!(x.ct_checks, ct_check::ORIG_SRC | ct_check::REPL_DST);
    assert_eq!(x.ct_invert, ct_check::REPL_DST);
    assert_eq!(x.ct_addr, [[10, 0, 0, 5], [0; 4], [0; 4], [198, 18, 0, 1]]);
    assert_eq!(x.ct_mask, [[255, 255, 255, 0], [0; 4], [0; 4], [255; 4]]);
    assert_eq!(action(2).ct_checks, x.ct_checks | ct_check::STATE);

    // The data plane's check of them.
    let pkt = |state: u8, ct: [u32; 4]| {
        Pkt {
            ctstate: state,
            ct,
            ..Pkt::udp(1, 2, 3, 4)
        }
        .info()
    };
    let (new, invalid) = (ctstate::NEW, ctstate::INVALID);
    for (p, with, without_state) in [
        (pkt(new, [0x0a00_00ff, 0, 0, 0xc612_0002]), true, true),
        (pkt(new, [0x0a00_01ff, 0, 0, 0xc612_0002]), false, false),
        (pkt(new, [0x0a00_0005, 0, 0, 0xc612_0001]), false, false),
        (pkt(ctstate::UNTRACKED, [0x0a00_0005, 0, 0, 0]), true, false),
        (pkt(invalid, [0x0a00_0005, 0, 0, 0]), true, false),
    ] {
        assert_eq!(conntrack::tuples_match(&p, action(2)), with);
        assert_eq!(conntrack::tuples_match(&p, action(1)), without_state);
    }
}

/// `--ctstate`'s set as CTSTATE values: the states' own, with or without the nat bits, and
/// any value with the SNAT (DNAT) bit for SNAT (DNAT).
#[test]
fn ctstate_values_with_snat_and_dnat() {
    let values = |states: u8, negated| {
        let m = Match::Conntrack {
            module: StateModule::Conntrack,
            states: Negatable {
                value: states,
                negated,
            },
        };
        let mut table = Table::default();
        *table.chains[0].rules = vec![plain_rule(vec![m])];
        let c = compile(&table, &[], &AddressTypes::default()).unwrap();
        let trie = Trie::new(&c);
        // The values packets have.
        (0..32u8)
            .filter(|v| v & ctstate::STATE_MASK <= ctstate::UNTRACKED)
            .filter(|v| {
                let p = Pkt {
                    ctstate: *v,
                    ..Pkt::udp(1, 2, 3, 4)
                };
                dataplane_outcome(&c, &trie, 0, &p).decided == Some(0)
            })
            .collect::<Vec<_>>()
    };
    let (s, d) = (ctstate::PACKET_SNAT, ctstate::PACKET_DNAT);
    let new = ctstate::NEW;
    assert_eq!(
        values(1 << new, false),
        [new, new | s, new | d, new | s | d]
    );
    let dnat = values(1 << ctstate::DNAT, false);
    assert!(
        dnat.iter().all(|v| v & d != 0) && dnat.len() == 5 * 2,
        "{dnat:?}"
    );
    let either = values(1 << ctstate::SNAT | 1 << ctstate::DNAT, false);
    assert_eq!(either.len(), 5 * 3, "{either:?}");
    let not_dnat = values(1 << ctstate::DNAT, true);
    assert!(not_dnat.iter().all(|v| v & d == 0) && not_dnat.contains(&(new | s)));
}

/// `-m connlimit` becomes the rule's own last check: its flags, limit and mask in the action,
/// connections tracked; a limit a list cannot hold and a match after it are refused.
#[test]
fn connlimit_is_the_rules_last_check() {
    use crate::model::Connlimit;
    use pcn_iptables_common::connlimit::{MAX_LIMIT, flag};
    let c = |limit, prefix, invert, daddr| {
        Match::Connlimit(Connlimit {
            limit,
            prefix,
            invert,
            daddr,
        })
    };
    let mut table = Table::default();
    *table.chains[0].rules = vec![
        plain_rule(vec![c(3, 24, false, false)]),
        plain_rule(vec![c(MAX_LIMIT, Connlimit::PREFIX_ALL, true, true)]),
    ];
    let compiled = compile(&table, &[], &AddressTypes::default()).unwrap();
    let cfg = compiled.chains[0];
    let a = &compiled.actions[cfg.action_base as usize..][..2];
    assert_eq!(
        (
            a[0].connlimit_flags,
            a[0].connlimit_limit,
            a[0].connlimit_mask
        ),
        (flag::ON, 3, [255, 255, 255, 0])
    );
    assert_eq!(
        (
            a[1].connlimit_flags,
            a[1].connlimit_limit,
            a[1].connlimit_mask
        ),
        (flag::ON | flag::INVERT | flag::DADDR, MAX_LIMIT, [255; 4])
    );
    assert_eq!(compiled.bitmaps[cfg.checked as usize][0] & 3, 3);
    assert_ne!(cfg.flags & chain_flag::TRACK, 0);
    for refused in [
        vec![c(MAX_LIMIT + 1, 32, false, false)],
        vec![
            c(1, 32, false, false),
            Match::Mac(Negatable::plain([2, 0, 0, 0, 0, 1])),
        ],
    ] {
        *table.chains[0].rules = vec![plain_rule(refused)];
        assert!(matches!(
            compile(&table, &[], &AddressTypes::default()),
            Err(CompileError::Unsupported(_))
        ));
    }
}

/// A packet cut short for tcp (or udp) looks its port, flag and ICMP fields up under
/// `[hotdrop::CUT_KEY]`: every rule with a tcp (udp) match passes them, whatever it asks of
/// them, and its action drops the packet (`hotdrop::at`); the rules that do not look at those
/// fields pass as before, and multiport rules, which read only the ports, do not match.
#[test]
fn cut_packets_pass_the_rules_that_drop_them() {
    use pcn_iptables_common::hotdrop;
    let ports = |proto: u8, sport: Option<u16>, dport: Option<u16>, tcp_flags| Match::Ports {
        proto,
        sport: sport.map(|p| Negatable::plain(PortRange { first: p, last: p })),
        dport: dport.map(|p| Negatable::plain(PortRange { first: p, last: p })),
        tcp_flags,
        tcp_option: None,
    };
    let rule = |proto, matches| Rule {
        proto: Some(Negatable::plain(proto)),
        ..plain_rule(matches)
    };
    let syn = Negatable::plain(TcpFlags { mask: 2, comp: 2 });
    let mut table = Table::default();
    *table.chains[0].rules = vec![
        Rule {
            src: Some(Negatable::plain(AddrMask {
                addr: Ipv4Addr::new(198, 18, 99, 1),
                mask: Ipv4Addr::BROADCAST,
            })),
            ..rule(6, vec![ports(6, None, Some(9), None)])
        },
        rule(17, vec![ports(17, Some(7), None, None)]),
        rule(
            6,
            vec![Match::Multiport {
                dir: MultiportDir::Destination,
                ports: Negatable::plain(vec![PortRange { first: 9, last: 9 }]),
            }],
        ),
        rule(6, vec![ports(6, None, None, Some(syn))]),
        rule(6, vec![]),
        rule(
            1,
            vec![Match::Icmp(Negatable::plain(IcmpType {
                kind: 8,
                code_min: 0,
                code_max: 0xff,
            }))],
        ),
    ];
    let c = compile(&table, &[], &AddressTypes::default()).unwrap();
    let trie = Trie::new(&c);
    let cfg = c.chains[0];
    let matching = |info: &PacketInfo| -> Vec<usize> {
        let mut w = c.bitmaps[cfg.rules as usize][0];
        for f in classifier::SCANNED {
            if cfg.fields & field::bit(f.id) != 0 {
                let b = trie.lookup(f.id, 0, info).expect("an entry for every key");
                w &= c.bitmaps[b as usize][0];
            }
        }
        (0..6).filter(|i| w & (1 << i) != 0).collect()
    };
    let drops = |info: &PacketInfo, rule: usize| {
        hotdrop::at(info, &c.actions[cfg.action_base as usize + rule])
    };
    let mut p = Pkt::udp(ADDRS[0], ADDRS[1], 7, 9).info();
    p.proto = 6;
    assert_eq!(matching(&p), [2, 4]);
    p.cut = hotdrop::TCP | hotdrop::TCPMSS;
    assert_eq!(matching(&p), [3, 4]);
    assert!(drops(&p, 3) && !drops(&p, 4));
    p.proto = 17;
    p.cut = hotdrop::UDP;
    assert_eq!(matching(&p), [1]);
    assert!(drops(&p, 1));
    p.has_ports = 0;
    p.cut = 0;
    assert_eq!(matching(&p), Vec::<usize>::new());
}
