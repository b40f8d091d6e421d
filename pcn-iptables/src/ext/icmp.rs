//! libipt_icmp: `--icmp-type` by name (any unique prefix, in any case), `type` or `type/code`.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, inv, mandatory};
use crate::error::Result;
use crate::model::{IcmpType, Match, Negatable};

pub struct Icmp;

impl Extension for Icmp {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::ICMP
    }

    fn name(&self) -> &'static str {
        "icmp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Icmp(Negatable::plain(ANY)))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), arg, invert)
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Icmp(t) = m else { return };
        *out += bang(t.negated);
        let t = t.value;
        if t.kind == 0xFF {
            *out += " --icmp-type any";
        } else {
            let _ = write!(out, " --icmp-type {}", t.kind);
            if t.code_min != 0 || t.code_max != 0xFF {
                let _ = write!(out, "/{}", t.code_min);
            }
        }
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        let Match::Icmp(t) = m else { return };
        let negated = t.negated;
        let t = t.value;
        match name_of(&t).filter(|_| !show.numeric) {
            Some(name) => {
                let _ = write!(out, " icmp {}{name}", inv(negated));
            }
            None => {
                let _ = write!(out, " icmp{}type {}", bang(negated), t.kind);
                if t.code_min == t.code_max {
                    let _ = write!(out, " code {}", t.code_min);
                } else if t.code_min != 0 || t.code_max != 0xFF {
                    let _ = write!(out, " codes {}-{}", t.code_min, t.code_max);
                }
            }
        }
    }

    /// `type << 8 | code`; `any` is every type.
    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::Icmp(t), Field::Icmp) = (m, field) else {
            return None;
        };
        let v = t.value;
        let (first, last) = match v.kind {
            0xFF => (0, 0xFFFF),
            kind => {
                let kind = (kind as u32) << 8;
                (kind | v.code_min as u32, kind | v.code_max as u32)
            }
        };
        Some(Want::ranges([(first, last)], t.negated))
    }
}
use crate::xtables::value::xtables_uint_prefix;

pub const ENTRIES: [Entry; 1] = [mandatory("icmp-type", 0, true)];

pub const ANY: IcmpType = IcmpType {
    kind: IcmpType::ANY,
    code_min: 0,
    code_max: 0xFF,
};

/// libipt_icmp's `icmp_codes`, aliases included, in its order: parsing takes prefixes in this
/// order, printing the first entry that fits.
#[rustfmt::skip]
pub const NAMES: [(&str, u8, u8, u8); 40] = [
    ("any", 0xFF, 0, 0xFF),
    ("echo-reply", 0, 0, 0xFF),
    ("pong", 0, 0, 0xFF),
    ("destination-unreachable", 3, 0, 0xFF),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xFF),
    ("redirect", 5, 0, 0xFF),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xFF),
    ("ping", 8, 0, 0xFF),
    ("router-advertisement", 9, 0, 0xFF),
    ("router-solicitation", 10, 0, 0xFF),
    ("time-exceeded", 11, 0, 0xFF),
    ("ttl-exceeded", 11, 0, 0xFF),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xFF),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xFF),
    ("timestamp-reply", 14, 0, 0xFF),
    ("address-mask-request", 17, 0, 0xFF),
    ("address-mask-reply", 18, 0, 0xFF),
];

/// The name `-L` shows for a type and code range, if one fits exactly.
pub fn name_of(t: &IcmpType) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(_, kind, min, max)| (*kind, *min, *max) == (t.kind, t.code_min, t.code_max))
        .map(|(name, ..)| *name)
}

pub fn parse(m: &mut Match, text: &str, invert: bool) -> Result<()> {
    *m = Match::Icmp(Negatable {
        value: parse_type(text)?,
        negated: invert,
    });
    Ok(())
}

/// `parse_icmp`
fn parse_type(text: &str) -> Result<IcmpType> {
    let mut found: Option<&(&str, u8, u8, u8)> = None;
    for entry in NAMES.iter() {
        let name = entry.0.as_bytes();
        if text.len() <= name.len() && name[..text.len()].eq_ignore_ascii_case(text.as_bytes()) {
            if let Some(first) = found {
                return Err(crate::xtables::param(format!(
                    "Ambiguous ICMP type `{text}': `{}' or `{}'?",
                    first.0, entry.0
                )));
            }
            found = Some(entry);
        }
    }
    if let Some(&(_, kind, code_min, code_max)) = found {
        return Ok(IcmpType {
            kind,
            code_min,
            code_max,
        });
    }
    // A number, then `/` and a number, then nothing: each read like strtoul(3) reads it
    // (leading blanks, C literals), the first other character refused as iptables does.
    let kind_error = || crate::xtables::param(format!("Unknown ICMP type `{text}'"));
    let (kind, rest) = number_prefix(text).ok_or_else(kind_error)?;
    let (code_min, code_max, rest) = match rest.strip_prefix('/') {
        None => (0, 0xFF, rest),
        Some(code) => {
            let (c, rest) = number_prefix(code)
                .ok_or_else(|| crate::xtables::param(format!("Unknown ICMP code `{text}'")))?;
            (c, c, rest)
        }
    };
    if let Some(c) = rest.chars().next() {
        return Err(crate::xtables::param(format!("unknown character {c}")));
    }
    Ok(IcmpType {
        kind,
        code_min,
        code_max,
    })
}

/// `xtables_strtoui(s, &end, &v, 0, UINT8_MAX)`.
fn number_prefix(s: &str) -> Option<(u8, &str)> {
    xtables_uint_prefix(s, u8::MAX as u64).map(|(v, rest)| (v as u8, rest))
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "icmp match options:\n",
    "[!] --icmp-type typename\tmatch icmp type\n",
    "[!] --icmp-type type[/code]\t(or numeric type or type/code)\n",
    "Valid ICMP Types:\n",
    "any\n",
    "echo-reply (pong)\n",
    "destination-unreachable\n",
    "   network-unreachable\n",
    "   host-unreachable\n",
    "   protocol-unreachable\n",
    "   port-unreachable\n",
    "   fragmentation-needed\n",
    "   source-route-failed\n",
    "   network-unknown\n",
    "   host-unknown\n",
    "   network-prohibited\n",
    "   host-prohibited\n",
    "   TOS-network-unreachable\n",
    "   TOS-host-unreachable\n",
    "   communication-prohibited\n",
    "   host-precedence-violation\n",
    "   precedence-cutoff\n",
    "source-quench\n",
    "redirect\n",
    "   network-redirect\n",
    "   host-redirect\n",
    "   TOS-network-redirect\n",
    "   TOS-host-redirect\n",
    "echo-request (ping)\n",
    "router-advertisement\n",
    "router-solicitation\n",
    "time-exceeded (ttl-exceeded)\n",
    "   ttl-zero-during-transit\n",
    "   ttl-zero-during-reassembly\n",
    "parameter-problem\n",
    "   ip-header-bad\n",
    "   required-option-missing\n",
    "timestamp-request\n",
    "timestamp-reply\n",
    "address-mask-request\n",
    "address-mask-reply\n",
);
