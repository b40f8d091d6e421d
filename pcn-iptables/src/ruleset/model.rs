//! The ruleset as the user wrote it: tables, chains, rules, matches, targets, policies.
//!
//! Values are kept canonical (addresses masked, `-p 6` stored as tcp) so that two rules that
//! iptables considers equal compare equal here, which `-D` and `-C` rely on.

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// The base chains of the filter table, in iptables' listing order.
pub const BASE_CHAINS: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];

/// A value with iptables' `!` in front of it or not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negatable<T> {
    pub value: T,
    pub negated: bool,
}

impl<T> Negatable<T> {
    pub fn plain(value: T) -> Self {
        Negatable {
            value,
            negated: false,
        }
    }
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// An interface name as iptables takes it: `eth0` exactly, or `eth+` for every name starting
/// with `eth` (`wildcard` set, `+` not stored).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub wildcard: bool,
}

impl Interface {
    /// `+` alone: every interface. libiptc compares it equal to no interface at all, and
    /// `-S` leaves it out, but `-L` shows it.
    pub fn is_any(&self) -> bool {
        self.wildcard && self.name.is_empty()
    }

    pub fn matches(&self, ifname: &str) -> bool {
        if self.wildcard {
            ifname.starts_with(&self.name)
        } else {
            ifname == self.name
        }
    }
}

/// Protocol numbers iptables knows by name in `-p` and prints by name in `-S`.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// `--tcp-flags MASK COMP`: the packet's flags masked with `mask` equal `comp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpFlags {
    pub mask: u8,
    pub comp: u8,
}

/// Which ports `-m multiport` looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MultiportDir {
    /// `--sports`
    Source,
    /// `--dports`
    Destination,
    /// `--ports`: the source or the destination port.
    Either,
}

impl MultiportDir {
    /// The option's name without dashes, as `-S` and `-L` print it.
    pub fn name(self) -> &'static str {
        match self {
            MultiportDir::Source => "sports",
            MultiportDir::Destination => "dports",
            MultiportDir::Either => "ports",
        }
    }
}

/// `--icmp-type`: a type and a range of codes (`any` is type 255, which matches every type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IcmpType {
    pub kind: u8,
    pub code_min: u8,
    pub code_max: u8,
}

impl IcmpType {
    /// libxt_icmp's type 0xFF: every ICMP packet.
    pub const ANY: u8 = 0xFF;
}

/// `-m ttl`: how the packet's TTL compares with the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TtlMode {
    /// `--ttl-eq`
    Eq,
    /// `! --ttl-eq`
    Ne,
    /// `--ttl-lt`
    Lt,
    /// `--ttl-gt`
    Gt,
}

/// An inclusive range of IPv4 addresses (`-m iprange`); `first > last` matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddrRange {
    pub first: std::net::Ipv4Addr,
    pub last: std::net::Ipv4Addr,
}

/// `-m limit`: the average period in units of 1/10000 s (xt_limit's `avg`) and the burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limit {
    pub avg: u32,
    pub burst: u32,
}

impl Limit {
    /// xt_limit's `XT_LIMIT_SCALE`: `avg` counts 1/10000 s.
    pub const SCALE: u32 = 10000;
    /// libxt_limit's defaults: 3/hour, burst 5.
    pub const DEFAULT: Limit = Limit {
        avg: Limit::SCALE * 60 * 60 / 3,
        burst: 5,
    };
}

/// The match modules (`-m NAME` or implied by `-p`), in the order the user gave them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Match {
    /// `-m tcp` / `-m udp`: `proto` is IPPROTO_TCP or IPPROTO_UDP; `tcp_flags` (`--tcp-flags`,
    /// `--syn`) only for tcp.
    Ports {
        proto: u8,
        sport: Option<Negatable<PortRange>>,
        dport: Option<Negatable<PortRange>>,
        tcp_flags: Option<Negatable<TcpFlags>>,
    },
    /// `-m multiport`: up to 15 ports, a range counting as two.
    Multiport {
        dir: MultiportDir,
        ports: Negatable<Vec<PortRange>>,
    },
    /// `-m icmp --icmp-type`
    Icmp(Negatable<IcmpType>),
    /// `-m iprange --src-range/--dst-range`: at least one is set.
    Iprange {
        src: Option<Negatable<AddrRange>>,
        dst: Option<Negatable<AddrRange>>,
    },
    /// `-m mac --mac-source`
    Mac(Negatable<[u8; 6]>),
    /// `-m length --length`: the IP total length in `first..=last`.
    Length(Negatable<PortRange>),
    /// `-m ttl`
    Ttl { mode: TtlMode, value: u8 },
    /// `-m addrtype --src-type/--dst-type`: sets of `1 << rtn::*` bits; at least one is set.
    Addrtype {
        src: Option<Negatable<u16>>,
        dst: Option<Negatable<u16>>,
    },
    /// `-m comment --comment`: no effect on matching.
    Comment(String),
    /// `-m limit`
    Limit(Limit),
    /// `-m conntrack --ctstate` / `-m state --state`: the packet's connection state is one of
    /// `states`, a set of `1 << pcn_iptables_common::conntrack::ctstate::*` bits.
    Conntrack {
        module: StateModule,
        states: Negatable<u8>,
    },
}

/// Which module spelled a state match: they match alike and print differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateModule {
    /// `-m conntrack --ctstate`
    Conntrack,
    /// `-m state --state`
    State,
}

/// `-j LOG`'s options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Log {
    /// syslog level, 0..=7.
    pub level: u8,
    /// `pcn_iptables_common::log_flag::*` bits (the same values as iptables' `IPT_LOG_*`).
    pub flags: u8,
    /// At most 29 bytes; empty when none.
    pub prefix: String,
}

impl Log {
    /// LOG's default level, `warning`.
    pub const DEFAULT_LEVEL: u8 = 4;
}

/// What happens to a packet when a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Accept,
    Drop,
    Return,
    /// `-j CHAIN`
    Jump(String),
    /// `-g CHAIN`
    Goto(String),
    /// `-j REJECT --reject-with`: `pcn_iptables_common::reject::*`.
    Reject(u32),
    /// `-j LOG`
    Log(Log),
}

impl Target {
    /// The chain a `-j CHAIN` or `-g CHAIN` leads to.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Target::Jump(chain) | Target::Goto(chain) => Some(chain),
            _ => None,
        }
    }
}

/// One rule. `counter` is the slot of its packet/byte counters in the pinned counter map; it is
/// not part of the rule's identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rule {
    #[serde(with = "network")]
    pub src: Option<Negatable<Ipv4Network>>,
    #[serde(with = "network")]
    pub dst: Option<Negatable<Ipv4Network>>,
    pub in_iface: Option<Negatable<Interface>>,
    pub out_iface: Option<Negatable<Interface>>,
    /// `-p`; `None` is `-p all`.
    pub proto: Option<Negatable<u8>>,
    /// `-f` (non-first fragments only) or `! -f` (first fragments and unfragmented packets).
    pub fragment: Option<Negatable<()>>,
    pub matches: Vec<Match>,
    /// `None`: no `-j`, the rule only counts.
    pub target: Option<Target>,
    pub counter: u32,
}

impl Rule {
    /// The rule's identity for `-D` and `-C`: everything but its counters.
    pub fn same_spec(&self, other: &Rule) -> bool {
        fn iface(i: &Option<Negatable<Interface>>) -> Option<&Negatable<Interface>> {
            i.as_ref().filter(|i| i.negated || !i.value.is_any())
        }
        // Cheap fields first: `-D` compares with every rule of a long chain.
        if self.src != other.src || self.dst != other.dst || self.proto != other.proto {
            return false;
        }
        self.src == other.src
            && self.dst == other.dst
            && iface(&self.in_iface) == iface(&other.in_iface)
            && iface(&self.out_iface) == iface(&other.out_iface)
            && self.proto == other.proto
            && self.fragment == other.fragment
            && self.matches == other.matches
            && self.target == other.target
    }
}

/// A base chain's default verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Policy {
    Accept,
    Drop,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    /// `Some` for base chains, `None` for user-defined ones.
    pub policy: Option<Policy>,
    /// Counter slot of the policy (base chains only).
    pub policy_counter: u32,
    pub rules: Vec<Rule>,
}

/// The filter table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub chains: Vec<Chain>,
}

/// Counter slots 0..FIRST_RULE_COUNTER belong to the base chains' policies, in BASE_CHAINS order.
pub const FIRST_RULE_COUNTER: u32 = BASE_CHAINS.len() as u32;

impl Default for Table {
    fn default() -> Self {
        Table {
            chains: BASE_CHAINS
                .iter()
                .enumerate()
                .map(|(i, name)| Chain {
                    name: (*name).to_string(),
                    policy: Some(Policy::Accept),
                    policy_counter: i as u32,
                    rules: Vec::new(),
                })
                .collect(),
        }
    }
}

impl Table {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chains.iter_mut().find(|c| c.name == name)
    }

    /// Adds a user-defined chain where libiptc keeps it: after the base chains, in byte order
    /// of the names.
    pub fn add_chain(&mut self, chain: Chain) {
        let at = self
            .chains
            .iter()
            .position(|c| c.policy.is_none() && c.name > chain.name)
            .unwrap_or(self.chains.len());
        self.chains.insert(at, chain);
    }

    /// How many rules jump or go to `chain` (`-L`'s "references").
    pub fn references(&self, chain: &str) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|r| r.target.as_ref().and_then(Target::chain) == Some(chain))
            .count()
    }

    /// Every counter slot in use.
    pub fn counters(&self) -> impl Iterator<Item = u32> + '_ {
        self.chains.iter().flat_map(|c| {
            std::iter::once(c.policy_counter).chain(c.rules.iter().map(|r| r.counter))
        })
    }
}

/// `-s`/`-d` in the stored state as (address, prefix length, `!`): compact, and no text to
/// format or parse (ipnetwork's own serde goes through strings).
mod network {
    use super::{Ipv4Network, Negatable};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Net = Option<Negatable<Ipv4Network>>;

    pub fn serialize<S: Serializer>(net: &Net, s: S) -> Result<S::Ok, S::Error> {
        net.as_ref()
            .map(|n| (u32::from(n.value.ip()), n.value.prefix(), n.negated))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Net, D::Error> {
        Option::<(u32, u8, bool)>::deserialize(d)?
            .map(|(ip, prefix, negated)| {
                Ipv4Network::new(ip.into(), prefix)
                    .map(|value| Negatable { value, negated })
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}
