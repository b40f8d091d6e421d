//! libipt_icmp: `--icmp-type` by name (any unique prefix, in any case), `type` or `type/code`.

use super::{Entry, mandatory};
use crate::error::Result;
use crate::ruleset::model::{IcmpType, Match, Negatable};
use crate::syntax::value::xtables_uint_prefix;

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
                return Err(super::param(format!(
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
    let kind_error = || super::param(format!("Unknown ICMP type `{text}'"));
    let (kind, rest) = number_prefix(text).ok_or_else(kind_error)?;
    let (code_min, code_max, rest) = match rest.strip_prefix('/') {
        None => (0, 0xFF, rest),
        Some(code) => {
            let (c, rest) = number_prefix(code)
                .ok_or_else(|| super::param(format!("Unknown ICMP code `{text}'")))?;
            (c, c, rest)
        }
    };
    if let Some(c) = rest.chars().next() {
        return Err(super::param(format!("unknown character {c}")));
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
