//! libxt_addrtype (revision 1): `--src-type`/`--dst-type` lists of route types.

use super::{Entry, entry, flag};
use crate::error::Result;
use crate::ruleset::model::{Match, Negatable};

pub const ENTRIES: [Entry; 4] = [
    entry("src-type", 0, true, 0),
    entry("dst-type", 1, true, 0),
    Entry {
        excl: 1 << 3,
        ..flag("limit-iface-in", 2)
    },
    Entry {
        excl: 1 << 2,
        ..flag("limit-iface-out", 3)
    },
];

/// The kernel's route types by `rtn::*` value, as libxt_addrtype names them.
pub const NAMES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

pub fn parse(m: &mut Match, id: u8, text: &str, invert: bool) -> Result<()> {
    if id >= 2 {
        // The data plane learns an address's type from the main table, not per interface.
        return Err(crate::syntax::command::unsupported(format_args!(
            "option \"--{}\"",
            ENTRIES[id as usize].name
        )));
    }
    let types = Some(Negatable {
        value: parse_types(text)?,
        negated: invert,
    });
    if let Match::Addrtype { src, dst } = m {
        match id {
            0 => *src = types,
            _ => *dst = types,
        }
    }
    Ok(())
}

/// `parse_types`: each item is a prefix (any case) of a name, the first that fits.
fn parse_types(text: &str) -> Result<u16> {
    let one = |part: &str| {
        NAMES
            .iter()
            .position(|name| {
                part.len() <= name.len()
                    && name.as_bytes()[..part.len()].eq_ignore_ascii_case(part.as_bytes())
            })
            .map(|i| 1u16 << i)
    };
    let mut mask = 0;
    let mut rest = text;
    while let Some(comma) = rest.find(',') {
        mask |= one(&rest[..comma])
            .filter(|_| comma > 0)
            .ok_or_else(|| super::param(format!("addrtype: bad type `{rest}'")))?;
        rest = &rest[comma + 1..];
    }
    mask |= one(rest)
        .filter(|_| !rest.is_empty())
        .ok_or_else(|| super::param(format!("addrtype: bad type \"{rest}\"")))?;
    Ok(mask)
}

/// libxt_addrtype's `print_types`: the names, comma-separated, in value order.
pub fn format(types: u16) -> String {
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| types & (1 << i) != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}
