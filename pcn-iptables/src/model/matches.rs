//! Matches and targets: the values of iptables' match extensions (`-m NAME`, or implied by `-p`)
//! and of its targets (verdicts, chains, target extensions). How each is parsed and printed
//! lives in `crate::ext`, one file per extension.

use serde::{Deserialize, Serialize};

use super::value::{Negatable, PortRange};

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
        /// `--tcp-option`: an option kind (1 to 255).
        tcp_option: Option<Negatable<u8>>,
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
    Ttl {
        mode: TtlMode,
        value: u8,
    },
    /// `-m addrtype --src-type/--dst-type`: sets of `1 << rtn::*` bits; at least one is set.
    /// `--limit-iface-in/out`: the types as routes through the packet's device tell them.
    Addrtype {
        src: Option<Negatable<u16>>,
        dst: Option<Negatable<u16>>,
        #[serde(default)]
        iface: AddrtypeIface,
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
    /// `-m conntrack` with the addresses of its connection's tuples (`--ctorigsrc`,
    /// `--ctorigdst`, `--ctreplsrc`, `--ctrepldst`, in that order), `--ctproto` or `--ctdir`
    /// (at least one of them), and `--ctstate` unless `states` is 0.
    ConntrackTuple {
        states: Negatable<u8>,
        addrs: [Option<Negatable<CtAddr>>; 4],
        other: CtOther,
    },
    /// `-m statistic` (last: the rules stored before it read the same).
    Statistic(Negatable<Statistic>),
    /// `-m tos --tos`: the TOS byte under `mask` is `value`.
    Tos(Negatable<TosMask>),
    /// `-m dscp --dscp` (`--dscp-class` gives its value): the TOS byte's upper six bits.
    Dscp(Negatable<u8>),
    /// `-m ecn`: `--ecn-ip-ect` (the TOS byte's lower two bits), `--ecn-tcp-ece`,
    /// `--ecn-tcp-cwr`; at least one.
    Ecn {
        ect: Option<Negatable<u8>>,
        ece: Option<Negatable<()>>,
        cwr: Option<Negatable<()>>,
    },
    /// `-m pkttype --pkt-type`: a `pcn_iptables_common::pkt_type` value.
    PktType(Negatable<u8>),
    /// `-m recent`
    Recent(Recent),
    /// `-m connlimit`
    Connlimit(Connlimit),
    /// `-m time`
    Time(TimeMatch),
    /// `-m tcpmss --mss`: the TCP packet's MSS option in the range.
    Tcpmss(Negatable<PortRange>),
    /// `-m esp --espspi`, `-m ah --ahspi`: the packet's SPI in the range.
    Esp(Negatable<SpiRange>),
    Ah(Negatable<SpiRange>),
    /// `-m mark --mark`: the packet's mark under `mask` is `value`.
    Mark(Negatable<MarkMask>),
    /// `-m connmark --mark`: the connection's mark under `mask` is `value`.
    Connmark(Negatable<MarkMask>),
    /// `-m owner`
    Owner(Owner),
    /// `-m hashlimit`
    Hashlimit(Hashlimit),
    /// `-m sctp --sport`, `--dport`, `--chunk-types` (`-p sctp` loads it).
    Sctp {
        sport: Option<Negatable<PortRange>>,
        dport: Option<Negatable<PortRange>>,
        #[serde(default)]
        chunks: Option<Negatable<SctpChunks>>,
    },
    /// `-m dccp --sport`, `--dport`, `--dccp-types` (bit `1 << type`), `--dccp-option`
    /// (`-p dccp` loads it).
    Dccp {
        sport: Option<Negatable<PortRange>>,
        dport: Option<Negatable<PortRange>>,
        types: Option<Negatable<u16>>,
        #[serde(default)]
        option: Option<Negatable<u8>>,
    },
}

/// `-m sctp --chunk-types`: what xt_sctp_info keeps of it, so that `-C` and `-D` compare
/// what iptables compares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SctpChunks {
    pub kind: SctpChunkMatch,
    /// The chunk types (bit `t % 64` of word `t / 64`).
    pub map: [u64; 4],
    /// The flag checks in the order first given (`flag_info`, at most 4), one per chunk type.
    pub flags: Vec<SctpChunkFlags>,
}

/// `--chunk-types any|all|only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SctpChunkMatch {
    Any,
    All,
    Only,
}

/// A chunk type's flags: `flags & mask == flag`. libxt_sctp names the type by the place of its
/// name in its table, which is the type itself from DATA to SHUTDOWN_COMPLETE only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SctpChunkFlags {
    pub chunk: u8,
    pub flag: u8,
    pub mask: u8,
}

/// `-m owner`: at least one of its options is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    /// `--uid-owner`, `--gid-owner`: inclusive ranges.
    pub uid: Option<Negatable<(u32, u32)>>,
    pub gid: Option<Negatable<(u32, u32)>>,
    /// `--suppl-groups`
    pub suppl_groups: bool,
    /// `--socket-exists`
    pub socket: Option<Negatable<()>>,
}

/// A mark and a mask, as xt_mark and xt_MARK keep them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarkMask {
    pub value: u32,
    pub mask: u32,
}

/// `-m connlimit`, as xt_connlimit's revision 1 keeps it: the limit, the mask's prefix
/// length (`PREFIX_ALL`: a mask libxtables could not read as one), inverted (`--connlimit-upto`,
/// `! --connlimit-above`), grouped by the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connlimit {
    pub limit: u32,
    pub prefix: u8,
    pub invert: bool,
    pub daddr: bool,
}

impl Connlimit {
    pub const PREFIX_ALL: u8 = 128;
}

/// `-m hashlimit`, as libxt_hashlimit (revision 3) fills `xt_hashlimit_mtinfo3`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hashlimit {
    pub name: String,
    /// `pcn_iptables_common::hashlimit::mode` bits.
    pub mode: u32,
    /// Microseconds a packet (`--hashlimit-upto 5/sec`: 200000), or the byte rate's cost.
    pub avg: u64,
    pub burst: u64,
    pub size: u32,
    pub max: u32,
    /// Milliseconds.
    pub gc_interval: u32,
    pub expire: u32,
    pub srcmask: u8,
    pub dstmask: u8,
    /// `--hashlimit-rate-interval`, seconds.
    pub interval: u32,
    /// libxt_hashlimit's `udata.mult` while the options are parsed (the rate's unit in
    /// seconds, or the byte expiry); 0 once the match is complete.
    #[serde(skip)]
    pub udata_mult: u32,
}

impl Hashlimit {
    /// The kernel's `hashlimit_cfg3`.
    pub fn config(&self) -> pcn_iptables_common::hashlimit::Config {
        pcn_iptables_common::hashlimit::Config {
            mode: self.mode,
            avg: self.avg,
            burst: self.burst,
            size: self.size,
            max: self.max,
            gc_interval: self.gc_interval,
            expire: self.expire,
            srcmask: self.srcmask,
            dstmask: self.dstmask,
            interval: self.interval,
        }
    }
}

/// `-m time`, as xt_time keeps it: dates (UTC seconds), daytimes (seconds of the day), the
/// days of the month and of the week (bits, 1 first), `pcn_iptables_common::time::flag`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeMatch {
    pub date: [u32; 2],
    pub daytime: [u32; 2],
    pub monthdays: u32,
    pub weekdays: u8,
    pub flags: u8,
}

/// An SPI range of `-m esp` or `-m ah` (a reversed one holds nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpiRange {
    pub first: u32,
    pub last: u32,
}

impl SpiRange {
    pub const ALL: SpiRange = SpiRange {
        first: 0,
        last: u32::MAX,
    };

    /// libxt_esp's and libipt_ah's save: nothing for the whole range (its `!` too).
    pub fn save(&self, option: &str, negated: bool, out: &mut String) {
        if *self == SpiRange::ALL {
            return;
        }
        let bang = if negated { " !" } else { "" };
        out.push_str(&match self.first == self.last {
            true => format!("{bang} --{option} {}", self.first),
            false => format!("{bang} --{option} {}:{}", self.first, self.last),
        });
    }

    /// Their `print_spis`: `spi:N` or `spis:N:M` (`!` inside), nothing for the whole range
    /// without `!`.
    pub fn print(&self, negated: bool) -> Option<String> {
        if *self == SpiRange::ALL && !negated {
            return None;
        }
        let inv = if negated { "!" } else { "" };
        Some(match self.first == self.last {
            true => format!("spi:{inv}{}", self.first),
            false => format!("spis:{inv}{}:{}", self.first, self.last),
        })
    }
}

/// `-m recent`, as xt_recent keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recent {
    /// `--name` (DEFAULT unless given)
    pub name: String,
    /// `pcn_iptables_common::recent::op`: `--set`, `--rcheck`, `--update` or `--remove`.
    pub op: u8,
    /// `!` before the command.
    pub invert: bool,
    /// `--seconds`, 0 when not given.
    pub seconds: u32,
    pub reap: bool,
    /// `--hitcount`, 0 when not given.
    pub hitcount: u32,
    pub rttl: bool,
    /// `--rdest` (else `--rsource`).
    pub dest: bool,
    /// `--mask`, host order.
    pub mask: u32,
    /// `--mask` was given: libxt_recent then writes the IPv4 mask over the init's all-ones
    /// 16 bytes, zeroing the rest, so the kernel tells the rule from one without (`-C`,
    /// `-D`), though both match alike.
    pub mask_given: bool,
}

/// `-m conntrack`'s `--ctproto` (the connection's protocol), `--ctdir` (`true`: REPLY),
/// `--ctstatus`, `--ctexpire` and the tuples' ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtOther {
    pub proto: Option<Negatable<u8>>,
    pub reply: Option<bool>,
    /// `--ctstatus`: a set of `pcn_iptables_common::conntrack::ips` bits (0: NONE).
    pub status: Option<Negatable<u8>>,
    /// `--ctexpire`: the connection's seconds left, inclusive.
    pub expire: Option<Negatable<(u32, u32)>>,
    /// `--ctorigsrcport`, `--ctorigdstport`, `--ctreplsrcport`, `--ctrepldstport`: the
    /// range as xt_conntrack keeps it (low, high).
    pub ports: [Option<Negatable<(u16, u16)>>; 4],
}

/// `-m tos`'s value and mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TosMask {
    pub value: u8,
    pub mask: u8,
}

/// `-m statistic`, as xt_statistic keeps it: random mode's `--probability` out of 2^31
/// (`lround(0x80000000 * p)`), or nth mode's `--every` less one and `--packet`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Statistic {
    pub nth: bool,
    pub probability: u32,
    pub every: u32,
    pub packet: u32,
}

/// An address of `-m conntrack --ctorigsrc` and the like, and its mask (host order), as
/// given: the kernel masks the connection's address, not this one, and `-S` prints it whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtAddr {
    pub addr: u32,
    pub mask: u32,
    /// The mask came from a prefix length (`xtables::hostmask`): only `-C` and `-D` see it.
    pub prefix: bool,
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
    /// `-j SNAT`, `DNAT`, `MASQUERADE`, `REDIRECT`, `NETMAP` (nat table only).
    Nat(Nat),
    /// `-j MARK`: the mark becomes `(mark & !mask) ^ value` (every option comes to this).
    Mark(MarkMask),
    /// `-j CONNMARK`
    Connmark(Connmark),
    /// `-j TOS`: the TOS byte becomes `(tos & !mask) ^ value` (mangle only).
    Tos(TosMask),
    /// `-j DSCP`: the TOS byte's upper six bits become the value (mangle only).
    Dscp(u8),
    /// `-j TTL` (mangle only).
    Ttl(TtlSet),
    /// `-j TCPMSS`: `--set-mss`, or `pcn_iptables_common::rewrite::CLAMP_PMTU`.
    Tcpmss(u16),
    /// `-j CT` (raw only), `-j NOTRACK` its alias.
    Ct(CtTarget),
}

/// `-j CT` as xt_CT keeps it: `--notrack`, and whether it was written `-j NOTRACK`
/// (XT_CT_NOTRACK_ALIAS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtTarget {
    pub notrack: bool,
    pub alias: bool,
}

/// `-j TTL`: a `pcn_iptables_common::rewrite::TTL_*` mode and its value, as xt_TTL keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TtlSet {
    pub mode: u8,
    pub value: u8,
}

/// `-j CONNMARK`, as xt_CONNMARK's revision 2 keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connmark {
    /// `pcn_iptables_common::conntrack::connmark_mode`: set (every `--*-mark` but save and
    /// restore), save, restore.
    pub mode: u8,
    pub ctmark: u32,
    pub ctmask: u32,
    pub nfmask: u32,
    /// `--right-shift-mark` (else `--left-shift-mark`), and the bits.
    pub shift_right: bool,
    pub shift_bits: u8,
}

/// Which nat target a rule has: what it rewrites and how it picks the new address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NatKind {
    /// The source, to an address (and port) of `range`.
    Snat,
    /// The destination, to an address (and port) of `range`.
    Dnat,
    /// The source, to the output interface's address (ports of `range` if given).
    Masquerade,
    /// The destination, to the input interface's address (ports of `range` if given).
    Redirect,
    /// The source or destination network prefix, to `range.min_addr`'s (host part kept):
    /// `range.max_addr` is `min_addr | !mask`.
    Netmap,
}

/// A nat target's options, as the kernel's `nf_nat_range` holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nat {
    pub kind: NatKind,
    /// Host byte order, inclusive; meaningful with `nat_range::MAP_IPS` (and for NETMAP).
    pub min_addr: u32,
    pub max_addr: u32,
    /// Inclusive; meaningful with `nat_range::PROTO_SPECIFIED`.
    pub min_port: u16,
    pub max_port: u16,
    /// `pcn_iptables_common::nat_range::*` bits (the kernel's `NF_NAT_RANGE_*`).
    pub flags: u32,
}

impl Target {
    /// The chain a `-j CHAIN` or `-g CHAIN` leads to.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Target::Jump(chain) | Target::Goto(chain) => Some(chain),
            _ => None,
        }
    }

    /// Whether the rule's packet goes on to the next rule, changed or logged, with nothing
    /// but the scan to do it (the classifier counts it and goes on).
    pub fn goes_on(&self) -> bool {
        matches!(
            self,
            Target::Log(_)
                | Target::Mark(_)
                | Target::Tos(_)
                | Target::Dscp(_)
                | Target::Ttl(_)
                | Target::Tcpmss(_)
                | Target::Ct(_)
        )
    }

    /// The targets only the mangle table takes (the kernel's `.table = "mangle"`).
    pub fn mangle_only(&self) -> bool {
        matches!(self, Target::Tos(_) | Target::Dscp(_) | Target::Ttl(_))
    }
}

/// `-m addrtype`'s `--limit-iface-in` / `--limit-iface-out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AddrtypeIface {
    #[default]
    Any,
    In,
    Out,
}
