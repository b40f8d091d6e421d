//! libxt_addrtype (revision 1): `--src-type`/`--dst-type` lists of route types, and
//! `--limit-iface-in`/`--limit-iface-out` (the types as routes through the packet's device
//! give them: `pcn_iptables_common::addrtype`).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, flag, inv};
use crate::error::Result;
use crate::model::{AddrtypeIface, Match, Negatable};

pub struct Addrtype;

impl Extension for Addrtype {
    fn name(&self) -> &'static str {
        "addrtype"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Addrtype {
            src: None,
            dst: None,
            iface: AddrtypeIface::Any,
        })
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        parse(v.as_match(), id, arg, invert)
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags & 3 == 0 {
            return Err(crate::xtables::param(
                "addrtype: you must specify --src-type or --dst-type",
            ));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Addrtype { src, dst, iface } = m else {
            return;
        };
        for (option, types) in [("src-type", src), ("dst-type", dst)] {
            if let Some(t) = types {
                let _ = write!(out, "{} --{option} {}", bang(t.negated), format(t.value));
            }
        }
        *out += match iface {
            AddrtypeIface::Any => "",
            AddrtypeIface::In => " --limit-iface-in",
            AddrtypeIface::Out => " --limit-iface-out",
        };
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Addrtype { src, dst, iface } = m else {
            return;
        };
        *out += " ADDRTYPE match";
        for (label, types) in [("src-type", src), ("dst-type", dst)] {
            if let Some(t) = types {
                let _ = write!(out, " {label} {}{}", inv(t.negated), format(t.value));
            }
        }
        *out += match iface {
            AddrtypeIface::Any => "",
            AddrtypeIface::In => " limit-in",
            AddrtypeIface::Out => " limit-out",
        };
    }

    /// Types without a device are a set of addresses (fields of the classifier); with one,
    /// the rule's own check.
    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let Match::Addrtype { src, dst, iface } = m else {
            return None;
        };
        match (field, iface) {
            (Field::SrcType, AddrtypeIface::Any) => src.clone().map(Want::AddressTypes),
            (Field::DstType, AddrtypeIface::Any) => dst.clone().map(Want::AddressTypes),
            (Field::AddrtypeIface, AddrtypeIface::In | AddrtypeIface::Out) => {
                Some(Want::AddrtypeIface {
                    iface: *iface,
                    src: src.clone(),
                    dst: dst.clone(),
                })
            }
            _ => None,
        }
    }
}

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
    let Match::Addrtype { src, dst, iface } = m else {
        return Ok(());
    };
    match id {
        2 => *iface = AddrtypeIface::In,
        3 => *iface = AddrtypeIface::Out,
        _ => {
            let types = Some(Negatable {
                value: parse_types(text)?,
                negated: invert,
            });
            match id {
                0 => *src = types,
                _ => *dst = types,
            }
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
            .ok_or_else(|| crate::xtables::param(format!("addrtype: bad type `{rest}'")))?;
        rest = &rest[comma + 1..];
    }
    mask |= one(rest)
        .filter(|_| !rest.is_empty())
        .ok_or_else(|| crate::xtables::param(format!("addrtype: bad type \"{rest}\"")))?;
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

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "Address type match options:\n",
    " [!] --src-type type[,...]      Match source address type\n",
    " [!] --dst-type type[,...]      Match destination address type\n",
    "     --limit-iface-in           Match only on the packet's incoming device\n",
    "     --limit-iface-out          Match only on the packet's outgoing device\n",
    "\n",
    "Valid types:           \n",
    "                                UNSPEC\n",
    "                                UNICAST\n",
    "                                LOCAL\n",
    "                                BROADCAST\n",
    "                                ANYCAST\n",
    "                                MULTICAST\n",
    "                                BLACKHOLE\n",
    "                                UNREACHABLE\n",
    "                                PROHIBIT\n",
    "                                THROW\n",
    "                                NAT\n",
    "                                XRESOLVE\n",
);
