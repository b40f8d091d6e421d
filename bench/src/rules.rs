//! The benchmark's rule sets, after the bpf-iptables paper: every rule is a distinct combination
//! of a source prefix, a destination prefix and a destination port.
//!
//! Rule `i` matches `-s SRC[i % A] -d DST[(i / A) % B] -p PROTO --dport PORT[i / (A * B)]` and
//! drops; the chain's policy accepts. The prefixes of each list are disjoint and of mixed
//! lengths (/20 to /32), so a packet's source falls in at most one `SRC`, its destination in at
//! most one `DST`, and the rule a packet matches is unique: the one whose three indices it
//! carries. `A * B * PORTS` is exactly the largest rule count pcn-iptables takes per chain.
//!
//! Sources come from 198.19.0.0/16, destinations from 198.18.128.0/17 (the benchmark's
//! namespaces route the latter locally for INPUT and on to the server for FORWARD); both are in
//! 198.18.0.0/15, the range reserved for benchmarking.

use std::{fmt::Write as _, net::Ipv4Addr};

use anyhow::{Result, bail, ensure};
use ipnetwork::Ipv4Network;
use pcn_iptables::model::{IPPROTO_TCP, IPPROTO_UDP, Match, Negatable, PortRange, Rule, Target};

/// Source prefixes (`A`).
pub const SRC_PREFIXES: usize = 32;
/// Destination prefixes (`B`).
pub const DST_PREFIXES: usize = 16;
/// Destination ports.
pub const PORTS: usize = 32;
/// Distinct rules the combinations give: 16,384, pcn-iptables' limit per chain.
pub const MAX_RULES: usize = SRC_PREFIXES * DST_PREFIXES * PORTS;

/// Prefix lengths, cycled through as the lists are built.
const LENGTHS: [u8; 8] = [24, 32, 28, 20, 30, 26, 22, 32];
/// Where the lists are carved from.
pub const SRC_SPACE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 0, 0), 16);
pub const DST_SPACE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 128, 0), 17);
/// The first destination port; the others follow.
const FIRST_PORT: u16 = 1000;
/// A destination port no rule names (discard): the "no rule" packets use it.
pub const UNMATCHED_PORT: u16 = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => IPPROTO_UDP,
            Proto::Tcp => IPPROTO_TCP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// Which rule a test packet is built to hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Rule 0.
    First,
    /// Rule N-1: every rule before it is looked at and fails.
    Last,
    /// No rule: the last rule's addresses, a port no rule names; the policy decides.
    NoMatch,
}

impl Case {
    pub const ALL: [Case; 3] = [Case::First, Case::Last, Case::NoMatch];

    pub fn name(self) -> &'static str {
        match self {
            Case::First => "first",
            Case::Last => "last",
            Case::NoMatch => "none",
        }
    }
}

/// The fields of a packet that the rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub dport: u16,
}

/// Carves `count` disjoint prefixes of the lengths in `LENGTHS` out of `space`, each aligned on
/// its own size.
fn carve(space: (Ipv4Addr, u8), count: usize) -> Vec<Ipv4Network> {
    let base = u32::from(space.0);
    let end = base as u64 + (1u64 << (32 - space.1));
    let mut next = base as u64;
    (0..count)
        .map(|i| {
            let len = LENGTHS[i % LENGTHS.len()];
            let size = 1u64 << (32 - len);
            let at = next.div_ceil(size) * size;
            next = at + size;
            assert!(next <= end, "the prefix lists must fit their space");
            Ipv4Network::new(Ipv4Addr::from(at as u32), len).expect("length ≤ 32")
        })
        .collect()
}

/// An address inside `net`, away from its edges (its middle).
fn inside(net: Ipv4Network) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + (net.size() / 2))
}

/// The first `n` rules of the combination set, for one protocol and one chain.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub n: usize,
    pub proto: Proto,
    pub chain: String,
    src: Vec<Ipv4Network>,
    dst: Vec<Ipv4Network>,
    ports: Vec<u16>,
}

impl RuleSet {
    pub fn new(n: usize, proto: Proto, chain: &str) -> Result<Self> {
        ensure!(
            (1..=MAX_RULES).contains(&n),
            "rule count {n} out of 1..={MAX_RULES}"
        );
        if !["INPUT", "FORWARD", "OUTPUT"].contains(&chain) {
            bail!("chain {chain}: the benchmark fills a base chain");
        }
        Ok(RuleSet {
            n,
            proto,
            chain: chain.to_string(),
            src: carve(SRC_SPACE, SRC_PREFIXES),
            dst: carve(DST_SPACE, DST_PREFIXES),
            ports: (0..PORTS as u16).map(|k| FIRST_PORT + k).collect(),
        })
    }

    /// Source prefix, destination prefix and port of rule `i`.
    pub fn rule(&self, i: usize) -> (Ipv4Network, Ipv4Network, u16) {
        (
            self.src[i % SRC_PREFIXES],
            self.dst[(i / SRC_PREFIXES) % DST_PREFIXES],
            self.ports[i / (SRC_PREFIXES * DST_PREFIXES)],
        )
    }

    /// Index of the rule a packet of `case` matches (`None` for the policy).
    pub fn expected_rule(&self, case: Case) -> Option<usize> {
        match case {
            Case::First => Some(0),
            Case::Last => Some(self.n - 1),
            Case::NoMatch => None,
        }
    }

    /// The packet fields of `case`; the source port is free (no rule names one).
    pub fn flow(&self, case: Case) -> Flow {
        let (src, dst, dport) = self.rule(self.expected_rule(case).unwrap_or(self.n - 1));
        Flow {
            src: inside(src),
            dst: inside(dst),
            dport: if case == Case::NoMatch {
                UNMATCHED_PORT
            } else {
                dport
            },
        }
    }

    /// The rules in pcn-iptables' model, each with the counter slot `counter(i)` gives it.
    pub fn model_rules(&self, mut counter: impl FnMut(usize) -> u32) -> Vec<Rule> {
        let proto = self.proto.number();
        (0..self.n)
            .map(|i| {
                let (src, dst, port) = self.rule(i);
                Rule {
                    src: Some(Negatable::plain(src.into())),
                    dst: Some(Negatable::plain(dst.into())),
                    in_iface: None,
                    out_iface: None,
                    fragment: None,
                    proto: Some(Negatable::plain(proto)),
                    matches: vec![Match::Ports {
                        proto,
                        tcp_flags: None,
                        tcp_option: None,
                        sport: None,
                        dport: Some(Negatable::plain(PortRange {
                            first: port,
                            last: port,
                        })),
                    }],
                    target: Some(Target::Drop),
                    counter: counter(i),
                }
            })
            .collect()
    }

    /// The same rule set as `iptables-restore` input, for iptables-legacy and iptables-nft.
    pub fn restore_text(&self) -> String {
        let proto = self.proto.name();
        let mut text = String::with_capacity(self.n * 96 + 128);
        text.push_str(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        );
        for i in 0..self.n {
            let (src, dst, port) = self.rule(i);
            let _ = writeln!(
                text,
                "-A {} -s {src} -d {dst} -p {proto} -m {proto} --dport {port} -j DROP",
                self.chain
            );
        }
        text.push_str("COMMIT\n");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(net: Ipv4Network, addr: Ipv4Addr) -> bool {
        net.contains(addr)
    }

    #[test]
    fn prefixes_are_disjoint_canonical_and_in_the_benchmark_range() {
        let bench = Ipv4Network::new(Ipv4Addr::new(198, 18, 0, 0), 15).unwrap();
        for list in [
            carve(SRC_SPACE, SRC_PREFIXES),
            carve(DST_SPACE, DST_PREFIXES),
        ] {
            for (i, a) in list.iter().enumerate() {
                assert_eq!(a.ip(), a.network(), "{a} is masked");
                assert!(bench.contains(a.network()) && bench.contains(a.broadcast()));
                for b in &list[i + 1..] {
                    assert!(!a.contains(b.network()) && !b.contains(a.network()));
                }
            }
        }
    }

    #[test]
    fn every_rule_is_distinct_and_each_case_hits_exactly_its_rule() {
        let rs = RuleSet::new(MAX_RULES, Proto::Udp, "INPUT").unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..rs.n {
            assert!(seen.insert(rs.rule(i)));
        }
        for n in [1, 10, 1000, 10_000, MAX_RULES] {
            let rs = RuleSet::new(n, Proto::Tcp, "FORWARD").unwrap();
            for case in Case::ALL {
                let f = rs.flow(case);
                let hits: Vec<usize> = (0..n)
                    .filter(|&i| {
                        let (s, d, p) = rs.rule(i);
                        contains(s, f.src) && contains(d, f.dst) && p == f.dport
                    })
                    .collect();
                let want: Vec<usize> = rs.expected_rule(case).into_iter().collect();
                assert_eq!(hits, want, "{n} rules, {case:?}");
            }
        }
    }

    #[test]
    fn restore_text_has_one_line_per_rule() {
        let rs = RuleSet::new(100, Proto::Udp, "INPUT").unwrap();
        let text = rs.restore_text();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("-A INPUT")).count(),
            100
        );
        assert!(
            text.contains("-s 198.19.0.0/24 -d 198.18.128.0/24 -p udp -m udp --dport 1000 -j DROP")
        );
    }
}
