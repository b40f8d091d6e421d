//! libxt_tos (revision 1): `[!] --tos value[/mask]` or a symbol of the TOS byte.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, mandatory, tos_bytes};
use crate::error::Result;
use crate::model::{Match, Negatable, TosMask};
use crate::xtables::{param, value::xtables_uint_prefix};

pub struct Tos;

/// libxtables' TOS symbols, in its order; a symbol's mask is 0x3f.
pub(super) const SYMBOLS: [(&str, u8); 5] = [
    ("Minimize-Delay", 0x10),
    ("Maximize-Throughput", 0x08),
    ("Maximize-Reliability", 0x04),
    ("Minimize-Cost", 0x02),
    ("Normal-Service", 0x00),
];
pub(super) const SYMBOL_MASK: u8 = 0x3f;

pub const ENTRIES: [Entry; 1] = [mandatory("tos", 0, true)];

impl Extension for Tos {
    fn name(&self) -> &'static str {
        "tos"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Tos(Negatable::plain(TosMask::default())))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        *v.as_match() = Match::Tos(Negatable {
            value: parse(arg)?,
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Tos(t) = m else { return };
        let bang = if t.negated { " !" } else { "" };
        let _ = write!(
            out,
            "{bang} --tos 0x{:02x}/0x{:02x}",
            t.value.value, t.value.mask
        );
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        let Match::Tos(t) = m else { return };
        out.push_str(" tos match");
        if t.negated {
            out.push('!');
        }
        let TosMask { value, mask } = t.value;
        match SYMBOLS.iter().find(|(_, v)| *v == value) {
            Some((name, _)) if !show.numeric && mask == SYMBOL_MASK => {
                let _ = write!(out, " {name}");
            }
            _ => {
                let _ = write!(out, "0x{value:02x}/0x{mask:02x}");
            }
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::Tos(t), Field::Tos) = (m, field) else {
            return None;
        };
        // The kernel compares the masked byte with the value as given: a value with bits
        // outside the mask matches nothing.
        Some(tos_bytes(t.value.mask, t.value.value, t.negated))
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxtables' `xtopt_parse_tosmask`: a number (mask 0xff) with an optional `/mask`, else a
/// symbol, in any case (mask 0x3f).
pub(super) fn parse(arg: &str) -> Result<TosMask> {
    if let Some((value, rest)) = xtables_uint_prefix(arg, u8::MAX as u64) {
        let mask = match rest.strip_prefix('/') {
            None if rest.is_empty() => Some(u8::MAX as u64),
            Some(m) => xtables_uint_prefix(m, u8::MAX as u64)
                .filter(|(_, r)| r.is_empty())
                .map(|(mask, _)| mask),
            None => None,
        };
        return match mask {
            Some(mask) => Ok(TosMask {
                value: value as u8,
                mask: mask as u8,
            }),
            None => Err(param(format!("Illegal value: \"{arg}\""))),
        };
    }
    SYMBOLS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(arg))
        .map(|(_, value)| TosMask {
            value: *value,
            mask: SYMBOL_MASK,
        })
        .ok_or_else(|| param(format!("Symbolic name \"{arg}\" is unknown")))
}

/// libxt_tos's help text.
pub const HELP: &str = concat!(
    "\n",
    "tos match options:\n",
    "[!] --tos value[/mask]    Match Type of Service/Priority field value\n",
    "[!] --tos symbol          Match TOS field (IPv4 only) by symbol\n",
    "                          Accepted symbolic names for value are:\n",
    "                          (0x10) 16 Minimize-Delay\n",
    "                          (0x08)  8 Maximize-Throughput\n",
    "                          (0x04)  4 Maximize-Reliability\n",
    "                          (0x02)  2 Minimize-Cost\n",
    "                          (0x00)  0 Normal-Service\n",
    "\n",
);
