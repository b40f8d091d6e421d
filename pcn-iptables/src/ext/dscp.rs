//! libxt_dscp: `[!] --dscp value` or `[!] --dscp-class name`, the TOS byte's upper six bits.

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, tos_bytes};
use crate::error::Result;
use crate::model::{Match, Negatable};
use crate::xtables::{param, value::xtables_uint};

pub struct Dscp;

pub const ENTRIES: [Entry; 2] = [
    entry("dscp", 0, true, 1 << 1),
    entry("dscp-class", 1, true, 1),
];

/// libxt_dscp's classes, in its order (a name matches any text it starts, in any case).
const CLASSES: [(&str, u8); 22] = [
    ("CS0", 0x00),
    ("CS1", 0x08),
    ("CS2", 0x10),
    ("CS3", 0x18),
    ("CS4", 0x20),
    ("CS5", 0x28),
    ("CS6", 0x30),
    ("CS7", 0x38),
    ("BE", 0x00),
    ("AF11", 0x0a),
    ("AF12", 0x0c),
    ("AF13", 0x0e),
    ("AF21", 0x12),
    ("AF22", 0x14),
    ("AF23", 0x16),
    ("AF31", 0x1a),
    ("AF32", 0x1c),
    ("AF33", 0x1e),
    ("AF41", 0x22),
    ("AF42", 0x24),
    ("AF43", 0x26),
    ("EF", 0x2e),
];

/// The largest DSCP.
pub(super) const MAX: u64 = 0x3f;

impl Extension for Dscp {
    fn name(&self) -> &'static str {
        "dscp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Dscp(Negatable::plain(0)))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        let value = if id == 0 {
            xtables_uint(arg, 0, MAX).ok_or_else(|| {
                param("dscp: bad value for option \"--dscp\", or out of range (0-63).\n")
            })? as u8
        } else {
            class(arg)?
        };
        *v.as_match() = Match::Dscp(Negatable {
            value,
            negated: invert,
        });
        Ok(())
    }

    fn check(&self, xflags: u32, _: &mut Value) -> Result<()> {
        if xflags == 0 {
            return Err(param("DSCP match: Parameter --dscp is required"));
        }
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Dscp(d) = m else { return };
        let bang = if d.negated { " !" } else { "" };
        let _ = write!(out, "{bang} --dscp 0x{:02x}", d.value);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Dscp(d) = m else { return };
        let bang = if d.negated { "!" } else { "" };
        let _ = write!(out, " DSCP match {bang}0x{:02x}", d.value);
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let (Match::Dscp(d), Field::Tos) = (m, field) else {
            return None;
        };
        Some(tos_bytes(0xfc, d.value << 2, d.negated))
    }

    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxt_dscp's `class_to_dscp`: the first class whose name starts the text.
pub(super) fn class(arg: &str) -> Result<u8> {
    CLASSES
        .iter()
        .find(|(name, _)| {
            arg.get(..name.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(name))
        })
        .map(|(_, value)| *value)
        .ok_or_else(|| param(format!("Invalid DSCP value `{arg}'")))
}

/// libxt_dscp's help text.
pub const HELP: &str = concat!(
    "\n",
    "dscp match options\n",
    "[!] --dscp value\t\tMatch DSCP codepoint with numerical value\n",
    "  \t\t                This value can be in decimal (ex: 32)\n",
    "               \t\tor in hex (ex: 0x20)\n",
    "[!] --dscp-class name\t\tMatch the DiffServ class. This value may\n",
    "\t\t\t\tbe any of the BE,EF, AFxx or CSx classes\n",
    "\n",
    "\t\t\t\tThese two options are mutually exclusive !\n",
);
