//! The match and target extensions: one file per extension, holding what iptables keeps in its
//! `libxt_*.c`/`libipt_*.c`: the option table and its parsing, the `-S`/save printing, the `-L`
//! printing, the help text, and the extension's contract with the compiler (which packet
//! fields it constrains, what the rule's action needs). [`REGISTRY`] lists them.
//!
//! Options are parsed the way libxtables' `xtables_option_parse` and `xtables_options_fcheck`
//! drive an extension's option table ([`Instance`]). tcp, udp, conntrack and state keep part
//! of their option handling in the command line (`syntax`): `--tcp-flags` takes two arguments
//! and the port options have iptables' own messages; their value grammars are here.

pub mod addrtype;
pub mod comment;
pub mod conntrack;
pub mod icmp;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod log;
pub mod mac;
pub mod multiport;
pub mod reject;
pub mod tcp;
pub mod ttl;
pub mod udp;

use std::fmt;

use pcn_iptables_common::Action;

use crate::error::Result;
use crate::model::{IPPROTO_TCP, Limit, Match, Negatable, Rule, Target};
use crate::xtables::netdb::NameDb;
use crate::xtables::{HasArg, param};

/// Every extension, matches first (in the order `-m` looks them up), then targets.
pub static REGISTRY: [&dyn Extension; 15] = [
    &tcp::Tcp,
    &udp::Udp,
    &conntrack::Conntrack,
    &conntrack::State,
    &multiport::Multiport,
    &icmp::Icmp,
    &iprange::Iprange,
    &mac::Mac,
    &length::Length,
    &ttl::Ttl,
    &addrtype::Addrtype,
    &comment::Comment,
    &limit::LimitExt,
    &reject::Reject,
    &log::LogExt,
];

/// The extension a match value belongs to.
pub fn of(m: &Match) -> &'static dyn Extension {
    match m {
        Match::Ports { proto, .. } if *proto == IPPROTO_TCP => &tcp::Tcp,
        Match::Ports { .. } => &udp::Udp,
        Match::Conntrack { module, .. } => conntrack::of(*module),
        Match::Multiport { .. } => &multiport::Multiport,
        Match::Icmp(_) => &icmp::Icmp,
        Match::Iprange { .. } => &iprange::Iprange,
        Match::Mac(_) => &mac::Mac,
        Match::Length(_) => &length::Length,
        Match::Ttl { .. } => &ttl::Ttl,
        Match::Addrtype { .. } => &addrtype::Addrtype,
        Match::Comment(_) => &comment::Comment,
        Match::Limit(_) => &limit::LimitExt,
    }
}

/// The extension of a target, if it is one (not a verdict or a chain).
pub fn of_target(t: &Target) -> Option<&'static dyn Extension> {
    match t {
        Target::Reject(_) => Some(&reject::Reject),
        Target::Log(_) => Some(&log::LogExt),
        Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => None,
    }
}

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
    /// The connection state, `pcn_iptables_common::conntrack::ctstate` values.
    CtState,
    /// ICMP `type << 8 | code`.
    Icmp,
    /// The TCP flags byte.
    TcpFlags,
    /// The IP total length.
    Length,
    Ttl,
    /// The type of the source address (`1 << rtn::*` bits).
    SrcType,
    /// The type of the destination address.
    DstType,
    /// The Ethernet source address.
    MacSource,
    /// A token bucket in front of the rule's action.
    Limit,
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
}

impl Want {
    pub fn ranges(ranges: impl IntoIterator<Item = (u32, u32)>, negated: bool) -> Want {
        Want::Ranges(Negatable {
            value: ranges.into_iter().collect(),
            negated,
        })
    }
}

/// One extension. The parsing methods serve the extensions whose options [`Instance`] drives
/// ([`Extension::init`] is `Some`); the printing and compiling ones take the model's value.
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

    /// The value before any option (libxtables' `init`); `None` for the extensions whose
    /// options the command line handles itself (tcp, udp, conntrack, state).
    fn init(&self) -> Option<Value> {
        None
    }

    /// The extension's parse of option `id`, after `xtables_option_parse`'s checks.
    fn parse(
        &self,
        _value: &mut Value,
        _id: u8,
        _arg: &str,
        _invert: bool,
        _cx: &mut Context,
    ) -> Result<()> {
        unreachable!("{} parses no options through Instance", self.name())
    }

    /// The extension's final check (`x6_fcheck`), given the options seen.
    fn check(&self, _xflags: u32) -> Result<()> {
        Ok(())
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

/// A handle on a registered extension, comparable and printable by name.
#[derive(Clone, Copy)]
pub struct Ext(&'static dyn Extension);

impl Ext {
    /// `-m NAME`, among the extensions [`Instance`] parses.
    pub fn match_by_name(name: &str) -> Option<Ext> {
        Ext::find(Kind::Match, name)
    }

    /// `-j NAME`, among the target extensions.
    pub fn target_by_name(name: &str) -> Option<Ext> {
        Ext::find(Kind::Target, name)
    }

    fn find(kind: Kind, name: &str) -> Option<Ext> {
        REGISTRY
            .iter()
            .find(|e| e.kind() == kind && e.name() == name && e.init().is_some())
            .map(|e| Ext(*e))
    }

    /// The name of an option id in messages: its first entry's.
    fn option_name(self, id: u8) -> &'static str {
        self.entries()
            .iter()
            .find(|e| e.id == id)
            .map_or("", |e| e.name)
    }
}

impl std::ops::Deref for Ext {
    type Target = dyn Extension;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Ext {
    fn eq(&self, other: &Ext) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Ext {}

impl fmt::Debug for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// The extension named `name` (a match or a target), for `-h`.
pub fn by_name(name: &str) -> Option<&'static dyn Extension> {
    REGISTRY.iter().find(|e| e.name() == name).copied()
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
        mandatory: true,
    }
}

/// What a rule's parse knows that an extension's option may look at.
pub struct Context<'a> {
    pub db: &'a NameDb,
    /// `-p` as given so far.
    pub proto: Option<&'a Negatable<u8>>,
    pub warnings: &'a mut Vec<String>,
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

/// One instance of an extension in a rule: the options seen (`xflags`) and the value so far.
#[derive(Clone, Debug)]
pub struct Instance {
    pub ext: Ext,
    xflags: u32,
    pub value: Value,
}

impl Instance {
    pub fn new(ext: Ext) -> Instance {
        Instance {
            ext,
            xflags: 0,
            value: ext.init().expect("Instance drives extensions with an init"),
        }
    }

    /// `xtables_option_parse`, then the extension's own parse of option `id`.
    pub fn parse(
        &mut self,
        id: u8,
        arg: Option<&str>,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let ext = self.ext;
        let name = ext.option_name(id);
        if self.xflags & (1 << id) != 0 {
            return Err(param(format!(
                "{}: option \"--{name}\" can only be used once.\n",
                ext.name()
            )));
        }
        let entry = ext.entries().iter().find(|e| e.id == id).expect("known id");
        if invert && !entry.invert {
            return Err(param(format!(
                "{}: option \"--{name}\" cannot be inverted.\n",
                ext.name()
            )));
        }
        ext.parse(&mut self.value, id, arg.unwrap_or_default(), invert, cx)?;
        self.xflags |= 1 << id;
        Ok(())
    }

    /// `xtables_options_fcheck` (mandatory options, exclusions), then the extension's own
    /// final check; gives the finished value.
    pub fn finish(&self) -> Result<Value> {
        let ext = self.ext;
        for e in ext.entries() {
            let set = self.xflags & (1 << e.id) != 0;
            if e.mandatory && !set {
                return Err(param(format!(
                    "{}: option \"--{}\" must be specified\n",
                    ext.name(),
                    e.name
                )));
            }
            if !set {
                continue;
            }
            if let Some(other) = (0..32u8)
                .find(|&i| i != e.id && e.excl & (1 << i) != 0 && self.xflags & (1 << i) != 0)
            {
                return Err(param(format!(
                    "{}: option \"--{}\" cannot be used together with \"--{}\".\n",
                    ext.name(),
                    e.name,
                    ext.option_name(other)
                )));
            }
        }
        ext.check(self.xflags)?;
        Ok(self.value.clone())
    }
}

/// ` !` before an option in `-S`, or nothing.
pub(crate) fn bang(negated: bool) -> &'static str {
    if negated { " !" } else { "" }
}

/// `!` before a value in `-L`, or nothing.
pub(crate) fn inv(negated: bool) -> &'static str {
    if negated { "!" } else { "" }
}

/// `MIN` or `MIN:MAX`.
pub(crate) fn range(r: &crate::model::PortRange) -> String {
    match r.first == r.last {
        true => r.first.to_string(),
        false => format!("{}:{}", r.first, r.last),
    }
}

/// The printing of every match of a rule, for `-L` and `-S`; and the name `-m` gives it.
pub fn match_name(m: &Match) -> &'static str {
    of(m).name()
}

/// A match's `save`, after ` -m NAME`.
pub fn save(m: &Match) -> String {
    let mut out = String::new();
    of(m).save(m, &mut out);
    out
}

/// A match's `print` for `-L`.
pub fn print(db: &NameDb, rule: &Rule, m: &Match, numeric: bool) -> String {
    let mut out = String::new();
    of(m).print(m, &Show { db, rule, numeric }, &mut out);
    out
}

/// A target extension's `save`, after ` -j NAME` (nothing for verdicts and chains).
pub fn target_save(t: &Target) -> String {
    let mut out = String::new();
    if let Some(ext) = of_target(t) {
        ext.save_target(t, &mut out);
    }
    out
}

/// A target extension's `print` for `-L`, after the matches.
pub fn target_print(t: &Target, numeric: bool) -> String {
    let mut out = String::new();
    if let Some(ext) = of_target(t) {
        ext.print_target(t, numeric, &mut out);
    }
    out
}
