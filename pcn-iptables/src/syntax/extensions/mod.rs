//! The match and target extensions beyond tcp, udp, conntrack and state, parsed the way
//! libxtables' `xtables_option_parse` and `xtables_options_fcheck` drive an extension's
//! option table: one file per extension, named after iptables' libxt_*/libipt_* files.

pub(crate) mod addrtype;
pub(crate) mod icmp;
mod iprange;
mod length;
pub(crate) mod limit;
pub(crate) mod log;
pub(crate) mod mac;
pub(crate) mod multiport;
pub(crate) mod reject;
mod ttl;

use super::getopt::HasArg;
use super::netdb::NameDb;
use crate::error::{Error, Result};
use crate::ruleset::model::{Limit, Log, Match, Negatable, PortRange, Target, TtlMode};

/// The extensions of this module; the first nine are matches, the last two targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    Multiport,
    Icmp,
    Iprange,
    Mac,
    Length,
    Ttl,
    Addrtype,
    Comment,
    Limit,
    Reject,
    Log,
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

const fn entry(name: &'static str, id: u8, invert: bool, excl: u32) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::Required,
        invert,
        excl,
        mandatory: false,
    }
}

const fn flag(name: &'static str, id: u8) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::No,
        invert: false,
        excl: 0,
        mandatory: false,
    }
}

const fn mandatory(name: &'static str, id: u8, invert: bool) -> Entry {
    Entry {
        name,
        id,
        has_arg: HasArg::Required,
        invert,
        excl: 0,
        mandatory: true,
    }
}

const COMMENT: [Entry; 1] = [mandatory("comment", 0, false)];

impl Ext {
    pub fn match_by_name(name: &str) -> Option<Ext> {
        Some(match name {
            "multiport" => Ext::Multiport,
            "icmp" => Ext::Icmp,
            "iprange" => Ext::Iprange,
            "mac" => Ext::Mac,
            "length" => Ext::Length,
            "ttl" => Ext::Ttl,
            "addrtype" => Ext::Addrtype,
            "comment" => Ext::Comment,
            "limit" => Ext::Limit,
            _ => return None,
        })
    }

    pub fn target_by_name(name: &str) -> Option<Ext> {
        match name {
            "REJECT" => Some(Ext::Reject),
            "LOG" => Some(Ext::Log),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ext::Multiport => "multiport",
            Ext::Icmp => "icmp",
            Ext::Iprange => "iprange",
            Ext::Mac => "mac",
            Ext::Length => "length",
            Ext::Ttl => "ttl",
            Ext::Addrtype => "addrtype",
            Ext::Comment => "comment",
            Ext::Limit => "limit",
            Ext::Reject => "REJECT",
            Ext::Log => "LOG",
        }
    }

    /// The option table, in the extension's order (which `fcheck`'s messages follow).
    pub fn entries(self) -> &'static [Entry] {
        match self {
            Ext::Multiport => &multiport::ENTRIES,
            Ext::Icmp => &icmp::ENTRIES,
            Ext::Iprange => &iprange::ENTRIES,
            Ext::Mac => &mac::ENTRIES,
            Ext::Length => &length::ENTRIES,
            Ext::Ttl => &ttl::ENTRIES,
            Ext::Addrtype => &addrtype::ENTRIES,
            Ext::Comment => &COMMENT,
            Ext::Limit => &limit::ENTRIES,
            Ext::Reject => &reject::ENTRIES,
            Ext::Log => &log::ENTRIES,
        }
    }

    /// The name of an option id in messages: its first entry's.
    fn option_name(self, id: u8) -> &'static str {
        self.entries()
            .iter()
            .find(|e| e.id == id)
            .map_or("", |e| e.name)
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

/// One instance of an extension in a rule: the options seen (`xflags`) and the value so far.
#[derive(Clone, Debug)]
pub struct Instance {
    pub ext: Ext,
    xflags: u32,
    pub value: Value,
}

impl Instance {
    pub fn new(ext: Ext) -> Instance {
        let value = match ext {
            Ext::Multiport => Value::Match(Match::Multiport {
                dir: crate::ruleset::model::MultiportDir::Either,
                ports: Negatable::plain(Vec::new()),
            }),
            Ext::Icmp => Value::Match(Match::Icmp(Negatable::plain(icmp::ANY))),
            Ext::Iprange => Value::Match(Match::Iprange {
                src: None,
                dst: None,
            }),
            Ext::Mac => Value::Match(Match::Mac(Negatable::plain([0; 6]))),
            Ext::Length => Value::Match(Match::Length(Negatable::plain(PortRange {
                first: 0,
                last: u16::MAX,
            }))),
            Ext::Ttl => Value::Match(Match::Ttl {
                mode: TtlMode::Eq,
                value: 0,
            }),
            Ext::Addrtype => Value::Match(Match::Addrtype {
                src: None,
                dst: None,
            }),
            Ext::Comment => Value::Match(Match::Comment(String::new())),
            Ext::Limit => Value::Match(Match::Limit(Limit::DEFAULT)),
            Ext::Reject => Value::Target(Target::Reject(reject::DEFAULT)),
            Ext::Log => Value::Target(Target::Log(Log {
                level: Log::DEFAULT_LEVEL,
                flags: 0,
                prefix: String::new(),
            })),
        };
        Instance {
            ext,
            xflags: 0,
            value,
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
        let arg = arg.unwrap_or_default();
        match (&mut self.value, ext) {
            (Value::Match(m), Ext::Multiport) => multiport::parse(m, id, arg, invert, cx)?,
            (Value::Match(m), Ext::Icmp) => icmp::parse(m, arg, invert)?,
            (Value::Match(m), Ext::Iprange) => iprange::parse(m, id, arg, invert, cx)?,
            (Value::Match(m), Ext::Mac) => mac::parse(m, arg, invert)?,
            (Value::Match(m), Ext::Length) => length::parse(m, arg, invert)?,
            (Value::Match(m), Ext::Ttl) => ttl::parse(m, id, arg, invert)?,
            (Value::Match(m), Ext::Addrtype) => addrtype::parse(m, id, arg, invert)?,
            (Value::Match(Match::Comment(text)), Ext::Comment) => {
                if arg.contains('\n') {
                    return Err(super::command::unsupported("a comment with a newline"));
                }
                // XTTYPE_STRING into a 256-byte buffer: longer comments are cut.
                *text = truncate(arg, 255);
            }
            (Value::Match(m), Ext::Limit) => limit::parse(m, id, arg)?,
            (Value::Target(t), Ext::Reject) => reject::parse(t, arg, cx)?,
            (Value::Target(t), Ext::Log) => log::parse(t, id, arg)?,
            _ => unreachable!("an instance's value fits its extension"),
        }
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
        let none = self.xflags == 0;
        let message = match ext {
            Ext::Multiport if none => "multiport expection an option",
            Ext::Iprange if none => {
                "iprange match: You must specify `--src-range' or `--dst-range'"
            }
            Ext::Ttl if none => {
                "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt"
            }
            Ext::Addrtype if self.xflags & 3 == 0 => {
                "addrtype: you must specify --src-type or --dst-type"
            }
            _ => return Ok(self.value.clone()),
        };
        Err(param(message))
    }
}

fn param(message: impl Into<String>) -> Error {
    Error::parameter(message)
}

/// The first `max` bytes of `text`, as a C buffer would keep them.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `xtables_save_string`: bare when only `[A-Za-z0-9_-]`, otherwise double-quoted with `"`,
/// `\` and `'` escaped.
pub(crate) fn save_string(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return text.to_string();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An unsigned value of an `XTTYPE_UINT*` option: `what` names the option in the message
/// ("ttl: bad value for option \"--ttl-eq\", or out of range (0-255).").
pub(crate) fn uint_option(ext: &str, option: &str, text: &str, max: u64) -> Result<u64> {
    super::value::xtables_uint(text, 0, max).ok_or_else(|| {
        param(format!(
            "{ext}: bad value for option \"--{option}\", or out of range (0-{max}).\n"
        ))
    })
}
