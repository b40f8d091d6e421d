//! The contract between an extension and the rest of the house: what an extension provides
//! ([`Extension`]), its option table ([`Entry`]), what its parser sees ([`Context`], [`Value`]),
//! what its `-L` printing sees ([`Show`]) and what the compiler asks of it ([`Field`],
//! [`Want`]). Every extension file imports this; the registry (`mod.rs`) imports them all.

use pcn_iptables_common::Action;

use crate::error::Result;
use crate::model::{
    AddrtypeIface, Connlimit, CtAddr, CtOther, Hashlimit, Limit, MarkMask, Match, Negatable, Owner,
    PortRange, Recent, Rule, SctpChunks, SpiRange, Statistic, Target, TimeMatch,
};
use crate::xtables::HasArg;
use crate::xtables::netdb::NameDb;

/// Whether an extension is a match (`-m`) or a target (`-j`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Match,
    Target,
}

/// What `-L` printing may look at besides the value.
pub struct Show<'a> {
    pub db: &'a NameDb,
    /// The rule the match belongs to (multiport names services after `-p`).
    pub rule: &'a Rule,
    /// `-n`
    pub numeric: bool,
}

/// The packet properties a match can constrain, as the compiler knows them (each becomes one
/// or more fields of the classifier, see `compile/fields.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The source address (beside `-s`).
    Src,
    /// The destination address (beside `-d`).
    Dst,
    Sport,
    Dport,
    /// Either port (`--ports`): the data plane ORs the source and the destination port.
    AnyPort,
    /// The connection state with its nat bits (`pcn_iptables_common::conntrack::ctstate::with_nat`
    /// values).
    CtState,
    /// ICMP `type << 8 | code`.
    Icmp,
    /// The TCP flags byte.
    TcpFlags,
    /// The IP total length.
    Length,
    Ttl,
    /// The IP header's TOS byte, checked by the rule itself.
    Tos,
    /// The packet's type (`pcn_iptables_common::pkt_type`), checked by the rule itself: few
    /// rules look at it, and a field costs every packet of the chain a lookup.
    PktType,
    /// The type of the source address (`1 << rtn::*` bits).
    SrcType,
    /// The type of the destination address.
    DstType,
    /// The Ethernet source address.
    MacSource,
    /// A token bucket in front of the rule's action.
    Limit,
    /// The addresses of the packet's connection's tuples, checked by the rule itself.
    CtTuple,
    /// A random draw or a packet count in front of the rule's action.
    Statistic,
    /// A recent list checked and changed in front of the rule's action.
    Recent,
    /// The connections counted in front of the rule's action.
    Connlimit,
    /// The time the packet is judged at, checked by the rule itself.
    Time,
    /// A TCP packet's MSS option, checked by the rule itself.
    Tcpmss,
    /// An ESP or AH packet's SPI, checked by the rule itself.
    Spi,
    /// The packet's mark, checked by the rule itself (`-j MARK` changes it as the chain goes).
    Mark,
    /// The mark of the packet's connection, checked by the rule itself.
    Connmark,
    /// The owner of the packet's socket, checked by the rule itself.
    Owner,
    /// A hashlimit table's bucket checked and changed in front of the rule's action.
    Hashlimit,
    /// An SCTP or DCCP packet's ports (and DCCP's type and options), checked by the rule
    /// itself.
    Ports,
    /// A TCP option kind among the packet's options, checked by the rule itself.
    TcpOption,
    /// An SCTP packet's chunk types and flags, checked by the rule itself.
    SctpChunks,
    /// Address types through the packet's device, checked by the rule itself.
    AddrtypeIface,
}

/// A match's constraint on one [`Field`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// The field's value lies in one of the inclusive ranges (not, when negated). A reversed
    /// range holds nothing.
    Ranges(Negatable<Vec<(u32, u32)>>),
    /// The address has one of these types.
    AddressTypes(Negatable<u16>),
    Mac(Negatable<[u8; 6]>),
    Limit(Limit),
    /// `--ctorigsrc`, `--ctorigdst`, `--ctreplsrc`, `--ctrepldst`; `states`: the same match
    /// has `--ctstate`.
    CtTuple {
        addrs: [Option<Negatable<CtAddr>>; 4],
        states: bool,
        other: CtOther,
    },
    Statistic(Negatable<Statistic>),
    PktType(Negatable<u8>),
    Recent(Recent),
    Connlimit(Connlimit),
    Time(TimeMatch),
    Tcpmss(Negatable<PortRange>),
    Spi(Negatable<SpiRange>),
    Mark(Negatable<MarkMask>),
    Owner(Owner),
    Hashlimit(Hashlimit),
    TcpOption(Negatable<u8>),
    SctpChunks(Negatable<SctpChunks>),
    AddrtypeIface {
        iface: AddrtypeIface,
        src: Option<Negatable<u16>>,
        dst: Option<Negatable<u16>>,
    },
    Ports {
        proto: u8,
        sport: Option<Negatable<PortRange>>,
        dport: Option<Negatable<PortRange>>,
        dccp_types: Option<Negatable<u16>>,
        dccp_option: Option<Negatable<u8>>,
    },
}

impl Want {
    pub fn ranges(ranges: impl IntoIterator<Item = (u32, u32)>, negated: bool) -> Want {
        Want::Ranges(Negatable {
            value: ranges.into_iter().collect(),
            negated,
        })
    }
}

/// One extension: its options (driven by `ext::Instance`), its printing and its contract with
/// the compiler, which take the model's value.
pub trait Extension: Sync {
    /// The name `-m` or `-j` takes, and `-S` prints.
    fn name(&self) -> &'static str;

    fn kind(&self) -> Kind {
        Kind::Match
    }

    /// Its help text, as `iptables -m NAME -h` appends it.
    fn help(&self) -> &'static str;

    /// The option table, in the extension's order (which `fcheck`'s messages follow).
    fn entries(&self) -> &'static [Entry] {
        &[]
    }

    /// The value before any option (libxtables' `init`).
    fn init(&self) -> Value;

    /// The extension's parse of option `id` (`!` before it: `invert`), after
    /// `xtables_option_parse`'s checks.
    fn parse(
        &self,
        value: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()>;

    /// The extension's final check (`x6_fcheck`), given the options seen and the value.
    fn check(&self, _xflags: u32, _value: &mut Value) -> Result<()> {
        Ok(())
    }

    /// Whether libxtables checks each option before the extension's parse (`x6_parse`
    /// extensions: "can only be used once", "cannot be inverted"); old-style extensions
    /// (libxt_tcp) check for themselves.
    fn generic_checks(&self) -> bool {
        true
    }

    /// The match as the rule keeps it, once the command is otherwise valid (pcn-iptables'
    /// canonical form, so that `-D` and `-C` find equal rules equal).
    fn canonical(&self, m: Match) -> Result<Match> {
        Ok(m)
    }

    /// A match's `save` (`-S`, iptables-save), after ` -m NAME`.
    fn save(&self, _m: &Match, _out: &mut String) {}

    /// A match's `print` (`-L`).
    fn print(&self, _m: &Match, _show: &Show, _out: &mut String) {}

    /// A target's `save`, after ` -j NAME`.
    fn save_target(&self, _t: &Target, _out: &mut String) {}

    /// A target's `print` (`-L`), after the matches.
    fn print_target(&self, _t: &Target, _numeric: bool, _out: &mut String) {}

    /// The compiler's question: what does match `m` ask of `field` (`None`: nothing)?
    fn want(&self, _m: &Match, _field: Field) -> Option<Want> {
        None
    }

    /// Whether the match looks at something that can differ between the packets of one flow
    /// (or has an effect per packet), so that a chain using it cannot cache its outcome per
    /// flow.
    fn per_packet(&self, _m: &Match) -> bool {
        false
    }

    /// The `pcn_iptables_common::hotdrop` bits of the packets cut short that the match
    /// drops (its kernel module's hotdrop).
    fn hotdrops(&self, _m: &Match) -> u8 {
        0
    }

    /// Whether the match needs connections tracked.
    fn tracks(&self) -> bool {
        false
    }

    /// A target's action: fills what it needs of `action`, gives the verdict
    /// (`pcn_iptables_common::verdict::*`).
    fn action(&self, _t: &Target, _action: &mut Action) -> u32 {
        unreachable!("{} is no target", self.name())
    }
}

/// One entry of an extension's option table (`struct xt_option_entry`).
pub struct Entry {
    pub name: &'static str,
    /// Options sharing an id are aliases.
    pub id: u8,
    pub has_arg: HasArg,
    /// `XTOPT_INVERT`: `!` may precede it.
    pub invert: bool,
    /// `excl`: the ids it cannot be combined with.
    pub excl: u32,
    /// `also`: the ids it needs beside it.
    pub also: u32,
    /// `XTOPT_MAND`
    pub mandatory: bool,
}

pub const fn entry(name: &'static str, id: u8, invert: bool, excl: u32) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::Required,
        invert,
        excl,
        also: 0,
        mandatory: false,
    }
}

pub const fn flag(name: &'static str, id: u8) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::No,
        invert: false,
        excl: 0,
        also: 0,
        mandatory: false,
    }
}

pub const fn mandatory(name: &'static str, id: u8, invert: bool) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::Required,
        invert,
        excl: 0,
        also: 0,
        mandatory: true,
    }
}

/// What a rule's parse knows that an extension's option may look at.
pub struct Context<'a> {
    pub db: &'a NameDb,
    /// `-p` as given so far.
    pub proto: Option<&'a Negatable<u8>>,
    pub warnings: &'a mut Vec<String>,
    /// Takes the next argument of the command line, if it is no option (tcp's `--tcp-flags
    /// MASK COMP` reads COMP this way).
    pub next_arg: &'a mut dyn FnMut() -> Option<String>,
}

/// The value an extension builds while its options are parsed.
#[derive(Clone, Debug)]
pub enum Value {
    Match(Match),
    Target(Target),
}

impl Value {
    /// The match being built (for a match extension's `parse`).
    pub fn as_match(&mut self) -> &mut Match {
        match self {
            Value::Match(m) => m,
            Value::Target(_) => unreachable!("a match instance holds a match"),
        }
    }

    /// The target being built (for a target extension's `parse`).
    pub fn as_target(&mut self) -> &mut Target {
        match self {
            Value::Target(t) => t,
            Value::Match(_) => unreachable!("a target instance holds a target"),
        }
    }
}

/// ` !` before an option in `-S`, or nothing.
pub fn bang(negated: bool) -> &'static str {
    if negated { " !" } else { "" }
}

/// `!` before a value in `-L`, or nothing.
pub fn inv(negated: bool) -> &'static str {
    if negated { "!" } else { "" }
}

/// An SPI range option (XTTYPE_UINT32RC) of `ext`.
pub fn spi_range(ext: &str, option: &str, arg: &str, negated: bool) -> Result<Negatable<SpiRange>> {
    let (first, last) = crate::xtables::mint_range(ext, option, arg, u32::MAX as u64)?;
    Ok(Negatable {
        value: SpiRange {
            first: first as u32,
            last: last as u32,
        },
        negated,
    })
}

/// `MIN` or `MIN:MAX`.
pub fn range(r: &crate::model::PortRange) -> String {
    match r.first == r.last {
        true => r.first.to_string(),
        false => format!("{}:{}", r.first, r.last),
    }
}

/// The TOS bytes whose bits under `mask` are `value`, as ranges (not, when `negated`).
pub fn tos_bytes(mask: u8, value: u8, negated: bool) -> Want {
    Want::ranges(
        (0..=255u32)
            .filter(|t| *t as u8 & mask == value)
            .map(|t| (t, t)),
        negated,
    )
}
